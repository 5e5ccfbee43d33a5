"""The model specification: everything a consumer needs to know about one model.

A :class:`ModelSpec` declares, for one model,

* its builder (options -> :class:`~symicl.model.Model`) and its options
  (:class:`Option`: kind, default, check, and the commands it belongs to);
  the CLI flags, ``symicl models`` and the sweep schema are made from them,
  and an option that does not belong to the model is refused;
* the numeric constants a simulation needs (``constants``), its initial
  weights (``init``), and what its reports read off the weights
  (``readout``: e.g. the gains a_a = p_a q_a of the transformer);
* optionally a hand-written simulator (a fast path, tested equal in
  distribution to the one generated from the definition), extra checks and
  extra plots for ``symicl verify``, and LaTeX heads for its symbols.

Built-in models are one file each in :mod:`symicl.models` (a module-level
``SPEC``); a user's model is ``PATH.py:FUNCTION`` or ``package.module:FUNCTION``
(see :func:`load_user_spec`), FUNCTION(**options) returning a Model or a
ModelSpec.  CLI, verify, sweep and export read specs; nothing else names a
model.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ModelError, SymiclError
from .model import Model

__all__ = ["Option", "Readout", "ModelSpec", "MatrixPacking", "MatrixSimulator", "spec_for_model",
           "load_user_spec", "parse_assignments", "COMMANDS"]

COMMANDS = ("derive", "verify", "sweep")
KINDS = ("int", "float", "str", "floats", "bool")


@dataclass(frozen=True)
class Option:
    """One option of a model.

    ``name`` is the builder's keyword; ``kind`` one of int, float, str,
    floats (a comma-separated list of numbers), bool; ``low`` a lower bound
    (inclusive) for numbers and ``positive`` a strict one (every entry of
    a list); ``choices`` the allowed strings; ``commands``
    the commands that take it; ``role`` says where the value goes:
    "build" (the builder, every command), "derive" (the builder, derive
    only), "constant" (the builder in derive, where None keeps the symbol;
    numeric constants in verify and sweep, where a default is needed) and
    "numeric" (verify and sweep only, read by the spec's hooks).
    ``aliases`` are old flag spellings, accepted with a deprecation note.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple = ()
    low: float | None = None
    positive: bool = False
    role: str = "build"
    aliases: tuple = ()
    numeric_default: Any = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ModelError(f"option {self.name}: kind must be one of {', '.join(KINDS)}")
        if self.role not in ("build", "derive", "constant", "numeric"):
            raise ModelError(f"option {self.name}: unknown role {self.role!r}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def commands(self) -> tuple[str, ...]:
        return {"derive": ("derive",), "numeric": ("verify", "sweep")}.get(self.role, COMMANDS)

    def parse(self, text: str) -> Any:
        """The value of a command-line string, checked; SymiclError names the option."""
        if self.kind == "floats":
            parts = [p.strip() for p in str(text).split(",")]
            if not parts or any(not p for p in parts):
                raise SymiclError(f"{self.flag} takes comma-separated numbers, got {text!r}")
            return self.check([_number(p, self.flag, float) for p in parts])
        if self.kind == "bool":
            low = str(text).lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise SymiclError(f"{self.flag} takes true or false, got {text!r}")
            return low in ("true", "1", "yes")
        if self.kind == "str":
            return self.check(str(text))
        return self.check(_number(text, self.flag, int if self.kind == "int" else float))

    def check(self, value: Any) -> Any:
        """``value`` if it fits the option, else SymiclError naming the option."""
        if value is None:
            return None
        if self.kind == "floats":
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise SymiclError(f"{self.flag} must be a list of numbers, got {value!r}")
            out = tuple(self._number(v) for v in value)
            if not out:
                raise SymiclError(f"{self.flag} must not be empty")
            return out
        if self.kind == "str":
            if not isinstance(value, str):
                raise SymiclError(f"{self.flag} must be a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise SymiclError(f"{self.flag} must be one of {', '.join(self.choices)}, "
                                  f"got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SymiclError(f"{self.flag} must be true or false, got {value!r}")
            return value
        return self._number(value)

    def _number(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise SymiclError(f"{self.flag} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise SymiclError(f"{self.flag} must be finite, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                raise SymiclError(f"{self.flag} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if self.positive and not value > 0:
            raise SymiclError(f"{self.flag} must be positive, got {value:g}")
        if self.low is not None and value < self.low:
            raise SymiclError(f"{self.flag} must be >= {self.low:g}, got {value:g}")
        return value

    def describe(self) -> str:
        default = self.default if self.default is not None else (
            "symbolic" if self.role == "constant" else "none")
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" for v in default)
        text = f"{self.flag} ({self.kind}, default {default}"
        if self.role == "constant" and self.numeric_default is not None:
            text += "; in verify and sweep: a number, default from the model"
        if self.role in ("derive", "numeric"):
            text += f"; {' and '.join(self.commands)} only"
        return text + f"): {self.help}"


def _number(text, flag, cast):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SymiclError(f"{flag} takes a number, got {text!r}") from None
    if not math.isfinite(value):
        raise SymiclError(f"{flag} must be finite, got {text!r}")
    if cast is int:
        if value != int(value):
            raise SymiclError(f"{flag} takes an integer, got {text!r}")
        return int(value)
    return value


@dataclass(frozen=True)
class Readout:
    """What reports read off the weights: ``value(theta)`` maps (..., P) to (..., k).

    ``name`` names the quantity (e.g. "gain"), ``labels`` its k components.
    """

    name: str
    labels: tuple[str, ...]
    value: Callable[[np.ndarray], np.ndarray]
    description: str = ""


def parameter_readout(model: Model) -> Readout:
    """The default readout: every parameter of the model."""
    return Readout("theta", tuple(p.name for p in model.parameters), lambda th: np.asarray(th),
                   "every parameter")


def small_random_start(model: Model, options: Mapping, scale: float, seed: int) -> np.ndarray:
    """The default start: theta_i ~ N(0, scale^2), iid, from ``seed``."""
    rng = np.random.default_rng([seed, 7])
    return scale * rng.standard_normal(len(model.parameters))


@dataclass(frozen=True)
class ModelSpec:
    """Everything CLI, verify, sweep and export need to know about one model.

    Hooks (all optional):

    * ``constants(options) -> dict``: numeric values of the model's constants
      for verify and sweep (e.g. N and the spectrum); ``--const`` overrides;
    * ``init(model, options, scale, seed) -> theta0``: the start of SGD;
    * ``readout(model, options, constants) -> Readout``;
    * ``simulator(model, options, constants, batch) -> Simulator | None``: a fast
      hand-written simulator, or None where it does not cover the options; the
      generated one is used otherwise;
    * ``extra_checks(context) -> (checks, series)`` and
      ``extra_plots(extra, out) -> files`` for ``symicl verify``;
    * ``learned_map``: the block products that make the learned function
      (e.g. ("P22", "Q11")), and ``gain_pairs(model)``: the parameter pairs
      whose products are the learned per-mode gains, for the analysis;
    * ``learned_function(model) -> Matrix | None``: the prediction on the query as a
      polynomial in the parameters, named context statistics and the query, for the models
      whose learned map is not a product of two blocks (e.g. several attention heads);
    * ``matrix_level(**options) -> MatrixModel``: the dimension-free twin;
    * ``size(options) -> int``: the number of parameters a build would have,
      so that the CLI can refuse a model too large before building it;
    * ``measures``: extra sweep measures (name -> description) computed by
      ``extra_measures(context) -> dict``.

    ``plan`` and ``quick`` override the verification plan's defaults, and
    ``plan_for(options) -> dict`` overrides them again for given options
    (e.g. a smaller step for two attention layers, whose per-example
    gradients have far heavier tails); ``defaults`` the options' defaults in
    verify and sweep.
    """

    name: str
    build: Callable[..., Model]
    summary: str
    options: tuple[Option, ...] = ()
    constants: Callable[[dict], dict] | None = None
    init: Callable | None = None
    readout: Callable | None = None
    simulator: Callable | None = None
    extra_checks: Callable | None = None
    extra_plots: Callable | None = None
    measures: dict = field(default_factory=dict)
    extra_measures: Callable | None = None
    latex_heads: dict = field(default_factory=dict)
    plan: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)
    plan_for: Callable[[dict], dict] | None = None   # options -> plan overrides
    defaults: dict = field(default_factory=dict)   # option defaults in verify and sweep
    learned_map: tuple = ()                # block products (left, right) the model implements
    learned_function: Callable | None = None   # model -> prediction on named statistics
    matrix_level: Callable | None = None   # the dimension-free twin's builder (MatrixModel)
    size: Callable | None = None           # options -> number of parameters, before building
    gain_pairs: Callable | None = None     # model -> [(p_a, q_a)]: gains a_a = p_a q_a
    readout_name: str = "theta"            # the readout's name (sweep measures are named by it)
    plot: tuple = ()                       # default sweep heat map: (x, y, measures)
    verifiable: bool = True
    free_options: bool = False             # a user's factory: any keyword, no checks
    source: str = ""                       # where a user's spec came from

    # -- options ---------------------------------------------------------------------
    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise SymiclError(f"model {self.name} has no option {name!r}")

    def options_for(self, command: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if command in o.commands)

    def check_options(self, values: Mapping, command: str) -> dict:
        """Every option of ``command`` with its value (given or default), checked.

        An option that does not belong to the model, or not to ``command``,
        is one SymiclError naming it and the options that do.
        """
        if self.free_options:
            return dict(values)
        allowed = {o.name: o for o in self.options_for(command)}
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            names = ", ".join(o.flag for o in allowed.values()) or "none"
            other = [n for n in unknown if any(o.name == n for o in self.options)]
            where = f" in {command}" if other and len(other) == len(unknown) else ""
            raise SymiclError(f"model {self.name} takes no option "
                              f"{', '.join('--' + n.replace('_', '-') for n in unknown)}{where}; "
                              f"its {command} options: {names}")
        out = {}
        for name, o in allowed.items():
            default = self.defaults.get(name, o.default) if command != "derive" else o.default
            out[name] = o.check(values[name]) if name in values else default
        return out

    def build_model(self, options: Mapping, command: str = "derive") -> Model:
        """The model for ``command``: in derive every build/derive/constant option goes to
        the builder; in verify and sweep the constants stay symbolic (their numbers come
        from :meth:`numeric_constants`), so one kernel serves every value."""
        if self.free_options:
            model = self.build(**dict(options))
        else:
            roles = ("build", "derive", "constant") if command == "derive" else ("build",)
            kw = {o.name: options[o.name] for o in self.options
                  if o.role in roles and o.name in options and
                  not (o.role == "constant" and options[o.name] is None)}
            model = self.build(**kw)
        if isinstance(model, ModelSpec):
            raise ModelError(f"{self.name}: the builder returned a ModelSpec, expected a Model")
        if not isinstance(model, Model):
            raise ModelError(f"{self.name}: the builder returned {type(model).__name__}, "
                             "expected a symicl.model.Model")
        return model

    def numeric_constants(self, model: Model, options: Mapping,
                          given: Mapping[str, float] = ()) -> dict[str, float]:
        """Numbers for every constant of ``model``: the spec's, then ``given`` (--const).

        A constant with no value is one SymiclError naming it.
        """
        values = dict(self.constants(dict(options)) if self.constants else {})
        given = dict(given)
        names = [c.name for c in model.constants]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise SymiclError(f"model {self.name} has no constant {', '.join(unknown)}; "
                              f"its constants: {', '.join(names) or 'none'}")
        values.update(given)
        missing = [n for n in names if n not in values]
        if missing:
            raise SymiclError(f"no value for the constant {', '.join(missing)} of model "
                              f"{self.name}; give --const {missing[0]}=VALUE")
        out = {}
        for n in names:
            v = values[n]
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise SymiclError(f"constant {n} = {v!r} is not a number") from None
            if not math.isfinite(v):
                raise SymiclError(f"constant {n} = {v!r} is not finite")
            out[n] = v
        return out

    def start(self, model: Model, options: Mapping, scale: float, seed: int) -> np.ndarray:
        if self.init is not None:
            theta = np.asarray(self.init(model, options, scale, seed), dtype=float)
        else:
            theta = small_random_start(model, options, scale, seed)
        if theta.shape != (len(model.parameters),):
            raise ModelError(f"{self.name}: the start has shape {theta.shape}, expected "
                             f"({len(model.parameters)},)")
        return theta

    def readout_of(self, model: Model, options: Mapping, constants: Mapping) -> Readout:
        if self.readout is None:
            return parameter_readout(model)
        return self.readout(model, options, constants)


def spec_for_model(factory: Callable, name: str, source: str = "") -> ModelSpec:
    """A spec for a user's factory: options passed through, every default hook."""
    doc = (inspect.getdoc(factory) or "").strip().splitlines()
    return ModelSpec(name=name, build=factory, summary=doc[0] if doc else f"user model {name}",
                     free_options=True, source=source)


_USER = re.compile(r"^(?P<target>.+):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


def is_user_reference(text: str) -> bool:
    """True for ``PATH.py:FUNCTION`` or ``package.module:FUNCTION``."""
    return bool(_USER.match(text))


def load_user_spec(reference: str) -> ModelSpec:
    """The spec of ``PATH.py:FUNCTION`` or ``package.module:FUNCTION``.

    FUNCTION is either a ModelSpec (used as it is) or a callable that takes
    the model's options as keywords and returns a Model (then every hook
    takes its default) or a ModelSpec.
    """
    m = _USER.match(reference)
    if not m:
        raise SymiclError(f"{reference!r} is neither a built-in model nor PATH.py:FUNCTION "
                          "or package.module:FUNCTION")
    target, func = m.group("target"), m.group("func")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise SymiclError(f"no such model file: {target}")
        mod_name = "symicl_user_" + re.sub(r"\W", "_", path)
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - the user's file: report, not traceback
                raise SymiclError(f"cannot load {target}: {type(exc).__name__}: {exc}") from exc
            sys.modules[mod_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SymiclError(f"cannot import module {target}: {exc}") from None
    obj = getattr(module, func, None)
    if obj is None:
        raise SymiclError(f"{target} has no {func}")
    if isinstance(obj, ModelSpec):
        return replace(obj, source=reference)
    if not callable(obj):
        raise SymiclError(f"{target}:{func} is neither a function nor a ModelSpec")
    return spec_for_model(obj, name=func.replace("_", "-"), source=reference)


def parse_assignments(items: Sequence[str], what: str) -> dict[str, Any]:
    """``["N=8", "s_1=2"]`` -> {"N": 8, "s_1": 2}; values as Python literals, else strings."""
    out: dict[str, Any] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise SymiclError(f"{what} takes NAME=VALUE, got {item!r}")
        if name in out:
            raise SymiclError(f"{what} {name} given twice")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[name] = value
    return out


class MatrixPacking:
    """theta <-> named weight matrices, for parameters named ``PREFIX_i_j`` (1-based).

    ``shapes`` maps each prefix to its matrix shape; entries that are not
    parameters of the model stay zero.  ``unpack(theta (..., P))`` gives
    {prefix: (..., rows, cols)}, ``pack`` the inverse (model parameters only).
    """

    def __init__(self, model: Model, shapes: Mapping[str, tuple[int, int]]):
        self.shapes = dict(shapes)
        self.index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for prefix in self.shapes:
            ks, rows, cols = [], [], []
            for k, p in enumerate(model.parameters):
                head, _, rest = p.name.rpartition("_")
                head, _, i = head.rpartition("_")
                if head == prefix:
                    ks.append(k)
                    rows.append(int(i) - 1)
                    cols.append(int(rest) - 1)
            self.index[prefix] = (np.array(ks, dtype=int), np.array(rows, dtype=int),
                                  np.array(cols, dtype=int))
        covered = sum(len(v[0]) for v in self.index.values())
        if covered != len(model.parameters):
            raise ModelError(f"model {model.name}: {len(model.parameters) - covered} parameters "
                             f"are not entries of {', '.join(self.shapes)}")
        self.P = len(model.parameters)

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        out = {}
        for prefix, (k, r, c) in self.index.items():
            W = np.zeros(theta.shape[:-1] + self.shapes[prefix])
            W[..., r, c] = theta[..., k]
            out[prefix] = W
        return out

    def pack(self, mats: Mapping[str, np.ndarray]) -> np.ndarray:
        lead = next(iter(mats.values())).shape[:-2]
        theta = np.zeros(lead + (self.P,))
        for prefix, (k, r, c) in self.index.items():
            theta[..., k] = mats[prefix][..., r, c]
        return theta


class MatrixSimulator:
    """A hand-written simulator over weight matrices, behind the Simulator interface.

    ``minibatch(W, rng) -> (loss (S,), gradients)`` and ``examples(W, n, rng)
    -> (loss (n,), gradients)`` work on {prefix: matrices}; theta vectors are
    unpacked and the gradients packed by :class:`MatrixPacking`.
    """

    def __init__(self, model: Model, shapes: Mapping[str, tuple[int, int]], batch: int,
                 minibatch: Callable, examples: Callable):
        self.pack = MatrixPacking(model, shapes)
        self.parameters = tuple(p.name for p in model.parameters)
        self.batch = batch
        self._minibatch, self._examples = minibatch, examples

    def minibatch(self, theta: np.ndarray, rng: np.random.Generator):
        loss, grads = self._minibatch(self.pack.unpack(theta), rng)
        return loss, self.pack.pack(grads)

    def examples(self, theta: np.ndarray, n: int, rng: np.random.Generator):
        loss, grads = self._examples(self.pack.unpack(theta), n, rng)
        return loss, self.pack.pack(grads)
