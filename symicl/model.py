"""The model-definition API: parameters, forward pass, data law, loss.

A model is

* named parameter blocks (SymPy matrices of parameter symbols; a reduction
  may put zeros or repeat a symbol);
* a prediction and a target, written as SymPy expressions of the random
  symbols of a :class:`~symicl.expectation.Distribution` and of the
  parameters (or, for a model given by its loss alone, just a loss);
* the loss, by default the squared error  l = (1/2) ||yhat - y||^2.

From it symicl derives the exact expected loss  L(theta) = E[l]  and the
expected-gradient flow  d theta / dt = -grad L(theta)  (unit learning rate).
"""

from __future__ import annotations

import re
import warnings
from functools import cached_property
from typing import Iterable, Mapping

import sympy as sp
from sympy.polys.rings import PolyElement

from .errors import ModelError, ModelWarning
from .symbols import natural_key
from .expectation import Distribution, Expectation

__all__ = ["Model"]


def _as_column(value, what: str) -> sp.Matrix:
    if isinstance(value, sp.MatrixBase):
        return sp.Matrix(value)
    if isinstance(value, (list, tuple)):
        return sp.Matrix(value)
    try:
        return sp.Matrix([sp.sympify(value)])
    except (sp.SympifyError, TypeError) as exc:
        raise ModelError(f"{what} must be a SymPy expression or matrix, got {value!r}") from exc


def _matrix_name(symbol: sp.Symbol) -> str:
    """The name without trailing indices: ``WP`` for ``WP_3_1``, ``p`` for ``p_2``."""
    return re.sub(r"(_\d+)+$", "", symbol.name)


def _constant_value(symbol: sp.Symbol, value) -> sp.Expr:
    """``value`` for the constant ``symbol``, exact, checked against its assumptions."""
    if isinstance(value, bool):
        raise ModelError(f"{symbol} = {value!r}: not a number")
    try:
        v = sp.nsimplify(value, rational=True) if isinstance(value, float) else sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError):
        raise ModelError(f"{symbol} = {value!r}: not a number or a SymPy expression") from None
    if not isinstance(v, sp.Expr) or v.has(sp.nan, sp.oo, -sp.oo, sp.zoo):
        raise ModelError(f"{symbol} = {value!r}: not a finite value")
    for prop, words in (("integer", "an integer"), ("positive", "positive"),
                        ("nonnegative", ">= 0"), ("real", "real")):
        if getattr(symbol, f"is_{prop}") and getattr(v, f"is_{prop}") is False:
            raise ModelError(f"{symbol} = {value!r}: {symbol} must be {words}")
    return v


