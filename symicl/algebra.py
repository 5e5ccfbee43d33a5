"""Exact polynomial algebra: SymPy expressions to sparse polynomials and back.

The engines work in a sparse polynomial ring over the rationals
(``sympy.polys.rings``): products of degree-10 polynomials in dozens of
variables are dictionary operations there, orders of magnitude faster than
``sympy.expand`` on expression trees.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import sympy as sp
from sympy.polys.rings import PolyElement, PolyRing

from .errors import NotPolynomialError

__all__ = ["find_nonpolynomial", "exact", "Ring"]


def exact(expr) -> sp.Expr:
    """``expr`` with every float replaced by the exact rational it prints as."""
    expr = sp.sympify(expr)
    if expr.has(sp.Float):
        expr = expr.xreplace({f: sp.Rational(str(f)) for f in expr.atoms(sp.Float)})
    return expr


def find_nonpolynomial(expr: sp.Expr, gens: Iterable[sp.Symbol]) -> sp.Expr | None:
    """The first subexpression that keeps ``expr`` from being a polynomial in ``gens``.

    Returns ``None`` when ``expr`` is a polynomial in ``gens`` (with
    coefficients free of them).
    """
    gens = set(gens)

    def walk(e):
        if not (e.free_symbols & gens):
            return None
        if e.is_Symbol:
            return None
        if e.is_Add or e.is_Mul:
            for a in e.args:
                bad = walk(a)
                if bad is not None:
                    return bad
            return None
        if e.is_Pow:
            if e.exp.is_Integer and e.exp >= 0:
                return walk(e.base)
            return e
        return e

    return walk(sp.sympify(expr))


class Ring:
    """A sparse polynomial ring QQ[gens] with checked conversions."""

    def __init__(self, gens: Sequence[sp.Symbol]):
        gens = list(gens)
        if len(set(gens)) != len(gens):
            raise ValueError("ring generators must be distinct")
        self.gens = gens
        self.ring = PolyRing(gens, sp.QQ) if gens else PolyRing([sp.Dummy("unit")], sp.QQ)
        self.index = {g: i for i, g in enumerate(gens)}

    @property
    def zero(self) -> PolyElement:
        return self.ring.zero

    @property
    def one(self) -> PolyElement:
        return self.ring.one

    def __call__(self, expr, what: str = "expression") -> PolyElement:
        """Convert a SymPy expression that is polynomial in the generators."""
        expr = exact(expr)
        stray = expr.free_symbols - set(self.gens)
        if stray:
            names = ", ".join(sorted(s.name for s in stray))
            raise NotPolynomialError(f"{what} contains symbols outside the model: {names}")
        bad = find_nonpolynomial(expr, self.gens)
        if bad is not None:
            raise NotPolynomialError(f"{what} is not polynomial: offending term {bad}")
        return self.ring.from_expr(expr) if self.gens else self.ring(expr)

    def from_dict(self, terms: dict) -> PolyElement:
        """The polynomial sum_m terms[m] x^m (exponent tuples over the generators)."""
        if not self.gens:
            return self.ring(sum(terms.values(), sp.QQ(0)))
        return self.ring.from_dict(terms)

    def to_expr(self, poly: PolyElement) -> sp.Expr:
        if not self.gens:
            return sp.Rational(poly.LC) if poly else sp.Integer(0)
        return poly.as_expr()
