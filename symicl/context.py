"""Empirical means over a context of N iid samples, with N symbolic.

A context holds N iid copies u_1 .. u_N of a sample vector u: a Gaussian
vector, or any random group with the moment interface of
:mod:`symicl.sources` (independent non-Gaussian sources, mixtures).  Its
empirical means  mean(g) = (1/N) sum_n g(u_n)  are random variables.  For K
factors g_1 .. g_K,

    E[prod_k mean(g_k)] = N^{-K} sum_{n_1..n_K} E[prod_k g_k(u_{n_k})]
                        = sum_pi (N)_{|pi|} / N^K  prod_{B in pi} E[prod_{k in B} g_k(u)],

a sum over the set partitions pi of the factors ("which samples coincide"),
(N)_m = N (N-1) ... (N-m+1) the falling factorial.  Since |pi| <= K the
weight is a polynomial in 1/N:  (N)_m / N^K = N^{m-K} prod_{j<m} (1 - j/N).
The per-block factor E[prod_{k in B} g_k(u)] is a moment of one sample, read
from the sample's ``moment(exponents)``: Wick's pairings for a Gaussian
sample, the sources' moments otherwise.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import sympy as sp
from sympy.utilities.iterables import multiset_partitions

from . import symbols
from .errors import DistributionError, NotPolynomialError
from .sources import is_group

__all__ = ["Context", "set_partitions", "coincidence_weight"]


def set_partitions(k: int) -> Iterator[list[list[int]]]:
    """All set partitions of {0, .., k-1} (Bell(k) of them)."""
    if k == 0:
        yield []
        return
    yield from multiset_partitions(list(range(k)))


def coincidence_weight(m: int, k: int, inv_n):
    """(N)_m / N^k as a polynomial in ``inv_n`` = 1/N (requires m <= k)."""
    out = inv_n ** (k - m)
    for j in range(1, m):
        out = out * (1 - j * inv_n)
    return out


def _check_context_length(n) -> sp.Expr:
    n = sp.sympify(n)
    if n.is_number:
        if not n.is_integer:
            raise DistributionError(f"context length N must be an integer, got {n}")
        if n < 1:
            raise DistributionError(f"context length N must be at least 1, got {n}")
    elif n.is_positive is False or n.is_integer is False:
        raise DistributionError(f"context length N = {n} is not a positive integer")
    return n


class Context:
    """N iid samples of a random vector; ``mean(g)`` is (1/N) sum_n g(u_n).

    ``sample`` is the law of one sample (its variables are the generic
    sample u): a :class:`~symicl.gaussian.Gaussian` vector or a group of
    :mod:`symicl.sources`; ``N`` is symbolic by default.  Sample variables
    may appear in a model only inside ``mean``.
    """

    def __init__(self, sample, N=None, name: str = "ctx"):
        if isinstance(sample, Context) or not is_group(sample):
            raise DistributionError("a context's sample must be a random vector (a Gaussian, "
                                    "an Independent source vector or a Mixture)")
        self.sample = sample
        self.N = _check_context_length(symbols.context_length() if N is None else N)
        self.name = name
        self._atoms: dict[sp.Symbol, tuple[int, ...]] = {}
        self._by_monomial: dict[tuple[int, ...], sp.Symbol] = {}

    def __repr__(self) -> str:
        return f"Context({self.name}, N={self.N}, sample={self.sample.name})"

    @property
    def atoms(self) -> dict[sp.Symbol, tuple[int, ...]]:
        """Empirical-mean symbols created so far, mapped to their sample monomial."""
        return dict(self._atoms)

    def atom(self, monomial: Sequence[int]) -> sp.Symbol:
        """The random symbol standing for mean(u^monomial)."""
        monomial = tuple(int(e) for e in monomial)
        hit = self._by_monomial.get(monomial)
        if hit is None:
            body = sp.Mul(*[v ** e for v, e in zip(self.sample.variables, monomial)])
            hit = sp.Symbol(f"{self.name}.mean({body})", real=True)
            self._by_monomial[monomial] = hit
            self._atoms[hit] = monomial
        return hit

    def mean(self, expr):
        """(1/N) sum_n expr(u_n): linear in expr, one atom per sample monomial.

        Works elementwise on SymPy matrices.  Coefficients may hold any other
        symbols (parameters, task variables): they are common to all samples.
        """
        if isinstance(expr, sp.MatrixBase):
            return expr.applyfunc(self.mean)
        expr = sp.sympify(expr)
        u = self.sample.variables
        if not expr.has(*u):
            return expr
        try:
            poly = sp.Poly(expr, *u)
        except sp.PolynomialError as exc:
            raise NotPolynomialError(
                f"context mean of an expression that is not polynomial in the sample "
                f"{self.sample.name}: {expr}") from exc
        return sp.Add(*[coeff * (self.atom(monom) if any(monom) else 1)
                        for monom, coeff in poly.terms()])
