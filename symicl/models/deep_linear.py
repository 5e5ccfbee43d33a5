"""Two-layer linear networks: f(x) = W2 W1 x.

Whitened inputs x (Gaussian N(0, I) by default; ``inputs`` picks another law
of independent unit-variance coordinates, see :func:`symicl.sources.inputs`),
a teacher y = T x, and the squared error (1/2) ||y - W2 W1 x||^2.  W1 is
hidden x in, W2 is out x hidden; the teacher is symbolic (``T_i_j``) unless
given as a numeric matrix.  The loss involves second moments of x only, so
it is the same for every input law.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import symbols
from ..errors import ModelError
from ..expectation import Distribution
from ..matrix_level import models as matrix_twins
from ..model import Model
from ..sources import input_constants, input_options, inputs as input_law

__all__ = ["deep_linear"]


def _teacher(n_in: int, n_out: int, teacher) -> sp.Matrix:
    if teacher is None:
        return symbols.matrix("T", n_out, n_in)
    mat = sp.Matrix(np.asarray(teacher, dtype=object).tolist()) if not isinstance(
        teacher, sp.MatrixBase) else sp.Matrix(teacher)
    if mat.shape != (n_out, n_in):
        raise ModelError(f"teacher has shape {mat.shape[0]}x{mat.shape[1]}, "
                         f"expected out x in = {n_out}x{n_in}")
    return mat


def deep_linear(n_in: int = 2, n_hidden: int = 2, n_out: int = 2, teacher=None,
                inputs: str = "gaussian") -> Model:
    """The two-layer linear network as a :class:`Model` (blocks ``W1``, ``W2``)."""
    for name, n in (("input", n_in), ("hidden", n_hidden), ("output", n_out)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ModelError(f"{name} size must be a positive integer, got {n!r}")
    x = symbols.vector("x", n_in)
    W1 = symbols.matrix("W1", n_hidden, n_in)
    W2 = symbols.matrix("W2", n_out, n_hidden)
    T = _teacher(n_in, n_out, teacher)
    xv = sp.Matrix(x)
    options = {"in": int(n_in), "hidden": int(n_hidden), "out": int(n_out),
               "teacher": "symbolic" if teacher is None else [[str(e) for e in row]
                                                              for row in T.tolist()],
               **({} if inputs == "gaussian" else {"inputs": inputs})}
    return Model("deep-linear", {"W1": W1, "W2": W2},
                 Distribution(input_law(inputs, x, None, name="x")),
                 prediction=W2 * (W1 * xv), target=T * xv, options=options)


# -- the model specification ---------------------------------------------------------------
def _teacher_matrix(options: dict) -> np.ndarray:
    """T = U diag(singular values) V^T with fixed random orthogonal U, V (seed 12345)."""
    from ..analysis.prior_knowledge import teacher

    sv = options["singular_values"]
    if len(sv) > min(options["n_in"], options["n_out"]):
        raise ModelError(f"singular_values {list(sv)} has more than min(n_in, n_out) = "
                         f"{min(options['n_in'], options['n_out'])} values")
    return np.round(teacher(options["n_out"], options["n_in"], sv, seed=12345), 12)


def _constants(options: dict) -> dict:
    T = _teacher_matrix(options)
    return {**{f"T_{i + 1}_{j + 1}": float(T[i, j]) for i in range(T.shape[0])
               for j in range(T.shape[1])}, **input_constants(options)}


def _start(model: Model, options: dict, scale: float, seed: int):
    """W1, W2 with iid N(0, scale^2) entries (the same for every SGD seed)."""
    from ..spec import MatrixPacking

    rng = np.random.default_rng(seed + 1)
    h, i, o = options["n_hidden"], options["n_in"], options["n_out"]
    pack = MatrixPacking(model, {"W1": (h, i), "W2": (o, h)})
    W1 = scale * rng.standard_normal((h, i))
    W2 = scale * rng.standard_normal((o, h))
    return pack.pack({"W1": W1, "W2": W2})


def _readout(model: Model, options: dict, constants: dict):
    """Mode strengths u_a^T W2 W1 v_a along the teacher's singular directions."""
    from ..spec import MatrixPacking, Readout

    T = _teacher_matrix(options)
    U, s, Vt = np.linalg.svd(T)
    r = len(s)
    h, i, o = options["n_hidden"], options["n_in"], options["n_out"]
    pack = MatrixPacking(model, {"W1": (h, i), "W2": (o, h)})

    def value(theta):
        W = pack.unpack(theta)
        return np.einsum("oa,...oi,ai->...a", U[:, :r], W["W2"] @ W["W1"], Vt[:r])

    return Readout("mode", tuple(f"mode {a + 1} (s = {s[a]:.3g})" for a in range(r)), value,
                   "u_a^T W2 W1 v_a, the network function along the teacher's modes")


