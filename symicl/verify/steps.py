"""The steps that ``symicl verify`` and ``symicl sweep`` share, for any model spec.

An :class:`Experiment` is one model at numeric constants with a plan: its
kernels, its start, the schedule, and the three paths every comparison
uses, all from the same start and at the same recording steps:

* the **flow** d theta/dt = -grad L, integrated (the derived theory);
* **gradient descent** on the derived expected loss at the plan's eta,
  theta_{j+1} = theta_j - eta grad L(theta_j): an exact deterministic map,
  what the seed mean of SGD estimates up to an O(eta/B) noise bias;
* **SGD** on the model itself (the spec's hand-written simulator, or the one
  generated from the definition), over independent seeds, at batch B and
  at batch 4B: SGD's seed mean is GD + c/B + O(1/B^2), so the two give the
  noise bias c/B and the mean carried to B -> infinity (Richardson).

Divergence bounds come from the gradient-descent path's own scale; gradient
descent that diverges names the step and the stability bound 2/lambda_max.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..codegen import kernels
from ..model import Model
from ..simulate import GeneratedSGD, Guard, integrate, run_sgd
from ..simulate.sgd import DivergenceError, ThetaRun
from ..spec import ModelSpec, Readout
from .plan import MIN_SEEDS, MIN_STEPS, Plan, UsageError

__all__ = ["Plan", "Experiment", "MIN_SEEDS", "MIN_STEPS", "UsageError"]

WEIGHT_FACTOR = 100.0   # SGD diverged: |theta| beyond 100 (1 + max |theta_GD|)
LOSS_FACTOR = 1e4       # or minibatch loss beyond 1e4 (1 + max L_GD)
LARGE_BATCH = 4         # the second SGD run's batch, in batches: the noise-bias extrapolation


@dataclass
class Experiment:
    """One model at numeric constants, with its plan, start and the shared paths."""

    spec: ModelSpec
    options: dict
    constants: dict
    plan: Plan
    progress: bool = False
    model: Model = field(init=False)
    log_lines: list = field(default_factory=list)

    def __post_init__(self):
        self.model = _model(self.spec, self.options)
        self.constants = self.spec.numeric_constants(self.model, self.options, self.constants)
        self.kern = kernels(self.model, "numpy")
        self.c = self.kern.constants_vector(self.constants)
        self.theta0 = self.spec.start(self.model, self.options, self.plan.init, self.plan.seed)
        self.steps, self.every, self.t = self.plan.schedule()
        self.readout: Readout = self.spec.readout_of(self.model, self.options, self.constants)

    def log(self, msg: str) -> None:
        self.log_lines.append(msg)
        if self.progress:
            import sys

            print(f"symicl verify: {msg}", file=sys.stderr, flush=True)

    # -- simulators ------------------------------------------------------------------
    def simulator(self, batch: int | None = None, kind: str | None = None):
        """The spec's hand-written simulator (``auto`` when it has one) or the generated one."""
        kind = kind or self.plan.simulator
        batch = batch or self.plan.batch
        if not self.model.distribution.is_gaussian and self.spec.simulator is not None:
            # hand-written simulators draw Gaussian data: never for a non-Gaussian model
            if kind == "hand-written":
                raise UsageError(f"the hand-written simulator of {self.spec.name} draws "
                                 f"Gaussian data; this model's data is not Gaussian (use "
                                 f"--simulator generated or auto)")
            kind = "generated"
        if kind in ("auto", "hand-written") and self.spec.simulator is not None:
            sim = self.spec.simulator(self.model, self.options, self.constants, batch)
            if sim is not None:
                return sim
            if kind == "hand-written":
                raise UsageError(f"the hand-written simulator of {self.spec.name} does not "
                                 f"cover these options (use --simulator generated or auto)")
        elif kind == "hand-written":
            raise UsageError(f"model {self.spec.name} has no hand-written simulator")
        return GeneratedSGD(self.model, self.constants, batch=batch, backend=self.plan.backend)

    # -- paths -------------------------------------------------------------------------
    def gd(self, eta: float, steps: int, every: int, theta0=None,
           windows: bool = False):
        """Gradient descent on the derived loss; theta at every ``every``-th step.

        With ``windows``, also the expected loss averaged over the steps of each
        recording window, as (path, window losses): SGD's recorded loss at record k
        is the mean minibatch loss over the steps before it, each at the weights
        of the step before, and this is the same average of L along GD."""
        theta = np.array(self.theta0 if theta0 is None else theta0, dtype=float)
        out = np.empty((steps // every + 1, theta.size))
        out[0] = theta
        window = np.full(steps // every + 1, np.nan)
        acc = 0.0
        f = np.empty_like(theta)
        limit = 1e8 * (1.0 + np.max(np.abs(theta)))
        for j in range(1, steps + 1):
            if windows:
                acc += float(self.kern.loss(theta, self.c))
            theta += eta * self.kern.flow(theta, self.c, f)
            if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > limit:
                raise DivergenceError(
                    f"gradient descent on the derived loss diverges at step {j} with eta = "
                    f"{eta:g}{self._stability_text()}; take a smaller eta")
            if j % every == 0:
                out[j // every] = theta
                window[j // every] = acc / every
                acc = 0.0
        return (out, window) if windows else out

    def _stability_text(self) -> str:
        try:
            H = -self.kern.jacobian(self.theta0, self.c)
            lam = float(np.max(np.linalg.eigvalsh((H + H.T) / 2)))
            return f" (at the start 2/lambda_max(Hessian) = {2 / lam:.3g})" if lam > 0 else ""
        except Exception:  # noqa: BLE001 - a hint only
            return ""

    @cached_property
    def _gd_run(self) -> tuple[np.ndarray, np.ndarray]:
        return self.gd(self.plan.eta, self.steps, self.every, windows=True)

    @property
    def gd_path(self) -> np.ndarray:
        """Gradient descent at the plan's eta, at the recording steps."""
        return self._gd_run[0]

    @property
    def gd_window_loss(self) -> np.ndarray:
        """L along gradient descent averaged over each recording window (NaN at t = 0)."""
        return self._gd_run[1]

    @cached_property
    def gd_half_path(self) -> np.ndarray:
        """Gradient descent at eta / 2, at the same times."""
        return self.gd(self.plan.eta / 2, 2 * self.steps, 2 * self.every)

    @cached_property
    def flow_path(self):
        """The integrated flow at the recording times (a Trajectory)."""
        return integrate(self.model, self.theta0, float(self.t[-1]), self.constants,
                         t_eval=self.t, method="DOP853", rtol=1e-12, atol=1e-14,
                         backend="numpy")

    def guard(self) -> Guard:
        path = self.gd_path
        loss = self.kern.loss(path.T, self.c)
        w = WEIGHT_FACTOR * (1.0 + float(np.max(np.abs(path))))
        L = LOSS_FACTOR * (1.0 + float(np.max(np.abs(loss))))
        return Guard(w, L, f"{WEIGHT_FACTOR:g} (1 + max |theta|) and {LOSS_FACTOR:g} (1 + max L) "
                           "along gradient descent on the derived loss")

    @cached_property
    def sgd(self) -> ThetaRun:
        """SGD over the plan's seeds from the start, recorded at the recording steps."""
        sim = self.simulator()
        self.log(f"SGD ({type(sim).__name__}): {self.plan.seeds} seeds x {self.steps} steps x "
                 f"{self.plan.batch} examples, eta = {self.plan.eta:g}")
        start = time.perf_counter()
        run = run_sgd(sim, self.theta0, self.steps, self.plan.eta, seeds=self.plan.seeds,
                      seed=self.plan.seed, record_every=self.every, progress=self.progress,
                      guard=self.guard(), label=f"sgd {self.spec.name}")
        self.sgd_seconds = time.perf_counter() - start
        return run

    @cached_property
    def sgd_large(self) -> ThetaRun:
        """SGD with LARGE_BATCH x the batch (other seeds), for the noise-bias extrapolation."""
        sim = self.simulator(batch=LARGE_BATCH * self.plan.batch)
        self.log(f"SGD at batch {LARGE_BATCH * self.plan.batch} for the noise bias: "
                 f"{self.plan.seeds} seeds x {self.steps} steps")
        return run_sgd(sim, self.theta0, self.steps, self.plan.eta, seeds=self.plan.seeds,
                       seed=self.plan.seed + 100, record_every=self.every,
                       progress=self.progress, guard=self.guard(),
                       label=f"sgd {self.spec.name} (batch x{LARGE_BATCH})")

    def extrapolated(self, values_small: np.ndarray, values_large: np.ndarray):
        """The seed mean carried to B -> infinity and its SE, from batches B and kB.

        SGD's seed mean is GD + c/B + O(1/B^2) (its noise bias), so
        m_inf = (k m_kB - m_B) / (k - 1), SE^2 = (k^2 SE_kB^2 + SE_B^2) / (k - 1)^2.
        Returns (m_inf, SE, bias at B = m_B - m_inf, where the seeds differ)."""
        k = LARGE_BATCH
        m1, s1, d1 = seed_stats(values_small)
        mk, sk, dk = seed_stats(values_large)
        m = (k * mk - m1) / (k - 1)
        se = np.sqrt(k * k * sk ** 2 + s1 ** 2) / (k - 1)
        return m, se, m1 - m, d1 | dk

    # -- readouts ----------------------------------------------------------------------
    def read(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(self.readout.value(np.asarray(theta)), dtype=float)


_MODELS: dict = {}


def _model(spec: ModelSpec, options: dict) -> Model:
    """The spec's verify model, built once per process for each spec and options."""
    key = (spec.name, spec.source, repr(sorted(options.items())))
    if key not in _MODELS:
        _MODELS[key] = spec.build_model(options, "verify")
    return _MODELS[key]


def seed_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed mean, standard error (std / sqrt(S), ddof 1) and whether the seeds differ."""
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    spread = values.max(axis=0) > values.min(axis=0)
    return mean, se, spread


def compare(sgd: np.ndarray, ref: np.ndarray) -> tuple[float, float, tuple]:
    """max |seed mean - ref| and max |z| where the seeds differ, with the worst index.

    ``sgd`` is (seeds, ...), ``ref`` (...).  Where every seed holds the same
    number (the shared start) mean and SE are rounding error: left out.
    """
    mean, se, spread = seed_stats(sgd)
    gap = np.abs(mean - ref)
    z = np.where(spread, gap / np.where(spread & (se > 0), se, np.inf), 0.0)
    worst = np.unravel_index(int(np.argmax(z)), z.shape) if z.size else ()
    return float(gap.max(initial=0.0)), float(z.max(initial=0.0)), worst
