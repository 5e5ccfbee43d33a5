"""The Gaussian expectation engine against ``sympy.stats.E``, an independent integrator.

sympy.stats computes each expectation by symbolic integration against the
normal density; the engine uses Wick / Stein recursions and sample
coincidences.  Only cases that sympy.stats answers within a few seconds are
used here (``numerics/benchmarks/bench_expectation.py`` times both, including
cases where sympy.stats takes minutes).  Agreement is exact:
``sp.simplify(engine - stats) == 0``.
"""

import pytest
import sympy as sp
from sympy.stats import E, MultivariateNormal, Normal

from symicl import symbols
from symicl.context import Context
from symicl.expectation import Distribution, expectation
from symicl.gaussian import Gaussian
from symicl.models import build

s, s1, s2, s3 = sp.symbols("s s_1 s_2 s_3", positive=True)
a, b = sp.symbols("a b", real=True)



def engine_value(expr, dist):
    return expectation(expr, dist)


def xs(n, name="x"):
    return list(sp.symbols(f"{name}0:{n}", real=True))


def same(x, y):
    return sp.simplify(x - y) == 0


# -- univariate moments, symbolic variance ----------------------------------------

@pytest.mark.parametrize("k", range(1, 9))
def test_univariate_moment(k):
    (x,) = xs(1)
    mine = expectation(x ** k, Gaussian([x], [s]))
    theirs = E(Normal("X", 0, sp.sqrt(s)) ** k)
    assert same(mine, theirs)


def test_univariate_polynomial_with_symbolic_coefficients():
    (x,) = xs(1)
    X = Normal("X", 0, sp.sqrt(s))
    mine = expectation(a * x ** 4 + b * x ** 3 - x ** 2 + 5, Gaussian([x], [s]))
    theirs = E(a * X ** 4) + E(b * X ** 3) + E(-X ** 2) + 5
    assert same(mine, theirs)
    assert same(mine, 3 * a * s ** 2 - s + 5)


# -- products of independent normals ---------------------------------------------

@pytest.mark.parametrize("exps", [(1, 1), (2, 4), (3, 2), (2, 2, 2), (4, 2, 2), (1, 3, 2)])
def test_independent_product(exps):
    var = [s1, s2, s3][: len(exps)]
    x = xs(len(exps))
    mine = expectation(sp.Mul(*[v ** e for v, e in zip(x, exps)]), Gaussian(x, var))
    normals = [Normal(f"X{i}", 0, sp.sqrt(v)) for i, v in enumerate(var)]
    theirs = E(sp.Mul(*[v ** e for v, e in zip(normals, exps)]))
    assert same(mine, theirs)


def test_independent_groups_in_a_distribution():
    """Two independent Gaussian groups, given as a Distribution of two vectors."""
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    mine = expectation(x ** 2 * y ** 4 + a * x * y, Distribution(Gaussian([x], [s1]), Gaussian([y], [s2])))
    X, Y = Normal("X", 0, sp.sqrt(s1)), Normal("Y", 0, sp.sqrt(s2))
    theirs = E(X ** 2 * Y ** 4) + a * E(X * Y)
    assert same(mine, theirs)


# -- small numeric-covariance cases (MultivariateNormal) --------------------------

NUMERIC = [
    ([[2, 1], [1, 3]], (1, 1)),
    ([[2, 1], [1, 3]], (2, 2)),
    ([[2, 1], [1, 3]], (1, 3)),
    ([[1, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]], (2, 2)),
    ([[2, -1], [-1, 1]], (3, 1)),
    ([[2, 0, 0], [0, 3, 0], [0, 0, 1]], (2, 2, 2)),
]


@pytest.mark.parametrize("cov,exps", NUMERIC)
def test_numeric_covariance_moment(cov, exps):
    x = xs(len(exps))
    mine = engine_value(sp.Mul(*[v ** e for v, e in zip(x, exps)]), Gaussian(x, cov))
    m = MultivariateNormal("M", [0] * len(exps), cov)
    theirs = E(sp.Mul(*[m[i] ** e for i, e in enumerate(exps)]))
    assert same(mine, theirs)


def test_numeric_answer_without_marker():
    x = xs(2)
    assert expectation(x[0] ** 2 * x[1] ** 2, Gaussian(x, [[2, 1], [1, 3]])) == 8


# -- context means against explicit samples ----------------------------------------

def test_context_mean_at_N2_against_two_explicit_samples():
    """E[(Sigma_hat A Sigma_hat)_11] at N = 2, d = 2: the engine's context average
    against sympy.stats over two explicit iid samples u, v."""
    a11, a12, a22 = sp.symbols("a_11 a_12 a_22", real=True)
    A = sp.Matrix([[a11, a12], [a12, a22]])
    uvars = xs(2, "u")
    ctx = Context(Gaussian(uvars, [s1, s2]), N=2)
    sh = ctx.mean(sp.Matrix(uvars) * sp.Matrix(uvars).T)
    mine = expectation((sh * A * sh)[0, 0], ctx)
    u = sp.Matrix([Normal("u1", 0, sp.sqrt(s1)), Normal("u2", 0, sp.sqrt(s2))])
    v = sp.Matrix([Normal("v1", 0, sp.sqrt(s1)), Normal("v2", 0, sp.sqrt(s2))])
    sh_explicit = (u * u.T + v * v.T) / 2
    theirs = E(sp.expand((sh_explicit * A * sh_explicit)[0, 0]))
    assert same(mine, theirs)


@pytest.mark.slow
def test_aligned_transformer_loss_at_N2_against_explicit_samples():
    """The d = 2 aligned linear-transformer loss at N = 2 (degree 8 in the randoms).

    Written out by hand from math-spec section 1 with P21 = Q21 = 0:
    yhat = diag(p) Lambda Sigma_hat diag(q) x_q, loss (1/2)||yhat - Lambda x_q||^2.
    """
    sv, p, q = symbols.spectrum(2), symbols.vector("p", 2), symbols.vector("q", 2)
    lam = sp.diag(*[Normal(f"lambda{i}", 0, 1) for i in range(2)])
    xq, u, v = (sp.Matrix([Normal(f"{n}{i}", 0, sp.sqrt(sv[i])) for i in range(2)])
                for n in ("xq", "u", "v"))
    sh = (u * u.T + v * v.T) / 2
    r = sp.diag(*p) * lam * sh * sp.diag(*q) * xq - lam * xq
    theirs = E(sp.expand(sum(e ** 2 for e in r) / 2))
    mine = build("linear-transformer", dim=2, reduction="aligned", N=2).expected_loss()
    assert same(mine, theirs)
