"""Check records: theory against simulation with a stated error bar.

A z-row compares a simulated estimate with theory in standard errors.  Its
tolerance comes from the run's family-wise false-failure rate ``alpha``
(:func:`judge`): with m judged z-rows, a row that is the worst of k
comparisons with ``dof`` degrees of freedom in its SE passes when

    |z| <= t_dof^{-1}(1 - alpha / (2 m k)),

the Student-t quantile (Bonferroni over rows and comparisons), so a correct
theory fails a run with probability at most alpha.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

__all__ = ["Check", "z_check", "z_row", "bound_check", "info", "judge"]


@dataclass
class Check:
    """One row of a verification table.

    ``kind`` is "z" (|theory - simulation| / se <= tolerance), "bound"
    (simulation <= tolerance) or "info" (reported, not judged; ``note`` says
    why its number is what it is).  ``comparisons`` and ``dof``: a z-row is
    the worst of that many comparisons, each with that many degrees of
    freedom in its standard error; ``allowance`` is an absolute slack for
    a stated deterministic bias (SGD's O(eta/B) noise bias): the row passes
    when |simulation - theory| <= tolerance x se + allowance.
    """

    quantity: str
    theory: float
    simulation: float
    se: float
    z: float
    tolerance: float
    kind: str
    passed: bool
    note: str = ""
    comparisons: int = 1
    dof: float = float("inf")
    allowance: float = 0.0

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _z(theory: float, simulation: float, se: float) -> float:
    if se > 0 and np.isfinite(se):
        return (simulation - theory) / se
    return 0.0 if simulation == theory else np.inf


def z_check(quantity: str, theory: float, simulation: float, se: float,
            tolerance: float = 5.0, note: str = "") -> Check:
    """Pass when |simulation - theory| <= tolerance standard errors (a fixed tolerance)."""
    z = _z(theory, simulation, se)
    return Check(quantity, float(theory), float(simulation), float(se), float(z),
                 tolerance, "z", bool(abs(z) <= tolerance), note)


def z_row(quantity: str, theory: float, simulation: float, se: float, dof: float,
          comparisons: int = 1, note: str = "", allowance: float = 0.0) -> Check:
    """A z-row whose tolerance :func:`judge` sets from the run's false-failure rate."""
    z = _z(theory, simulation, se)
    return Check(quantity, float(theory), float(simulation), float(se), float(z),
                 float("nan"), "z", False, note, int(comparisons), float(dof), float(allowance))


def judge(checks: Sequence[Check], alpha: float) -> list[Check]:
    """Set the tolerance of every z-row without one (see the module text); return the rows."""
    from scipy.stats import norm, t

    pending = [c for c in checks if c.kind == "z" and not np.isfinite(c.tolerance)]
    m = max(1, len(pending))
    for c in pending:
        p = 1.0 - alpha / (2.0 * m * c.comparisons)
        c.tolerance = float(norm.ppf(p) if not np.isfinite(c.dof) or c.dof > 1e4
                            else t.ppf(p, c.dof))
        gap = abs(c.simulation - c.theory)
        c.passed = bool(np.isfinite(gap) and (abs(c.z) <= c.tolerance or
                                              gap <= c.tolerance * c.se + c.allowance))
    return list(checks)


def bound_check(quantity: str, value: float, bound: float, theory: float = 0.0,
                note: str = "") -> Check:
    """Pass when ``value`` <= ``bound`` (e.g. a relative drift); NaN fails."""
    return Check(quantity, float(theory), float(value), float("nan"), float("nan"), bound,
                 "bound", bool(value <= bound), note)


def info(quantity: str, theory: float, simulation: float, se: float = float("nan"),
         note: str = "") -> Check:
    """A reported number that is not judged; ``note`` says why it is what it is."""
    z = (simulation - theory) / se if se and np.isfinite(se) and se > 0 else float("nan")
    return Check(quantity, float(theory), float(simulation), float(se), float(z),
                 float("nan"), "info", True, note)
