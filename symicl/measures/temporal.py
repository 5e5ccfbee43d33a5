r"""Measures along training time: loss autocorrelation and curvatures.

Loss autocorrelation over sliding windows (math-reference A.10.5).  For
logged losses L_0, ..., L_{T-1}, a window of w points starting at s, and lags
j = 0..J,

    A_s(j) = (1/w) sum_{k=s}^{s+w-1} L_k L_{k+j}        (un-centred)

defined for s = 0..T-w-J.  With ``normalise=True`` (default) the result is
Atilde_s(j) = A_s(j) / A_s(0).

Its curvature at lag 0 is the second difference in the lag, using the
symmetry A(-j) = A(j) of the autocorrelation:

    kappa_s = Atilde_s(1) - 2 Atilde_s(0) + Atilde_s(-1) = 2 (Atilde_s(1) - 1)

(or, with ``fit_lags=J > 1``, 2c from the least-squares fit
Atilde(j) = a + c j^2 over |j| <= J).  kappa <= 0 for Cauchy-Schwarz reasons
up to window edge effects; it is near 0 for a smooth loss curve and
negative when the loss fluctuates from step to step.

Curvature of a time series x(t): the three-point second difference, exact
for quadratics also on a non-uniform grid,

    x''(t_i) ~ 2 [ (x_{i+1}-x_i)/h_i - (x_i-x_{i-1})/h_{i-1} ] / (h_i + h_{i-1}),
    h_i = t_{i+1} - t_i,

returned at the interior points t_1..t_{T-2}.
"""

from __future__ import annotations

import numpy as np

from ._arrays import MeasureError, as_matrix_stack, as_series

__all__ = [
    "loss_autocorrelation",
    "autocorrelation_curvature",
    "window_starts",
    "curvature",
    "frobenius_norm",
    "norm_curvature",
]


def _check_int(value, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise MeasureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def loss_autocorrelation(losses, window: int, max_lag: int, normalise: bool = True) -> np.ndarray:
    """A_s(j) = mean_{k=s}^{s+w-1} L_k L_{k+j}, for j = 0..max_lag.

    ``losses``: (T,) or (..., T).  Returns (..., T - window - max_lag + 1,
    max_lag + 1): one row per window start s.  ``normalise`` divides each
    row by A_s(0); a window whose losses are all zero (A_s(0) = 0) gives NaN.
    """
    w = _check_int(window, "window", 1)
    J = _check_int(max_lag, "max_lag", 0)
    L = as_series(losses, "losses", min_length=w + J)
    T = L.shape[-1]
    n = T - w - J + 1
    out = np.empty(L.shape[:-1] + (n, J + 1))
    for j in range(J + 1):
        prod = L[..., : T - j] * L[..., j:]                      # L_k L_{k+j}, k = 0..T-1-j
        c = np.concatenate([np.zeros(L.shape[:-1] + (1,)), np.cumsum(prod, axis=-1)], axis=-1)
        out[..., j] = (c[..., w: w + n] - c[..., :n]) / w
    if normalise:
        a0 = out[..., :1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(a0 > 0, out / np.where(a0 > 0, a0, 1.0), np.nan)
    return out


def window_starts(n_points: int, window: int, max_lag: int) -> np.ndarray:
    """Index s of the first point of each window used by :func:`loss_autocorrelation`."""
    return np.arange(n_points - window - max_lag + 1)


def autocorrelation_curvature(losses, window: int, fit_lags: int = 1) -> np.ndarray:
    """Curvature at lag 0 of the normalised windowed loss autocorrelation.

    ``fit_lags=1``: kappa = 2 (Atilde(1) - 1).  ``fit_lags=J > 1``: 2c from the
    least-squares fit Atilde(j) = a + c j^2 over j = -J..J (symmetric
    extension).  Returns (..., T - window - fit_lags + 1).
    """
    J = _check_int(fit_lags, "fit_lags", 1)
    A = loss_autocorrelation(losses, window, J, normalise=True)
    if J == 1:
        return 2.0 * (A[..., 1] - 1.0)
    j = np.arange(-J, J + 1, dtype=np.float64)
    sym = np.concatenate([A[..., :0:-1], A], axis=-1)           # Atilde(-J..J)
    X = np.stack([np.ones_like(j), j**2], axis=1)
    coef = np.linalg.lstsq(X, np.moveaxis(sym, -1, 0).reshape(len(j), -1), rcond=None)[0]
    c = coef[1].reshape(sym.shape[:-1])
    return 2.0 * c


def curvature(x, t=None) -> np.ndarray:
    """Second derivative of x along its last axis by the three-point rule.

    ``x``: (T,) or (..., T); ``t``: optional strictly increasing times (T,)
    (default 0, 1, ..., T-1).  Returns (..., T-2), the values at t_1..t_{T-2}.
    Exact for quadratics on any grid.
    """
    a = as_series(x, "x", min_length=3)
    T = a.shape[-1]
    if t is None:
        return a[..., 2:] - 2.0 * a[..., 1:-1] + a[..., :-2]
    tt = np.asarray(t, dtype=np.float64)
    if tt.shape != (T,):
        raise MeasureError(f"t must have shape ({T},) to match x, got {tt.shape}")
    h = np.diff(tt)
    if not np.all(h > 0):
        raise MeasureError("t must be strictly increasing")
    d = np.diff(a, axis=-1) / h
    return 2.0 * (d[..., 1:] - d[..., :-1]) / (h[1:] + h[:-1])


def frobenius_norm(M):
    """||M||_F of one matrix (float) or of each matrix in a stack (T,)."""
    a, single = as_matrix_stack(M)
    n = np.linalg.norm(a.astype(np.float64, copy=False), axis=(-2, -1))
    return float(n[0]) if single else n


def norm_curvature(M_stack, t=None) -> np.ndarray:
    """Curvature in time of ||M(t)||_F over a trajectory (T, m, n) -> (T-2,)."""
    a, single = as_matrix_stack(M_stack, "M_stack")
    if single:
        raise MeasureError("norm_curvature needs a trajectory (T, m, n) with T >= 3, got one matrix")
    return curvature(frobenius_norm(a), t)
