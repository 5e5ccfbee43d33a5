"""Expectations of matrix expressions over registered random symbols.

    E[expr] = sum_terms coefficient * E[network]  ->  traces of words (ScalarForm)

``expr`` is expanded into words (:mod:`.expand`), each word becomes an index
network (:mod:`.network`), the network is averaged over its random tensors
(:mod:`.wick`) and converted back to traces (:mod:`.convert`); the results
are canonicalised and merged (:mod:`.forms`).  A matrix-valued expectation
E[M] is read off E[tr(X^T M)] by differentiating in the marker X.
"""

from __future__ import annotations

from typing import Iterable

import sympy as sp
from sympy.matrices.expressions import MatrixExpr, MatrixSymbol, Trace

from ..errors import DistributionError, ModelError
from .calculus import gradient
from .convert import to_traces
from .expand import expand_words
from .forms import MatrixForm, ScalarForm
from .network import network_of_chain, network_of_traces
from .randoms import Random
from .wick import expect_network
from .words import render_word

__all__ = ["registry", "symmetric_names", "expectation", "expected_matrix"]


def registry(randoms: Iterable[Random]) -> dict[str, Random]:
    """name -> random symbol, checking that names are distinct."""
    out: dict[str, Random] = {}
    for r in randoms:
        if not isinstance(r, Random):
            raise DistributionError(f"{r!r} is not a registered random symbol (GaussianVector, "
                                    "EmpiricalMoment, DiagonalGaussian, GaussianMatrix)")
        if r.name in out:
            raise DistributionError(f"random symbol {r.name} is registered twice")
        out[r.name] = r
    for r in out.values():
        for c in r.covariances():
            if c.name in out:
                raise DistributionError(f"covariance {c.name} of {r.name} is itself random")
    return out


def symmetric_names(randoms: dict, symmetric: Iterable = ()) -> frozenset:
    """Names of symmetric constant matrices: declared ones and every covariance."""
    names = {s.name if isinstance(s, MatrixSymbol) else str(s) for s in symmetric}
    for r in randoms.values():
        names |= {c.name for c in r.covariances()}
    return frozenset(names)


def _check_symmetric_shapes(expr, sym: frozenset) -> None:
    for s in expr.atoms(MatrixSymbol):
        if s.name in sym and sp.simplify(s.shape[0] - s.shape[1]) != 0:
            raise ModelError(f"{s.name} is declared symmetric but is {s.shape[0]}x{s.shape[1]}")


def expectation(expr, randoms: Iterable[Random] = (), symmetric: Iterable = (),
                latex_names=None) -> ScalarForm:
    """E[expr] for a 1x1 matrix expression or a Trace(...) of a square one.

    ``randoms`` registers the random symbols (independent of each other);
    ``symmetric`` declares constant symmetric matrices (covariances are).
    """
    reg = registry(randoms)
    sym = symmetric_names(reg, symmetric)
    if isinstance(expr, Trace):
        closed, body = True, expr.arg
    elif isinstance(expr, MatrixExpr):
        if expr.shape != (1, 1):
            raise ModelError(f"expectation needs a scalar (1x1) expression or a Trace, "
                             f"got shape {expr.shape}; use expected_matrix for matrices")
        closed, body = False, expr
    else:
        raise ModelError(f"expected a SymPy matrix expression, got {expr!r}")
    _check_symmetric_shapes(body, sym)
    items = []
    for coeff, word in expand_words(body, sym):
        if closed and not word:
            items.append((coeff * body.shape[0], [], []))
            continue
        net = network_of_traces((word,)) if closed else network_of_chain(word)
        what = "term " + (f"tr({render_word(word)})" if closed else render_word(word))
        for weight, avg in expect_network(net, reg):
            factor, scalars, traces = to_traces(avg, sym, what)
            items.append((coeff * weight * factor, scalars, traces))
    return ScalarForm.from_raw(items, latex_names)


def expected_matrix(expr, randoms: Iterable[Random] = (), symmetric: Iterable = (),
                    latex_names=None) -> MatrixForm:
    """E[M] for a matrix expression M, read off E[tr(X^T M)] as its X-gradient."""
    if not isinstance(expr, MatrixExpr):
        raise ModelError(f"expected a SymPy matrix expression, got {expr!r}")
    rows, cols = expr.shape
    marker = MatrixSymbol("_E_", rows, cols)
    reg = registry(randoms)
    sym = symmetric_names(reg, symmetric)
    scalar = expectation(Trace(marker.T * expr), reg.values(), sym, latex_names)
    return gradient(scalar, marker, sym)
