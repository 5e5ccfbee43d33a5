"""Readable grouping of derived expressions by powers of 1/N."""

from __future__ import annotations

import sympy as sp

__all__ = ["by_inverse_powers"]


def by_inverse_powers(expr: sp.Expr, N: sp.Symbol | None) -> list[tuple[int, sp.Expr]]:
    """Split a polynomial in 1/N into [(k, c_k)] with expr = sum_k c_k / N^k."""
    expr = sp.expand(expr)
    if N is None or not expr.has(N):
        return [(0, expr)]
    t = sp.Dummy("t")
    poly = sp.Poly(expr.xreplace({N: 1 / t}), t)
    return [(k, c) for (k,), c in sorted(poly.terms()) if c != 0]
