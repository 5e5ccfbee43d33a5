"""Input checking shared by the measures: one matrix or a stack of them."""

from __future__ import annotations

import numpy as np

__all__ = ["MeasureError", "as_matrix_stack", "as_series", "rank_tolerance"]


class MeasureError(ValueError):
    """A measure was given input it cannot be computed on (shape, NaN, empty)."""


def as_matrix_stack(M, name: str = "M") -> tuple[np.ndarray, bool]:
    """Return ``(stack, was_single)`` with ``stack`` of shape (T, m, n).

    Accepts a single (m, n) matrix or a stack (..., m, n); leading axes are
    flattened into one.  Integer and float32 input is kept in its own
    precision class (float32 stays float32) so that rank tolerances can
    follow the precision the matrices were stored in.
    """
    a = np.asarray(M)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise MeasureError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise MeasureError(f"{name}: complex matrices are not supported")
    if a.ndim < 2:
        raise MeasureError(f"{name}: expected a matrix (m, n) or a stack (T, m, n), got shape {a.shape}")
    if a.size == 0:
        raise MeasureError(f"{name}: empty array of shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere((~np.isfinite(a.reshape(-1, *a.shape[-2:]))).any(axis=(1, 2)))
        raise MeasureError(f"{name}: non-finite entries (NaN or inf) in matrix index {int(bad[0, 0])}")
    single = a.ndim == 2
    return a.reshape(-1, *a.shape[-2:]), single


def as_series(x, name: str = "x", min_length: int = 1) -> np.ndarray:
    """A float64 array (..., T) with T >= min_length and finite entries."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 1:
        raise MeasureError(f"{name}: expected a sequence (T,) or a stack (..., T), got a scalar")
    if a.shape[-1] < min_length:
        raise MeasureError(f"{name}: needs at least {min_length} points along the last axis, got {a.shape[-1]}")
    if not np.all(np.isfinite(a)):
        raise MeasureError(f"{name}: non-finite entries (NaN or inf)")
    return a


def rank_tolerance(a: np.ndarray, rtol: float | None, floor: float) -> float:
    """Relative singular-value cut: ``rtol`` if given, else
    ``max(floor, max(m, n) * eps(dtype))`` — the NumPy ``matrix_rank`` default,
    never below ``floor``.  For float32 storage this is ~1e-5 for 128 x 128
    matrices, above the rounding noise that storage adds to a low-rank matrix.
    """
    if rtol is not None:
        if not (0.0 <= rtol < 1.0):
            raise MeasureError(f"rtol must lie in [0, 1), got {rtol}")
        return float(rtol)
    eps = np.finfo(a.dtype).eps
    return float(max(floor, max(a.shape[-2:]) * eps))
