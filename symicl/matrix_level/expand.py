"""Expand a SymPy matrix expression into a sum of words.

    expr = sum_r c_r  A_{r,1} A_{r,2} .. A_{r,k_r}

with scalar coefficients c_r and atoms A = a matrix symbol or its transpose.
Supported: MatrixSymbol, Transpose, MatAdd, MatMul (with scalar factors),
MatPow with a non-negative integer exponent, Identity, ZeroMatrix.  Anything
else (inverses, Hadamard products, elements, functions) is not a polynomial
in matrix symbols and raises :class:`~symicl.errors.NotPolynomialError`.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import (Identity, MatAdd, MatMul, MatPow, MatrixExpr,
                                        MatrixSymbol, Transpose, ZeroMatrix)

from ..errors import ModelError, NotPolynomialError
from .words import Sym

__all__ = ["expand_words"]


def _product(left: list, right: list) -> list:
    return [(c1 * c2, w1 + w2) for c1, w1 in left for c2, w2 in right]


def expand_words(expr, symmetric=frozenset()) -> list[tuple[sp.Expr, tuple]]:
    """[(coefficient, word)] with sum_r coefficient_r * word_r == expr.

    An empty word stands for an identity matrix.  ``symmetric`` holds the
    names of symbols known to be symmetric (their transposes are dropped).
    """
    if not isinstance(expr, MatrixExpr):
        raise ModelError(f"expected a SymPy matrix expression, got {expr!r}")
    return _expand(expr, False, frozenset(symmetric))


def _expand(expr, transposed: bool, symmetric) -> list:
    if isinstance(expr, MatrixSymbol):
        sym = expr.name in symmetric
        return [(sp.Integer(1), (Sym(expr, transposed and not sym, sym),))]
    if isinstance(expr, Identity):
        return [(sp.Integer(1), ())]
    if isinstance(expr, ZeroMatrix):
        return []
    if isinstance(expr, Transpose):
        return _expand(expr.arg, not transposed, symmetric)
    if isinstance(expr, MatAdd):
        return [t for arg in expr.args for t in _expand(arg, transposed, symmetric)]
    if isinstance(expr, MatMul):
        scalar = sp.Integer(1)
        factors = []
        for arg in expr.args:
            if isinstance(arg, MatrixExpr):
                factors.append(arg)
            else:
                arg = sp.sympify(arg)
                if arg.has(MatrixExpr) or arg.has(sp.MatrixSymbol):
                    raise NotPolynomialError(f"unsupported scalar factor {arg} in {expr}")
                scalar = scalar * arg
        if transposed:
            factors = factors[::-1]
        out = [(scalar, ())]
        for f in factors:
            out = _product(out, _expand(f, transposed, symmetric))
        return out
    if isinstance(expr, MatPow):
        k = expr.exp
        if not (k.is_Integer and k >= 0):
            raise NotPolynomialError(f"matrix power {expr} is not a non-negative integer power")
        out = [(sp.Integer(1), ())]
        for _ in range(int(k)):
            out = _product(out, _expand(expr.base, transposed, symmetric))
        return out
    raise NotPolynomialError(
        f"{type(expr).__name__} {expr} is not a polynomial in matrix symbols "
        "(supported: symbols, transposes, sums, products, integer powers, identities)")
