"""Macroscopic measures of weight matrices along training (NumPy only).

Every measure accepts one matrix (m, n) or a trajectory stacked as (T, m, n):

- :func:`effective_rank`, :func:`marginalized_effective_rank` (Roy & Vetterli);
- :func:`subspace_distance` to the final weights (least squares, normalised
  by ||M_final||_F);
- :func:`loss_autocorrelation`, :func:`autocorrelation_curvature`,
  :func:`curvature`, :func:`frobenius_norm`, :func:`norm_curvature`;
- :class:`Recorder`, which stores named weight matrices per step and computes
  all of the above per name.

Bad input raises :class:`MeasureError` (a ValueError) naming the problem.
"""

from ._arrays import MeasureError
from .recorder import Recorder, RecorderError
from .spectral import effective_rank, marginalized_effective_rank, singular_values, spectral_entropy
from .subspace import subspace_distance
from .temporal import (
    autocorrelation_curvature,
    curvature,
    frobenius_norm,
    loss_autocorrelation,
    norm_curvature,
    window_starts,
)

__all__ = [
    "MeasureError",
    "Recorder",
    "RecorderError",
    "effective_rank",
    "marginalized_effective_rank",
    "singular_values",
    "spectral_entropy",
    "subspace_distance",
    "loss_autocorrelation",
    "autocorrelation_curvature",
    "window_starts",
    "curvature",
    "frobenius_norm",
    "norm_curvature",
]
