"""Depth: what the two-layer linear transformer's derived stable points compute on the query.

The model is ``linear-transformer --layers 2`` at d = 1 (every token updated by each layer,
the query inside Z Z^T / N, the prediction read from the query's label slot), N = 8, s = 1.

Stable points.  The full model's derived flow (16 parameters) is integrated from a generic
small start until it rests, then polished by Newton's method on the derived gradient.  Two
exact invariant subspaces of 7 parameters each, the fixed sets of sign symmetries of the
data, are searched the same way from several starts: ``--reduction diagonal`` (both layers
diagonal; the fixed set of y -> -y) and ``--reduction odd-last`` (the second layer
anti-diagonal; y -> -y composed with W_2 -> -W_2).  Each point found is checked in the full
model: |F| and the eigenvalues of the full Hessian (zero modes = inert entries plus the
two scaling symmetries; stable when every other eigenvalue is positive).

What they compute.  The prediction at each point as a polynomial in the moments the model
sees (m_xx, m_xy, m_yy of Z Z^T / N, query inside, and x_q; the spec hook
``learned_function``), compared with preconditioned gradient descent on the in-context
least squares (1/2N) sum_n (y_n - w x_n)^2 from w = 0:

* one step:   yhat = a m_xy x_q                        (w_1 = eta m_xy);
* two steps:  yhat = (a + b m_xx) m_xy x_q             (w_2 = (eta_1 + eta_2) m_xy
                                                        - eta_1 eta_2 m_xx m_xy);
* k steps:    yhat = (polynomial of degree k - 1 in m_xx) m_xy x_q,

each with its best coefficients (least squares against the target on the same prompts),
and the same forms fitted to the transformer's own prediction (the fraction of its variance
they leave unexplained).  Monte Carlo of the forward pass (fixed seed) gives every loss with
its standard error and checks the derived loss at each stable point (z in SE).

Run:  python -m numerics.studies.zsls_depth --out numerics/studies/results/zsls_depth
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from symicl.models import build
from symicl.models.linear_transformer import learned_function
from symicl.spec import MatrixPacking

from .zsls import DerivedFlow

MAIN_PATH = ("WP_2_1_2_2", "WQ_2_1_1_1", "WP_1_1_2_2", "WQ_1_1_1_1")


def forward(W, M, zq, layers=2):
    """Prediction of the L-layer model for moments M (n, 2, 2) and queries zq (n, 2)."""
    z = zq.copy()
    for layer in range(1, layers + 1):
        P, Q = W[f"WP_{layer}_1"], W[f"WQ_{layer}_1"]
        A = np.einsum("ij,njk,kl->nil", P, M, Q)
        if layer == layers:
            return z[:, 1] + np.einsum("nj,nj->n", A[:, 1, :], z)
        T = np.eye(2)[None] + A
        z = np.einsum("nij,nj->ni", T, z)
        M = np.einsum("nij,njk,nlk->nil", T, M, T)


def prompts(n, N, s, rng):
    x = rng.standard_normal((n, N + 1)) * np.sqrt(s)
    lam = rng.standard_normal(n)
    y = lam[:, None] * x
    target = y[:, -1].copy()
    y[:, -1] = 0.0
    Z = np.stack([x, y], axis=2)
    M = np.einsum("nki,nkj->nij", Z, Z) / N
    return M, Z[:, -1, :], target


class Derived(DerivedFlow):
    """A model's derived loss, flow and Jacobian at its numeric constants, and its rest."""

    def __init__(self, model, kind="numpy"):
        super().__init__(model, kind)
        self.names = [p.name for p in model.parameters]

    def rest(self, theta0, t_end, tol=1e-12):
        """Integrate the flow to t_end, then Newton (least squares: the Hessian has zero
        modes) while it lowers |F|, until |F| < tol; the point reached."""
        sol = solve_ivp(lambda _, th: self.flow(th), (0.0, t_end), theta0, method="LSODA",
                        rtol=1e-10, atol=1e-13)
        th = sol.y[:, -1]
        size = np.max(np.abs(self.flow(th)))
        for _ in range(20):                 # a Newton step is kept only if |F| falls
            if size < tol:
                break
            trial = th - np.linalg.lstsq(self.jacobian(th), self.flow(th), rcond=1e-10)[0]
            trial_size = np.max(np.abs(self.flow(trial)))
            if not trial_size < size:
                break
            th, size = trial, trial_size
        return th


