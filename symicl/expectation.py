"""Exact expectations of polynomials over independent random groups.

A :class:`Distribution` is a set of independent random groups: random
vectors (queries, tasks, noise) and contexts of N iid samples (seen only
through their empirical means).  A vector is a Gaussian (Wick's theorem) or
any group with the moment interface of :mod:`symicl.sources` (independent
non-Gaussian sources given by their moments, linear mixtures of them).  For
a polynomial

    p = sum_r c_r(theta) m_r(xi)       (m_r monomials in the random symbols xi)

the expectation is  E[p] = sum_r c_r(theta) E[m_r],  and E[m_r] factorises
over the groups: a moment of each vector, and a sum over sample
coincidences for each context (see :mod:`symicl.context`) whose blocks are
moments of one sample.  The result is a polynomial in the parameters, the
covariance entries (variances, source constants such as an excess kurtosis)
and 1/N.

Polynomials live in python-flint's fmpq_mpoly (the default when installed)
or in SymPy's sparse rings (``SYMICL_POLY_BACKEND=sympy`` or
``Expectation(..., backend="sympy")``, the reference path); results come
back as SymPy ring elements and expressions either way, identical.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import sympy as sp
from sympy.polys.rings import PolyElement

from .algebra import FlintRing, Ring, _Unsupported, default_backend, exact, expr_from_terms
from .context import Context, coincidence_weight, set_partitions
from .errors import DistributionError, NotPolynomialError
from .gaussian import Gaussian, MomentTable
from .sources import Independent, is_group

__all__ = ["Distribution", "Expectation", "SumOfPieces", "expectation"]


class Distribution:
    """Independent random groups: random vectors (:class:`Gaussian`, or the sources of
    :mod:`symicl.sources`) and :class:`Context` s."""

    def __init__(self, *groups):
        seen: dict[sp.Symbol, str] = {}
        for g in groups:
            if not (isinstance(g, Context) or is_group(g)):
                raise DistributionError(f"{g!r} is neither a random vector (Gaussian, "
                                        f"Independent, Mixture) nor a Context")
            variables = g.sample.variables if isinstance(g, Context) else g.variables
            for v in variables:
                if v in seen:
                    raise DistributionError(
                        f"variable {v} belongs to two random groups ({seen[v]} and {g!r})")
                seen[v] = repr(g)
        self.groups = list(groups)

    @property
    def gaussians(self) -> list[Gaussian]:
        return [g for g in self.groups if isinstance(g, Gaussian)]

    @property
    def vectors(self) -> list:
        """Every random vector that is not a context (Gaussian or not), in order."""
        return [g for g in self.groups if not isinstance(g, Context)]

    @property
    def is_gaussian(self) -> bool:
        """True when every vector and every context's sample is Gaussian."""
        return all(isinstance(g, Gaussian) for g in self.vectors) and all(
            isinstance(c.sample, Gaussian) for c in self.contexts)

    @property
    def contexts(self) -> list[Context]:
        return [g for g in self.groups if isinstance(g, Context)]

    def random_symbols(self) -> list[sp.Symbol]:
        """Every random symbol: the vectors' variables, then context means made so far."""
        out = [v for g in self.vectors for v in g.variables]
        for c in self.contexts:
            out.extend(c.atoms)
        return out

    def sample_symbols(self) -> set[sp.Symbol]:
        """Per-sample variables, which may appear only inside context means."""
        return {v for c in self.contexts for v in c.sample.variables}

    def hidden_symbols(self) -> set[sp.Symbol]:
        """The sources u of mixtures x = A u (inside contexts too): not random symbols of
        the distribution, so they may not appear in an expression."""
        groups = self.vectors + [c.sample for c in self.contexts]
        return {v for g in groups for v in getattr(g, "u", ())}

    def constant_symbols(self) -> set[sp.Symbol]:
        """Symbols the distribution itself depends on (covariances, source constants, N)."""
        out: set[sp.Symbol] = set()
        for g in self.vectors:
            out |= g.constant_symbols()
        for c in self.contexts:
            out |= c.sample.constant_symbols() | sp.sympify(c.N).free_symbols
        return out


