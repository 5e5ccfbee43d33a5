"""Sweep configuration: a TOML file naming the model, the grid and the measures.

    model = "linear-transformer"
    measure = ["gain_err_exact", "gain_err_per_mode"]   # optional, default all
    out = "finite-n-sweep"                              # optional store folder

    [fixed]                 # one value per parameter (defaults fill the rest)
    dim = 2
    [grid]                  # a list of values per axis; points are the product
    N = [4, 8, 16]
    anisotropy = [1.0, 4.0]
    seed = [0, 1]
    [plot]                  # optional: heat map axes and measures
    x = "N"
    y = "anisotropy"
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

from ..errors import SymiclError
from .schema import DEFAULT_PLOT, MEASURES, MODELS, Param

__all__ = ["SweepConfig", "SweepConfigError", "load_config", "parse_config"]

TOP_KEYS = ("model", "measure", "out", "fixed", "grid", "plot")


class SweepConfigError(SymiclError):
    """A sweep configuration is invalid; the message names the problem."""


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: fixed values and grid axes (name -> tuple of values)."""

    model: str
    fixed: dict[str, Any]
    grid: dict[str, tuple]
    measure: tuple[str, ...]
    plot: dict[str, Any]
    out: str | None = None
    text: str = field(default="", compare=False)

    def params(self) -> dict[str, Param]:
        return MODELS[self.model]


def load_config(path: str) -> SweepConfig:
    """Read and validate the TOML file ``path``."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise SweepConfigError(f"cannot read sweep config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepConfigError(f"sweep config {path} is not valid TOML: {exc}") from None
    try:
        return parse_config(data, text)
    except SweepConfigError as exc:
        raise SweepConfigError(f"sweep config {path}: {exc}") from None


def parse_config(data: dict, text: str = "") -> SweepConfig:
    """Validate a parsed configuration (a dict as TOML gives it)."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise SweepConfigError(f"unknown key {', '.join(unknown)}; keys: {', '.join(TOP_KEYS)}")
    model = data.get("model")
    if model not in MODELS:
        raise SweepConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    params = MODELS[model]
    fixed = _table(data, "fixed")
    grid = _table(data, "grid")
    if not grid:
        raise SweepConfigError("empty grid: give at least one axis under [grid], "
                               "e.g. seed = [0, 1]")
    for name in (*fixed, *grid):
        if name not in params:
            raise SweepConfigError(f"model {model} has no parameter {name!r}; parameters: "
                                   f"{', '.join(params)}")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise SweepConfigError(f"{', '.join(both)} given both in [fixed] and in [grid]")
    fixed = {k: _value(k, params[k], v) for k, v in fixed.items()}
    grid = {k: _axis(k, params[k], v) for k, v in grid.items()}
    _cross_check(model, fixed, grid)
    measures = MEASURES[model]
    measure = data.get("measure", list(measures))
    if not isinstance(measure, list):
        raise SweepConfigError(f"measure must be a list of names, got {measure!r}")
    measure = tuple(measure)
    bad = [m for m in measure if m not in measures]
    if bad or not measure:
        raise SweepConfigError(f"unknown measure {', '.join(map(repr, bad)) or '(none given)'}; "
                               f"{model} measures: {', '.join(measures)}")
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise SweepConfigError(f"out must be a folder name, got {out!r}")
    return SweepConfig(model, fixed, grid, measure, _plot(model, data.get("plot", {}), measure),
                       out, text)


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SweepConfigError(f"{key} must be a table ([{key}]), got {value!r}")
    return value


def _value(name: str, param: Param, raw: Any) -> Any:
    bad = SweepConfigError(f"{name} = {raw!r}: must be {param.rule}")
    if param.kind == "floats":
        if not isinstance(raw, (list, tuple)):
            raise bad
        value = tuple(float(_number(x, bad)) for x in raw)
    else:
        value = _number(raw, bad)
        if param.kind == "float":
            value = float(value)
        elif not float(value).is_integer():
            raise bad
        else:
            value = int(value)
    if not param.check(value):
        raise bad
    return value


def _number(raw: Any, bad: Exception) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise bad
    return raw


def _axis(name: str, param: Param, raw: Any) -> tuple:
    if not isinstance(raw, list):
        raise SweepConfigError(f"grid axis {name} must be a list of values, got {raw!r}")
    if not raw:
        raise SweepConfigError(f"grid axis {name} is empty")
    values = tuple(_value(name, param, v) for v in raw)
    if len(set(values)) != len(values):
        raise SweepConfigError(f"grid axis {name} repeats a value: {list(raw)}")
    return values


def _values(name: str, fixed: dict, grid: dict) -> tuple:
    return grid.get(name, (fixed[name],) if name in fixed else ())


def _cross_check(model: str, fixed: dict, grid: dict) -> None:
    """Checks that tie two parameters together, over every value of each."""
    if model == "linear-transformer":
        dims = _values("dim", fixed, grid) or (MODELS[model]["dim"].default,)
        spectra = _values("spectrum", fixed, grid)
        if spectra and _values("anisotropy", fixed, grid):
            raise SweepConfigError("give the spectrum or the anisotropy, not both")
        for d, s in itertools.product(dims, spectra):
            if len(s) != d:
                raise SweepConfigError(f"spectrum {list(s)} has {len(s)} values for dim = {d}")
        for d, k in itertools.product(dims, _values("anisotropy", fixed, grid)):
            if d == 1 and k != 1:
                raise SweepConfigError(f"anisotropy = {k} needs dim >= 2 (dim = 1 has one mode)")
    else:
        p = MODELS[model]
        sizes = [min(i, o) for i, o in itertools.product(
            _values("n_in", fixed, grid) or (p["n_in"].default,),
            _values("n_out", fixed, grid) or (p["n_out"].default,))]
        for s in _values("singular_values", fixed, grid) or (p["singular_values"].default,):
            if len(s) > min(sizes):
                raise SweepConfigError(f"singular_values {list(s)} has more than "
                                       f"min(n_in, n_out) = {min(sizes)} values")


def _plot(model: str, raw: Any, measure: tuple) -> dict:
    if not isinstance(raw, dict):
        raise SweepConfigError(f"plot must be a table ([plot]), got {raw!r}")
    unknown = sorted(set(raw) - {"x", "y", "measures"})
    if unknown:
        raise SweepConfigError(f"unknown key {', '.join(unknown)} in [plot]; keys: x, y, measures")
    x, y, default = DEFAULT_PLOT[model]
    plot = {"x": raw.get("x", x), "y": raw.get("y", y),
            "measures": tuple(raw.get("measures", [m for m in default if m in measure] or
                                      measure[:1]))}
    for axis in ("x", "y"):
        if plot[axis] not in MODELS[model]:
            raise SweepConfigError(f"plot {axis} = {plot[axis]!r} is not a parameter of {model}")
    bad = [m for m in plot["measures"] if m not in MEASURES[model]]
    if bad or not plot["measures"]:
        raise SweepConfigError(f"plot measures {bad or '(none)'} are not measures of {model}")
    return plot
