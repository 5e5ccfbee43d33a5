"""Property tests of the Gaussian expectation engine (hypothesis, derandomised).

(a) random polynomials of Gaussian vectors against Monte Carlo;
(b) exact algebraic identities (linearity, covariance, odd moments, fast path);
(c) context means: the Wishart identity with symbolic N, and Monte Carlo at numeric N;
(d) invalid distributions raise SymiclError naming the problem.

Statistical tests: the estimator is the sample mean over n iid draws with a
fixed NumPy seed; its standard error is SE = (sample std, ddof=1) / sqrt(n);
the test asserts |engine - MC| <= 5 SE.  Under the CLT a 5 SE miss has
probability ~6e-7 per case, so a failure means a wrong engine value, not bad
luck; with the fixed seeds and derandomize=True every run draws the same data.
"""

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symicl.context import Context
from symicl.errors import SymiclError
from symicl.expectation import Distribution, expectation
from symicl.gaussian import Gaussian, double_factorial

SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])



def numeric_expectation(expr, dist):
    return expectation(expr, dist)


def xs(n, name="x"):
    return list(sp.symbols(f"{name}0:{n}", real=True))


def mono(x, exps):
    return sp.Mul(*[v ** e for v, e in zip(x, exps)])


# -- strategies ---------------------------------------------------------------------

def exponents(n, max_degree=6):
    """Exponent vectors of n variables with total degree <= max_degree."""
    return st.lists(st.integers(0, max_degree), min_size=n, max_size=n).filter(
        lambda e: sum(e) <= max_degree)


@st.composite
def factor_matrix(draw, n):
    """A small integer matrix A; the covariance A A^T is PSD (possibly singular)."""
    return np.array(draw(st.lists(st.integers(-2, 2), min_size=n * n, max_size=n * n)),
                    dtype=np.int64).reshape(n, n)


@st.composite
def gaussian_polynomial(draw):
    n = draw(st.integers(2, 3))
    a = draw(factor_matrix(n))
    terms = draw(st.lists(st.tuples(st.integers(-3, 3).filter(bool), exponents(n)),
                          min_size=1, max_size=4))
    return n, a, terms


# -- (a) random polynomials against Monte Carlo ------------------------------------

MC_DRAWS = 200_000


@settings(max_examples=40, **SETTINGS)
@given(gaussian_polynomial())
def test_random_polynomial_matches_monte_carlo(case):
    """E[p(x)], x = A z, z ~ N(0, I): x ~ N(0, A A^T), exactly, even for singular A.

    Estimator: sample mean of p(x) over n = 200,000 draws (seed 20250101);
    SE = sample std / sqrt(n); tolerance 5 SE.  When p is a constant (every
    drawn monomial has degree 0) the sample std is exactly 0 and the mean
    equals the constant up to float rounding: only then does the floor 1e-9
    (relative to the size of the value) matter.
    """
    n, a, terms = case
    cov = a @ a.T
    x = xs(n)
    expr = sum((c * mono(x, e) for c, e in terms), sp.Integer(0))
    engine = float(numeric_expectation(expr, Gaussian(x, cov.tolist())))

    rng = np.random.default_rng(20250101)
    draws = rng.standard_normal((MC_DRAWS, n)) @ a.T.astype(float)
    values = np.zeros(MC_DRAWS)
    for c, e in terms:
        values += c * np.prod(draws ** np.array(e), axis=1)
    mc = values.mean()
    se = values.std(ddof=1) / np.sqrt(MC_DRAWS)
    floor = 1e-9 * (1.0 + abs(engine))
    assert abs(engine - mc) <= 5 * se + floor, (engine, mc, se)


# -- (b) exact algebraic properties -------------------------------------------------

s1, s2, s3 = sp.symbols("s_1 s_2 s_3", positive=True)
c12, c13, c23 = sp.symbols("c_12 c_13 c_23", real=True)
SYM3 = sp.Matrix([[s1, c12, c13], [c12, s2, c23], [c13, c23, s3]])


@settings(max_examples=30, **SETTINGS)
@given(exponents(3), exponents(3), st.integers(-5, 5), st.integers(-5, 5))
def test_linearity(e1, e2, alpha, beta):
    """E[alpha p + beta a q] = alpha E[p] + beta a E[q] with a a constant symbol."""
    x, a = xs(3), sp.Symbol("a", real=True)
    g = Gaussian(x, SYM3)
    lhs = expectation(alpha * mono(x, e1) + beta * a * mono(x, e2), g)
    rhs = alpha * expectation(mono(x, e1), g) + beta * a * expectation(mono(x, e2), g)
    assert sp.expand(lhs - rhs) == 0


def test_second_moments_are_the_covariance():
    x = xs(3)
    g = Gaussian(x, SYM3)
    for i in range(3):
        for j in range(3):
            assert sp.expand(expectation(x[i] * x[j], g) - SYM3[i, j]) == 0


def test_zero_variance_variable():
    """x ~ N(0, 0) is the constant 0 (a valid PSD covariance): E[t x^2] must be 0."""
    x = xs(2)
    assert expectation(x[0] ** 2 * x[1] ** 2, Gaussian(x, [[1, 0], [0, 0]])) == 0
    assert expectation(x[0] ** 2, Gaussian(x, [[1, 0], [0, 0]])) == 1


