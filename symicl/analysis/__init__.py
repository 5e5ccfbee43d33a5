"""Analysis of a derived flow: fixed points, stability, timescales,
conservation laws, symmetries and closed-form solutions.

Each module takes a :class:`symicl.model.Model` (its expected loss and flow)
and computes from it; nothing here is typed from the literature.
"""

from .closed_forms import LogisticMode, NotBalancedError, logistic_mode
from .conservation import Conservation, ConservationLaw, conservation_laws, discrete_step_change
from .fixed_points import FixedPoint, FixedPointBudgetError, FixedPoints, fixed_points, learned_map
from .riccati import RiccatiForm, riccati_form, riccati_solve
from .symmetries import (GaugeFixed, LieAlgebra, NoetherPair, Symmetry, gauge_fix, lie_algebra,
                         noether, orbit_directions, symmetries)
from .stability import Stability, classify, jacobian_at
from .timescales import Linearisation, Mode, Timescales, linearise, timescales

__all__ = [
    "Conservation", "ConservationLaw", "FixedPoint", "GaugeFixed", "LieAlgebra", "NoetherPair",
    "Symmetry", "gauge_fix", "lie_algebra", "noether", "orbit_directions", "symmetries", "FixedPointBudgetError", "FixedPoints",
    "Linearisation", "LogisticMode", "Mode", "NotBalancedError", "RiccatiForm", "Stability",
    "Timescales", "classify", "conservation_laws", "discrete_step_change", "fixed_points",
    "jacobian_at", "learned_map", "linearise", "logistic_mode", "riccati_form", "riccati_solve",
    "timescales",
]
