"""Sweep configuration: a TOML file naming the model, the grid and the measures.

    model = "linear-transformer"        # a built-in, or PATH.py:FUNCTION
    measure = ["gain_err_exact", "gain_z_gd"]           # optional, default all
    out = "finite-n-sweep"                              # optional store folder
    time_limit = 600                                    # optional, seconds per point

    [fixed]                 # one value per parameter (defaults fill the rest)
    dim = 2
    [grid]                  # a list of values per axis; points are the product
    N = [4, 8, 16]
    anisotropy = [1.0, 4.0]
    seed = [0, 1]
    [constants]             # optional: numbers for the model's constants
    [options]               # optional: a user model's options
    [plot]                  # optional: heat map axes and measures
    x = "N"
    y = "anisotropy"

The parameters of a model are its spec's verify options and the SGD
settings (:mod:`symicl.sweep.schema`).  Every point is checked here: its
options and constants (the spec's own checks) and its plan (at least
MIN_SEEDS runs and MIN_STEPS steps), so a sweep never stores meaningless
numbers.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from ..errors import SymiclError
from ..spec import ModelSpec, is_user_reference
from .schema import Param, measures_of, params_of

__all__ = ["SweepConfig", "SweepConfigError", "load_config", "parse_config", "DEFAULT_TIME_LIMIT"]

TOP_KEYS = ("model", "measure", "out", "fixed", "grid", "plot", "constants", "options",
            "time_limit")
DEFAULT_TIME_LIMIT = 600.0


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
    constants: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    time_limit: float = DEFAULT_TIME_LIMIT

    def spec(self) -> ModelSpec:
        from ..models import spec

        return spec(self.model)

    def params(self) -> dict[str, Param]:
        return params_of(self.spec())


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
        return parse_config(data, text, base=os.path.dirname(os.path.abspath(path)))
    except SweepConfigError as exc:
        raise SweepConfigError(f"sweep config {path}: {exc}") from None


def _spec_of(model: Any, base: str | None) -> tuple[str, ModelSpec]:
    from ..models import SPECS, spec

    if not isinstance(model, str):
        raise SweepConfigError(f"unknown model {model!r}; choose one of {', '.join(SPECS)}")
    if model not in SPECS and is_user_reference(model):
        target, _, func = model.rpartition(":")
        if target.endswith(".py") and not os.path.isabs(target) and base is not None:
            model = f"{os.path.join(base, target)}:{func}"
    if model not in SPECS and not is_user_reference(model):
        raise SweepConfigError(f"unknown model {model!r}; choose one of {', '.join(SPECS)}, "
                               "or PATH.py:FUNCTION")
    try:
        s = spec(model)
    except SymiclError as exc:
        raise SweepConfigError(str(exc)) from None
    if not s.verifiable:
        raise SweepConfigError(f"model {s.name} is given by its expected loss alone and cannot "
                               "be simulated")
    return model, s


def parse_config(data: dict, text: str = "", base: str | None = None) -> SweepConfig:
    """Validate a parsed configuration (a dict as TOML gives it)."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise SweepConfigError(f"unknown key {', '.join(unknown)}; keys: {', '.join(TOP_KEYS)}")
    model, spec = _spec_of(data.get("model"), base)
    params = params_of(spec)
    fixed = _table(data, "fixed")
    grid = _table(data, "grid")
    constants = _table(data, "constants")
    options = _table(data, "options")
    if options and not spec.free_options:
        raise SweepConfigError(f"[options] is for a user's model; {spec.name} takes its options "
                               "as parameters under [fixed] or [grid]")
    if not grid:
        raise SweepConfigError("empty grid: give at least one axis under [grid], "
                               "e.g. seed = [0, 1]")
    for name in (*fixed, *grid):
        if name not in params:
            raise SweepConfigError(f"model {spec.name} has no parameter {name!r}; parameters: "
                                   f"{', '.join(params)}")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise SweepConfigError(f"{', '.join(both)} given both in [fixed] and in [grid]")
    fixed = {k: _value(k, params[k], v) for k, v in fixed.items()}
    grid = {k: _axis(k, params[k], v) for k, v in grid.items()}
    measures = measures_of(spec)
    measure = data.get("measure", list(measures))
    if not isinstance(measure, list):
        raise SweepConfigError(f"measure must be a list of names, got {measure!r}")
    measure = tuple(measure)
    bad = [m for m in measure if m not in measures]
    if bad or not measure:
        raise SweepConfigError(f"unknown measure {', '.join(map(repr, bad)) or '(none given)'}; "
                               f"{spec.name} measures: {', '.join(measures)}")
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise SweepConfigError(f"out must be a folder name, got {out!r}")
    limit = data.get("time_limit", DEFAULT_TIME_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 0 or \
            not math.isfinite(limit):
        raise SweepConfigError(f"time_limit must be a number of seconds >= 0 (0: no limit), "
                               f"got {limit!r}")
    config = SweepConfig(model, fixed, grid, measure,
                         _plot(spec, params, data.get("plot", {}), measure), out, text,
                         dict(constants), dict(options), float(limit))
    _check_points(config, spec, params)
    return config


def _check_points(config: SweepConfig, spec: ModelSpec, params: dict) -> None:
    """Every point's options, constants and plan, by the spec's and the plan's own checks."""
    base = {name: p.default for name, p in params.items()}
    base.update(config.fixed)
    for combo in itertools.product(*config.grid.values()):
        p = {**base, **dict(zip(config.grid, combo))}
        where = ", ".join(f"{k} = {v}" for k, v in zip(config.grid, combo))
        try:
            options = point_options(spec, p, config)
            if spec.constants is not None:
                spec.constants(spec.check_options(options, "sweep"))
            point_plan(p).check()
        except SymiclError as exc:
            raise SweepConfigError(f"point {where}: {exc}") from None


def point_options(spec: ModelSpec, params: dict, config: SweepConfig) -> dict:
    """The model options of one point (a user model's come from [options])."""
    if spec.free_options:
        return dict(config.options)
    return {o.name: params[o.name] for o in spec.options_for("sweep") if o.name in params}


def point_plan(params: dict):
    """The verification plan of one point."""
    from ..verify.plan import Plan

    return Plan(eta=params["eta"], batch=params["batch"], seeds=params["runs"],
                t_end=params["t_end"], init=params["init"], records=params["records"],
                seed=params["seed"])


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
    elif param.kind == "str":
        if not isinstance(raw, str):
            raise bad
        value = raw
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


def _plot(spec: ModelSpec, params: dict, raw: Any, measure: tuple) -> dict:
    if not isinstance(raw, dict):
        raise SweepConfigError(f"plot must be a table ([plot]), got {raw!r}")
    unknown = sorted(set(raw) - {"x", "y", "measures"})
    if unknown:
        raise SweepConfigError(f"unknown key {', '.join(unknown)} in [plot]; keys: x, y, measures")
    x, y, default = spec.plot or ("eta", "batch", measure[:1])
    plot = {"x": raw.get("x", x), "y": raw.get("y", y),
            "measures": raw.get("measures", [m for m in default if m in measure] or
                                list(measure[:1]))}
    for axis in ("x", "y"):
        if not isinstance(plot[axis], str) or plot[axis] not in params:
            raise SweepConfigError(f"plot {axis} = {plot[axis]!r} is not a parameter of "
                                   f"{spec.name}")
    if not isinstance(plot["measures"], list) or not plot["measures"]:
        raise SweepConfigError(f"plot measures must be a list of measure names, got "
                               f"{plot['measures']!r}")
    measures = measures_of(spec)
    bad = [m for m in plot["measures"] if not isinstance(m, str) or m not in measures]
    if bad:
        raise SweepConfigError(f"plot measures {bad} are not measures of {spec.name}")
    plot["measures"] = tuple(plot["measures"])
    return plot