@settings(max_examples=20, **SETTINGS)
@given(factor_matrix(3), st.integers(0, 2), st.integers(0, 2))
def test_second_moments_numeric_covariance(a, i, j):
    x = xs(3)
    cov = (a @ a.T).tolist()
    assert numeric_expectation(x[i] * x[j], Gaussian(x, cov)) == cov[i][j]


@settings(max_examples=30, **SETTINGS)
@given(st.lists(st.integers(0, 7), min_size=3, max_size=3).filter(lambda e: sum(e) % 2 == 1))
def test_odd_moments_vanish(e):
    x = xs(3)
    assert expectation(mono(x, e), Gaussian(x, SYM3)) == 0


@settings(max_examples=30, **SETTINGS)
@given(exponents(3, max_degree=8))
def test_independent_fast_path_equals_general_path(e):
    """Diagonal / block covariances use the per-block closed forms; the general
    Stein recursion on a full symbolic covariance, with the off-diagonal
    entries then set to zero, must give the same polynomial."""
    x = xs(3)
    general = expectation(mono(x, e), Gaussian(x, SYM3))
    as_diagonal = expectation(mono(x, e), Gaussian(x, [s1, s2, s3]))
    as_matrix = expectation(mono(x, e), Gaussian(x, sp.diag(s1, s2, s3)))
    block = expectation(mono(x, e), Gaussian(x, SYM3.subs({c13: 0, c23: 0})))
    assert sp.expand(general.subs({c12: 0, c13: 0, c23: 0}) - as_diagonal) == 0
    assert sp.expand(as_matrix - as_diagonal) == 0
    assert sp.expand(general.subs({c13: 0, c23: 0}) - block) == 0


