"""What a sweep point of each model takes: parameters, defaults, checks, measures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_PLOT", "MEASURES", "MODELS", "Param"]


@dataclass(frozen=True)
class Param:
    """One point parameter: its kind ("int", "float", "floats"), default and check."""

    kind: str
    default: Any
    check: Callable[[Any], bool]
    rule: str


def _int(default: int, low: int = 1) -> Param:
    return Param("int", default, lambda v: v >= low, f"an integer >= {low}")


def _float(default: float, low: float = 0.0, strict: bool = True) -> Param:
    test = (lambda v: v > low) if strict else (lambda v: v >= low)
    return Param("float", default, test, f"a number {'>' if strict else '>='} {low:g}")


def _floats(default, rule: str, test) -> Param:
    return Param("floats", default, lambda v: len(v) > 0 and all(test(x) for x in v), rule)


_SGD = {
    "eta": _float(0.01),
    "batch": _int(64),
    "runs": _int(16, low=2),
    "t_end": _float(5.0),
    "records": _int(25),
    "seed": _int(0, low=0),
}

MODELS: dict[str, dict[str, Param]] = {
    "linear-transformer": {
        "dim": _int(2),
        "N": _int(8),
        "anisotropy": _float(1.0, low=1.0, strict=False),
        "spectrum": _floats(None, "a list of positive numbers", lambda x: x > 0),
        "init": _float(0.1),
        **_SGD,
    },
    "deep-linear": {
        "n_in": _int(3),
        "n_hidden": _int(3),
        "n_out": _int(3),
        "singular_values": _floats((3.0, 1.5, 0.5), "a list of numbers >= 0", lambda x: x >= 0),
        "init": _float(0.05),
        **_SGD,
    },
}

MEASURES: dict[str, dict[str, str]] = {
    "linear-transformer": {
        "loss_z_exact": "max over t of |mean SGD loss - exact-flow loss| / SE",
        "loss_z_per_mode": "max over t of |mean SGD loss - per-mode-flow loss| / SE",
        "gain_err_exact": "max over t and modes of |mean a_SGD - a_exact flow|, a = p q",
        "gain_err_per_mode": "max over t and modes of |mean a_SGD - a_per-mode flow|",
        "gain_z_exact": "max over t and modes of |mean a_SGD - a_exact flow| / SE",
        "gain_z_per_mode": "max over t and modes of |mean a_SGD - a_per-mode flow| / SE",
        "gain_err_gd_flow": "max over t and modes of |a_GD - a_exact flow|, GD = gradient "
                            "descent on the expected loss at the same eta (discretisation error)",
        "gain_z_gd": "max over t and modes of |mean a_SGD - a_GD| / SE (the SGD noise's share)",
        "loss_end": "exact-flow loss at t_end",
    },
    "deep-linear": {
        "loss_z_exact": "max over t of |mean SGD loss - flow loss| / SE",
        "mode_err_exact": "max over t and modes of |mean u^T W2 W1 v (SGD) - flow|",
        "mode_z_exact": "max over t and modes of |mean u^T W2 W1 v (SGD) - flow| / SE",
        "loss_end": "flow loss at t_end",
    },
}

DEFAULT_PLOT = {
    "linear-transformer": ("N", "anisotropy", ("gain_err_exact", "gain_err_per_mode")),
    "deep-linear": ("eta", "batch", ("mode_err_exact",)),
}
