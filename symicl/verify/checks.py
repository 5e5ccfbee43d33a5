"""Check records: theory against simulation with a stated error bar."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Check", "z_check", "bound_check", "info"]


@dataclass
class Check:
    """One row of a verification table.

    ``kind`` is "z" (|theory - simulation| / se <= tolerance), "bound"
    (simulation <= tolerance) or "info" (reported, not judged).
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

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in asdict(self).items()}


def z_check(quantity: str, theory: float, simulation: float, se: float,
            tolerance: float = 5.0, note: str = "") -> Check:
    """Pass when |simulation - theory| <= tolerance standard errors."""
    z = (simulation - theory) / se if se > 0 else (0.0 if simulation == theory else np.inf)
    return Check(quantity, float(theory), float(simulation), float(se), float(z),
                 tolerance, "z", bool(abs(z) <= tolerance), note)


def bound_check(quantity: str, value: float, bound: float, theory: float = 0.0,
                note: str = "") -> Check:
    """Pass when ``value`` <= ``bound`` (e.g. a relative drift)."""
    return Check(quantity, float(theory), float(value), float("nan"), float("nan"), bound,
                 "bound", bool(value <= bound), note)


def info(quantity: str, theory: float, simulation: float, se: float = float("nan"),
         note: str = "") -> Check:
    """A reported number that is not judged."""
    z = (simulation - theory) / se if se and np.isfinite(se) and se > 0 else float("nan")
    return Check(quantity, float(theory), float(simulation), float(se), float(z),
                 float("nan"), "info", True, note)