@settings(max_examples=25, **SETTINGS)
@given(st.integers(0, 24))
def test_univariate_moments_are_double_factorials(k):
    s = sp.Symbol("s", positive=True)
    (x,) = xs(1)
    value = expectation(x ** k, Gaussian([x], [s]))
    expected = sp.Integer(0) if k % 2 else double_factorial(k - 1) * s ** (k // 2)
    assert sp.expand(value - expected) == 0
    # the same moment of a coordinate of a correlated vector (general path)
    assert sp.expand(expectation(xs(3)[1] ** k, Gaussian(xs(3), SYM3)) - expected.subs(s, s2)) == 0


# -- (c) context means ----------------------------------------------------------------

N = sp.Symbol("N", positive=True, integer=True)


def symmetric_symbol_matrix(d):
    return sp.Matrix(d, d, lambda i, j: sp.Symbol(f"a_{min(i, j) + 1}{max(i, j) + 1}", real=True))


def wishart_check(sigma, n_ctx=N):
    d = sigma.shape[0]
    u = xs(d, "u")
    ctx = Context(Gaussian(u, sigma), N=n_ctx)
    sh = ctx.mean(sp.Matrix(u) * sp.Matrix(u).T)
    a = symmetric_symbol_matrix(d)
    got = (sh * a * sh).applyfunc(lambda e: expectation(e, ctx))
    want = (n_ctx + 1) / n_ctx * sigma * a * sigma + (a * sigma).trace() / n_ctx * sigma
    assert (got - want).applyfunc(sp.simplify) == sp.zeros(d, d)


@pytest.mark.parametrize("d", [2, 3])
def test_wishart_identity_diagonal_sigma_symbolic_N(d):
    """E[S A S] = ((N+1)/N) Sigma A Sigma + (1/N) tr(A Sigma) Sigma, Sigma = diag(s)."""
    wishart_check(sp.diag(*[s1, s2, s3][:d]))


@settings(max_examples=4, **SETTINGS)
@given(st.integers(2, 3).flatmap(lambda d: factor_matrix(d)))
def test_wishart_identity_full_numeric_sigma_symbolic_N(b):
    """The same identity with a full numeric Sigma = B B^T + I (B small integers)."""
    d = b.shape[0]
    wishart_check(sp.Matrix(b @ b.T) + sp.eye(d))


@settings(max_examples=6, **SETTINGS)
@given(st.sampled_from([1, 2, 3, 5]), st.integers(3, 9))
def test_wishart_identity_numeric_N(n_ctx, scale):
    """At numeric N the identity holds too (symbolic A keeps the answer symbolic)."""
    wishart_check(sp.Matrix([[scale, 1], [1, 2]]), sp.Integer(n_ctx))


CONTEXTS = 200_000


@settings(max_examples=12, **SETTINGS)
@given(st.sampled_from([1, 2, 3]),
       factor_matrix(2),
       st.lists(exponents(2, max_degree=3).filter(any), min_size=1, max_size=3),
       st.integers(-3, 3).filter(bool))
def test_context_average_matches_monte_carlo(n_ctx, b, factors, coef):
    """E[c prod_k mean(u^e_k)] over N iid samples u ~ N(0, B B^T + I).

    Estimator: sample mean over 200,000 independent contexts (seed 7), each of
    N draws; SE = sample std / sqrt(200,000); tolerance 5 SE.
    """
    sigma = b @ b.T + np.eye(2, dtype=np.int64)
    u = xs(2, "u")
    ctx = Context(Gaussian(u, sigma.tolist()), N=n_ctx)
    expr = coef * sp.Mul(*[ctx.mean(mono(u, e)) for e in factors])
    engine = float(numeric_expectation(expr, ctx))

    rng = np.random.default_rng(7)
    chol = np.linalg.cholesky(sigma.astype(float))
    samples = rng.standard_normal((CONTEXTS, n_ctx, 2)) @ chol.T
    values = np.full(CONTEXTS, float(coef))
    for e in factors:
        values *= np.prod(samples ** np.array(e), axis=2).mean(axis=1)
    mc = values.mean()
    se = values.std(ddof=1) / np.sqrt(CONTEXTS)
    assert abs(engine - mc) <= 5 * se, (engine, mc, se)


def test_wishart_entry_matches_monte_carlo_at_N3():
    """E[(S A S)_12] at N = 3, Sigma = [[2, 1], [1, 3]], A = [[1, 2], [2, -1]]: the
    engine's value (also given by the Wishart identity) against 200,000 contexts
    (seed 11); SE = sample std / sqrt(n); tolerance 5 SE."""
    sigma, a = np.array([[2, 1], [1, 3]]), np.array([[1, 2], [2, -1]])
    u = xs(2, "u")
    ctx = Context(Gaussian(u, sigma.tolist()), N=3)
    sh = ctx.mean(sp.Matrix(u) * sp.Matrix(u).T)
    engine = numeric_expectation((sh * sp.Matrix(a) * sh)[0, 1], ctx)
    S, A = sp.Matrix(sigma), sp.Matrix(a)
    assert engine == (sp.Rational(4, 3) * S * A * S + (A * S).trace() / 3 * S)[0, 1]

    rng = np.random.default_rng(11)
    samples = rng.standard_normal((CONTEXTS, 3, 2)) @ np.linalg.cholesky(sigma.astype(float)).T
    sh_mc = np.einsum("cni,cnj->cij", samples, samples) / 3
    values = (sh_mc @ a @ sh_mc)[:, 0, 1]
    se = values.std(ddof=1) / np.sqrt(CONTEXTS)
    assert abs(float(engine) - values.mean()) <= 5 * se


def test_context_and_gaussian_groups_together():
    """A context mean times an independent Gaussian: E[w^2 mean(u^2)] = s_w s_u exactly,
    and the query-like term mean(u^2) x^2 / N: E = s_u s_x / N."""
    w, x = sp.Symbol("w", real=True), sp.Symbol("xq", real=True)
    (u,) = xs(1, "u")
    ctx = Context(Gaussian([u], [s1]))
    dist = Distribution(Gaussian([w], [s2]), Gaussian([x], [s3]), ctx)
    assert sp.expand(expectation(w ** 2 * ctx.mean(u ** 2), dist) - s1 * s2) == 0
    assert sp.expand(expectation(ctx.mean(u ** 2) * x ** 2 / N, dist) - s1 * s3 / N) == 0
    # Var(mean(u^2)) = 2 s^2 / N
    assert sp.expand(expectation(ctx.mean(u ** 2) ** 2, dist) - s1 ** 2 - 2 * s1 ** 2 / N) == 0


# -- (d) invalid distributions --------------------------------------------------------

def _g():
    return Gaussian(xs(2, "u"), [1, 1])


@pytest.mark.parametrize("n_ctx,match", [
    (0, "at least 1"),
    (-3, "at least 1"),
    (sp.Rational(1, 2), "must be an integer"),
    (2.5, "must be an integer"),
    (sp.Rational(7, 2), "must be an integer"),
    (sp.Symbol("M", negative=True), "not a positive integer"),
    (sp.Symbol("M", positive=True, integer=False), "not a positive integer"),
])
def test_bad_context_length_raises(n_ctx, match):
    with pytest.raises(SymiclError, match=match) as info:
        Context(_g(), N=n_ctx)
    assert "context length N" in str(info.value)


def test_symiclerror_is_a_valueerror():
    assert issubclass(SymiclError, ValueError)


@pytest.mark.parametrize("cov,match", [
    ([[1, 2], [2, 1]], "not positive semi-definite: smallest eigenvalue -1"),
    ([[0, 1], [1, 0]], "not positive semi-definite"),
    ([-1, 2], "not positive semi-definite: variance 1 is -1"),
    ([[1, 0.5], [0, 1]], "not symmetric"),
    ([[1, sp.Symbol("c")], [0, 1]], "not symmetric"),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], "shape 3x3 but there are 2 variables"),
    ([1, 2, 3], "3 entries for 2 variables"),
    (np.eye(3), "shape 3x3 but there are 2 variables"),
    (sp.Matrix([[1, 0]]), "shape 1x2 but there are 2 variables"),
])
def test_bad_covariance_raises(cov, match):
    with pytest.raises(SymiclError, match=match) as info:
        Gaussian(xs(2), cov)
    assert "covariance" in str(info.value)
