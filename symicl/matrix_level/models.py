"""The built-in matrix-level models (forward passes in matrix symbols).

* ``linear-transformer``, reduction ``null-zero`` (P21 = Q21 = 0, inert
  blocks dropped), with

  - tasks ``aligned``: yhat = P22 Lambda Sigma_hat Q11 x_q, target Lambda x_q,
    Lambda = diag(lambda), lambda_a iid N(0,1);
  - tasks ``isotropic``: yhat = P22 (w^T Sigma_hat Q11 x_q) with P22 a 1x1
    block, target w^T x_q, w ~ N(0, I_d);

  where x_q ~ N(0, S) and Sigma_hat = (1/N) sum_{n<=N} u_n u_n^T over the
  context tokens u_n ~ N(0, S) (the query is not in Sigma_hat: it reaches
  this predictor only through the y-rows, which are zero for the query).
  S is the input covariance, S = diag(s_1..s_d) in the eigenbasis the
  component-wise model uses.
* ``deep-linear``: yhat = W2 W1 x, target T x, x ~ N(0, I).

Each model can bind its matrix symbols to explicit matrices of the canonical
entry symbols of :mod:`symicl.symbols`, for checks against the
component-wise engine (``model.bind(d=2)``).
"""

from __future__ import annotations

import inspect

import sympy as sp
from sympy.matrices.expressions import Identity, MatrixSymbol

from .. import symbols
from ..errors import ModelError
from .model import MatrixModel
from .randoms import DiagonalGaussian, EmpiricalMoment, GaussianVector

__all__ = ["build", "linear_transformer", "deep_linear"]

_LATEX = {"P22": "P_{22}", "Q11": "Q_{11}", "S": "S", "Lambda": "\\Lambda",
          "Sigma_hat": "\\hat{\\Sigma}", "x_q": "x_q", "w": "w",
          "W1": "W_1", "W2": "W_2", "T": "T", "x": "x"}


def _size(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelError(f"{name} must be a positive integer, got {value!r}")
    return value


def _dim(name: str) -> sp.Symbol:
    return sp.Symbol(name, positive=True, integer=True)


def linear_transformer(reduction: str = "null-zero", tasks: str = "aligned") -> MatrixModel:
    """The null-zero linear transformer at the matrix level (tasks aligned or isotropic)."""
    if reduction != "null-zero":
        raise ModelError(f"the matrix-level linear transformer supports reduction 'null-zero' "
                         f"only, got {reduction!r}")
    if tasks not in ("aligned", "isotropic"):
        raise ModelError(f"unknown task distribution {tasks!r}; choose aligned or isotropic")
    d = _dim("d")
    S = MatrixSymbol("S", d, d)
    Sigma_hat = MatrixSymbol("Sigma_hat", d, d)
    xq = MatrixSymbol("x_q", d, 1)
    Q11 = MatrixSymbol("Q11", d, d)
    randoms = [EmpiricalMoment(Sigma_hat, S), GaussianVector(xq, S)]
    if tasks == "aligned":
        P22 = MatrixSymbol("P22", d, d)
        Lam = MatrixSymbol("Lambda", d, d)
        randoms.append(DiagonalGaussian(Lam))
        prediction = P22 * Lam * Sigma_hat * Q11 * xq
        target = Lam * xq
    else:
        P22 = MatrixSymbol("P22", 1, 1)
        w = MatrixSymbol("w", d, 1)
        randoms.append(GaussianVector(w, Identity(d)))
        prediction = P22 * w.T * Sigma_hat * Q11 * xq
        target = w.T * xq

    def bind(d: int) -> dict:
        n = _size("d", d)
        p22 = (symbols.matrix("WP", n, n, n, n) if tasks == "aligned"
               else sp.Matrix([[symbols.entry("WP", n + 1, n + 1)]]))
        return {P22: p22, Q11: symbols.matrix("WQ", n, n), S: sp.diag(*symbols.spectrum(n))}

    return MatrixModel("linear-transformer", prediction, target, {"P22": P22, "Q11": Q11},
                       randoms, latex_names=_LATEX, binder=bind,
                       options={"reduction": reduction, "tasks": tasks})


def deep_linear() -> MatrixModel:
    """The two-layer linear network f(x) = W2 W1 x with teacher T and whitened inputs."""
    n_in, n_hidden, n_out = _dim("n_in"), _dim("n_hidden"), _dim("n_out")
    x = MatrixSymbol("x", n_in, 1)
    W1 = MatrixSymbol("W1", n_hidden, n_in)
    W2 = MatrixSymbol("W2", n_out, n_hidden)
    T = MatrixSymbol("T", n_out, n_in)

    def bind(n_in: int, n_hidden: int, n_out: int) -> dict:
        i, h, o = _size("n_in", n_in), _size("n_hidden", n_hidden), _size("n_out", n_out)
        return {W1: symbols.matrix("W1", h, i), W2: symbols.matrix("W2", o, h),
                T: symbols.matrix("T", o, i)}

    return MatrixModel("deep-linear", W2 * W1 * x, T * x, {"W1": W1, "W2": W2},
                       [GaussianVector(x, Identity(n_in))], latex_names=_LATEX, binder=bind)


def build(name: str, **options) -> MatrixModel:
    """The matrix-level twin of the model ``name``, as its specification names it."""
    from ..models import SPECS

    spec = SPECS.get(name)
    factory = spec.matrix_level if spec is not None else None
    if factory is None:
        twins = [n for n, s in SPECS.items() if s.matrix_level is not None]
        raise ModelError(f"unknown matrix-level model {name!r}; built-in: {', '.join(twins)}")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelError(f"matrix-level model {name} has no option {', '.join(unknown)}; "
                         f"options: {', '.join(accepted) or 'none'}")
    return factory(**options)
