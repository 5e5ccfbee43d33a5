"""The plan of a verification: its settings, their checks and the minimums.

Light on purpose (no numerics imported), so the command line can show the
plan's defaults without loading the simulators.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import SymiclError
from ..spec import ModelSpec

__all__ = ["Plan", "UsageError", "MIN_SEEDS", "MIN_STEPS"]

MIN_SEEDS = 8           # fewer seeds leave the SE (and its Student-t quantile) too unsure
MIN_STEPS = 20          # fewer SGD steps leave nothing to compare


class UsageError(SymiclError):
    """A plan that cannot give a verdict (too few seeds or steps): exit 2, never a pass."""


@dataclass(frozen=True)
class Plan:
    """What one verification runs; every number is stated in the report.

    ``alpha`` is the family-wise false-failure rate of one run: split
    equally over the judged z-rows (Bonferroni), each row's tolerance is the
    Student-t quantile of its degrees of freedom.
    """

    eta: float = 0.005
    batch: int = 256
    seeds: int = 32
    t_end: float = 10.0
    init: float = 0.1
    records: int = 50
    checkpoints: int = 4
    n_gradient: int = 200_000
    eta_sweep: tuple = (0.005, 0.01, 0.02, 0.04)
    sweep_time: float = 1.0
    seed: int = 0
    alpha: float = 1e-3
    backend: str = "numba"
    simulator: str = "auto"

    QUICK = {"eta": 0.01, "batch": 64, "seeds": 16, "t_end": 6.0, "records": 30,
             "n_gradient": 40_000, "eta_sweep": (0.01, 0.04), "sweep_time": 0.5}

    @classmethod
    def make(cls, spec: ModelSpec, quick: bool = False, options: dict | None = None,
             **overrides) -> "Plan":
        """The spec's plan (quick or full), then its ``plan_for(options)``, then
        ``overrides``, checked."""
        base = {**spec.plan, **(dict(cls.QUICK, **spec.quick) if quick else {})}
        if spec.plan_for is not None and options is not None:
            base.update(spec.plan_for(options))
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(base) - names)
        if unknown:
            raise SymiclError(f"plan of {spec.name} names unknown settings {', '.join(unknown)}")
        plan = cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
        plan.check()
        return plan

    def check(self) -> None:
        for name in ("eta", "t_end", "init", "sweep_time", "alpha"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise UsageError(f"{name} must be a positive number, got {v!r}")
        if self.init < 0:
            raise UsageError(f"init must be >= 0, got {self.init}")
        if not self.alpha < 1:
            raise UsageError(f"alpha must be below 1, got {self.alpha}")
        for name in ("batch", "records", "checkpoints", "n_gradient"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise UsageError(f"{name} must be a positive integer, got {v!r}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {self.seed!r}")
        if int(self.seeds) != self.seeds or self.seeds < MIN_SEEDS:
            raise UsageError(f"seeds = {self.seeds}: a verdict needs at least {MIN_SEEDS} "
                             "independent SGD runs to estimate its standard errors")
        if self.steps < MIN_STEPS:
            raise UsageError(f"t_end / eta = {self.t_end:g} / {self.eta:g} gives {self.steps} SGD "
                             f"steps; a verdict needs at least {MIN_STEPS}")
        if self.n_gradient < 1000:
            raise UsageError(f"n_gradient = {self.n_gradient}: the gradient check needs at "
                             "least 1000 examples")
        for e in self.eta_sweep:
            if not (isinstance(e, (int, float)) and e > 0 and np.isfinite(e)):
                raise UsageError(f"eta_sweep holds {e!r}; every learning rate must be positive")
        if self.backend not in ("numba", "numpy"):
            raise UsageError(f"backend must be numba or numpy, got {self.backend!r}")
        if self.simulator not in ("auto", "generated", "hand-written"):
            raise UsageError(f"simulator must be auto, generated or hand-written, "
                             f"got {self.simulator!r}")

    @property
    def steps(self) -> int:
        return int(round(self.t_end / self.eta))

    def schedule(self) -> tuple[int, int, np.ndarray]:
        """(steps, record every, recording times t = eta x step); steps a multiple of every."""
        steps = self.steps
        every = max(1, steps // self.records)
        steps -= steps % every
        return steps, every, self.eta * np.arange(steps // every + 1) * every