class Expectation:
    """E[.] over a distribution, computed in a sparse polynomial ring.

    ``coefficient_symbols`` are the non-random symbols allowed in the
    expressions (parameters, constants); the result is a polynomial in
    them, in the covariance entries and in 1/N for each symbolic N.
    """

    def __init__(self, distribution: Distribution, coefficient_symbols: Sequence[sp.Symbol] = (),
                 inverted: Sequence[sp.Symbol] = (), backend: str | None = None):
        self.distribution = distribution
        self.backend = default_backend() if backend is None else backend
        if self.backend not in ("flint", "sympy"):
            raise ValueError(f"unknown polynomial backend {self.backend!r} (flint or sympy)")
        self._placeholders: dict[sp.Symbol, sp.Expr] = {}
        self._inverse: dict[Context, object] = {}
        randoms = distribution.random_symbols()
        covariance_symbols = sorted(distribution.constant_symbols(), key=sp.default_sort_key)
        coeff_syms = list(dict.fromkeys(list(coefficient_symbols) + covariance_symbols))
        for s in coeff_syms:
            if s in set(randoms) | distribution.sample_symbols():
                raise DistributionError(f"symbol {s} is both random and a coefficient")
        # Symbols that appear in denominators (each context's N, and any the
        # caller names) enter the ring through their inverse 1/c.
        self._user_inverted = set(inverted)
        self._n_symbols = {c.N for c in distribution.contexts if not c.N.is_number} | set(inverted)
        coeff_syms = [s for s in coeff_syms if s not in self._n_symbols]
        self._inverse_of: dict[sp.Symbol, sp.Dummy] = {}
        for n in sorted(self._n_symbols, key=sp.default_sort_key):
            inv = sp.Dummy(f"inv_{n}")
            self._placeholders[inv] = 1 / n
            self._inverse_of[n] = inv
        # Covariance entries (and variances of sources) that are not polynomials in their
        # symbols get placeholders.
        self._entry_symbol: dict[sp.Expr, sp.Expr] = {}
        for g in self._all_vectors():
            for e in (g.entries() if hasattr(g, "entries") else ()):
                if e.is_number or e in self._entry_symbol:
                    continue
                if e.is_polynomial(*e.free_symbols):
                    self._entry_symbol[e] = e
                else:
                    ph = sp.Dummy("cov")
                    self._placeholders[ph] = e
                    self._entry_symbol[e] = ph
        self.coefficients = Ring(coeff_syms + list(self._placeholders))
        self._n_random = len(randoms)
        self.full = Ring(randoms + self.coefficients.gens)
        self._group_slices = self._slices()
        if self.backend == "flint":
            self._flint = FlintRing(self.full.gens)
            self._one, self._zero = self._flint.one, self._flint.zero
        else:
            self._flint = None
            self._one, self._zero = self.coefficients.one, self.coefficients.zero
        self._tables = {id(g): self._moment_table(g) for g in self._all_vectors()}
        self._memo: dict[tuple, object] = {}
        self._expr_plan = self._fast_expr_plan()

    # -- set-up --------------------------------------------------------------
    def _all_vectors(self) -> list:
        return self.distribution.vectors + [c.sample for c in self.distribution.contexts]

    def _moment_table(self, g):
        if isinstance(g, Gaussian):
            return MomentTable(g, lambda i, j: self._coefficient(g.covariance[i, j]),
                               self._one, self._zero)
        if isinstance(g, Independent):
            return IndependentTable(g, self._coefficient, self._expr_coefficient,
                                    self._one, self._zero)
        return GroupTable(g, self._expr_coefficient, self._one, self._zero)

    def _expr_coefficient(self, expr, what: str = "a moment"):
        """A source moment (a SymPy polynomial in the distribution's constants) in the
        engine's coefficient algebra; NotPolynomialError names it otherwise."""
        expr = sp.sympify(expr)
        if expr.is_Rational:
            return self._flint.number(expr) if self._flint is not None else \
                self.coefficients.ring(expr)
        try:
            self.coefficients.check(expr, what)
        except NotPolynomialError as exc:
            raise NotPolynomialError(f"{exc} (the engine needs moments polynomial in the "
                                     f"distribution's constants)") from None
        return self._coefficient(expr)

    def _coefficient(self, entry):
        """A covariance entry in the engine's coefficient algebra."""
        poly = self.coefficients(self._entry_symbol.get(entry, entry))
        if self._flint is None:
            return poly
        if not self.coefficients.gens:
            return self._flint.number(sp.Rational(self.coefficients.to_expr(poly)))
        n = self._n_random
        return self._flint.ctx.from_dict(
            {(0,) * n + tuple(m): self._flint._q(c) for m, c in poly.items()}) \
            if poly else self._flint.zero

    def _slices(self):
        out, start = [], 0
        for g in self.distribution.vectors:
            out.append((g, start, start + len(g.variables)))
            start += len(g.variables)
        for c in self.distribution.contexts:
            atoms = list(c.atoms.values())
            out.append((c, start, start + len(atoms), atoms))
            start += len(atoms)
        return out

    def _inv_n(self, c: Context):
        if self._flint is not None:
            if c.N.is_number:
                return self._flint.flint.fmpq(1, int(c.N))
            return self._flint.vars[self.full.index[self._inverse_of[c.N]]]
        if c.N.is_number:
            return sp.QQ(1, int(c.N))
        return self.coefficients.ring(self._inverse_of[c.N])

    # -- conversion ------------------------------------------------------------
    def polynomial(self, expr, what: str = "expression"):
        """``expr`` checked and made ready for :meth:`expect_polynomial`.

        On the SymPy backend an element of the full ring ``self.full``
        (randoms and coefficients); on the flint backend a
        :class:`SumOfPieces`, expanded lazily a group of terms at a time
        (``.expand()`` gives the whole flint polynomial).
        """
        expr = exact(expr)
        leaked = expr.free_symbols & self.distribution.sample_symbols()
        if leaked:
            names = ", ".join(sorted(s.name for s in leaked))
            raise DistributionError(
                f"sample variables {names} appear outside a context mean in the {what}")
        hidden = expr.free_symbols & self.distribution.hidden_symbols()
        if hidden:
            names = ", ".join(sorted(s.name for s in hidden))
            raise DistributionError(f"the sources {names} of a mixture appear in the {what}; "
                                    f"use the mixture's own variables x = A u")
        if self._n_symbols:
            needs_expand = bool(self._user_inverted & expr.free_symbols)
            expr = expr.xreplace({n: 1 / inv for n, inv in self._inverse_of.items()})
            if needs_expand:
                expr = sp.expand(expr)
        if self._flint is None:
            return self.full(expr, what)
        self.full.check(expr, what)
        return SumOfPieces(self, expr, what)

    def _flint_poly(self, expr, what: str):
        try:
            return self._flint.from_expr(expr)
        except _Unsupported:
            return self._flint.from_sympy_poly(self.full(expr, what))

    def to_expr(self, poly: PolyElement) -> sp.Expr:
        """A coefficient-ring polynomial back as a SymPy expression."""
        if self._expr_plan is not None and self.coefficients.gens:
            symbols, negative = self._expr_plan
            return expr_from_terms(dict(poly.items()), symbols, negative)
        expr = self.coefficients.to_expr(poly)
        return expr.xreplace(self._placeholders) if self._placeholders else expr

    def _fast_expr_plan(self):
        """Symbols for :func:`expr_from_terms`, or None where only SymPy's path is safe.

        The fast path covers placeholders that stand for 1/N with N a symbol
        outside the ring (their powers become N**-k, which no other factor
        can absorb); other placeholders (non-polynomial covariance entries)
        go through ``as_expr`` and ``xreplace`` as before.
        """
        if self.backend == "sympy":
            return None
        gens = self.coefficients.gens
        negative = {}
        for i, g in enumerate(gens):
            value = self._placeholders.get(g)
            if value is None:
                continue
            n = 1 / value
            if not (isinstance(n, sp.Symbol) and n not in self.coefficients.index):
                return None
            negative[i] = n
        return gens, negative

    # -- expectation -------------------------------------------------------------
    def moment(self, random_exps: tuple[int, ...]):
        """E[prod xi^random_exps] in the engine's coefficient algebra (memoised)."""
        hit = self._memo.get(random_exps)
        if hit is not None:
            return hit
        out = self._one
        for entry in self._group_slices:
            group, lo, hi = entry[0], entry[1], entry[2]
            sub = random_exps[lo:hi]
            if not any(sub):
                continue
            if isinstance(group, Context):
                value = self._context_moment(group, sub, entry[3])
            else:
                value = self._tables[id(group)].moment(sub)
            if not value:
                out = self._zero
                break
            out = out * value
        self._memo[random_exps] = out
        return out

    def _context_moment(self, c: Context, exps: tuple[int, ...], monomials) -> PolyElement:
        factors = [monomials[i] for i, e in enumerate(exps) for _ in range(e)]
        k = len(factors)
        table = self._tables[id(c.sample)]
        inv = self._inv_n(c)
        total = self._zero
        for partition in set_partitions(k):
            value = coincidence_weight(len(partition), k, inv)
            for block in partition:
                alpha = tuple(sum(factors[i][v] for i in block) for v in range(len(c.sample)))
                m = table.moment(alpha)
                if not m:
                    value = 0
                    break
                value = value * m
            if value:
                total = total + value
        return total

    def expect_polynomial(self, poly) -> PolyElement:
        """E[poly] for a full-ring polynomial, as a coefficient-ring polynomial.

        ``poly`` is what :meth:`polynomial` returns (a flint polynomial on the
        flint backend) or an element of the SymPy ring ``self.full``.
        """
        if self._flint is not None:
            if isinstance(poly, PolyElement):
                pieces = [self._flint.from_sympy_poly(poly)]
            elif isinstance(poly, SumOfPieces):
                pieces = poly.pieces()
            else:
                pieces = [poly]
            total = self._flint.zero
            for piece in pieces:
                total = total + self._expect_flint(piece)
            return self._flint.to_sympy_poly(total, self.coefficients, self._n_random)
        r = self._n_random
        groups: dict[tuple, dict] = defaultdict(dict)
        for monom, coeff in poly.terms():
            rest = monom[r:]
            bucket = groups[monom[:r]]
            bucket[rest] = bucket.get(rest, 0) + coeff
        total = self.coefficients.zero
        for random_exps, bucket in groups.items():
            m = self.moment(random_exps)
            if m:
                total = total + m * self.coefficients.from_dict(bucket)
        return total

    # -- the flint path ------------------------------------------------------------
    def _expect_flint(self, poly):
        """E[poly] with poly and the result flint polynomials over the full generators.

        A Gaussian variable independent of all others (a one-variable block)
        is integrated out of the whole polynomial at once:
        E_x[sum_k a_k x^k] = sum_k a_{2k} (2k-1)!! c^k, with a_k read off as
        (d/dx)^k poly / k! at x = 0; a coordinate of an independent source
        vector likewise, E_x[sum_k a_k x^k] = sum_k a_k E[x^k].  The remaining
        random variables (coupled Gaussian blocks, mixtures, context means)
        split the polynomial by their exponents, variable by variable, and
        each part is paired with its memoised moment as on the SymPy path.
        """
        fl = self._flint
        rest = []
        for entry in self._group_slices:
            group, lo, hi = entry[0], entry[1], entry[2]
            if isinstance(group, Gaussian):
                singles = {b[0] for b in group.blocks() if len(b) == 1}
                for k in range(hi - lo):
                    if k in singles:
                        variance = group.covariance[k, k]
                        c = None if variance == 0 else self._coefficient(variance)
                        poly = self._integrate_single(poly, lo + k, c)
                    else:
                        rest.append(lo + k)
            elif isinstance(group, Independent):
                table = self._tables[id(group)]
                for k in range(hi - lo):
                    poly = self._integrate_moments(poly, lo + k, table, k)
            else:
                rest.extend(range(lo, hi))
        parts: dict[tuple, object] = {}
        self._split(poly, rest, 0, [0] * self._n_random, parts)
        total = fl.zero
        for random_exps, coeff in parts.items():
            m = self.moment(random_exps)
            if m:
                total = total + coeff * m
        return total

    @staticmethod
    def _integrate_single(poly, i: int, c):
        """E over x_i ~ N(0, c) (c None: x_i = 0) of a flint polynomial."""
        deg = poly.degrees()[i]
        if deg == 0:
            return poly
        total = poly.subs({i: 0})
        if c is None:
            return total
        q, cpow, dfact = poly, None, 1
        for k in range(1, deg + 1):
            q = q.derivative(i) / k
            if k % 2 == 0:
                cpow = c if cpow is None else cpow * c
                dfact *= k - 1
                coeff = q.subs({i: 0})
                if not coeff.is_zero():
                    total = total + coeff * cpow * dfact
        return total

    @staticmethod
    def _integrate_moments(poly, i: int, table: "IndependentTable", k: int):
        """E over coordinate k of an independent source vector (variable i) of a flint
        polynomial: sum_j a_j E[x^j], each moment asked for only where a_j != 0 (so a
        moment that does not exist is an error only where the polynomial needs it)."""
        deg = poly.degrees()[i]
        if deg == 0:
            return poly
        total = poly.subs({i: 0})
        q = poly
        for j in range(1, deg + 1):
            q = q.derivative(i) / j
            coeff = q.subs({i: 0})
            if coeff.is_zero():
                continue
            m = table.coordinate(k, j)
            if m is not table.zero and m != 0:
                total = total + coeff * m
        return total

    def _split(self, poly, variables, depth: int, exps: list, out: dict) -> None:
        """out[random exponents] = coefficient, splitting on ``variables`` in turn."""
        if poly.is_zero():
            return
        if depth == len(variables):
            key = tuple(exps)
            out[key] = out[key] + poly if key in out else poly
            return
        i = variables[depth]
        deg = poly.degrees()[i]
        if deg == 0:
            self._split(poly, variables, depth + 1, exps, out)
            return
        q = poly
        for k in range(deg + 1):
            if k:
                q = q.derivative(i) / k
            exps[i] = k
            self._split(q.subs({i: 0}), variables, depth + 1, exps, out)
        exps[i] = 0

    def __call__(self, expr) -> sp.Expr:
        """E[expr] as a SymPy expression."""
        return self.to_expr(self.expect_polynomial(self.polynomial(expr)))


