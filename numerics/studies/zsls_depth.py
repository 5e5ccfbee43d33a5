"""Depth: what the two-layer linear transformer's derived stable point computes on the query.

The model is ``linear-transformer --layers 2`` at d = 1 (every token updated by each layer,
the query inside Z Z^T / N, the prediction read from the query's label slot).  Its derived
flow is integrated from a small start to rest; the rest point is checked (|F|, eigenvalues
of the finite-difference Jacobian of the derived flow).  Its prediction on fresh prompts is
then compared with preconditioned gradient descent on the in-context least squares
(1/2N) sum_n (y_n - w x_n)^2 from w = 0, written with the moments m_xy = M[x, y] and
m_xx = M[x, x] the model sees (query inside):

* one step:  yhat = a m_xy x_q                    (w_1 = eta m_xy);
* two steps: yhat = (a + b m_xx) m_xy x_q         (w_2 = (eta_1 + eta_2) m_xy - eta_1 eta_2 m_xx m_xy),

each with its best coefficients (least squares against the target, on the same prompts),
and with the same forms fitted to the transformer's own prediction (how much of it they
explain).  Monte Carlo (fixed seed) gives every loss with its standard error, and checks the
derived loss at the rest point.
"""

from __future__ import annotations

import numpy as np

from symicl.models import build


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


def depth_study(log, quick=True, N=8, s=1.0, seed=0):
    from scipy.integrate import solve_ivp

    from .zsls import DerivedFlow

    model = build("linear-transformer", dim=1, layers=2, N=N, spectrum=[s])
    ring = DerivedFlow(model)
    log(f"depth: derived flow of the two-layer model, {len(model.parameters)} parameters, "
        f"{len(model._expected)} terms")
    names = [p.name for p in model.parameters]
    rng = np.random.default_rng([seed, 3])
    theta0 = 0.2 * rng.standard_normal(len(names))
    for k, n in enumerate(names):                      # the main path starts a little ahead
        if n in ("WP_2_1_2_2", "WQ_2_1_1_1", "WP_1_1_2_2", "WQ_1_1_1_1"):
            theta0[k] += 0.3
    t_end = 150.0 if quick else 300.0
    sol = solve_ivp(lambda _, th: ring.flow(th), (0, t_end), theta0, method="LSODA",
                    rtol=1e-8, atol=1e-11, t_eval=np.linspace(0, t_end, 61))
    theta = sol.y[:, -1]
    F = ring.flow(theta)
    J = ring.jacobian(theta)
    eig = np.sort(np.linalg.eigvals((J + J.T) / 2).real)
    W = {}
    for blk, mat in model.blocks.items():
        W[blk] = np.array([[theta[names.index(str(e))] for e in row] for row in mat.tolist()])
    n = 200_000 if quick else 1_000_000
    M, zq, y = prompts(n, N, s, np.random.default_rng([seed, 5]))
    yhat = forward(W, M, zq)
    m_xy, m_xx, xq = M[:, 0, 1], M[:, 0, 0], zq[:, 0]
    f1 = (m_xy * xq)[:, None]
    f2 = np.stack([m_xy * xq, m_xx * m_xy * xq], axis=1)

    def best(F, target):
        coef = np.linalg.lstsq(F, target, rcond=None)[0]
        return coef, F @ coef

    def loss(pred):
        l = 0.5 * (pred - y) ** 2
        return {"mean": float(l.mean()), "se": float(l.std(ddof=1) / np.sqrt(n))}

    c1, g1 = best(f1, y)
    c2, g2 = best(f2, y)
    k1, t1 = best(f1, yhat)
    k2, t2 = best(f2, yhat)
    var = float(np.var(yhat))
    out = {
        "setting": {"dim": 1, "layers": 2, "N": N, "s": s, "start_seed": seed,
                    "t_end": t_end, "prompts": n},
        "rest_point": {"max_abs_flow": float(np.max(np.abs(F))),
                       "largest_jacobian_eigenvalues": eig[-4:].tolist(),
                       "loss_derived": ring.loss(theta),
                       "weights": {k: v.tolist() for k, v in W.items()}},
        "loss_monte_carlo": {"transformer": loss(yhat), "gd_one_step_best": loss(g1),
                             "gd_two_steps_best": loss(g2)},
        "gd_coefficients_best": {"one_step_a": float(c1[0]),
                                 "two_steps_a_b": [float(c) for c in c2]},
        "transformer_fitted_by": {
            "one_step": {"a": float(k1[0]),
                         "unexplained_fraction": float(np.mean((yhat - t1) ** 2) / var)},
            "two_steps": {"a_b": [float(c) for c in k2],
                          "unexplained_fraction": float(np.mean((yhat - t2) ** 2) / var)}},
    }
    mc = out["loss_monte_carlo"]["transformer"]
    out["derived_vs_monte_carlo_z"] = (mc["mean"] - out["rest_point"]["loss_derived"]) / mc["se"]
    log(f"depth: rest point |F| = {out['rest_point']['max_abs_flow']:.2g}, loss derived "
        f"{out['rest_point']['loss_derived']:.5f} vs MC {mc['mean']:.5f} +- {mc['se']:.5f}; "
        f"GD one step {out['loss_monte_carlo']['gd_one_step_best']['mean']:.5f}, two steps "
        f"{out['loss_monte_carlo']['gd_two_steps_best']['mean']:.5f}; unexplained by the "
        f"two-step form {out['transformer_fitted_by']['two_steps']['unexplained_fraction']:.3g}")
    return out
