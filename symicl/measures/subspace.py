r"""Subspace distance of a weight matrix to its final value.

    d(t) = min_A ||A M(t) - M_f||_F / ||M_f||_F
         = ||M_f (I - M(t)^+ M(t))||_F / ||M_f||_F

A* = M_f M(t)^+ is the least-squares minimiser, and M(t)^+ M(t) is the
orthogonal projector P_t onto the row space of M(t).  So d measures how much
of the rows of M_f lies outside the row space of M(t).  It is invariant to
any invertible map acting on M(t) from the left, asymmetric, and lies in
[0, 1] with the normalisation by ||M_f||_F (a choice made here: the source
paper states none).  ``side="column"`` uses column spaces instead (M -> M^T).

Pitfall (math-reference C7): if M(t) is square and full rank, P_t = I and
d = 0 identically.  The measure is informative only because M_QK = W_Q W_K^T
and M_OV = W_V W_O have rank at most d_head, so the pseudo-inverse must be
taken with a rank cut: singular values at or below ``rtol * sigma_1`` are
dropped (default ``max(1e-6, max(m, n) * eps(dtype))``), or pass ``rank=r``
to keep exactly the r leading right-singular directions (r = d_head).
"""

from __future__ import annotations

import numpy as np

from ._arrays import MeasureError, as_matrix_stack, rank_tolerance

__all__ = ["row_space_projector_basis", "subspace_distance"]

#: default relative rank cut for M(t)^+ (math-reference A.10.4: ~1e-6 sigma_1)
SUBSPACE_RTOL_FLOOR = 1e-6


def row_space_projector_basis(M, rtol: float | None = None, rank: int | None = None) -> np.ndarray:
    """Right singular vectors spanning the numerical row space of each M.

    Returns V of shape (T, min(m, n), n) whose rows are orthonormal basis
    vectors, with the rows beyond the numerical rank set to zero, so that
    P = V^T V is the row-space projector M^+ M (with the rank cut).
    """
    a, _ = as_matrix_stack(M, "M_t")
    if rank is not None:
        if rtol is not None:
            raise MeasureError("give either rank or rtol, not both")
        if not isinstance(rank, (int, np.integer)) or not (0 <= rank <= min(a.shape[-2:])):
            raise MeasureError(f"rank must be an integer in [0, {min(a.shape[-2:])}], got {rank!r}")
    tol = rank_tolerance(a, rtol, SUBSPACE_RTOL_FLOOR)
    _, s, vh = np.linalg.svd(a.astype(np.float64, copy=False), full_matrices=False)
    if rank is not None:
        keep = np.broadcast_to(np.arange(s.shape[-1]) < rank, s.shape) & (s > 0)
    else:
        keep = s > tol * s[:, :1]
    return vh * keep[..., None]


def subspace_distance(M_t, M_final, rtol: float | None = None, rank: int | None = None,
                      side: str = "row"):
    """Normalised least-squares distance ||M_f (I - M_t^+ M_t)||_F / ||M_f||_F.

    ``M_t``: (m, n) or a stack (T, m, n); ``M_final``: (m, n), or a stack
    matching ``M_t``.  Returns a float for a single M_t, else an array (T,).
    Values lie in [0, 1]; 0 when the rows of M_f lie in the row space of M_t,
    1 when they are orthogonal to it (or M_t = 0).  Raises if M_f = 0.
    """
    if side not in ("row", "column"):
        raise MeasureError(f"side must be 'row' or 'column', got {side!r}")
    a, single = as_matrix_stack(M_t, "M_t")
    f, f_single = as_matrix_stack(M_final, "M_final")
    if f.shape[-2:] != a.shape[-2:]:
        raise MeasureError(f"M_t has matrices of shape {a.shape[-2:]} but M_final has {f.shape[-2:]}")
    if not f_single and f.shape[0] != a.shape[0]:
        raise MeasureError(f"M_final stack has {f.shape[0]} matrices, M_t has {a.shape[0]}")
    if side == "column":
        a = np.swapaxes(a, -1, -2)
        f = np.swapaxes(f, -1, -2)
    v = row_space_projector_basis(a, rtol=rtol, rank=rank)          # (T, r, n)
    f64 = f.astype(np.float64, copy=False)
    norm_f = np.linalg.norm(f64, axis=(-2, -1))
    if np.any(norm_f == 0):
        raise MeasureError("M_final is the zero matrix: the normalised subspace distance is undefined")
    resid = f64 - (f64 @ np.swapaxes(v, -1, -2)) @ v                 # M_f (I - P_t)
    d = np.linalg.norm(resid, axis=(-2, -1)) / norm_f
    d = np.clip(d, 0.0, 1.0)
    return float(d[0]) if single else d
