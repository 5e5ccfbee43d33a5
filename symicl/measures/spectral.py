r"""Spectral measures: effective rank and marginalised effective rank.

For a matrix M with singular values sigma_1 >= ... >= sigma_r > 0 (those at
or below ``rtol * sigma_1`` are treated as zero and discarded),

    p_i = sigma_i / sum_j sigma_j,        erank(M) = exp(-sum_i p_i ln p_i)

(Roy & Vetterli 2007).  1 <= erank(M) <= rank(M); erank is invariant under
scaling, transposition and orthogonal maps on either side.  The marginalised
effective rank erank_k removes the k leading singular values first:
erank_k(M) = erank(sigma_{k+1}, ..., sigma_r).

Convention: the effective rank of an empty spectrum (the zero matrix, or
k >= r) is 0, consistent with erank <= rank.
"""

from __future__ import annotations

import numpy as np

from ._arrays import MeasureError, as_matrix_stack, rank_tolerance

__all__ = [
    "singular_values",
    "spectral_entropy",
    "effective_rank",
    "marginalized_effective_rank",
]

#: relative cut below which a singular value counts as zero (math-spec: ~1e-12 sigma_1)
ERANK_RTOL_FLOOR = 1e-12


def singular_values(M, rtol: float | None = None) -> np.ndarray:
    """Singular values, descending, of one matrix (k,) or a stack (T, k).

    Values at or below ``rtol * sigma_1`` are set to exactly 0.  The default
    ``rtol`` is ``max(1e-12, max(m, n) * eps(dtype))`` (so float32 storage
    noise is cut too).  Computed in float64.
    """
    a, single = as_matrix_stack(M)
    tol = rank_tolerance(a, rtol, ERANK_RTOL_FLOOR)
    s = np.linalg.svd(a.astype(np.float64, copy=False), compute_uv=False)
    s = np.where(s > tol * s[:, :1], s, 0.0)
    return s[0] if single else s


def spectral_entropy(s, k: int = 0) -> np.ndarray:
    """Shannon entropy H(p) of p_i = s_i / sum s_j over s_{k+1}, s_{k+2}, ...

    ``s`` holds non-negative values sorted descending along the last axis
    (as returned by :func:`singular_values`); zeros contribute 0 (0 ln 0 = 0).
    An empty or all-zero spectrum gives H = -inf, so exp(H) = 0.
    """
    s = np.asarray(s, dtype=np.float64)
    if k < 0 or int(k) != k:
        raise MeasureError(f"k must be a non-negative integer, got {k!r}")
    if np.any(s < 0):
        raise MeasureError("singular values must be non-negative")
    s = s[..., int(k):]
    total = s.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, s / np.where(total > 0, total, 1.0), 0.0)
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = terms.sum(axis=-1)
    return np.where(total[..., 0] > 0, h, -np.inf)


def effective_rank(M, rtol: float | None = None):
    """erank(M) = exp(-sum_i p_i ln p_i), p_i = sigma_i / sum_j sigma_j.

    ``M``: one matrix (m, n) -> float, or a stack (T, m, n) -> array (T,).
    """
    return marginalized_effective_rank(M, 0, rtol=rtol)


def marginalized_effective_rank(M, k: int = 1, rtol: float | None = None):
    """erank_k(M): the effective rank of sigma_{k+1}, ..., sigma_r.

    The k leading singular values are removed before normalising
    p_i = sigma_i / sum_{j>k} sigma_j.  ``rtol`` is applied relative to the
    full sigma_1.  Returns 0 when fewer than k+1 singular values are nonzero.
    """
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise MeasureError(f"k must be a non-negative integer, got {k!r}")
    a, single = as_matrix_stack(M)
    s = singular_values(a, rtol=rtol)
    e = np.exp(spectral_entropy(s, k))
    return float(e[0]) if single else e
