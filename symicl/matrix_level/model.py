"""Matrix-level models: a forward pass written with matrix symbols.

A :class:`MatrixModel` holds

* ``prediction`` and ``target``: SymPy matrix expressions of the same shape
  (column vectors, or 1x1 for a scalar output);
* ``parameters``: block name -> MatrixSymbol (a 1x1 symbol is a scalar);
* ``randoms``: the registered random symbols (:mod:`.randoms`);
* ``symmetric``: constant matrices known to be symmetric (covariances are);
* ``binder``: optional, maps sizes (e.g. d=2) to explicit SymPy matrices of
  the canonical entry symbols, to compare with the component-wise engine.

The loss is l = (1/2) (yhat - y)^T (yhat - y); symicl derives the expected
loss L = E[l] as a :class:`~.forms.ScalarForm`, its gradients dL/dP and the
flow dP/dt = -dL/dP as :class:`~.forms.MatrixForm` s, dimension-free.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable, Mapping, Sequence

import sympy as sp
from sympy.matrices.expressions import MatrixExpr, MatrixSymbol

from ..errors import ModelError
from .calculus import gradient
from .expect import expectation, registry, symmetric_names
from .forms import MatrixForm, ScalarForm, to_numpy_many
from .randoms import Random

__all__ = ["MatrixModel"]


class MatrixModel:
    """A model at the matrix level; see the module docstring."""

    def __init__(self, name: str, prediction, target, parameters: Mapping[str, MatrixSymbol],
                 randoms: Sequence[Random], symmetric: Sequence[MatrixSymbol] = (),
                 latex_names: Mapping[str, str] | None = None,
                 binder: Callable[..., dict] | None = None, options: Mapping | None = None):
        self.name = name
        self.options = dict(options or {})
        for what, e in (("prediction", prediction), ("target", target)):
            if not isinstance(e, MatrixExpr):
                raise ModelError(f"{what} of model {name} must be a SymPy matrix expression")
        if prediction.shape != target.shape:
            raise ModelError(f"prediction has shape {prediction.shape} but target has shape "
                             f"{target.shape}")
        if prediction.shape[1] != 1:
            raise ModelError(f"prediction must be a column (n x 1), got shape {prediction.shape}")
        if not parameters:
            raise ModelError(f"model {name} has no parameters")
        self.parameters = dict(parameters)
        self.randoms = registry(randoms)
        for block, p in self.parameters.items():
            if not isinstance(p, MatrixSymbol):
                raise ModelError(f"parameter block {block} must be a MatrixSymbol, got {p!r}")
            if p.name in self.randoms:
                raise ModelError(f"parameter {p.name} is also a random symbol")
        self.symmetric = symmetric_names(self.randoms, symmetric)
        clash = sorted(p.name for p in self.parameters.values() if p.name in self.symmetric)
        if clash:
            raise ModelError(f"parameters {', '.join(clash)} are declared symmetric")
        self.prediction, self.target = prediction, target
        residual = prediction - target
        self.loss = sp.Rational(1, 2) * residual.T * residual
        self.latex_names = dict(latex_names or {})
        self._binder = binder

    @cached_property
    def _expected(self) -> ScalarForm:
        return expectation(self.loss, self.randoms.values(), self.symmetric, self.latex_names)

    def expected_loss(self) -> ScalarForm:
        """L = E[(1/2) ||yhat - y||^2] as traces of words, exact in N."""
        return self._expected

    def gradient(self, block: str) -> MatrixForm:
        """dL/dP for the parameter block ``block``."""
        if block not in self.parameters:
            raise ModelError(f"model {self.name} has no parameter block {block!r}; "
                             f"blocks: {', '.join(self.parameters)}")
        return self._gradients[block]

    @cached_property
    def _gradients(self) -> dict[str, MatrixForm]:
        return {b: gradient(self._expected, p, self.symmetric) for b, p in self.parameters.items()}

    def gradients(self) -> dict[str, MatrixForm]:
        """Block name -> dL/dP, in block order."""
        return dict(self._gradients)

    def flow(self) -> dict[str, MatrixForm]:
        """Block name -> dP/dt = -dL/dP (unit learning rate)."""
        return {b: -g for b, g in self._gradients.items()}

    def flow_numpy(self, func_name: str = "flow"):
        """One NumPy function returning the tuple of every block's dP/dt (block order).

        Products the blocks share are computed once (``to_numpy_many``);
        arguments as in ``MatrixForm.to_numpy``, ``fn.outputs`` the block names.
        """
        return to_numpy_many(self.flow(), func_name)

    def bind(self, **sizes) -> dict[MatrixSymbol, sp.Matrix]:
        """Explicit SymPy matrices (canonical entry symbols) for the given sizes."""
        if self._binder is None:
            raise ModelError(f"model {self.name} has no explicit binding")
        return self._binder(**sizes)

    def __repr__(self) -> str:
        return f"MatrixModel({self.name!r}, blocks={list(self.parameters)})"