def hand_written(model, options, constants, batch):
    """:class:`~symicl.simulate.DeepLinearSGD` behind the Simulator interface."""
    from ..simulate import DeepLinearSGD
    from ..spec import MatrixSimulator

    o, i, h = options["n_out"], options["n_in"], options["n_hidden"]
    T = np.array([[constants[f"T_{a + 1}_{b + 1}"] for b in range(i)] for a in range(o)])
    sim = DeepLinearSGD(T, batch=batch)

    def minibatch(W, rng):
        loss, g1, g2 = sim.minibatch_gradient(W["W1"], W["W2"], rng)
        return loss, {"W1": g1, "W2": g2}

    def examples(W, n, rng):
        loss, g1, g2 = sim.prompt_gradients(W["W1"], W["W2"], rng.standard_normal((n, i)))
        return loss, {"W1": g1, "W2": g2}

    return MatrixSimulator(model, {"W1": (h, i), "W2": (o, h)}, batch, minibatch, examples)


RICH_SCALE, LAZY_LAMBDA, LAZY_SCALE, NTK_INPUTS = 0.05, 4.0, 0.05, 3


def _extra_checks(ex):
    """Rich (lambda = 0, small) and lazy (lambda-balanced, large lambda) starts: the Riccati
    closed form against the integrated flow and against the SGD seed mean."""
    from ..analysis.prior_knowledge import balanced_weights, time_to_loss
    from ..analysis.representations import closed_form, flow_path
    from ..simulate import DeepLinearSGD
    from ..verify.checks import bound_check, info, z_row

    opts, plan = ex.options, ex.plan
    o, i, h = opts["n_out"], opts["n_in"], opts["n_hidden"]
    T = _teacher_matrix(opts)
    X = np.random.default_rng(plan.seed + 7).standard_normal((i, NTK_INPUTS))
    checks, starts = [], {}
    # the lazy start moves ~lambda times faster: a smaller eta over a shorter time
    for name, lam, scale, eta, n_steps in (
            ("rich", 0.0, RICH_SCALE, plan.eta, ex.steps // 2),
            ("lazy", LAZY_LAMBDA, LAZY_SCALE, plan.eta / max(1.0, 2 * LAZY_LAMBDA), ex.steps)):
        W1, W2 = balanced_weights(i, h, o, lam, scale, seed=plan.seed + 11)
        every = ex.every
        n_steps -= n_steps % every
        t_rec = eta * np.arange(n_steps // every + 1) * every
        cf = closed_form(T, W1, W2, t_rec, X=X)
        fl = flow_path(T, W1, W2, t_rec)
        rel = max(float(np.abs(getattr(cf, q) - getattr(fl, q)).max() /
                        max(1.0, np.abs(getattr(fl, q)).max()))
                  for q in ("network", "rsm_in", "rsm_out"))
        checks.append(bound_check(f"{name} (lambda = {lam:g}): closed form vs flow, W2 W1 and "
                                  "RSMs (max relative difference)", rel, 1e-9))
        if opts.get("inputs", "gaussian") != "gaussian":
            checks.append(info(f"{name} (lambda = {lam:g}): SGD from this start", float("nan"),
                               float("nan"), note=f"not run: the rich/lazy SGD runs draw "
                               f"Gaussian inputs, the model has {opts['inputs']} inputs (the "
                               f"main SGD comparison uses the generated simulator)"))
            continue
        ex.log(f"{name} start: SGD {plan.seeds} seeds x {n_steps} steps at eta = {eta:g}")
        run = DeepLinearSGD(T, batch=plan.batch, eta=eta).run(
            W1, W2, n_steps, seeds=plan.seeds, seed=plan.seed + 13, record_every=every)
        W = run.params["W2"] @ run.params["W1"]
        mean, se = W.mean(axis=0), W.std(axis=0, ddof=1) / np.sqrt(plan.seeds)
        excess = cf.loss - cf.loss[-1]
        k = max(1, int(np.argmax(excess <= excess[0] / 2)) if excess[0] > 0 else 1)
        # the closed form is the flow: carry it to SGD's eta with GD on the derived loss
        gd = ex.gd(eta, n_steps, every, theta0=_pack_start(ex.model, opts, W1, W2))
        W_gd = _unpack_network(ex.model, opts, gd)
        z = (mean[k] - W_gd[k]) / np.where(se[k] > 0, se[k], np.inf)
        worst = np.unravel_index(int(np.argmax(np.abs(z))), z.shape)
        checks.append(z_row(f"{name} (lambda = {lam:g}): (W2 W1)_{worst[0] + 1}{worst[1] + 1} at "
                            f"t = {t_rec[k]:.3g} (half the excess loss; worst of {z.size})",
                            W_gd[k][worst], mean[k][worst], se[k][worst], plan.seeds - 1, z.size,
                            f"SGD mean over {plan.seeds} seeds vs GD on the derived loss at "
                            f"eta = {eta:g} (closed form {cf.network[k][worst]:.6g})"))
        t_thr = time_to_loss(cf, cf.loss[0] * 1e-2 + cf.loss[-1])
        checks.append(info(f"{name} (lambda = {lam:g}): time to 1% of the initial excess loss",
                           t_thr, float("nan"), note="closed form; a timescale, not compared"))
        sv_sgd = np.linalg.svd(W, compute_uv=False)
        starts[name] = {"lambda": lam, "t": t_rec.tolist(), "loss": cf.loss.tolist(),
                        "sv": cf.singular_values().tolist(),
                        "sv_sgd_mean": sv_sgd.mean(axis=0).tolist(),
                        "sv_sgd_se": (sv_sgd.std(axis=0, ddof=1) / np.sqrt(plan.seeds)).tolist(),
                        "rsm_in": cf.rsm_in.tolist(), "rsm_out": cf.rsm_out.tolist(),
                        "ntk": cf.ntk.tolist(), "ntk_inputs": X.tolist()}
    return checks, {"starts": starts, "teacher": T.tolist()}


def _pack_start(model, options, W1, W2):
    from ..spec import MatrixPacking

    h, i, o = options["n_hidden"], options["n_in"], options["n_out"]
    return MatrixPacking(model, {"W1": (h, i), "W2": (o, h)}).pack({"W1": W1, "W2": W2})


def _unpack_network(model, options, theta):
    from ..spec import MatrixPacking

    h, i, o = options["n_hidden"], options["n_in"], options["n_out"]
    W = MatrixPacking(model, {"W1": (h, i), "W2": (o, h)}).unpack(theta)
    return W["W2"] @ W["W1"]


def _extra_plots(extra: dict, out: str) -> list[str]:
    from ..verify.plots import rich_vs_lazy

    return rich_vs_lazy(extra["series"].get("starts", {}), out)


def _spec():
    from ..spec import ModelSpec, Option

    return ModelSpec(
        name="deep-linear",
        build=deep_linear,
        summary="f(x) = W2 W1 x, whitened Gaussian inputs, teacher y = T x",
        options=(
            Option("n_in", "int", 2, "input size", low=1, aliases=("--in",)),
            Option("n_hidden", "int", 2, "hidden size", low=1, aliases=("--hidden",)),
            Option("n_out", "int", 2, "output size", low=1, aliases=("--out",)),
            Option("singular_values", "floats", (3.0, 1.5, 0.5), "the teacher's singular "
                   "values (T = U diag(s) V^T, U and V fixed random orthogonal)", low=0.0,
                   role="numeric"),
            *input_options(),
        ),
        defaults={"n_in": 3, "n_hidden": 3, "n_out": 3},
        constants=_constants,
        init=_start,
        readout=_readout,
        readout_name="mode",
        simulator=hand_written,
        extra_checks=_extra_checks,
        extra_plots=_extra_plots,
        matrix_level=matrix_twins.deep_linear,
        size=lambda o: o["n_hidden"] * (o["n_in"] + o["n_out"]),
        latex_heads={"W1": "W^{(1)}", "W2": "W^{(2)}", "T": "T"},
        learned_map=(("W2", "W1"),),
        plan={"init": 0.05, "batch": 128, "t_end": 8.0},
        plot=("eta", "batch", ("mode_err_exact",)),
    )


SPEC = _spec()
