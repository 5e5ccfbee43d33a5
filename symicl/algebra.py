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

__all__ = ["find_nonpolynomial", "exact", "Ring", "FlintRing", "default_backend", "expr_from_terms"]


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
        self.check(expr, what)
        return self.ring.from_expr(expr) if self.gens else self.ring(expr)

    def check(self, expr: sp.Expr, what: str = "expression") -> None:
        """Raise NotPolynomialError unless ``expr`` (exact) is polynomial in the generators."""
        stray = expr.free_symbols - set(self.gens)
        if stray:
            names = ", ".join(sorted(s.name for s in stray))
            raise NotPolynomialError(f"{what} contains symbols outside the model: {names}")
        bad = find_nonpolynomial(expr, self.gens)
        if bad is not None:
            raise NotPolynomialError(f"{what} is not polynomial: offending term {bad}")

    def from_dict(self, terms: dict) -> PolyElement:
        """The polynomial sum_m terms[m] x^m (exponent tuples over the generators)."""
        if not self.gens:
            return self.ring(sum(terms.values(), sp.QQ(0)))
        return self.ring.from_dict(terms)

    def to_expr(self, poly: PolyElement) -> sp.Expr:
        if not self.gens:
            return sp.Rational(poly.LC) if poly else sp.Integer(0)
        return poly.as_expr()


# -- the polynomial backend ------------------------------------------------------
#
# The expectation engine multiplies and splits polynomials with hundreds of
# thousands of terms in ~150 variables (the full transformer at d = 4).
# python-flint's fmpq_mpoly does that in C; SymPy's rings (pure Python) stay
# available as the reference path: SYMICL_POLY_BACKEND=sympy, or
# ``Expectation(..., backend="sympy")``.

BACKENDS = ("flint", "sympy")


def _flint():
    try:
        import flint
    except ImportError:  # pragma: no cover - python-flint is a dependency
        return None
    return flint if hasattr(flint, "fmpq_mpoly_ctx") else None