class Model:
    """A learning model whose expected loss and flow symicl derives.

    Parameters
    ----------
    name : model name (used in derivations and reports).
    blocks : mapping block name -> SymPy matrix of parameter symbols.
    distribution : the data law; omitted for a model given by its loss alone.
    prediction, target : model output and label (same shape); the loss is
        (1/2) ||prediction - target||^2 unless ``loss`` is given instead.
    loss : a per-example loss expression, instead of prediction/target.
    options : the options the model was built with (recorded in exports).
    constants : symbols (or their names) of the prediction that are constants of
        the model, neither parameters nor random variables (e.g. a fixed scale
        ``c`` in ``prediction = c * w * x``).  Symbols of the distribution (its
        covariances, a context length N) need no declaring.

    Notes
    -----
    Warnings (:class:`~symicl.errors.ModelWarning`), each naming the symbols:
    a parameter that never enters the loss (its flow is 0), unless another
    entry of the same matrix (``W_1_1`` and ``W_2_1``: same name before the
    indices) does, as in a full architecture whose some entries act on
    nothing; a symbol of the prediction that is neither a parameter, a random
    variable, a symbol of the distribution nor a declared constant.
    """

    def __init__(self, name: str, blocks: Mapping[str, sp.MatrixBase],
                 distribution: Distribution | None = None, *, prediction=None, target=None,
                 loss=None, options: Mapping | None = None,
                 constants: Iterable[sp.Symbol | str] | None = None):
        self.name = name
        self.options = dict(options or {})
        self.distribution = distribution if distribution is not None else Distribution()
        self.blocks = {k: self._check_block(k, v) for k, v in blocks.items()}
        if not self.blocks:
            raise ModelError(f"model {name} has no parameter blocks")
        self.parameters: list[sp.Symbol] = list(dict.fromkeys(
            s for b in self.blocks.values() for s in b if isinstance(s, sp.Symbol)))
        if not self.parameters:
            raise ModelError(f"model {name} has no parameters")
        randoms = set(self.distribution.random_symbols()) | self.distribution.sample_symbols()
        clash = sorted(s.name for s in set(self.parameters) & randoms)
        if clash:
            raise ModelError(f"parameters {', '.join(clash)} are also random variables")
        self.loss = self._build_loss(prediction, target, loss)
        self.prediction = prediction
        self.declared_constants = self._declare(constants or (), prediction, target, randoms)
        self._warn_unused()
        self._warn_undeclared(prediction, randoms)

    # -- validation ---------------------------------------------------------
    @staticmethod
    def _check_block(name: str, block) -> sp.Matrix:
        if not isinstance(block, sp.MatrixBase):
            raise ModelError(f"parameter block {name} must be a SymPy matrix")
        for e in block:
            if not (isinstance(e, sp.Symbol) or e.is_number):
                raise ModelError(f"parameter block {name} holds {e}, not a symbol or a number")
        return sp.Matrix(block)

    def _build_loss(self, prediction, target, loss) -> sp.Expr:
        if loss is not None:
            if prediction is not None or target is not None:
                raise ModelError("give either a loss or a prediction and target, not both")
            return sp.sympify(loss)
        if prediction is None or target is None:
            raise ModelError("a model needs a prediction and a target (or a loss)")
        yhat = _as_column(prediction, "prediction")
        y = _as_column(target, "target")
        if yhat.shape != y.shape:
            raise ModelError(f"prediction has shape {yhat.shape} but target has shape {y.shape}")
        r = yhat - y
        return sp.Rational(1, 2) * sum((e ** 2 for e in r), sp.Integer(0))

    def _declare(self, constants, prediction, target, randoms) -> list[sp.Symbol]:
        """The declared constants as symbols (names are looked up in the model)."""
        pool = self.loss.free_symbols
        for e in (prediction, target):
            if e is not None:
                pool = pool | _as_column(e, "prediction").free_symbols
        by_name = {s.name: s for s in pool}
        out = []
        for c in constants:
            if isinstance(c, str):
                if c not in by_name:
                    raise ModelError(f"model {self.name}: declared constant {c} does not appear "
                                     f"in the model")
                c = by_name[c]
            if not isinstance(c, sp.Symbol):
                raise ModelError(f"model {self.name}: a declared constant must be a SymPy "
                                 f"Symbol or its name, got {c!r}")
            if c in self.parameters or c in randoms:
                kind = "a parameter" if c in self.parameters else "a random variable"
                raise ModelError(f"model {self.name}: {c} is {kind}, not a constant")
            out.append(c)
        return list(dict.fromkeys(out))

    def _warn_unused(self) -> None:
        used = self.loss.free_symbols
        used_matrices = {_matrix_name(p) for p in self.parameters if p in used}
        unused = [p.name for p in self.parameters
                  if p not in used and _matrix_name(p) not in used_matrices]
        if unused:
            warnings.warn(f"model {self.name}: parameter{'s' * (len(unused) > 1)} "
                          f"{', '.join(unused)} never appear{'s' * (len(unused) == 1)} in the "
                          f"loss (flow 0)", ModelWarning, stacklevel=3)

    def _warn_undeclared(self, prediction, randoms) -> None:
        if prediction is None:
            return
        known = (set(self.parameters) | randoms | self.distribution.constant_symbols()
                 | set(self.declared_constants))
        free = _as_column(prediction, "prediction").free_symbols - known
        if free:
            names = ", ".join(sorted(s.name for s in free))
            warnings.warn(f"model {self.name}: the prediction uses {names}, neither a parameter, "
                          f"a random variable nor a symbol of the distribution; if constant, "
                          f"declare it: Model(..., constants=[{names}])", ModelWarning,
                          stacklevel=3)

    # -- symbols ---------------------------------------------------------------
    @cached_property
    def constants(self) -> list[sp.Symbol]:
        """Non-random, non-parameter symbols of the expected loss, sorted: N first."""
        randoms = set(self.distribution.random_symbols()) | self.distribution.sample_symbols()
        found = (self.loss.free_symbols | self.distribution.constant_symbols()) - randoms
        found |= set(self.declared_constants) & self.loss.free_symbols
        found -= set(self.parameters)
        n_syms = [c.N for c in self.distribution.contexts if not c.N.is_number]
        rest = sorted(found - set(n_syms), key=natural_key)
        return list(dict.fromkeys(n_syms)) + rest

    # -- derivation -----------------------------------------------------------
    @cached_property
    def _engine(self) -> Expectation:
        n_syms = {c.N for c in self.distribution.contexts}
        coeffs = [s for s in self.constants if s not in n_syms]
        return Expectation(self.distribution, self.parameters + coeffs,
                           inverted=self._denominator_constants(n_syms))

    def _denominator_constants(self, skip) -> list[sp.Symbol]:
        """Constants that appear in a denominator of the loss (e.g. N in a given loss)."""
        bases = {b.base for b in self.loss.atoms(sp.Pow) if b.exp.is_negative}
        found = {s for b in bases for s in b.free_symbols} & set(self.constants)
        return sorted(found - set(skip), key=natural_key)

    @cached_property
    def _expected(self) -> PolyElement:
        engine = self._engine
        return engine.expect_polynomial(engine.polynomial(self.loss, f"loss of model {self.name}"))

    @cached_property
    def _loss_expr(self) -> sp.Expr:
        return self._engine.to_expr(self._expected)

    def expected_loss(self) -> sp.Expr:
        """L(theta) = E[l(theta; data)], exact, as a polynomial in theta (computed once)."""
        return self._loss_expr

    @cached_property
    def _gradient(self) -> dict[sp.Symbol, PolyElement]:
        ring = self._engine.coefficients
        return {p: self._expected.diff(ring.ring.gens[ring.index[p]]) for p in self.parameters}

    @cached_property
    def _gradient_exprs(self) -> dict[sp.Symbol, sp.Expr]:
        return {p: self._engine.to_expr(g) for p, g in self._gradient.items()}

    @cached_property
    def _flow_exprs(self) -> dict[sp.Symbol, sp.Expr]:
        return {p: self._engine.to_expr(-g) for p, g in self._gradient.items()}

    def gradient(self) -> dict[sp.Symbol, sp.Expr]:
        """dL/dtheta for every parameter, in parameter order (computed once; a new dict)."""
        return dict(self._gradient_exprs)

    def flow(self) -> dict[sp.Symbol, sp.Expr]:
        """The expected-gradient flow d theta/dt = -dL/dtheta (unit learning rate; computed
        once; a new dict)."""
        return dict(self._flow_exprs)

    def subs_constants(self, **values) -> dict:
        """The expected loss and flow with constants given by name, e.g.
        ``m.subs_constants(N=8, s_1=2)``.

        Returns ``{"loss": L, "flow": {parameter symbol: dtheta/dt}}`` with each
        named constant replaced by its value (floats become exact rationals);
        constants not named stay symbolic.  A name that is not a constant of
        the model, or a value its symbol's assumptions exclude (``N=0``,
        ``N=2.5``, ``s_1=-1``), is a :class:`~symicl.errors.ModelError` naming it.
        """
        by_name = {c.name: c for c in self.constants}
        replace = {}
        for name, value in values.items():
            if name not in by_name:
                if any(p.name == name for p in self.parameters):
                    raise ModelError(f"{name} is a parameter of model {self.name}, not a "
                                     f"constant; constants: {', '.join(by_name) or '(none)'}")
                raise ModelError(f"model {self.name} has no constant {name}; constants: "
                                 f"{', '.join(by_name) or '(none)'}")
            replace[by_name[name]] = _constant_value(by_name[name], value)
        return {"loss": self.expected_loss().xreplace(replace),
                "flow": {p: e.xreplace(replace) for p, e in self._flow_exprs.items()}}

    def jacobian(self) -> sp.Matrix:
        """J_ij = dF_i/dtheta_j of the flow F = -grad L (minus the Hessian of L)."""
        ring = self._engine.coefficients
        gens = [ring.ring.gens[ring.index[p]] for p in self.parameters]
        grads = [self._gradient[p] for p in self.parameters]
        return sp.Matrix(len(gens), len(gens),
                         lambda i, j: self._engine.to_expr(-grads[i].diff(gens[j])))

    def parameter(self, name: str) -> sp.Symbol:
        """The parameter symbol called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise ModelError(f"model {self.name} has no parameter {name}")

    def symbol(self, name: str) -> sp.Symbol:
        """The parameter or constant symbol called ``name``."""
        for s in self.parameters + self.constants:
            if s.name == name:
                return s
        raise ModelError(f"model {self.name} has no symbol {name}")

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {len(self.parameters)} parameters, options={self.options})"
