"""Verification of the two-layer linear network: derived flow against real SGD.

1. at a random point, the mean per-example loss and gradient over n
   examples against the derived ones (z-scores, SE = std / sqrt(n));
2. SGD from a small start shared by all seeds: the seed mean of the network
   function W2 W1 against the integrated flow (SE over seeds), mode by mode;
3. the loss at the seed-mean weights at the end (jackknife SE);
4. each conserved entry of W1 W1^T - W2^T W2: drift along the flow and the
   exact eta^2 law of gradient descent; the SGD drift of its trace against eta;
5. rich (lambda = 0, small weights) and lazy (lambda-balanced, large lambda)
   starts: the Riccati closed form against the integrated flow (relative
   difference) and against the SGD seed mean (worst |z| over the entries of
   W2 W1), with the network function's singular values, the RSMs and the NTK
   on a few inputs over time for the plots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..analysis.conservation import conservation_laws
from ..analysis.prior_knowledge import balanced_weights, teacher, time_to_loss
from ..analysis.representations import closed_form, flow_path
from ..codegen import kernels
from ..models import build
from ..simulate import DeepLinearSGD, integrate
from .checks import Check, bound_check, info, z_check
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
    rich_scale: float = 0.05
    lazy_lambda: float = 4.0
    lazy_scale: float = 0.05
    ntk_inputs: int = 3

    @classmethod
    def quick(cls, **kw) -> DeepLinearPlan:
        base = {"eta": 0.01, "batch": 64, "seeds": 16, "t_end": 6.0, "records": 30, "n_gradient": 40_000,
                    "eta_sweep": (0.01, 0.04), "sweep_time": 0.5}
        return cls(**{**base, **kw})

    def teacher(self) -> np.ndarray:
        """T = U diag(singular values) V^T with fixed random orthogonal U, V."""
        return np.round(teacher(self.n_out, self.n_in, self.singular_values, seed=12345), 12)


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
    steps = round(plan.t_end / plan.eta)
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
    proj = lambda W: np.einsum("oa,...oi,ai->...a", U[:, :len(s_vals)], W, Vt[:len(s_vals)])
    m_flow, m_sgd = proj(W_flow), proj(W_sgd)
    m_mean = m_sgd.mean(axis=0)
    m_se = m_sgd.std(axis=0, ddof=1) / np.sqrt(plan.seeds)
    for a in range(len(s_vals)):
        final = m_flow[-1, a]
        half = int(np.argmax(m_flow[:, a] >= final / 2))
        checks.append(z_check(f"mode {a + 1} (s = {s_vals[a]:.3g}) u^T W2 W1 v at t = "
                              f"{t_rec[half]:.3g} (half-way)", m_flow[half, a], m_mean[half, a],
                              m_se[half, a], plan.tolerance, f"mean over {plan.seeds} seeds"))
        # near convergence the SE shrinks to ~1e-7 and SGD's own O(eta) bias shows: bound it
        diff = abs(m_mean[-1, a] - m_flow[-1, a])
        z_end = diff / m_se[-1, a] if m_se[-1, a] > 0 else float("inf")
        checks.append(bound_check(
            f"mode {a + 1} (s = {s_vals[a]:.3g}) |SGD mean - flow| / s at t = {t_rec[-1]:.3g} "
            "(end)", diff / s_vals[a] if s_vals[a] > 0 else diff, plan.eta,
            note=f"flow {m_flow[-1, a]:.6g}, SGD mean {m_mean[-1, a]:.6g}, |z| = {z_end:.2g}; "
                 "bound: SGD's O(eta) bias"))

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
        n_steps = max(1, round(plan.sweep_time / eta_s))
        W1s, W2s = _blocks(k.parameters, start, shapes)
        r = DeepLinearSGD(T, batch=plan.batch, eta=eta_s).run(
            W1s, W2s, n_steps, seeds=plan.seeds, seed=plan.seed + 3, record_every=n_steps)
        trace = lambda a, b: np.sum(a ** 2, axis=(-2, -1)) - np.sum(b ** 2, axis=(-2, -1))
        drift = trace(r.params["W1"][:, -1], r.params["W2"][:, -1]) - trace(W1s, W2s)
        sweep.append((eta_s, float(drift.mean()), float(drift.std(ddof=1) / np.sqrt(S))))
        checks.append(info(f"SGD drift of tr(W1 W1^T - W2^T W2) over t = {plan.sweep_time:g}, "
                           f"eta = {eta_s:g}", 0.0, sweep[-1][1], sweep[-1][2],
                           f"spread (std over seeds) {drift.std(ddof=1):.3g}"))
    starts = _rich_vs_lazy(plan, T, every, steps, checks, progress)
    extra = {"series": {"t": t_rec.tolist(), "modes_flow": m_flow.tolist(),
                        "modes_sgd_mean": m_mean.tolist(), "modes_sgd_se": m_se.tolist(),
                        "loss_flow": flow.loss.tolist(),
                        "sweep_eta": [s[0] for s in sweep], "sweep_drift_mean": [s[1] for s in sweep],
                        "sweep_drift_se": [s[2] for s in sweep]},
             "starts": starts, "teacher": T.tolist(), "plan": asdict(plan), "laws": [str(h) for h in laws.expressions()]}
    return checks, extra


def _rich_vs_lazy(plan, T, every, steps, checks, progress) -> dict:
    """Section 5: closed form vs flow vs SGD from a rich and a lazy balanced start."""
    o, i, h = plan.n_out, plan.n_in, plan.n_hidden
    X = np.random.default_rng(plan.seed + 7).standard_normal((i, plan.ntk_inputs))
    out = {}
    # the lazy start moves ~lambda times faster: a smaller eta (its O(eta lambda) bias) over a
    # shorter time; the rich run covers half of t_end
    for name, lam, scale, eta, n_steps in (
            ("rich", 0.0, plan.rich_scale, plan.eta, steps // 2),
            ("lazy", plan.lazy_lambda, plan.lazy_scale, plan.eta / max(1.0, 2 * plan.lazy_lambda),
             steps)):
        W1, W2 = balanced_weights(i, h, o, lam, scale, seed=plan.seed + 11)
        n_steps -= n_steps % every
        t_rec = eta * np.arange(n_steps // every + 1) * every
        cf = closed_form(T, W1, W2, t_rec, X=X)
        fl = flow_path(T, W1, W2, t_rec)
        rel = max(float(np.abs(getattr(cf, q) - getattr(fl, q)).max() /
                        max(1.0, np.abs(getattr(fl, q)).max()))
                  for q in ("network", "rsm_in", "rsm_out"))
        checks.append(bound_check(f"{name} (lambda = {lam:g}): closed form vs flow, W2 W1 and RSMs "
                                  "(max relative difference)", rel, 1e-9))
        run = DeepLinearSGD(T, batch=plan.batch, eta=eta).run(
            W1, W2, n_steps, seeds=plan.seeds, seed=plan.seed + 13, record_every=every,
            progress=progress)
        W = run.params["W2"] @ run.params["W1"]                       # (seeds, records, o, i)
        mean, se = W.mean(axis=0), W.std(axis=0, ddof=1) / np.sqrt(plan.seeds)
        excess = cf.loss - cf.loss[-1]
        k = int(np.argmax(excess <= excess[0] / 2)) if excess[0] > 0 else 1
        k = max(k, 1)
        z = (mean[k] - cf.network[k]) / np.where(se[k] > 0, se[k], np.inf)
        worst = np.unravel_index(int(np.argmax(np.abs(z))), z.shape)
        checks.append(z_check(f"{name} (lambda = {lam:g}): (W2 W1)_{worst[0] + 1}{worst[1] + 1} at "
                              f"t = {t_rec[k]:.3g} (half the excess loss; worst of {z.size})",
                              cf.network[k][worst], mean[k][worst], se[k][worst], plan.tolerance,
                              f"closed form; mean over {plan.seeds} seeds, eta = {eta:g}"))
        t_thr = time_to_loss(cf, cf.loss[0] * 1e-2 + cf.loss[-1])
        checks.append(info(f"{name} (lambda = {lam:g}): time to 1% of the initial excess loss",
                           t_thr, float("nan"), note="closed form"))
        sv_sgd = np.linalg.svd(W, compute_uv=False)
        out[name] = {"lambda": lam, "t": t_rec.tolist(), "loss": cf.loss.tolist(),
                     "sv": cf.singular_values().tolist(),
                     "sv_sgd_mean": sv_sgd.mean(axis=0).tolist(),
                     "sv_sgd_se": (sv_sgd.std(axis=0, ddof=1) / np.sqrt(plan.seeds)).tolist(),
                     "rsm_in": cf.rsm_in.tolist(), "rsm_out": cf.rsm_out.tolist(),
                     "ntk": cf.ntk.tolist(), "ntk_inputs": X.tolist()}
    return out


def _plot_rich_vs_lazy(starts: dict, out: str, plt) -> list[str]:
    from .report import plot_path

    names = [n for n in ("rich", "lazy") if n in starts]
    files = []
    fig, axes = plt.subplots(3, len(names), figsize=(5 * len(names), 9), squeeze=False)
    for col, name in enumerate(names):
        d = starts[name]
        t = np.array(d["t"])
        sv, m, se = (np.array(d[k]) for k in ("sv", "sv_sgd_mean", "sv_sgd_se"))
        ax = axes[0, col]
        for a in range(sv.shape[1]):
            ax.plot(t, sv[:, a], f"C{a}-", label=f"sigma_{a + 1} closed form (SGD ± 2 SE band)")
            ax.fill_between(t, m[:, a] - 2 * se[:, a], m[:, a] + 2 * se[:, a], color=f"C{a}",
                            alpha=0.3)
        ax.set_title(f"{name} (lambda = {d['lambda']:g}): singular values of W2 W1")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.semilogy(t, np.maximum(np.array(d["loss"]), 1e-16))
        ax.set_title("loss L(t) (closed form)")
        ax = axes[2, col]
        K = np.array(d["ntk"])                                   # (T, N, N, o, o)
        n, o = K.shape[1], K.shape[3]
        G = K.transpose(0, 1, 3, 2, 4).reshape(len(t), n * o, n * o)
        ev = np.linalg.eigvalsh(G)[:, ::-1]
        for a in range(min(4, ev.shape[1])):
            ax.plot(t, ev[:, a], label=f"eigenvalue {a + 1}")
        change = np.linalg.norm(G - G[0], axis=(1, 2)) / np.linalg.norm(G[0])
        ax2 = ax.twinx()
        ax2.plot(t, change, "k--", label="||Theta(t) - Theta(0)|| / ||Theta(0)||")
        ax.set_title("NTK eigenvalues; dashed: relative change", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    files.append(plot_path(out, "rich_vs_lazy.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    # RSMs and NTK at the start, half-way and the end
    fig, axes = plt.subplots(3 * len(names), 3, figsize=(9, 9 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        d = starts[name]
        t = np.array(d["t"])
        idx = [0, len(t) // 4, len(t) - 1]
        K = np.array(d["ntk"])
        n, o = K.shape[1], K.shape[3]
        G = K.transpose(0, 1, 3, 2, 4).reshape(len(t), n * o, n * o)
        for row, (label, M) in enumerate((("W1^T W1", np.array(d["rsm_in"])),
                                          ("W2 W2^T", np.array(d["rsm_out"])), ("NTK", G))):
            for c, k in enumerate(idx):
                ax = axes[3 * r + row, c]
                im = ax.imshow(M[k], cmap="RdBu_r", vmin=-np.abs(M[k]).max(),
                               vmax=np.abs(M[k]).max())
                ax.set_title(f"{name}: {label}, t = {t[k]:.2g}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    files.append(plot_path(out, "representations.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    return files


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
    if extra.get("starts"):
        files += _plot_rich_vs_lazy(extra["starts"], out, plt)
    return files
