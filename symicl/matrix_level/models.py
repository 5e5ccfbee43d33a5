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
  component-wise model uses.  With ``heads`` H the prediction is the sum over
  heads of these terms (blocks P22_h, Q11_h), and with ``kq="separate"``
  Q11_h = K_h^T Q_h with r x d blocks K_h, Q_h (r a dimension symbol): the
  null-zero slice of the component-wise attention variants at one layer.
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

_LATEX = {"P22": "P_{22}", "Q11": "Q_{11}", "K": "K", "Q": "Q", "S": "S", "Lambda": "\\Lambda",
          "Sigma_hat": "\\hat{\\Sigma}", "x_q": "x_q", "w": "w",
          "W1": "W_1", "W2": "W_2", "T": "T", "x": "x"}


def _size(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelError(f"{name} must be a positive integer, got {value!r}")
    return value


def _dim(name: str) -> sp.Symbol:
    return sp.Symbol(name, positive=True, integer=True)


def _heads_options(heads, kq, rank, layers) -> dict:
    """The attention-variant options, checked as the component-wise model checks them; {} for
    one merged head; one layer only."""
    from ..models.linear_transformer import _check_variant

    variant = _check_variant(heads, kq, rank, layers)
    if layers != 1:
        raise ModelError(f"the matrix-level linear transformer covers one layer, got layers = "
                         f"{layers}: with two or more layers every token is updated, the blocks "
                         f"inert at one layer act, and no null-zero form is known to be kept by "
                         f"the flow")
    return variant


def linear_transformer(reduction: str = "null-zero", tasks: str = "aligned", heads: int = 1,
                       kq: str = "merged", rank: int | None = None,
                       layers: int = 1) -> MatrixModel:
    """The null-zero linear transformer at the matrix level (tasks aligned or isotropic).

    One layer with H heads (``heads``), merged or separate (``kq``) key and query:

        yhat = sum_h P22_h Lambda Sigma_hat Q11_h x_q          (aligned)
        yhat = sum_h P22_h (w^T Sigma_hat Q11_h x_q)           (isotropic, P22_h 1x1)

    with Q11_h a d x d block (merged) or Q11_h = K_h^T Q_h, K_h and Q_h r x d
    (separate; r a dimension symbol, bound to ``rank``).  The null-zero slice of
    the component-wise variant: P21_h = 0 and Q21_h = 0 (merged) or the y-columns
    of W^K_h zero (separate), a slice the flow keeps (the task sign flip y -> -y
    fixes it); P11_h, P12_h and the blocks acting on the query's zero label
    (Q12_h, Q22_h, the y-columns of W^Q_h) never enter the loss and are dropped.
    With one merged head the blocks keep the names P22, Q11.
    """
    if reduction != "null-zero":
        raise ModelError(f"the matrix-level linear transformer supports reduction 'null-zero' "
                         f"only, got {reduction!r}")
    if tasks not in ("aligned", "isotropic"):
        raise ModelError(f"unknown task distribution {tasks!r}; choose aligned or isotropic")
    variant = _heads_options(heads, kq, rank, layers)
    d, r = _dim("d"), _dim("r")
    S = MatrixSymbol("S", d, d)
    Sigma_hat = MatrixSymbol("Sigma_hat", d, d)
    xq = MatrixSymbol("x_q", d, 1)
    randoms = [EmpiricalMoment(Sigma_hat, S), GaussianVector(xq, S)]
    out = d if tasks == "aligned" else 1
    if tasks == "aligned":
        Lam = MatrixSymbol("Lambda", d, d)
        randoms.append(DiagonalGaussian(Lam))
        label = Lam
        target = Lam * xq
    else:
        w = MatrixSymbol("w", d, 1)
        randoms.append(GaussianVector(w, Identity(d)))
        label = w.T
        target = w.T * xq
    one = heads == 1
    name = (lambda block, h: block if one else f"{block}_{h}")  # noqa: E731
    parameters, latex, terms = {}, dict(_LATEX), []
    for h in range(1, heads + 1):
        P22 = MatrixSymbol(name("P22", h), out, out)
        parameters[P22.name] = P22
        if kq == "merged":
            Q11 = MatrixSymbol(name("Q11", h), d, d)
            parameters[Q11.name] = Q11
            keyquery = Q11
        else:
            K, Q = MatrixSymbol(name("K", h), r, d), MatrixSymbol(name("Q", h), r, d)
            parameters[K.name], parameters[Q.name] = K, Q
            keyquery = K.T * Q
        if not one:
            latex.update({f"P22_{h}": f"P_{{22,{h}}}", f"Q11_{h}": f"Q_{{11,{h}}}",
                          f"K_{h}": f"K_{{{h}}}", f"Q_{h}": f"Q_{{{h}}}"})
        terms.append(P22 * label * Sigma_hat * keyquery * xq)
    prediction = terms[0] if one else sp.MatAdd(*terms)

    def bind(d: int, r: int | None = None) -> dict:
        n = _size("d", d)
        k = _size("r", r if r is not None else variant.get("rank", 1))
        D = n + (n if tasks == "aligned" else 1)
        comp = (lambda p, h: p if one else f"{p}_1_{h}")  # noqa: E731 - component-wise names
        values = {S: sp.diag(*symbols.spectrum(n))}
        for h in range(1, heads + 1):
            values[parameters[name("P22", h)]] = symbols.matrix(comp("WP", h), D - n, D - n, n, n)
            if kq == "merged":
                values[parameters[name("Q11", h)]] = symbols.matrix(comp("WQ", h), n, n)
            else:
                values[parameters[name("K", h)]] = symbols.matrix(comp("WK", h), k, n)
                values[parameters[name("Q", h)]] = symbols.matrix(comp("WQ", h), k, n)
        return values

    return MatrixModel("linear-transformer", prediction, target, parameters, randoms,
                       latex_names=latex, binder=bind,
                       options={"reduction": reduction, "tasks": tasks, **variant})


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
