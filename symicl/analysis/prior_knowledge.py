"""Learning from prior knowledge: the initial state Q0 of a two-layer linear network.

Starts (all lambda-balanced, W2^T W2 - W1 W1^T = lambda I, so the Riccati
closed form of :mod:`.riccati` applies):

* ``rich``: small random weights, lambda = 0 (sigmoidal, staged learning);
* ``lazy``: large |lambda| with task-independent random directions
  (W2 ~ sqrt(lambda) U R^T large, W1 small): exponential learning;
* ``large``: large zero-balanced task-independent weights (lambda = 0);
* ``transfer``: the weights learned on a previous teacher T1 (continual learning).

:func:`balanced_weights` builds lambda-balanced weights from an SVD:
W1 = R diag(a) V^T, W2 = U diag(b) R^T with b_k^2 - a_k^2 = lambda and
a_k b_k = s_k (the initial network function U diag(s) V^T), i.e.
a_k^2 = (sqrt(lambda^2 + 4 s_k^2) - lambda) / 2.  W2^T W2 - W1 W1^T = lambda I
needs h <= out when lambda > 0 and h <= in when lambda < 0.

:func:`compare_starts` runs each start on a teacher in closed form and
reports the loss trajectory, the time to a loss threshold, how exponential
the decay is, and the final RSMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .representations import F_lambda, Representations, closed_form
from .riccati import riccati_solve

__all__ = ["Start", "balanced_weights", "compare_starts", "decay_profile", "standard_starts",
           "teacher", "time_to_loss"]


def teacher(n_out: int, n_in: int, singular_values, seed: int = 0) -> np.ndarray:
    """T = U diag(s) V^T (n_out x n_in) with U, V the Q factors of seeded Gaussian
    matrices; singular values beyond min(n_out, n_in) are dropped."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n_out, n_out)))
    V, _ = np.linalg.qr(rng.standard_normal((n_in, n_in)))
    r = min(n_out, n_in, len(singular_values))
    S = np.zeros((n_out, n_in))
    S[np.arange(r), np.arange(r)] = np.asarray(singular_values, dtype=float)[:r]
    return U @ S @ V.T


