"""One point's measures: derived flows against Monte Carlo SGD at its parameters.

The same comparison as ``symicl verify``, reduced to numbers.  Derived models
are memoised per process (a worker derives each structure once) and their
kernels come from the shared disk cache of :mod:`symicl.codegen`.

Loss: SGD records the mean minibatch loss over each recording window; the
loss before step j is at the weights after j - 1 steps, so the flow's loss is
averaged over the same steps' times, t = eta (j - 1).

Gains: z-scores are taken only at records where the seeds differ.  At the
shared start (t = 0) every seed holds the same number, the seed mean and its
SE are both rounding error, and their ratio is sqrt(runs - 1) (5.57 for 32
runs) whatever the dynamics; that record used to set the floor of every
gain z.  Beside the flows, the transformer's gains are compared with gradient
descent on the derived expected loss at the sweep's eta (the same steps as
SGD): ``gain_err_gd_flow`` is the flow's discretisation error at this eta,
with no sampling, and ``gain_z_gd`` what is left for the SGD noise to explain.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..codegen import kernels
from ..models import build, per_mode_model
from ..simulate import DeepLinearSGD, TransformerSGD, integrate
from ..verify import DeepLinearPlan
from ..verify.deep_linear import _blocks, _theta

__all__ = ["measure"]


def measure(model: str, params: dict, rng_seed: int) -> dict[str, float]:
    """Every measure of ``model`` (see :data:`symicl.sweep.schema.MEASURES`) at one point."""
    return (_transformer if model == "linear-transformer" else _deep_linear)(params, rng_seed)


@cache
def _transformer_models(dim: int):
    return build("linear-transformer", dim=dim, reduction="aligned", tasks="aligned"), \
        per_mode_model(dim)


@cache
def _deep_linear_model(n_in: int, n_hidden: int, n_out: int, singular_values: tuple):
    plan = DeepLinearPlan(n_in=n_in, n_hidden=n_hidden, n_out=n_out,
                          singular_values=singular_values)
    T = plan.teacher()
    return build("deep-linear", n_in=n_in, n_hidden=n_hidden, n_out=n_out, teacher=T), T


def _schedule(p: dict) -> tuple[int, int, np.ndarray]:
    steps = max(1, round(p["t_end"] / p["eta"]))
    every = max(1, steps // p["records"])
    steps -= steps % every
    return steps, every, p["eta"] * np.arange(steps + 1)


def _flow(model, theta0, consts, t):
    return integrate(model, theta0, t[-1], consts, t_eval=t, method="DOP853", rtol=1e-12,
                     atol=1e-14, backend="numpy")


def _loss_z(run_loss: np.ndarray, flow_loss: np.ndarray, every: int) -> float:
    """max over windows of |mean SGD loss - flow loss| / SE (SE over runs)."""
    windows = run_loss.shape[1] - 1
    flow = flow_loss[:windows * every].reshape(windows, every).mean(axis=1)
    sgd = run_loss[:, 1:]
    se = sgd.std(axis=0, ddof=1) / np.sqrt(sgd.shape[0])
    return float(np.max(np.abs(sgd.mean(axis=0) - flow) / se))


def _gd(model, theta0, consts, eta: float, steps: int) -> np.ndarray:
    """Gradient descent theta <- theta + eta F(theta) on the derived expected loss, every step."""
    k = kernels(model, "numpy")
    c = k.constants_vector(consts)
    theta = np.empty((steps + 1, len(theta0)))
    theta[0] = theta0
    out = np.empty(len(theta0))
    for j in range(steps):
        theta[j + 1] = theta[j] + eta * k.flow(theta[j], c, out)
    return theta


def _errors(sgd: np.ndarray, flow: np.ndarray) -> tuple[float, float]:
    """max |seed mean - flow|, and the same over SE where the seeds differ.

    ``sgd`` is (seeds, records, ...).  Records where every seed holds the same
    value (the shared start) have no SE: mean and SE are rounding error there.
    """
    mean = sgd.mean(axis=0)
    se = sgd.std(axis=0, ddof=1) / np.sqrt(sgd.shape[0])
    gap = np.abs(mean - flow)
    spread = sgd.max(axis=0) > sgd.min(axis=0)
    return float(gap.max()), float(np.max(gap[spread] / se[spread], initial=0.0))


def _transformer(p: dict, rng_seed: int) -> dict[str, float]:
    d, s = p["dim"], p["spectrum"]
    consts = {"N": p["N"], **{f"s_{a + 1}": v for a, v in enumerate(s)}}
    aligned, per_mode = _transformer_models(d)
    steps, every, t = _schedule(p)
    theta0 = [p["init"]] * (2 * d)
    exact, paper = _flow(aligned, theta0, consts, t), _flow(per_mode, theta0, consts, t)

    sim = TransformerSGD(d, p["N"], s, tasks="aligned", batch=p["batch"], eta=p["eta"])
    D = sim.D
    WP0, WQ0 = np.zeros((D, D)), np.zeros((D, D))
    WP0[d:, d:] = np.eye(d) * p["init"]
    WQ0[:d, :d] = np.eye(d) * p["init"]
    run = sim.run(WP0, WQ0, steps, seeds=p["runs"], seed=rng_seed, record_every=every)
    a_sgd = (np.diagonal(run.params["WP"][:, :, d:, d:], axis1=2, axis2=3)
             * np.diagonal(run.params["WQ"][:, :, :d, :d], axis1=2, axis2=3))
    gains = lambda theta: theta[::every, :d] * theta[::every, d:]  # noqa: E731
    a_exact = gains(exact.theta)
    a_gd = gains(_gd(aligned, theta0, consts, p["eta"], steps))
    err_exact, z_exact = _errors(a_sgd, a_exact)
    err_paper, z_paper = _errors(a_sgd, gains(paper.theta))
    _, z_gd = _errors(a_sgd, a_gd)
    return {"loss_z_exact": _loss_z(run.loss, exact.loss, every),
            "loss_z_per_mode": _loss_z(run.loss, paper.loss, every),
            "gain_err_exact": err_exact, "gain_err_per_mode": err_paper,
            "gain_z_exact": z_exact, "gain_z_per_mode": z_paper,
            "gain_err_gd_flow": float(np.max(np.abs(a_gd - a_exact))), "gain_z_gd": z_gd,
            "loss_end": float(exact.loss[-1])}


def _deep_linear(p: dict, rng_seed: int) -> dict[str, float]:
    model, T = _deep_linear_model(p["n_in"], p["n_hidden"], p["n_out"],
                                  tuple(p["singular_values"]))
    steps, every, t = _schedule(p)
    rng = np.random.default_rng([rng_seed, 1])
    W10 = p["init"] * rng.standard_normal((p["n_hidden"], p["n_in"]))
    W20 = p["init"] * rng.standard_normal((p["n_out"], p["n_hidden"]))
    names = [n.name for n in model.parameters]
    flow = _flow(model, _theta(names, W10, W20), {}, t)
    shapes = (W10.shape, W20.shape)
    W_flow = np.stack([np.matmul(*_blocks(names, th, shapes)[::-1]) for th in flow.theta[::every]])
    run = DeepLinearSGD(T, batch=p["batch"], eta=p["eta"]).run(
        W10, W20, steps, seeds=p["runs"], seed=rng_seed, record_every=every)
    U, sv, Vt = np.linalg.svd(T)
    r = len(sv)
    proj = lambda W: np.einsum("oa,...oi,ai->...a", U[:, :r], W, Vt[:r])
    err, z = _errors(proj(run.params["W2"] @ run.params["W1"]), proj(W_flow))
    return {"loss_z_exact": _loss_z(run.loss, flow.loss, every), "mode_err_exact": err,
            "mode_z_exact": z, "loss_end": float(flow.loss[-1])}