class IndependentTable:
    """Moments of an :class:`~symicl.sources.Independent` vector in the engine's algebra:
    E[x^alpha] = prod_i m_{alpha_i} v_i^{alpha_i / 2}, each factor memoised."""

    def __init__(self, group: Independent, entry, expr, one, zero):
        self.group, self.one, self.zero = group, one, zero
        self._entry, self._expr = entry, expr
        self._memo: dict[tuple[int, int], object] = {}
        self._law: dict[int, object] = {}

    def coordinate(self, i: int, k: int):
        """E[x_i^k] in the algebra."""
        hit = self._memo.get((i, k))
        if hit is not None:
            return hit
        law = self._law.get(k)
        if law is None:
            m = self.group.law.moment(k)
            law = self._law[k] = None if m == 0 else self._expr(
                m, f"moment {k} of the {self.group.law.name} law")
        if law is None:
            out = self.zero
        elif k % 2:
            out = law * self._expr(self.group.standard_deviation(i) ** k,
                                   f"the standard deviation of {self.group.variables[i]}")
        else:
            v = self.group.variances[i]
            out = law * self._entry(v) ** (k // 2) if v != 0 else self.zero
        self._memo[i, k] = out
        return out

    def moment(self, alpha):
        out = self.one
        for i, k in enumerate(alpha):
            if k:
                value = self.coordinate(i, k)
                if value is self.zero or value == 0:
                    return self.zero
                out = out * value
        return out


class GroupTable:
    """Memoised moments of any random group with ``moment(exponents)`` (a mixture), in the
    engine's algebra."""

    def __init__(self, group, expr, one, zero):
        self.group, self.one, self.zero, self._expr = group, one, zero, expr
        self._memo: dict[tuple, object] = {}

    def moment(self, alpha):
        alpha = tuple(int(a) for a in alpha)
        hit = self._memo.get(alpha)
        if hit is None:
            m = self.group.moment(alpha)
            hit = self.zero if m == 0 else self._expr(m, f"a moment of {self.group.name}")
            self._memo[alpha] = hit
        return hit


class SumOfPieces:
    """A checked polynomial expression on the flint backend, converted piece by piece.

    E is linear, so the terms of a sum are expanded and integrated a group at
    a time (groups of about ``PIECE_TERMS`` expanded terms): the whole
    expanded integrand (876,880 terms in 236 variables for the full
    transformer at d = 5) never sits in memory at once.  :meth:`expand` gives
    the whole polynomial.
    """

    PIECE_TERMS = 60_000

    def __init__(self, engine: "Expectation", expr: sp.Expr, what: str):
        self.engine, self.expr, self.what = engine, expr, what

    def pieces(self):
        """Flint polynomials whose sum is the expression (generated lazily)."""
        current = None
        for term in sp.Add.make_args(self.expr):
            poly = self.engine._flint_poly(term, self.what)
            current = poly if current is None else current + poly
            if len(current) >= self.PIECE_TERMS:
                yield current
                current = None
        if current is not None:
            yield current

    def expand(self):
        """The whole expanded polynomial (a flint fmpq_mpoly over the full generators)."""
        total = self.engine._flint.zero
        for piece in self.pieces():
            total = total + piece
        return total


def expectation(expr, distribution: Distribution | Gaussian | Context) -> sp.Expr:
    """Exact E[expr] for ``expr`` polynomial in the random symbols of ``distribution``.

    Non-random symbols in ``expr`` are treated as constants.  ``distribution``
    may be a single random vector (a :class:`Gaussian`: Wick's theorem; a
    source of :mod:`symicl.sources`) or a :class:`Context`.
    """
    if not isinstance(distribution, Distribution):
        distribution = Distribution(distribution)
    expr = exact(expr)
    randoms = set(distribution.random_symbols()) | distribution.sample_symbols()
    n_syms = {c.N for c in distribution.contexts}
    others = sorted(expr.free_symbols - randoms - n_syms, key=sp.default_sort_key)
    return Expectation(distribution, others)(expr)
