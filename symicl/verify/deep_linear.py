"""Verification of the two-layer linear network: derived flow against real SGD.

1. at a random point, the mean per-example loss and gradient over n
   examples against the derived ones (z-scores, SE = std / sqrt(n));
2. SGD from a small start shared by all seeds: the seed mean of the network
   function W2 W1 against the integrated flow (SE over seeds), mode by mode;
3. the loss at the seed-mean weights at the end (jackknife SE);
4. each conserved entry of W1 W1^T - W2^T W2: drift along the flow and the
   exact eta^2 law of gradient descent; the SGD drift of its trace against eta.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..analysis.conservation import conservation_laws
from ..codegen import kernels
from ..models import build
from ..simulate import DeepLinearSGD, integrate
from .checks import Check, info, z_check
from .laws import flow_drift_check, gd_law_check

__all__ = ["DeepLinearPlan", "verify_deep_linear"]


@dataclass
class DeepLinearPlan:
    """What ``symicl verify deep-linear`` runs."""

    n_in: int = 3
    n_hidden: int = 3
    n_out: int = 3
    singular_values: tuple = (3.0, 1.5, 0.5)
    eta: float = 0.005
    batch: int = 128
    seeds: int = 32
    t_end: float = 8.0
    init: float = 0.05
    records: int = 50
    n_gradient: int = 200_000
    eta_sweep: tuple = (0.005, 0.01, 0.02, 0.04)
    sweep_time: float = 1.0
    seed: int = 0
    tolerance: float = 5.0

    @classmethod
    def quick(cls, **kw) -> "DeepLinearPlan":
        base = dict(eta=0.01, batch=64, seeds=16, t_end=6.0, records=30, n_gradient=40_000,
                    eta_sweep=(0.01, 0.04), sweep_time=0.5)
        return cls(**{**base, **kw})

    def teacher(self) -> np.ndarray:
        """T = U diag(singular values) V^T with fixed random orthogonal U, V."""
        rng = np.random.default_rng(12345)
        o, i = self.n_out, self.n_in
        U, _ = np.linalg.qr(rng.normal(size=(o, o)))
        V, _ = np.linalg.qr(rng.normal(size=(i, i)))
        S = np.zeros((o, i))
        r = min(o, i, len(self.singular_values))
        S[np.arange(r), np.arange(r)] = self.singular_values[:r]
        return np.round(U @ S @ V.T, 12)


def _theta(names, W1, W2):
    blocks = {"W1": W1, "W2": W2}
    return np.array([blocks[n.split("_")[0]][int(n.split("_")[1]) - 1, int(n.split("_")[2]) - 1]
                     for n in names])


def _blocks(names, theta, shapes):
    W = {"W1": np.zeros(shapes[0]), "W2": np.zeros(shapes[1])}
    for n, v in zip(names, theta):
        head, i, j = n.split("_")
        W[head][int(i) - 1, int(j) - 1] = v
    return W["W1"], W["W2"]


def verify_deep_linear(plan: DeepLinearPlan, out: str | None = None,
                       progress: bool = True) -> tuple[list[Check], dict]:
    T = plan.teacher()
    model = build("deep-linear", n_in=plan.n_in, n_hidden=plan.n_hidden, n_out=plan.n_out,
                  teacher=T)
    k = kernels(model, "numpy")
    c = k.constants_vector({})
    sim = DeepLinearSGD(T, batch=plan.batch, eta=plan.eta)
    shapes = ((plan.n_hidden, plan.n_in), (plan.n_out, plan.n_hidden))
    rng = np.random.default_rng(plan.seed + 1)
    checks: list[Check] = []

    # 1. mean stochastic gradient at a random point
    W1, W2 = rng.normal(0, 0.5, shapes[0]), rng.normal(0, 0.5, shapes[1])
    theta = _theta(k.parameters, W1, W2)
    x = rng.standard_normal((plan.n_gradient, plan.n_in))
    loss, g1, g2 = sim.prompt_gradients(W1, W2, x)
    g = _theta(k.parameters, g1.transpose(1, 2, 0), g2.transpose(1, 2, 0))
    mean, se = g.mean(axis=1), g.std(axis=1, ddof=1) / np.sqrt(plan.n_gradient)
    z = (mean - (-k.flow(theta, c))) / se
    worst = int(np.argmax(np.abs(z)))
    checks.append(z_check("E[loss] at a random point", k.loss(theta, c), loss.mean(),
                          loss.std(ddof=1) / np.sqrt(plan.n_gradient), plan.tolerance))
    checks.append(z_check(f"dL/d{k.parameters[worst]} (worst of {len(z)} gradients)",
                          -k.flow(theta, c)[worst], mean[worst], se[worst], plan.tolerance))

    # 2. SGD against the integrated flow
    steps = int(round(plan.t_end / plan.eta))
    every = max(1, steps // plan.records)
    t_rec = plan.eta * np.arange(steps // every + 1) * every
    W10 = plan.init * rng.standard_normal(shapes[0])
    W20 = plan.init * rng.standard_normal(shapes[1])
    theta0 = _theta(k.parameters, W10, W20)
    flow = integrate(model, theta0, plan.t_end, {}, t_eval=t_rec, method="DOP853", rtol=1e-12,
                     atol=1e-14, backend="numpy")
    W_flow = np.stack([np.matmul(*_blocks(k.parameters, th, shapes)[::-1]) for th in flow.theta])
    run = sim.run(W10, W20, steps, seeds=plan.seeds, seed=plan.seed, record_every=every,
                  progress=progress)
    W_sgd = run.params["W2"] @ run.params["W1"]               # (seeds, records, o, i)
    U, s_vals, Vt = np.linalg.svd(T)
    # mode strengths u_a^T W v_a of the teacher's singular directions
    proj = lambda W: np.einsum("oa,...oi,ai->...a", U[:, :len(s_vals)], W, Vt[:len(s_vals)])  # noqa: E731
    m_flow, m_sgd = proj(W_flow), proj(W_sgd)
    m_mean = m_sgd.mean(axis=0)
    m_se = m_sgd.std(axis=0, ddof=1) / np.sqrt(plan.seeds)
    for a in range(len(s_vals)):
        final = m_flow[-1, a]
        half = int(np.argmax(m_flow[:, a] >= final / 2))
        for label, i in (("half-way", half), ("end", len(t_rec) - 1)):
            checks.append(z_check(f"mode {a + 1} (s = {s_vals[a]:.3g}) u^T W2 W1 v at t = "
                                  f"{t_rec[i]:.3g} ({label})", m_flow[i, a], m_mean[i, a],
                                  m_se[i, a], plan.tolerance, f"mean over {plan.seeds} seeds"))

    # 3. loss at the seed-mean weights (jackknife over seeds)
    thetas = np.stack([_theta(k.parameters, run.params["W1"][s, -1], run.params["W2"][s, -1])
                       for s in range(plan.seeds)])
    S = plan.seeds
    loo = (thetas.sum(axis=0)[None] - thetas) / (S - 1)
    L_loo = k.loss(loo.T, c)
    se_jack = float(np.sqrt((S - 1) / S * np.sum((L_loo - L_loo.mean()) ** 2)))
    checks.append(z_check(f"L(seed-mean weights) at t = {t_rec[-1]:.3g}", flow.loss[-1],
                          float(k.loss(thetas.mean(axis=0), c)), se_jack, plan.tolerance,
                          "jackknife SE over seeds"))

    # 4. conservation
    laws = conservation_laws(model, with_step_change=False)
    start = _theta(k.parameters, rng.normal(0, 0.5, shapes[0]), rng.normal(0, 0.5, shapes[1]))
    for i, law in enumerate(laws.laws, start=1):
        checks.append(flow_drift_check(model, law.expression, start, plan.t_end, {},
                                       label=f"h_{i}"))
        checks.append(gd_law_check(model, law.expression, start, {}, eta=0.02, label=f"h_{i}"))
    sweep = []
    for eta_s in plan.eta_sweep:
        n_steps = max(1, int(round(plan.sweep_time / eta_s)))
        W1s, W2s = _blocks(k.parameters, start, shapes)
        r = DeepLinearSGD(T, batch=plan.batch, eta=eta_s).run(
            W1s, W2s, n_steps, seeds=plan.seeds, seed=plan.seed + 3, record_every=n_steps)
        trace = lambda a, b: np.sum(a ** 2, axis=(-2, -1)) - np.sum(b ** 2, axis=(-2, -1))  # noqa: E731
        drift = trace(r.params["W1"][:, -1], r.params["W2"][:, -1]) - trace(W1s, W2s)
        sweep.append((eta_s, float(drift.mean()), float(drift.std(ddof=1) / np.sqrt(S))))
        checks.append(info(f"SGD drift of tr(W1 W1^T - W2^T W2) over t = {plan.sweep_time:g}, "
                           f"eta = {eta_s:g}", 0.0, sweep[-1][1], sweep[-1][2],
                           f"spread (std over seeds) {drift.std(ddof=1):.3g}"))
    extra = {"series": {"t": t_rec.tolist(), "modes_flow": m_flow.tolist(),
                        "modes_sgd_mean": m_mean.tolist(), "modes_sgd_se": m_se.tolist(),
                        "loss_flow": flow.loss.tolist(),
                        "sweep_eta": [s[0] for s in sweep], "sweep_drift_mean": [s[1] for s in sweep],
                        "sweep_drift_se": [s[2] for s in sweep]},
             "teacher": T.tolist(), "plan": asdict(plan), "laws": [str(h) for h in laws.expressions()]}
    return checks, extra


def plot(extra: dict, out: str) -> list[str]:
    """Mode strengths of the network function (flow vs SGD), and SGD drift against eta."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import plot_path

    s = extra["series"]
    t = np.array(s["t"])
    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    mf, mm, ms = (np.array(s[k]) for k in ("modes_flow", "modes_sgd_mean", "modes_sgd_se"))
    for a in range(mf.shape[1]):
        ax.plot(t, mf[:, a], f"C{a}-", label=f"mode {a + 1} flow")
        ax.fill_between(t, mm[:, a] - 2 * ms[:, a], mm[:, a] + 2 * ms[:, a], color=f"C{a}",
                        alpha=0.3, label=f"mode {a + 1} SGD mean ± 2 SE")
    ax.set_xlabel("t = eta x steps")
    ax.set_ylabel("u_a^T W2 W1 v_a")
    ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(plot_path(out, "modes.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar(s["sweep_eta"], s["sweep_drift_mean"], yerr=2 * np.array(s["sweep_drift_se"]),
                fmt="o-", capsize=3)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate eta")
    ax.set_ylabel("drift of tr(W1 W1^T - W2^T W2) (mean ± 2 SE)")
    fig.tight_layout()
    files.append(plot_path(out, "conserved_drift.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files
