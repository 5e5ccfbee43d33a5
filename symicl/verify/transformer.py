"""Verification of the linear transformer: derived flow against real SGD.

The plan, each step stated with its estimator and error bar:

1. at a random point of the full model, the mean per-prompt loss and
   gradient over n prompts against the derived expected loss and gradient
   (z-scores, SE = std / sqrt(n));
2. SGD on the untruncated model (all blocks trained, fresh tasks) from a
   small balanced aligned start, over many seeds: the seed mean of the mode
   gains a_a = p_a q_a against the integrated exact flow (SE over seeds),
   and the error of the per-mode flow beside it;
3. the expected loss at the SGD weights at the end against the flow;
4. the conserved sum_a (p_a^2 - q_a^2) along the integrated flow, its exact
   eta^2 law under gradient descent, and the drift of ||W^P||^2 - ||W^Q||^2
   under SGD against eta.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from ..analysis.conservation import conservation_laws
from ..codegen import kernels
from ..models import build, per_mode_model
from ..simulate import TransformerSGD, integrate
from .checks import Check, bound_check, info, z_check
from .laws import flow_drift_check, gd_law_check

__all__ = ["TransformerPlan", "verify_transformer"]


@dataclass
class TransformerPlan:
    """What ``symicl verify linear-transformer`` runs (defaults: about a minute)."""

    dim: int = 2
    N: int = 8
    spectrum: tuple = (2.0, 0.5)
    tasks: str = "aligned"
    eta: float = 0.005
    batch: int = 256
    seeds: int = 32
    t_end: float = 10.0
    init: float = 0.1
    records: int = 50
    n_gradient: int = 200_000
    eta_sweep: tuple = (0.005, 0.01, 0.02, 0.04)
    sweep_time: float = 1.0
    seed: int = 0
    tolerance: float = 5.0

    @classmethod
    def quick(cls, **kw) -> "TransformerPlan":
        base = dict(eta=0.01, batch=64, seeds=16, t_end=6.0, records=30, n_gradient=40_000,
                    eta_sweep=(0.01, 0.04), sweep_time=0.5)
        return cls(**{**base, **kw})


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"symicl verify: {msg}", file=sys.stderr, flush=True)


def _consts(plan: TransformerPlan) -> dict:
    return {"N": plan.N, **{f"s_{a + 1}": float(v) for a, v in enumerate(plan.spectrum)}}


def _theta(names, WP, WQ) -> np.ndarray:
    blocks = {"WP": WP, "WQ": WQ}
    out = []
    for n in names:
        head, i, j = n.split("_")
        out.append(blocks[head][int(i) - 1, int(j) - 1])
    return np.array(out)


def gradient_checks(plan: TransformerPlan, sim: TransformerSGD, progress: bool) -> list[Check]:
    """Mean per-prompt loss and gradient at a random point vs the derived ones."""
    full = build("linear-transformer", dim=plan.dim, tasks=plan.tasks)
    k = kernels(full, "numpy")
    c = k.constants_vector(_consts(plan))
    rng = np.random.default_rng(plan.seed + 1)
    D = sim.D
    WP, WQ = rng.normal(0, 0.4, (D, D)), rng.normal(0, 0.4, (D, D))
    theta = _theta(k.parameters, WP, WQ)
    _log(f"mean stochastic gradient over {plan.n_gradient} prompts", progress)
    P = len(k.parameters)
    s1, s2, l1, l2, n = np.zeros(P), np.zeros(P), 0.0, 0.0, 0
    while n < plan.n_gradient:
        m = min(50_000, plan.n_gradient - n)
        M, zq, yq = sim.sample(rng, (m,))
        loss, gP, gQ = sim.prompt_gradients(WP, WQ, M, zq, yq)
        g = _theta(k.parameters, gP.transpose(1, 2, 0), gQ.transpose(1, 2, 0))
        s1 += g.sum(axis=1)
        s2 += (g * g).sum(axis=1)
        l1 += loss.sum()
        l2 += (loss * loss).sum()
        n += m
    mean = s1 / n
    se = np.sqrt(np.maximum(s2 / n - mean ** 2, 0) / (n - 1))
    expected = -k.flow(theta, c)
    checks = [z_check("E[loss] at a random point (full model)", k.loss(theta, c), l1 / n,
                      np.sqrt(max(l2 / n - (l1 / n) ** 2, 0) / (n - 1)), plan.tolerance,
                      f"mean over {n} prompts")]
    active = se > 0
    z = np.where(active, (mean - expected) / np.where(active, se, 1), 0.0)
    worst = int(np.argmax(np.abs(z)))
    checks.append(z_check(f"dL/d{k.parameters[worst]} (worst of {int(active.sum())} gradients)",
                          expected[worst], mean[worst], se[worst], plan.tolerance,
                          "the exact check of the derivation"))
    inert = float(np.max(np.abs(np.concatenate([mean[~active], expected[~active]])), initial=0))
    checks.append(bound_check(f"inert gradients ({int((~active).sum())}) are exactly zero",
                              inert, 0.0))
    return checks


def verify_transformer(plan: TransformerPlan, out: str | None = None,
                       progress: bool = True) -> tuple[list[Check], dict]:
    """Run the plan; return the checks and the series behind the plots."""
    d, consts = plan.dim, _consts(plan)
    sim = TransformerSGD(d, plan.N, plan.spectrum, tasks=plan.tasks, batch=plan.batch, eta=plan.eta)
    checks = gradient_checks(plan, sim, progress)

    _log("deriving the aligned and per-mode flows", progress)
    aligned = build("linear-transformer", dim=d, reduction="aligned", tasks=plan.tasks)
    per_mode = per_mode_model(d)
    full = build("linear-transformer", dim=d, tasks=plan.tasks)
    k_full = kernels(full, "numpy")
    c_full = k_full.constants_vector(consts)

    steps = int(round(plan.t_end / plan.eta))
    every = max(1, steps // plan.records)
    t_rec = plan.eta * np.arange(steps // every + 1) * every
    theta0 = [plan.init] * (2 * d)
    law = conservation_laws(aligned)
    flow_exact = integrate(aligned, theta0, plan.t_end, consts, t_eval=t_rec, method="DOP853",
                           rtol=1e-12, atol=1e-14, backend="numpy",
                           conserved=law.expressions())
    flow_paper = integrate(per_mode, theta0, plan.t_end, consts, t_eval=t_rec, method="DOP853",
                           rtol=1e-12, atol=1e-14, backend="numpy")
    gains = lambda tr: tr.theta[:, :d] * tr.theta[:, d:]  # noqa: E731
    a_exact, a_paper = gains(flow_exact), gains(flow_paper)

    # the SGD stability bound at the end of the flow: eta < 2 / lambda_max(Hessian)
    D = sim.D
    WP_end, WQ_end = np.zeros((D, D)), np.zeros((D, D))
    WP_end[d:, d:] = np.diag(flow_exact.theta[-1, :d])
    WQ_end[:d, :d] = np.diag(flow_exact.theta[-1, d:])
    hess = -k_full.jacobian(_theta(k_full.parameters, WP_end, WQ_end), c_full)
    bound = 2.0 / float(np.max(np.linalg.eigvalsh((hess + hess.T) / 2)))

    WP0, WQ0 = np.zeros((D, D)), np.zeros((D, D))
    WP0[d:, d:] = np.eye(d) * plan.init
    WQ0[:d, :d] = np.eye(d) * plan.init
    _log(f"SGD: {plan.seeds} seeds x {steps} steps x {plan.batch} prompts (eta = {plan.eta})",
         progress)
    run = sim.run(WP0, WQ0, steps, seeds=plan.seeds, seed=plan.seed, record_every=every,
                  progress=progress, stability_bound=bound)
    P22 = np.diagonal(run.params["WP"][:, :, d:, d:], axis1=2, axis2=3)
    Q11 = np.diagonal(run.params["WQ"][:, :, :d, :d], axis1=2, axis2=3)
    a_sgd = P22 * Q11                                          # (seeds, records, d)
    a_mean = a_sgd.mean(axis=0)
    a_se = a_sgd.std(axis=0, ddof=1) / np.sqrt(plan.seeds)

    for a in range(d):
        final = a_exact[-1, a]
        half = int(np.argmax(a_exact[:, a] >= final / 2))
        for label, i in (("half-way", half), ("end", len(t_rec) - 1)):
            checks.append(z_check(f"a_{a + 1} = p_{a + 1} q_{a + 1} at t = {t_rec[i]:.3g} ({label})",
                                  a_exact[i, a], a_mean[i, a], a_se[i, a], plan.tolerance,
                                  f"mean over {plan.seeds} SGD seeds"))
    err_exact = float(np.max(np.abs(a_mean - a_exact)))
    err_paper = float(np.max(np.abs(a_mean - a_paper)))
    checks.append(info("max_t |a_SGD - a_exact flow|", 0.0, err_exact,
                       float(np.max(a_se)), "exact coupled flow"))
    checks.append(info("max_t |a_SGD - a_per-mode flow|", 0.0, err_paper,
                       float(np.max(a_se)), "the paper's per-mode approximation"))
    checks.append(bound_check("exact error / per-mode error", err_exact / max(err_paper, 1e-300),
                              1.0, note="the exact flow predicts SGD better"))

    # the loss at the seed-mean weights at the end, against the flow (jackknife SE over seeds;
    # the mean of L over seeds would add the O(eta/B) fluctuation excess (1/2) tr(H Cov))
    thetas = np.stack([_theta(k_full.parameters, run.params["WP"][s, -1], run.params["WQ"][s, -1])
                       for s in range(plan.seeds)])
    S = plan.seeds
    loo = (thetas.sum(axis=0)[None, :] - thetas) / (S - 1)
    L_loo = k_full.loss(loo.T, c_full)
    L_mean = float(k_full.loss(thetas.mean(axis=0), c_full))
    se_jack = float(np.sqrt((S - 1) / S * np.sum((L_loo - L_loo.mean()) ** 2)))
    checks.append(z_check(f"L(seed-mean weights) at t = {t_rec[-1]:.3g}", flow_exact.loss[-1],
                          L_mean, se_jack, plan.tolerance, "jackknife SE over seeds"))

    checks += conservation_checks(plan, sim, aligned, law, consts, progress)
    extra = {
        "series": {
            "t": t_rec.tolist(), "a_exact": a_exact.tolist(), "a_paper": a_paper.tolist(),
            "a_sgd_mean": a_mean.tolist(), "a_sgd_se": a_se.tolist(),
            "loss_exact": flow_exact.loss.tolist(), "loss_paper": flow_paper.loss.tolist(),
            "loss_sgd_mean": [float("nan")] + run.loss[:, 1:].mean(axis=0).tolist(),
            "loss_sgd_se": [float("nan")] + (run.loss[:, 1:].std(axis=0, ddof=1)
                                             / np.sqrt(plan.seeds)).tolist(),
        },
        "stability_bound": bound,
        "plan": asdict(plan),
    }
    extra["series"].update(_sweep_series(checks))
    return checks, extra


def conservation_checks(plan, sim, aligned, law, consts, progress) -> list[Check]:
    """Flow drift, the exact eta^2 law of gradient descent, SGD drift against eta."""
    d = plan.dim
    checks = []
    h = law.laws[0].expression
    start = np.concatenate([np.linspace(0.3, 0.1, d), np.linspace(0.1, 0.25, d)])
    checks.append(flow_drift_check(aligned, h, start, plan.t_end, consts))
    checks.append(gd_law_check(aligned, h, start, consts))

    # SGD: drift of ||W^P||^2 - ||W^Q||^2 over a fixed time, against eta
    D = sim.D
    rng = np.random.default_rng(plan.seed + 2)
    WP0, WQ0 = rng.normal(0, 0.3, (D, D)), rng.normal(0, 0.3, (D, D))
    h0 = np.sum(WP0 ** 2) - np.sum(WQ0 ** 2)
    for eta_s in plan.eta_sweep:
        steps = max(1, int(round(plan.sweep_time / eta_s)))
        _log(f"SGD drift at eta = {eta_s}: {plan.seeds} seeds x {steps} steps", progress)
        s = TransformerSGD(d, plan.N, plan.spectrum, tasks=plan.tasks, batch=plan.batch, eta=eta_s)
        run = s.run(WP0, WQ0, steps, seeds=plan.seeds, seed=plan.seed + 3, record_every=steps)
        hT = np.sum(run.params["WP"][:, -1] ** 2, axis=(1, 2)) - \
            np.sum(run.params["WQ"][:, -1] ** 2, axis=(1, 2))
        drift = hT - h0
        checks.append(info(f"SGD drift of ||W^P||^2 - ||W^Q||^2 over t = {plan.sweep_time:g}, "
                           f"eta = {eta_s:g}", 0.0, float(drift.mean()),
                           float(drift.std(ddof=1) / np.sqrt(plan.seeds)),
                           f"spread (std over seeds) {drift.std(ddof=1):.3g}"))
    return checks


def _sweep_series(checks) -> dict:
    rows = [c for c in checks if c.quantity.startswith("SGD drift")]
    etas = [float(c.quantity.rsplit("eta = ", 1)[1]) for c in rows]
    return {"sweep_eta": etas, "sweep_drift_mean": [c.simulation for c in rows],
            "sweep_drift_se": [c.se for c in rows]}


def plot(extra: dict, out: str) -> list[str]:
    """Loss, mode trajectories and conserved-quantity drift, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import plot_path

    s = extra["series"]
    t = np.array(s["t"])
    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, s["loss_exact"], "k-", label="exact flow")
    ax.plot(t, s["loss_paper"], "k--", label="per-mode flow")
    m, e = np.array(s["loss_sgd_mean"]), np.array(s["loss_sgd_se"])
    ax.plot(t, m, "C0", label="SGD minibatch loss (mean)")
    ax.fill_between(t, m - 2 * e, m + 2 * e, color="C0", alpha=0.3, label="± 2 SE")
    ax.set_xlabel("t = eta x steps")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    files.append(plot_path(out, "loss.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    a_e, a_p = np.array(s["a_exact"]), np.array(s["a_paper"])
    a_m, a_s = np.array(s["a_sgd_mean"]), np.array(s["a_sgd_se"])
    for a in range(a_e.shape[1]):
        ax.plot(t, a_e[:, a], f"C{a}-", label=f"a_{a + 1} exact flow")
        ax.plot(t, a_p[:, a], f"C{a}--", label=f"a_{a + 1} per-mode flow")
        ax.fill_between(t, a_m[:, a] - 2 * a_s[:, a], a_m[:, a] + 2 * a_s[:, a], color=f"C{a}",
                        alpha=0.3, label=f"a_{a + 1} SGD mean ± 2 SE")
    ax.set_xlabel("t = eta x steps")
    ax.set_ylabel("mode gain a = p q")
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
    ax.set_ylabel("drift of ||W^P||^2 - ||W^Q||^2 (mean ± 2 SE)")
    fig.tight_layout()
    files.append(plot_path(out, "conserved_drift.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files
