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

from functools import cached_property
from typing import Mapping

import sympy as sp
from sympy.polys.rings import PolyElement

from .errors import ModelError
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
    """

    def __init__(self, name: str, blocks: Mapping[str, sp.MatrixBase],
                 distribution: Distribution | None = None, *, prediction=None, target=None,
                 loss=None, options: Mapping | None = None):
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

    # -- symbols ---------------------------------------------------------------
    @cached_property
    def constants(self) -> list[sp.Symbol]:
        """Non-random, non-parameter symbols of the expected loss, sorted: N first."""
        randoms = set(self.distribution.random_symbols()) | self.distribution.sample_symbols()
        found = (self.loss.free_symbols | self.distribution.constant_symbols()) - randoms
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

    def expected_loss(self) -> sp.Expr:
        """L(theta) = E[l(theta; data)], exact, as a polynomial in theta."""
        return self._engine.to_expr(self._expected)

    @cached_property
    def _gradient(self) -> dict[sp.Symbol, PolyElement]:
        ring = self._engine.coefficients
        return {p: self._expected.diff(ring.ring.gens[ring.index[p]]) for p in self.parameters}

    def gradient(self) -> dict[sp.Symbol, sp.Expr]:
        """dL/dtheta for every parameter, in parameter order."""
        return {p: self._engine.to_expr(g) for p, g in self._gradient.items()}

    def flow(self) -> dict[sp.Symbol, sp.Expr]:
        """The expected-gradient flow d theta/dt = -dL/dtheta (unit learning rate)."""
        return {p: self._engine.to_expr(-g) for p, g in self._gradient.items()}

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
