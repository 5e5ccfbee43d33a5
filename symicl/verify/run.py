"""``symicl verify``: a derived flow against real SGD, for any model spec.

The statistical design (also written into report.json):

1. **The derivation itself.** At a random point theta* = theta0 + s u, the
   mean per-example loss and gradient over ``n_gradient`` fresh examples of
   the model against the derived L(theta*) and grad L(theta*): z = (mean -
   theory) / (std / sqrt(n)); the gradient row is the worst of P.  The
   offset s is the largest of 0.4, 0.2, 0.1, 0.05 at which a pilot sample
   finds every sample kurtosis <= 1 + 0.04 n (the SE then known to 10%;
   heavier tails make the z-test invalid).
2. **Like with like.** SGD's seed mean is compared with gradient descent on
   the derived expected loss at the same eta and steps, from the same start
   (an exact deterministic map), at ``checkpoints`` times, each row the
   worst over the readout's components.  What separates the two is SGD's
   noise bias, O(eta/B): it is measured from a second run at batch 4B and
   removed (the seed mean carried to B -> infinity, m = (4 m_4B - m_B) / 3,
   SE^2 = (16 SE_4B^2 + SE_B^2) / 9, S - 1 degrees of freedom), and
   reported.  The mean minibatch loss of each recording
   window is reported beside the expected loss along gradient descent
   averaged over the same steps (not judged: the noise effects on the loss
   are amplified near saddles).
3. **The flow is the limit of gradient descent.** The flow-vs-GD gap
   (max over time of the readout) is reported, and checked to be first
   order in eta: halving eta halves it (ratio 0.5 +- 0.1).
4. **Conservation laws** found by :func:`~symicl.analysis.conservation_laws`:
   drift along the integrated flow (bound 1e-10), the exact per-step law
   eta^2 g^T A g of gradient descent (bound 1e-9), and the SGD drift over a
   fixed time against eta (reported; it grows in proportion to eta).
5. The spec's own checks (e.g. the transformer's per-mode flow).

Every z-row's tolerance follows from the family-wise false-failure rate
``alpha`` (:func:`~symicl.verify.checks.judge`).  Guards: fewer than
``MIN_SEEDS`` seeds or ``MIN_STEPS`` steps is a usage error; SGD or gradient
descent that diverges (non-finite, or beyond bounds from gradient descent's
own scale) is an error naming the step.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Mapping

import numpy as np

from ..analysis.conservation import conservation_laws
from ..spec import ModelSpec
from .checks import Check, bound_check, info, judge, z_row
from .laws import flow_drift_checks, gd_law_check
from .steps import MIN_SEEDS, MIN_STEPS, Experiment, Plan, compare, seed_stats

__all__ = ["verify", "DESIGN"]

DESIGN = {
    "false_failure_rate": "alpha per run, split over the judged z-rows (Bonferroni); each row's "
                          "tolerance is the Student-t quantile 1 - alpha / (2 m k) of its degrees "
                          "of freedom (m rows, k comparisons in the row)",
    "gradient_point": "theta0 + s u, u ~ N(0, I); s the largest of 0.4, 0.2, 0.1, 0.05 at which a "
                      "pilot of 20000 examples finds every sample kurtosis of the per-example "
                      "loss and gradients <= 1 + 0.04 n_gradient (the SE known to 10%)",
    "sgd_reference": "gradient descent on the derived expected loss at the same eta, steps and "
                     "start; SGD's O(eta/B) noise bias is measured from a second run at batch "
                     "4B and removed (Richardson extrapolation to B -> infinity), and reported",
    "flow_vs_gd": "the flow-vs-GD gap is reported and must be first order in eta (halving eta "
                  "halves it, ratio 0.5 +- 0.1)",
    "minimums": {"seeds": MIN_SEEDS, "steps": MIN_STEPS},
    "divergence": "non-finite values, or |theta| or the minibatch loss beyond bounds from the "
                  "gradient-descent path's scale, stop the run with the step named",
}


def verify(spec: ModelSpec, options: Mapping | None = None, plan: Plan | None = None,
           constants: Mapping | None = None, progress: bool = False) -> tuple[list[Check], dict]:
    """Run the plan on the spec's model; return the judged checks and the report's data."""
    options = spec.check_options(dict(options or {}), "verify")
    plan = plan or Plan.make(spec, options=options)
    start = time.perf_counter()
    ex = Experiment(spec, options, dict(constants or {}), plan, progress)
    ex.log(f"{spec.name}: {len(ex.model.parameters)} parameters, constants {ex.constants}")
    checks = gradient_checks(ex)
    checks += trajectory_checks(ex)
    checks += conservation_checks(ex)
    series = _series(ex)
    if spec.extra_checks is not None:
        more, extra_series = spec.extra_checks(ex)
        checks += more
        series.update(extra_series)
    judge(checks, plan.alpha)
    extra = {"plan": asdict(plan), "options": _jsonable(options), "constants": ex.constants,
             "design": DESIGN, "series": series, "parameters": [p.name for p in ex.model.parameters],
             "readout": {"name": ex.readout.name, "labels": list(ex.readout.labels),
                         "description": ex.readout.description},
             "seconds": time.perf_counter() - start, "log": ex.log_lines}
    return checks, extra


def _jsonable(options: Mapping) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


def gradient_checks(ex: Experiment) -> list[Check]:
    """Mean per-example loss and gradient at a random point against the derived ones."""
    plan = ex.plan
    rng = np.random.default_rng([plan.seed, 1])
    P = len(ex.model.parameters)
    direction = rng.normal(0.0, 1.0, P)
    sim = ex.simulator(batch=1)
    scale, kurtosis = _point_scale(ex, sim, direction)
    theta = ex.theta0 + scale * direction
    ex.log(f"mean stochastic gradient over {plan.n_gradient} examples at offset scale {scale:g} "
           f"(largest sample kurtosis {kurtosis:.3g})")
    s1, s2, l1, l2, n = np.zeros(P), np.zeros(P), 0.0, 0.0, 0
    while n < plan.n_gradient:
        m = min(50_000, plan.n_gradient - n)
        loss, g = sim.examples(theta, m, rng)
        s1 += g.sum(axis=0)
        s2 += (g * g).sum(axis=0)
        l1 += float(loss.sum())
        l2 += float((loss * loss).sum())
        n += m
    mean = s1 / n
    se = np.sqrt(np.maximum(s2 / n - mean ** 2, 0) / (n - 1))
    expected = -ex.kern.flow(theta, ex.c)
    L_se = np.sqrt(max(l2 / n - (l1 / n) ** 2, 0) / (n - 1))
    checks = [z_row("E[loss] at a random point", float(ex.kern.loss(theta, ex.c)), l1 / n, L_se,
                    n - 1, note=f"mean over {n} examples at theta0 + {scale:g} u, u ~ N(0, I) "
                                f"(pilot kurtosis {kurtosis:.3g}); the exact check of the "
                                "expected loss")]
    active = se > 0
    if active.any():
        z = np.where(active, (mean - expected) / np.where(active, se, 1), 0.0)
        worst = int(np.argmax(np.abs(z)))
        checks.append(z_row(f"dL/d{ex.model.parameters[worst]} (worst of {int(active.sum())} "
                            "gradients)", expected[worst], mean[worst], se[worst], n - 1,
                            int(active.sum()), "the exact check of the derived flow"))
    if (~active).any():
        inert = float(np.max(np.abs(np.concatenate([mean[~active], expected[~active]]))))
        checks.append(bound_check(f"inert gradients ({int((~active).sum())}) are exactly zero",
                                  inert, 0.0, note="every example's gradient and the derived "
                                                   "one vanish for these parameters"))
    return checks


POINT_SCALES = (0.4, 0.2, 0.1, 0.05)   # offsets of the random point, largest first
PILOT = 20_000                         # examples of the pilot that picks the offset


def _point_scale(ex: Experiment, sim, direction) -> tuple[float, float]:
    """The largest offset whose per-example loss and gradients the CLT can judge.

    A z-row's SE needs the sample variance, whose relative SE is
    sqrt((kappa - 1) / n) for kurtosis kappa = E[(x - mu)^4] / sigma^4.  A
    per-example loss of high degree in the data (two attention layers: degree
    16 in the weights, products of many moments of the data) has kappa of
    order 10^5-10^6 at weights of size 0.4, where the mean of n = 40,000
    examples is set by rare huge values and the z-test is not valid.  The pilot
    (``PILOT`` examples on their own random stream, so the test's examples are
    independent of the choice) takes the largest offset of ``POINT_SCALES``
    with max kappa <= 1 + 0.04 n (the SE, sqrt of a variance whose relative SE is
    sqrt((kappa - 1) / n), then known to 10%), or the smallest.
    """
    rng = np.random.default_rng([ex.plan.seed, 2])
    limit = 1 + 0.04 * ex.plan.n_gradient
    worst = float("nan")
    for scale in POINT_SCALES:
        loss, g = sim.examples(ex.theta0 + scale * direction, PILOT, rng)
        x = np.column_stack([loss, g])
        x = x[:, x.std(axis=0) > 0]
        dev = x - x.mean(axis=0)
        kappa = (dev ** 4).mean(axis=0) / (dev ** 2).mean(axis=0) ** 2 if x.size else np.zeros(1)
        worst = float(np.max(kappa))
        if worst <= limit:
            return scale, worst
    return POINT_SCALES[-1], worst


def checkpoints(ex: Experiment) -> list[int]:
    """Record indices of the checkpoints: equally spaced, the last record included."""
    n = len(ex.t) - 1
    k = min(ex.plan.checkpoints, n)
    return sorted({int(round(n * (i + 1) / k)) for i in range(k)})


def trajectory_checks(ex: Experiment) -> list[Check]:
    """SGD seed mean against gradient descent; the flow as GD's limit; the loss windows."""
    plan, R = ex.plan, ex.readout
    ex.log(f"gradient descent on the derived loss: {ex.steps} steps at eta = {plan.eta:g}")
    gd = ex.read(ex.gd_path)                                   # (records, k)
    run = ex.sgd
    sgd = ex.read(run.theta)                                   # (seeds, records, k)
    mean, se, bias, spread = ex.extrapolated(sgd, ex.read(ex.sgd_large.theta))
    S = plan.seeds
    checks = []
    for i in checkpoints(ex):
        ok = spread[i]
        z = np.where(ok, (mean[i] - gd[i]) / np.where(ok & (se[i] > 0), se[i], np.inf), 0.0)
        a = int(np.argmax(np.abs(z)))
        checks.append(z_row(f"{R.labels[a]} at t = {ex.t[i]:.3g} (worst of {len(R.labels)} "
                            f"{R.name})", gd[i, a], mean[i, a], se[i, a], S - 1,
                            len(R.labels), f"SGD seed mean ({S} seeds at batches B and "
                                           "4B, carried to "
                                           "B -> infinity) vs gradient descent on the derived "
                                           "loss, same eta"))
    worst = np.unravel_index(int(np.argmax(np.abs(bias))), bias.shape)
    checks.append(info(f"SGD noise bias at batch {plan.batch} ({R.labels[worst[1]]}, "
                       f"t = {ex.t[worst[0]]:.3g}; largest of all)", 0.0, float(bias[worst]),
                       float(se[worst]), "measured: seed mean at batch B minus its B -> infinity "
                                         "extrapolation; of order eta/B, removed before the "
                                         "rows above are judged"))
    # the loss: SGD's window means against L along GD averaged over the same steps
    window = ex.gd_window_loss
    m_loss, se_loss, _ = seed_stats(run.loss[:, 1:])
    z = np.abs(m_loss - window[1:]) / np.where(se_loss > 0, se_loss, np.inf)
    w = int(np.argmax(z))
    checks.append(info(f"mean minibatch loss over t in ({ex.t[w]:.3g}, {ex.t[w + 1]:.3g}] "
                       f"(largest |z| of {len(z)} windows)", window[w + 1], m_loss[w], se_loss[w],
                       "expected loss along GD averaged over the same steps; reported, not judged: "
                       "SGD's loss carries (1/2) tr(H Cov(theta)) >= 0 and noise speeds the "
                       "escape from saddles, effects of order eta/B amplified near plateaus"))
    # the flow as the limit of gradient descent
    flow = ex.read(ex.flow_path.theta)
    half = ex.read(ex.gd_half_path)
    gap, gap_half = float(np.max(np.abs(gd - flow))), float(np.max(np.abs(half - flow)))
    scale = max(1.0, float(np.max(np.abs(flow))))
    if gap <= 1e-9 * scale:
        checks.append(info("flow vs gradient descent: max gap", 0.0, gap,
                           note="below rounding: the readout does not move at this eta"))
    else:
        ratio = gap_half / gap
        checks.append(bound_check(
            "flow-vs-GD gap is first order in eta: |gap(eta/2) / gap(eta) - 1/2|",
            abs(ratio - 0.5), 0.1, note=f"gap {gap:.3g} at eta = {plan.eta:g}, {gap_half:.3g} "
                                        f"at eta/2 (max over t of the {R.name})"))
    err_flow, z_flow, _ = compare(sgd, flow)
    checks.append(info(f"max_t |SGD mean - flow| ({R.name})", 0.0, err_flow,
                       note=f"reported, not judged: it holds the O(eta) lag of every discrete "
                            f"method behind the flow ({gap:.3g} here), max |z| {z_flow:.3g}"))
    return checks