def start(names, seed, scale=0.2, lead=0.3):
    """A generic small start, the main path (W^P_yy, W^Q_xx of both layers) a little ahead;
    entries a reduction drops are simply absent."""
    rng = np.random.default_rng([seed, 3])
    theta = scale * rng.standard_normal(16)
    full = [f"W{p}_{l}_1_{i}_{j}" for l in (1, 2) for p in ("P", "Q")
            for i in (1, 2) for j in (1, 2)]
    theta = dict(zip(full, theta))
    return np.array([theta[n] + (lead if n in MAIN_PATH else 0.0) for n in names])


def in_full(full: Derived, names, theta):
    out = np.zeros(len(full.names))
    out[[full.names.index(n) for n in names]] = theta
    return out


def check_in_full(full: Derived, theta_full, inert=2, symmetries=2):
    """|F| and the full Hessian's spectrum at a point: zero modes and the least other one."""
    H = -full.jacobian(theta_full)
    ev = np.sort(np.linalg.eigvalsh((H + H.T) / 2))
    scale = max(1.0, float(np.max(np.abs(ev))))
    zero = np.abs(ev) < 1e-8 * scale
    rest = ev[~zero]
    return {"max_abs_flow": float(np.max(np.abs(full.flow(theta_full)))),
            "loss_derived": full.loss(theta_full),
            "hessian_zero_modes": int(zero.sum()),
            "expected_zero_modes": inert + symmetries,
            "least_other_hessian_eigenvalue": float(rest.min()),
            "stable": bool(zero.sum() == inert + symmetries and rest.min() > 0)}


def learned(model, theta, digits=6):
    """The prediction at theta as {monomial in Sxx_1_1, Sxy_1, Syy, x_1: coefficient}."""
    f = learned_function(model)[0]
    value = sp.expand(f.xreplace({p: sp.Float(v, 30) for p, v in zip(model.parameters,
                                                                       theta)}))
    stats = sorted(value.free_symbols, key=lambda s: s.name)
    poly = sp.Poly(value, *stats)
    terms = sorted(poly.terms(), key=lambda t: -abs(float(t[1])))
    return {" ".join(f"{s.name}^{e}" if e > 1 else s.name for s, e in zip(stats, m) if e):
            float(f"{float(c):.{digits}g}") for m, c in terms}