def default_backend() -> str:
    """The polynomial backend of the engine: SYMICL_POLY_BACKEND, else flint when installed."""
    import os

    name = os.environ.get("SYMICL_POLY_BACKEND", "").strip().lower()
    if name:
        if name not in BACKENDS:
            raise ValueError(f"SYMICL_POLY_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
        if name == "flint" and _flint() is None:
            raise ValueError("SYMICL_POLY_BACKEND=flint but python-flint is not installed")
        return name
    return "flint" if _flint() is not None else "sympy"


class _Unsupported(Exception):
    """An expression node the fast converter leaves to SymPy's ring."""


class FlintRing:
    """QQ[gens] in python-flint (fmpq_mpoly), with conversions from SymPy.

    Generators are named g0, g1, ... inside flint (the SymPy symbols may have
    names flint cannot take); ``gens[i]`` is the SymPy symbol of variable i.
    """

    def __init__(self, gens: Sequence[sp.Symbol]):
        flint = _flint()
        if flint is None:
            raise ValueError("python-flint is not installed")
        self.flint = flint
        self.gens = list(gens)
        n = max(1, len(self.gens))
        self.ctx = flint.fmpq_mpoly_ctx.get([f"g{i}" for i in range(n)], "lex")
        self.vars = self.ctx.gens()
        self.zero = self.ctx.constant(0)
        self.one = self.ctx.constant(1)
        self.index = {g: i for i, g in enumerate(self.gens)}

    def number(self, value):
        """An exact rational (SymPy, int, fmpq, PythonMPQ) as a constant polynomial."""
        if isinstance(value, sp.Rational):
            return self.ctx.constant(self.flint.fmpq(int(value.p), int(value.q)))
        if isinstance(value, int):
            return self.ctx.constant(value)
        num, den = getattr(value, "numerator", None), getattr(value, "denominator", None)
        if num is not None:
            return self.ctx.constant(self.flint.fmpq(int(num), int(den)))
        return self.ctx.constant(self.flint.fmpq(int(value.p), int(value.q)))

    def from_expr(self, expr: sp.Expr):
        """A SymPy expression already checked to be polynomial in the generators.

        Walks the expression tree once (shared subexpressions converted once);
        anything beyond sums, products, integer powers, rationals and generators raises
        :class:`_Unsupported` (the caller then goes through SymPy's ring).
        """
        memo: dict = {}
        gen_of = {g: self.vars[i] for i, g in enumerate(self.gens)}
        ctx = self.ctx

        def walk(e):
            hit = memo.get(e)
            if hit is not None:
                return hit
            g = gen_of.get(e)
            if g is not None:
                return g
            if e.is_Add:
                out = ctx.constant(0)
                for a in e.args:
                    out = out + walk(a)
            elif e.is_Mul:
                out = ctx.constant(1)
                for a in e.args:
                    out = out * walk(a)
            elif e.is_Pow and e.exp.is_Integer and e.exp >= 0:
                out = walk(e.base) ** int(e.exp)
            elif e.is_Rational:
                out = self.number(e)
            else:
                raise _Unsupported(e)
            memo[e] = out
            return out

        return walk(expr)

    def from_sympy_poly(self, poly) -> object:
        """A SymPy ring element over the same generators, in flint."""
        return self.ctx.from_dict({m: self._q(c) for m, c in poly.items()}) if poly else self.zero

    def _q(self, c):
        if isinstance(c, self.flint.fmpq):
            return c
        return self.flint.fmpq(int(c.numerator), int(c.denominator))

    def to_sympy_poly(self, poly, ring: "Ring", offset: int = 0):
        """``poly`` (free of the first ``offset`` generators) in the SymPy ring ``ring``."""
        if not ring.gens:
            value = sum((sp.QQ(int(c.p), int(c.q)) for c in poly.coeffs()), sp.QQ(0))
            return ring.ring(value)
        dom = ring.ring.domain
        out = {}
        stop = offset + len(ring.gens)
        for m, c in poly.to_dict().items():
            # exponents come back as flint fmpz: SymPy's rings need Python ints
            m = tuple(map(int, m))
            if any(m[:offset]):
                raise AssertionError("polynomial still holds eliminated generators")
            out[m[offset:stop]] = dom(int(c.p), int(c.q))
        return ring.ring.from_dict(out)


def expr_from_terms(terms, symbols: Sequence[sp.Expr], negative: dict[int, sp.Symbol] | None = None):
    """sum_m c_m prod_i symbols[i]^m_i as the canonical SymPy expression, built fast.

    ``terms`` maps exponent tuples to rational coefficients.  Generator ``i``
    in ``negative`` stands for 1/negative[i] (its powers become negative
    powers of that symbol).  The result is the same tree (same args, same
    order) that ``Add(*[Mul(c, *[Pow(x, e) ...])])`` builds, without
    re-flattening: factors and terms are sorted with SymPy's own argument
    order (``Basic.compare``) and assembled with ``_from_args``.  The caller
    guarantees that no two factors of a term combine (distinct symbols,
    none a number).
    """
    from functools import cmp_to_key

    from sympy.core.add import _addsort

    negative = negative or {}
    pow_cache: dict[tuple[int, int], sp.Expr] = {}
    factor_terms = []
    constant = sp.S.Zero
    for monom, coeff in terms.items():
        c = coeff if isinstance(coeff, sp.Rational) else sp.Rational(int(coeff.numerator),
                                                                     int(coeff.denominator))
        if c == 0:
            continue
        fs = []
        for i, e in enumerate(monom):
            if e:
                key = (i, e)
                f = pow_cache.get(key)
                if f is None:
                    if i in negative:
                        f = sp.Pow(negative[i], -e)
                    else:
                        f = symbols[i] if e == 1 else sp.Pow(symbols[i], e)
                    pow_cache[key] = f
                fs.append(f)
        if not fs:
            constant = constant + c
            continue
        factor_terms.append((c, fs))
    if not pow_cache:
        return constant
    order = sorted(pow_cache.values(), key=cmp_to_key(sp.Basic.compare))
    rank = {id(f): k for k, f in enumerate(order)}
    out = []
    for c, fs in factor_terms:
        fs.sort(key=lambda f: rank[id(f)])
        if c is sp.S.One:
            out.append(fs[0] if len(fs) == 1 else sp.Mul._from_args(fs))
        else:
            out.append(sp.Mul._from_args([c] + fs))
    if constant == 0 and len(out) == 1:
        return out[0]
    _addsort(out)
    if constant != 0:
        out.insert(0, constant)
    return sp.Add._from_args(out)