def _orthonormal(rng, n: int, k: int) -> np.ndarray:
    """n x k with orthonormal columns (Haar), k <= n."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r)))[:, :k]


def balanced_weights(n_in: int, n_hidden: int, n_out: int, lam: float = 0.0, scale=0.01,
                     seed: int = 0, U=None, V=None):
    """(W1, W2) with W2^T W2 - W1 W1^T = lam I and initial network function U diag(s) V^T.

    ``scale``: the singular values s_k of W2 W1 (a number for all, or a
    sequence), k < min(in, hidden, out); U (out x r), V (in x r) random
    orthonormal unless given (task-independent), the hidden basis R random.
    """
    h, i, o = n_hidden, n_in, n_out
    if min(h, i, o) < 1:
        raise ModelError("sizes must be positive")
    if lam > 0 and h > o:
        raise ModelError(f"W2^T W2 - W1 W1^T = lambda I with lambda = {lam:g} > 0 needs "
                         f"hidden <= out (W2^T W2 = lambda I + W1 W1^T has rank hidden = {h} "
                         f"> out = {o}); use lambda <= 0 or a smaller hidden layer")
    if lam < 0 and h > i:
        raise ModelError(f"W2^T W2 - W1 W1^T = lambda I with lambda = {lam:g} < 0 needs "
                         f"hidden <= in (W1 W1^T = |lambda| I + W2^T W2 has rank hidden = {h} "
                         f"> in = {i}); use lambda >= 0 or a smaller hidden layer")
    rng = np.random.default_rng(seed)
    r = min(h, i, o)
    s = np.full(r, float(scale)) if np.ndim(scale) == 0 else np.asarray(scale, dtype=float)
    if s.shape != (r,) or np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ModelError(f"scale must be a non-negative number or {r} of them, got {scale!r}")
    a2, b2 = np.zeros(h), np.zeros(h)
    a2[:r] = (np.sqrt(lam ** 2 + 4 * s ** 2) - lam) / 2
    b2[:r] = a2[:r] + lam
    a2[r:], b2[r:] = max(-lam, 0.0), max(lam, 0.0)     # hidden units beyond r: one layer only
    m1, m2 = min(h, i), min(h, o)                       # a_k = 0 for k >= m1, b_k = 0 for k >= m2
    R = _orthonormal(rng, h, h)
    V = _basis(rng, i, r, V, m1, "V")
    U = _basis(rng, o, r, U, m2, "U")
    W1 = R[:, :m1] @ np.diag(np.sqrt(np.maximum(a2[:m1], 0))) @ V.T
    W2 = U @ np.diag(np.sqrt(np.maximum(b2[:m2], 0))) @ R[:, :m2].T
    return W1, W2


def _basis(rng, n, r, M, m, name):
    """n x m orthonormal columns starting with the first r of ``M`` (random if None)."""
    if M is None:
        return _orthonormal(rng, n, m)
    M = np.asarray(M, dtype=float)
    if M.ndim != 2 or M.shape[0] != n or M.shape[1] < r:
        raise ModelError(f"{name} must be {n} x (at least {r}) with orthonormal columns")
    M = M[:, :r]
    if m == r:
        return M
    X = rng.standard_normal((n, m - r))
    X -= M @ (M.T @ X)
    return np.hstack([M, np.linalg.qr(X)[0]])


@dataclass
class Start:
    """A named initial state (W1, W2)."""

    name: str
    W1: np.ndarray
    W2: np.ndarray
    note: str = ""


def standard_starts(T, n_hidden: int, *, small: float = 1e-3, lazy_lambda: float = 20.0,
                    large: float = 3.0, previous=None, seed: int = 0,
                    t_previous: float = 30.0) -> list[Start]:
    """rich, lazy, large (and transfer when a previous teacher T1 is given) starts for T."""
    T = np.atleast_2d(np.asarray(T, dtype=float))
    o, i = T.shape
    starts = [
        Start("rich", *balanced_weights(i, n_hidden, o, 0.0, small, seed),
              f"lambda = 0, network singular values {small:g}, random directions"),
        Start("lazy", *balanced_weights(i, n_hidden, o, lazy_lambda, small, seed + 1),
              f"lambda = {lazy_lambda:g}, network singular values {small:g}, random directions"),
        Start("large", *balanced_weights(i, n_hidden, o, 0.0, large, seed + 2),
              f"lambda = 0, network singular values {large:g}, random directions"),
    ]
    if previous is not None:
        W1, W2 = balanced_weights(i, n_hidden, o, 0.0, small, seed + 3)
        previous = np.atleast_2d(np.asarray(previous, dtype=float))
        path = closed_form(previous, W1, W2, [0.0, t_previous])
        (Q,) = riccati_solve(F_lambda(previous), W1, W2, [t_previous])
        starts.append(Start("transfer", Q[:i].T.copy(), Q[i:].copy(),
                            f"learned on the previous teacher for t = {t_previous:g} from the "
                            f"rich start (loss on it {path.loss[-1]:.2e})"))
    return starts


def time_to_loss(path: Representations, threshold: float) -> float:
    """First t with loss <= threshold (log-linear interpolation), inf if never."""
    L, t = path.loss, path.t
    below = np.nonzero(L <= threshold)[0]
    if below.size == 0:
        return float("inf")
    k = int(below[0])
    if k == 0:
        return float(t[0])
    l0, l1 = np.log(L[k - 1]), np.log(max(L[k], 1e-300))
    return float(t[k - 1] + (t[k] - t[k - 1]) * (l0 - np.log(threshold)) / (l0 - l1))


def decay_profile(path: Representations, floor: float = 1e-8) -> dict:
    """How exponential L(t) - L_inf is from the start.

    Fits log(L - L_inf) on the times where it is above ``floor`` and 1e-6 of its
    start (L_inf the last value); returns the rate c (L ~ e^{-c t}), the largest deviation of log L from
    the straight line, and the plateau fraction: the share of the time to
    reach 1% of the initial excess loss spent above 90% of it (near 0 for
    exponential decay, large for sigmoidal learning).
    """
    L = path.loss - path.loss[-1]
    t = path.t
    keep = L > max(floor, 1e-6 * L[0])          # where the excess is resolved above L_inf
    keep[-1] = False
    if keep.sum() < 3:
        return {"rate": float("nan"), "max_log_deviation": float("nan"), "plateau_fraction": 0.0}
    tt, ll = t[keep], np.log(L[keep])
    c, b = np.polyfit(tt, ll, 1)
    dev = float(np.abs(ll - (c * tt + b)).max())
    t90 = t[np.argmax(L <= 0.9 * L[0])] if np.any(L <= 0.9 * L[0]) else t[-1]
    t01 = t[np.argmax(L <= 0.01 * L[0])] if np.any(L <= 0.01 * L[0]) else t[-1]
    return {"rate": float(-c), "max_log_deviation": dev,
            "plateau_fraction": float(t90 / t01) if t01 > 0 else 0.0}


def _normalised(M):
    n = np.linalg.norm(M)
    return M / n if n > 0 else M


def compare_starts(T, starts, times, *, threshold: float = 1e-3, X=None) -> dict:
    """Each start in closed form on teacher T: trajectory, time to ``threshold``, final RSMs.

    The final RSMs are compared with the rich start's (Frobenius distance of
    the RSMs normalised to unit norm) and with the task's own structures
    (T^T T)^{1/2} and T^T T (inputs), (T T^T)^{1/2} and T T^T (outputs).
    """
    T = np.atleast_2d(np.asarray(T, dtype=float))
    paths = {s.name: closed_form(T, s.W1, s.W2, times, X=X) for s in starts}
    U, S, Vt = np.linalg.svd(T, full_matrices=False)
    targets = {"in": {"sqrt(T^T T)": Vt.T @ np.diag(S) @ Vt, "T^T T": T.T @ T},
               "out": {"sqrt(T T^T)": U @ np.diag(S) @ U.T, "T T^T": T @ T.T}}
    ref = paths.get("rich")
    out = {}
    for s in starts:
        p = paths[s.name]
        row = {"note": s.note, "lambda": p.lam, "loss_initial": float(p.loss[0]),
               "loss_final": float(p.loss[-1]), "time_to_threshold": time_to_loss(p, threshold),
               **decay_profile(p),
               "rsm_in_final": p.rsm_in[-1].tolist(), "rsm_out_final": p.rsm_out[-1].tolist(),
               "network_error_final": float(np.linalg.norm(p.network[-1] - T))}
        for side, R in (("in", p.rsm_in[-1]), ("out", p.rsm_out[-1])):
            for name, M in targets[side].items():
                row[f"rsm_{side}_vs_{name}"] = float(np.linalg.norm(_normalised(R) - _normalised(M)))
            if ref is not None:
                Rr = ref.rsm_in[-1] if side == "in" else ref.rsm_out[-1]
                row[f"rsm_{side}_vs_rich"] = float(np.linalg.norm(_normalised(R) - _normalised(Rr)))
        out[s.name] = row
    return {"threshold": threshold, "starts": out, "paths": paths}