def depth_study(log, quick=True, N=8, s=1.0, seed=0, seeds=None, full_starts=None):
    """The stable points of the module docstring; ``seeds`` starts per subspace (4 quick,
    8 full), ``full_starts`` generic starts of the full flow (1 quick, 6 full; the first is
    carried into the comparison)."""
    t0 = time.perf_counter()
    full_model = build("linear-transformer", dim=1, layers=2, N=N, spectrum=[s])
    full = Derived(full_model, "table")
    log(f"depth: full two-layer model, {len(full.names)} parameters, "
        f"{len(full_model._expected)} terms in the derived loss")
    t_end = 3000.0 if quick else 8000.0
    found, full_runs = {}, []
    for k in range(full_starts if full_starts is not None else (1 if quick else 6)):
        th = full.rest(start(full.names, seed + k), t_end)
        chk = check_in_full(full, th)
        full_runs.append({"start_seed": seed + k, **chk})
        log(f"depth: full flow from seed {seed + k}: loss {chk['loss_derived']:.8f}, "
            f"|F| {chk['max_abs_flow']:.1e}, stable {chk['stable']}")
        if k == 0:
            found["full flow"] = {"theta": th, "model": full_model, "names": full.names,
                                  "check": chk}
    starts = range(seeds if seeds is not None else (4 if quick else 8))
    for reduction in ("diagonal", "odd-last"):
        model = build("linear-transformer", dim=1, layers=2, N=N, spectrum=[s],
                      reduction=reduction)
        red = Derived(model)
        best = None
        for k in starts:
            th = red.rest(start(red.names, 100 + k), 2 * t_end)
            if np.max(np.abs(red.flow(th))) > 1e-10:          # not at rest within the horizon
                continue
            chk = check_in_full(full, in_full(full, red.names, th))
            if chk["stable"] and (best is None or chk["loss_derived"] < best[1]["loss_derived"]):
                best = (th, chk)
        if best is None:
            log(f"depth: {reduction}: no stable point from {len(starts)} starts")
            continue
        found[reduction] = {"theta": best[0], "model": model, "names": red.names,
                            "check": best[1]}
        log(f"depth: {reduction}: least stable loss {best[1]['loss_derived']:.8f} "
            f"(7 parameters, {len(starts)} starts)")

    n = 200_000 if quick else 1_000_000
    M, zq, y = prompts(n, N, s, np.random.default_rng([seed, 5]))
    m_xy, m_xx, xq = M[:, 0, 1], M[:, 0, 0], zq[:, 0]

    def form(k):   # k steps of preconditioned GD from 0: (poly of degree k - 1 in m_xx) m_xy x_q
        return np.stack([m_xx ** j * m_xy * xq for j in range(k)], axis=1)

    def best_fit(F, target):
        coef = np.linalg.lstsq(F, target, rcond=None)[0]
        return coef, F @ coef

    def mc(pred):
        l = 0.5 * (pred - y) ** 2
        return {"mean": float(l.mean()), "se": float(l.std(ddof=1) / np.sqrt(n))}

    gd = {}
    for k in (1, 2, 3, 4):
        coef, pred = best_fit(form(k), y)
        gd[f"{k}_steps"] = {"coefficients": [float(c) for c in coef], "loss": mc(pred)}
    pack = MatrixPacking(full_model, {blk: mat.shape for blk, mat in full_model.blocks.items()})
    points = {}
    for name, f in found.items():
        W = pack.unpack(in_full(full, f["names"], f["theta"]))
        yhat = forward(W, M, zq)
        var = float(np.var(yhat))
        fitted = {}
        for k in (1, 2, 3, 4):
            coef, pred = best_fit(form(k), yhat)
            fitted[f"{k}_steps"] = {"coefficients": [float(c) for c in coef],
                                    "unexplained_fraction": float(np.mean((yhat - pred) ** 2)
                                                                  / var)}
        loss = mc(yhat)
        chk = f["check"]
        points[name] = {
            **chk, "weights": {k: v.tolist() for k, v in W.items()},
            "prediction": learned(f["model"], f["theta"]),
            "loss_monte_carlo": loss,
            "derived_vs_monte_carlo_z": (loss["mean"] - chk["loss_derived"]) / loss["se"],
            "gd_forms_fitted_to_it": fitted}
        log(f"depth: {name}: loss derived {chk['loss_derived']:.5f} vs MC {loss['mean']:.5f} "
            f"+- {loss['se']:.5f}; stable in the full model: {chk['stable']} "
            f"(zero modes {chk['hessian_zero_modes']}, least other eigenvalue "
            f"{chk['least_other_hessian_eigenvalue']:.3g}); unexplained by 2 / 4 steps "
            f"{fitted['2_steps']['unexplained_fraction']:.3g} / "
            f"{fitted['4_steps']['unexplained_fraction']:.3g}")
    return {"setting": {"dim": 1, "layers": 2, "N": N, "s": s, "start_seed": seed,
                        "t_end": t_end, "reduced_starts": len(starts), "prompts": n,
                        "seconds": round(time.perf_counter() - t0, 1)},
            "full_flow_starts": full_runs, "stable_points": points, "gd_best": gd}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m numerics.studies.zsls_depth",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="200k prompts, 4 starts per subspace, flow to t = 3000")
    ap.add_argument("--out", default="numerics/studies/results/zsls_depth")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    result = depth_study(log, quick=args.quick)
    (out / "depth.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {out / 'depth.json'}")
    return result


if __name__ == "__main__":
    main()
