"""What a sweep point of each model takes, read from the model specifications.

A point's parameters are the model's verify options (from its spec) and the
SGD settings; its measures are the shared ones of :func:`measure_names` and
the spec's own.  A user's model (``PATH.py:FUNCTION``) takes the SGD
settings; its options and constants go under [fixed] as ``opt.KEY`` and
``const.NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..spec import ModelSpec

__all__ = ["Param", "params_of", "measures_of", "SGD_SETTINGS", "MEASURES_VERSION"]

MEASURES_VERSION = "2"     # bump when a measure's meaning or computation changes


@dataclass(frozen=True)
class Param:
    """One point parameter: its kind ("int", "float", "floats", "str"), default and check."""

    kind: str
    default: Any
    check: Callable[[Any], bool]
    rule: str
    choices: tuple = ()


def _int(default: int, low: int = 1) -> Param:
    return Param("int", default, lambda v: v >= low, f"an integer >= {low}")


def _float(default: float, low: float = 0.0, strict: bool = True) -> Param:
    test = (lambda v: v > low) if strict else (lambda v: v >= low)
    return Param("float", default, test, f"a number {'>' if strict else '>='} {low:g}")


SGD_SETTINGS = {
    "eta": _float(0.01),
    "batch": _int(64),
    "runs": _int(16, low=8),
    "t_end": _float(5.0),
    "records": _int(25),
    "seed": _int(0, low=0),
}


def _param(spec: ModelSpec, option) -> Param:
    default = spec.defaults.get(option.name, option.default)
    if option.kind == "floats":
        def check(v, o=option):
            return len(v) > 0 and all((x > 0) if o.positive else
                                      (o.low is None or x >= o.low) for x in v)
        rule = "a list of positive numbers" if option.positive else (
            f"a list of numbers >= {option.low:g}" if option.low is not None else "a list of numbers")
        return Param("floats", default, check, rule)
    if option.kind == "str":
        return Param("str", default, lambda v, c=option.choices: not c or v in c,
                     f"one of {', '.join(option.choices)}" if option.choices else "a string",
                     option.choices)
    if option.kind == "int":
        low = int(option.low) if option.low is not None else (1 if option.positive else None)
        return Param("int", default, lambda v, lo=low: lo is None or v >= lo,
                     f"an integer >= {low}" if low is not None else "an integer")
    low = option.low if option.low is not None else 0.0
    return Param("float", default, (lambda v, lo=low: v > lo) if option.positive or
                 option.low is None else (lambda v, lo=low: v >= lo),
                 f"a number {'>' if option.positive or option.low is None else '>='} {low:g}")


def params_of(spec: ModelSpec) -> dict[str, Param]:
    """Every parameter a point of ``spec``'s model takes: its sweep options, init, SGD."""
    out = {o.name: _param(spec, o) for o in spec.options_for("sweep")}
    out["init"] = _float(spec.plan.get("init", 0.1), strict=False)
    out.update(SGD_SETTINGS)
    return out


def measures_of(spec: ModelSpec) -> dict[str, str]:
    """The measures of a point: the shared ones, named by the spec's readout, and its own."""
    r = spec.readout_name
    return {
        f"{r}_err_exact": f"max over t and components of |mean {r} (SGD) - flow|",
        f"{r}_z_exact": f"max over t and components of |mean {r} (SGD) - flow| / SE",
        f"{r}_err_gd_flow": f"max over t and components of |{r} (GD) - flow|, GD = gradient "
                            "descent on the expected loss at the same eta (discretisation error)",
        f"{r}_z_gd": f"max over t and components of |mean {r} (SGD) - {r} (GD)| / SE (the SGD "
                     "noise's share)",
        "loss_z_gd": "max over windows of |mean SGD loss - expected loss along GD over the same "
                     "steps| / SE",
        "loss_end": "flow loss at t_end",
        **spec.measures,
    }