def conservation_checks(ex: Experiment) -> list[Check]:
    """Each quadratic law: drift along the flow, GD's exact eta^2 law, SGD drift against eta."""
    ex.log("conservation laws of the derived flow")
    laws = conservation_laws(ex.model, with_step_change=False)
    if not laws.laws:
        return [info("conservation laws (quadratic)", 0.0, 0.0,
                     note="the derived flow conserves no quadratic quantity")]
    rng = np.random.default_rng([ex.plan.seed, 2])
    start = ex.theta0 + rng.normal(0.0, 0.3, len(ex.theta0))
    labels = [f"h_{i}" if len(laws.laws) > 1 else "h" for i in range(1, len(laws.laws) + 1)]
    drifts = flow_drift_checks(ex.model, list(zip(laws.expressions(), labels)), start,
                               ex.plan.t_end, ex.constants)
    checks = []
    for law, label, drift in zip(laws.laws, labels, drifts):
        checks.append(drift)
        checks.append(gd_law_check(ex.model, law.expression, start, ex.constants, eta=0.02,
                                   label=label))
    ex.conserved = [str(h) for h in laws.expressions()]
    checks += _sgd_drift(ex, laws.laws[0].expression, start)
    return checks


def _sgd_drift(ex: Experiment, h, start) -> list[Check]:
    """SGD drift of h over ``sweep_time`` at each eta of the sweep, with the line c eta."""
    import sympy as sp

    syms = ex.model.parameters
    A = np.array(sp.hessian(h, syms).tolist(), dtype=float) / 2
    hf = lambda th: np.einsum("...i,ij,...j->...", th, A, th)  # noqa: E731
    rows = []
    for eta in ex.plan.eta_sweep:
        steps = max(1, int(round(ex.plan.sweep_time / eta)))
        from ..simulate import run_sgd

        ex.log(f"SGD drift of the law at eta = {eta:g}: {ex.plan.seeds} seeds x {steps} steps")
        run = run_sgd(ex.simulator(), start, steps, eta, seeds=ex.plan.seeds,
                      seed=ex.plan.seed + 3, record_every=steps, guard=ex.guard())
        drift = hf(run.theta[:, -1]) - hf(start)
        rows.append((eta, float(drift.mean()), float(drift.std(ddof=1) / np.sqrt(len(drift)))))
    etas, means, ses = (np.array(v) for v in zip(*rows))
    w = 1.0 / np.where(ses > 0, ses, 1.0) ** 2
    slope = float(np.sum(w * etas * means) / np.sum(w * etas ** 2))
    ex.drift = {"eta": etas.tolist(), "mean": means.tolist(), "se": ses.tolist(), "slope": slope}
    return [info(f"SGD drift of h over t = {ex.plan.sweep_time:g} at eta = {e:g}", slope * e, m,
                 s, "SGD breaks the law at O(eta): each step adds eta^2 g^T A g with the "
                    "minibatch g; theory = c eta, c fitted through the origin over the etas")
            for e, m, s in rows]


def _series(ex: Experiment) -> dict:
    sgd = ex.read(ex.sgd.theta)
    mean, se, _ = seed_stats(sgd)
    window = ex.gd_window_loss
    m_loss, se_loss, _ = seed_stats(ex.sgd.loss[:, 1:])
    out = {"t": ex.t.tolist(), "readout_flow": ex.read(ex.flow_path.theta).tolist(),
           "readout_gd": ex.read(ex.gd_path).tolist(), "readout_sgd_mean": mean.tolist(),
           "readout_sgd_se": se.tolist(), "loss_flow": ex.flow_path.loss.tolist(),
           "loss_gd_window": window.tolist(),
           "loss_sgd_window_mean": [float("nan")] + m_loss.tolist(),
           "loss_sgd_window_se": [float("nan")] + se_loss.tolist(),
           "sgd_seconds": getattr(ex, "sgd_seconds", None)}
    if hasattr(ex, "drift"):
        out["drift"] = ex.drift
    if hasattr(ex, "conserved"):
        out["conserved"] = ex.conserved
    return out
