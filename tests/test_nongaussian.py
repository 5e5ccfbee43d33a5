"""Non-Gaussian data: the sources of symicl.sources in the expectation engine, the models'
``--inputs`` option, the generated SGD and the kurtosis dependence of the learned gains.

Exactness for Rademacher data is checked by enumerating the finite support (exact
rationals).  The other laws are checked against Monte Carlo: the estimator is the
sample mean over n iid draws (fixed NumPy seed), its standard error
SE = (sample std, ddof=1) / sqrt(n), and each case asserts |engine - MC| <= 5 SE
(a 5 SE miss has probability ~6e-7 under the CLT; hypothesis runs derandomised).
"""

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symicl.context import Context
from symicl.errors import DistributionError, MomentError, NotPolynomialError, SymiclError
from symicl.expectation import Distribution, Expectation, expectation
from symicl.gaussian import Gaussian
from symicl.models.linear_transformer import linear_transformer
from symicl.models import build
from symicl.sources import (Cumulants, Independent, Kurtosis, Laplace, Mixture, Rademacher,
                            StudentT, Uniform, input_constants)

SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_MC = 200_000


def xs(n, name="x"):
    return list(sp.symbols(f"{name}_1:{n + 1}", real=True))


def mono(x, exps):
    return sp.Mul(*[v ** e for v, e in zip(x, exps)])


# -- exactness: Rademacher against enumeration of the finite support ----------------------------
def _random_poly(rng, atoms, extra, theta, terms=6, max_deg=3):
    """A random polynomial in ``atoms`` and ``extra`` with symbolic coefficients theta."""
    out = sp.Integer(0)
    pool = atoms + extra
    for _ in range(terms):
        k = int(rng.integers(1, max_deg + 1))
        factors = [pool[int(i)] for i in rng.integers(0, len(pool), k)]
        c = sp.Rational(int(rng.integers(-3, 4)), int(rng.integers(1, 4)))
        out += c * theta[int(rng.integers(0, len(theta)))] * sp.Mul(*factors)
    return out


@pytest.mark.parametrize("N", [1, 2, 3])
def test_rademacher_context_and_query_equal_enumeration(N):
    """E over Rademacher tokens (variances 4, 1/4) and query (variance 9): the engine with N
    symbolic, evaluated at N, equals the exact average over all 2^(2N + 2) sign patterns."""
    u, x = xs(2, "u"), xs(2, "x")
    theta = sp.symbols("t_1:4", real=True)
    sd_u, sd_x = [2, sp.Rational(1, 2)], [3, 1]
    ctx = Context(Independent(u, Rademacher(), [4, sp.Rational(1, 4)], name="u"))
    query = Independent(x, Rademacher(), [9, 1], name="x")
    means = [ctx.mean(u[0] ** 2), ctx.mean(u[0] * u[1]), ctx.mean(u[1] ** 2), ctx.mean(u[0])]
    rng = np.random.default_rng(N)
    expr = _random_poly(rng, means, x, theta) + means[1] ** 2 * x[0] ** 2 * theta[0] \
        + means[0] * means[1] * means[3] * x[1] * theta[1]
    engine = expectation(expr, Distribution(query, ctx)).subs(ctx.N, N)
    total = sp.Integer(0)
    atoms = list(ctx.atoms.items())
    for signs in itertools.product((-1, 1), repeat=2 * N + 2):
        tok = [[signs[2 * n] * sd_u[0], signs[2 * n + 1] * sd_u[1]] for n in range(N)]
        values = {a: sp.Rational(sum(mono(u, m).subs(dict(zip(u, t))) for t in tok), N)
                  for a, m in atoms}
        values.update({x[0]: signs[-2] * sd_x[0], x[1]: signs[-1] * sd_x[1]})
        total += expr.xreplace(values)
    assert sp.expand(engine - total / 2 ** (2 * N + 2)) == 0


def test_rademacher_mixture_equals_enumeration():
    """x = A u with u Rademacher and a Gaussian block beside it: exact."""
    u, x, g = xs(3, "u"), xs(2, "x"), xs(1, "g")
    a = sp.Symbol("a", real=True)
    A = [[1, a, 0], [2, -1, sp.Rational(1, 2)]]
    mix = Mixture(x, A, [Independent(u, Rademacher(), name="u")], name="x")
    gauss = Gaussian(g, [3], name="g")
    expr = x[0] ** 4 * x[1] ** 2 + x[0] * x[1] ** 3 * g[0] ** 2 - 2 * x[1] ** 2 * g[0] ** 4
    engine = expectation(expr, Distribution(mix, gauss))
    total = sp.Integer(0)
    for signs in itertools.product((-1, 1), repeat=3):
        xv = sp.Matrix(A) * sp.Matrix(signs)
        # the Gaussian g enters through E[g^2] = 3, E[g^4] = 27
        e = sp.expand(expr.xreplace({x[0]: xv[0], x[1]: xv[1]}))
        total += e.xreplace({g[0] ** 4: 27, g[0] ** 2: 3})
    assert sp.expand(engine - total / 8) == 0


def test_linear_transformer_rademacher_d1_has_no_finite_n_correction():
    """With +-sqrt(s) tokens mean(u^2) = s exactly: the aligned loss is s (a s - 1)^2 / 2."""
    m = build("linear-transformer", dim=1, reduction="aligned", inputs="rademacher")
    p, q, s = m.symbol("p_1"), m.symbol("q_1"), m.symbol("s_1")
    assert sp.expand(m.expected_loss() - s * (p * q * s - 1) ** 2 / 2) == 0


# -- the other laws against Monte Carlo -------------------------------------------------------
LAWS = [Uniform(), Laplace(), StudentT(11), Kurtosis(sp.Rational(3, 2)), Kurtosis(-1)]


@settings(max_examples=12, **SETTINGS)
@given(law=st.sampled_from(LAWS), exps=st.lists(st.integers(0, 4), min_size=2, max_size=2),
       seed=st.integers(0, 2 ** 16))
def test_independent_sources_against_monte_carlo(law, exps, seed):
    """E[x1^a x2^b] for x_i = sqrt(v_i) e_i (v = 2, 1/2) against the sample mean of
    N_MC draws of the same law (law.draw), within 5 SE."""
    x = xs(2)
    src = Independent(x, law, [2, sp.Rational(1, 2)])
    exact = float(expectation(mono(x, exps), src))
    draws = src.draw(np.random.default_rng(seed), (N_MC,))
    values = np.prod(draws ** np.array(exps), axis=-1)
    se = values.std(ddof=1) / np.sqrt(N_MC)
    assert abs(values.mean() - exact) <= 5 * se + 1e-12


@settings(max_examples=8, **SETTINGS)
@given(law=st.sampled_from(LAWS[:2] + LAWS[3:]), N=st.integers(1, 4),
       which=st.sampled_from([(0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]))
def test_context_means_against_monte_carlo(law, N, which):
    """E[mean(m_i) mean(m_j) x^2] with a non-Gaussian context (symbolic N, then N = 1..4) and
    mixture query x = u_1 + u_2 / 2 (a Laplace and a Gaussian source), within 5 SE."""
    u, w = xs(2, "u"), xs(2, "w")
    x = sp.Symbol("x_1", real=True)
    ctx = Context(Independent(u, law, [1, 2], name="u"))
    query = Mixture([x], [[1, sp.Rational(1, 2)]],
                    [Independent(w[:1], Laplace(), name="w"), Gaussian(w[1:], [3], name="v")])
    monos = [u[0] ** 2, u[0] * u[1], u[1] ** 2 * u[0] ** 2]
    i, j = which
    expr = ctx.mean(monos[i]) * ctx.mean(monos[j]) * x ** 2
    exact = float(expectation(expr, Distribution(query, ctx)).subs(ctx.N, N))
    rng = np.random.default_rng(100 + N)
    tok = ctx.sample.draw(rng, (N_MC, N))
    f = [sp.lambdify(u, m, "numpy") for m in monos]
    mean = [np.mean(np.broadcast_to(fk(tok[..., 0], tok[..., 1]), tok.shape[:-1]), axis=-1)
            for fk in f]
    xv = query.draw(rng, (N_MC,))[..., 0]
    values = mean[i] * mean[j] * xv ** 2
    se = values.std(ddof=1) / np.sqrt(N_MC)
    assert abs(values.mean() - exact) <= 5 * se


# -- the Gaussian path, backends, conventions --------------------------------------------------
def test_kurtosis_zero_is_the_gaussian_model_exactly():
    """kappa = 0 of the Gamma-mixture convention has Gaussian moments: the full d = 2
    transformer's loss equals the Gaussian build's, and the Gaussian build records no
    inputs option (so committed derivations stay byte-identical)."""
    g = build("linear-transformer", dim=2)
    k = build("linear-transformer", dim=2, inputs="kurtosis")
    assert "inputs" not in g.options and k.options["inputs"] == "kurtosis"
    kappa = k.symbol("kappa")
    assert sp.expand(k.expected_loss().xreplace({kappa: 0}) - g.expected_loss()) == 0
    assert kappa in sp.sympify(k.expected_loss()).free_symbols


def test_gaussian_moment_interface_matches_wick():
    x = xs(3)
    c = sp.Symbol("c", real=True)
    g = Gaussian(x, [[2, c, 0], [c, 1, 0], [0, 0, 5]])
    for e in [(2, 2, 0), (1, 1, 2), (4, 0, 2), (3, 1, 0)]:
        assert sp.expand(g.moment(e) - expectation(mono(x, e), g)) == 0


def test_sympy_backend_equals_flint_on_sources():
    u, x = xs(2, "u"), xs(2, "x")
    s = sp.Symbol("s", positive=True)
    ctx = Context(Independent(u, Kurtosis(), [s, 1], name="u"))
    query = Independent(x, Laplace(), [s, 2], name="x")
    t = sp.Symbol("t", real=True)
    expr = (t * ctx.mean(u[0] ** 2) * x[0] + ctx.mean(u[0] * u[1]) * x[1]) ** 2 * x[0] ** 2
    dist = Distribution(query, ctx)
    kappa = sp.Symbol("kappa", real=True)
    a = Expectation(dist, [t], backend="flint")(expr)
    b = Expectation(dist, [t], backend="sympy")(expr)
    assert a == b and kappa in a.free_symbols


def test_laws_have_their_stated_kurtosis_and_cumulants():
    assert Uniform().excess_kurtosis() == sp.Rational(-6, 5)
    assert Rademacher().excess_kurtosis() == -2 and Laplace().excess_kurtosis() == 3
    assert StudentT(7).excess_kurtosis() == 2           # 6 / (nu - 4)
    kappa = sp.Symbol("kappa", real=True)
    assert Kurtosis().excess_kurtosis() == kappa
    assert sp.expand(Kurtosis().moment(6) - (3 + kappa) * (5 + 2 * kappa)) == 0
    assert Kurtosis(-2).moment(8) == 1 and Kurtosis(0).moment(8) == 105
    # the Laplace law's cumulants (c4 = 3, c6 = 30) give back its moments
    lap = Cumulants({4: 3, 6: 30, 8: 630})
    assert [lap.moment(k) for k in (2, 4, 6, 8)] == [Laplace().moment(k) for k in (2, 4, 6, 8)]


# -- errors ----------------------------------------------------------------------------------
def test_missing_moments_and_bad_sources_are_clear_errors():
    x = xs(1)
    with pytest.raises(MomentError, match="nu > 2"):
        StudentT(2)
    with pytest.raises(MomentError, match=r"E\[x\^4\] does not exist.*nu = 4"):
        expectation(x[0] ** 4 + x[0] ** 2, Independent(x, StudentT(4)))
    assert expectation(x[0] ** 2, Independent(x, StudentT(3))) == 1     # only what is needed
    with pytest.raises(DistributionError, match=">= -2"):
        Kurtosis(-3)
    s = sp.Symbol("s", positive=True)
    with pytest.raises(NotPolynomialError, match="write the variance as a square"):
        expectation(x[0] ** 3, Independent(x, Cumulants({3: 1}), [s]))
    assert expectation(x[0] ** 3, Independent(x, Cumulants({3: 1}), [s ** 2])) == s ** 3
    with pytest.raises(DistributionError, match="cannot be sampled"):
        Independent(x, Cumulants({4: 1})).draw(np.random.default_rng(0), (3,))
    u = xs(2, "u")
    mix = Mixture(x, [[1, 1]], [Independent(u, Uniform(), name="u")])
    with pytest.raises(DistributionError, match="sources u_1 of a mixture"):
        expectation(u[0] * x[0], mix)
    with pytest.raises(SymiclError, match="--kappa belongs to --inputs kurtosis"):
        input_constants({"inputs": "uniform", "kappa": 1.0})
    with pytest.raises(SymiclError, match="unknown inputs"):
        build("deep-linear", inputs="cauchy")


# -- sampling, verify, the kurtosis gains ----------------------------------------------------
def test_sampler_draws_non_gaussian_contexts_by_tokens():
    """Rademacher tokens: mean(u_1^2) = s_1 in every draw, mean(u_1 u_2) in {0, +-2/N * ...}."""
    from symicl.simulate.sampler import DataSampler

    m = build("linear-transformer", dim=2, inputs="rademacher")
    ctx = m.distribution.contexts[0]
    a11, a12 = ctx.atom((2, 0)), ctx.atom((1, 1))
    sampler = DataSampler(m.distribution, [a11, a12], {"N": 5, "s_1": 2.0, "s_2": 0.5})
    out = sampler.draw(np.random.default_rng(0), (1000,))
    assert np.allclose(out[:, 0], 2.0)
    assert set(np.round(out[:, 1] * 5, 12)) <= {-5.0, -3.0, -1.0, 1.0, 3.0, 5.0}


def test_verify_refuses_gaussian_hand_written_simulator(tmp_path):
    from symicl.cli import main

    assert main(["verify", "deep-linear", "--quick", "--inputs", "uniform", "--simulator",
                 "hand-written", "--no-progress", "--no-plots", "--out", str(tmp_path)]) == 2


def test_verify_cli_passes_on_rademacher_inputs(tmp_path):
    """The generated SGD on Rademacher data against the derived non-Gaussian flow."""
    from symicl.cli import main

    assert main(["verify", "linear-transformer", "--quick", "--dim", "1", "--inputs",
                 "rademacher", "--no-progress", "--no-plots", "--out", str(tmp_path)]) == 0


def _mc_gradient_z(model, theta, constants, n, seed, components):
    """z = mean / SE of the per-example gradient components over n fresh examples (plus the
    mean itself: Rademacher data can make the gradient exactly 0, SE 0)."""
    from symicl.simulate.generated import GeneratedSGD

    sim = GeneratedSGD(model, constants, backend="numpy")
    _, g = sim.examples(np.asarray(theta, dtype=float), n, np.random.default_rng(seed))
    g = g[:, components]
    return g.mean(axis=0), g.std(axis=0, ddof=1) / np.sqrt(n)


def _vanishes(mean, se):
    return bool(np.all(np.abs(mean) <= 5 * se + 1e-12))


@pytest.mark.parametrize("inputs, kappa", [("rademacher", -2), ("laplace", 3)])
def test_kurtosis_gain_d1_checked_by_monte_carlo_gradient(inputs, kappa):
    """The stable gain of the d = 1 aligned model derived with kappa symbolic (the fixed-point
    family p q = a*), at the kappa of the data: the mean per-example gradient dl/dq at
    (p, q) = (1, a*) on real draws of that data vanishes within 5 SE (estimator: mean over
    n = 200000 examples, SE = std / sqrt(n); + 1e-12 for the exact zero of Rademacher data,
    where mean(u^2) = s), while at the Gaussian gain N/((N + 2) s) it is more than 10 SE
    from 0."""
    from symicl.analysis.fixed_points import fixed_points

    sym = build("linear-transformer", dim=1, reduction="aligned", inputs="kurtosis")
    family = [pt for pt in fixed_points(sym, square_roots=["s_1"]) if pt.free][0]
    gain = sp.factor(family.values[sym.symbol("q_1")] * sym.symbol("p_1"))
    N, s = 4, 2
    a_star = float(gain.subs({sym.symbol(k): v for k, v in
                              (("N", N), ("s_1", s), ("kappa", kappa))}))
    data = build("linear-transformer", dim=1, reduction="aligned", inputs=inputs)
    consts = {"N": N, "s_1": s}
    assert _vanishes(*_mc_gradient_z(data, [1.0, a_star], consts, 200_000, 7, [1]))
    mean, se = _mc_gradient_z(data, [1.0, N / ((N + 2) * s)], consts, 200_000, 8, [1])
    assert np.all(np.abs(mean) > 10 * se)


@pytest.mark.parametrize("inputs, kappa", [("rademacher", -2), ("laplace", 3), ("uniform", -1.2)])
def test_kurtosis_fixed_point_d2_checked_by_monte_carlo_gradient(inputs, kappa):
    """The committed d = 2 fixed point with every mode learned (derivations/
    linear_transformer_aligned_kurtosis, kappa symbolic; a family in p_2, taken at p_2 = 1) at
    N = 4, s = (2, 1/2) and the kappa of the data: every component of the mean per-example
    gradient on real draws of that data vanishes within 5 SE (n = 200000 examples, SE =
    std / sqrt(n)); the same point at kappa = 0 (Gaussian) is more than 10 SE off."""
    import json
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "derivations",
                        "linear_transformer_aligned_kurtosis", "derivation.json")
    with open(path, encoding="utf-8") as fh:
        points = json.load(fh)["fixed_points"]["symbolic"]
    sym = build("linear-transformer", dim=2, reduction="aligned", inputs="kurtosis")
    names = {s.name: s for s in sym.constants + sym.parameters}
    learned = [pt["values"] for pt in points if all(v != "0" for v in pt["values"].values())]
    values = learned[-1]                        # p_1 > 0 on the family (the other is -p_1)
    N, s1, s2 = 4, sp.Integer(2), sp.Rational(1, 2)

    def at(k):
        subs = {names["N"]: N, names["s_1"]: s1, names["s_2"]: s2, names["kappa"]: k,
                names["p_2"]: 1}
        return [float(sp.sympify(values[p.name], locals=names).subs(subs))
                for p in sym.parameters]

    data = build("linear-transformer", dim=2, reduction="aligned", inputs=inputs)
    consts = {"N": N, "s_1": 2.0, "s_2": 0.5}
    theta = at(sp.nsimplify(kappa))
    assert theta[0] > 0
    assert _vanishes(*_mc_gradient_z(data, theta, consts, 200_000, 9, [0, 1, 2, 3]))
    mean, se = _mc_gradient_z(data, at(0), consts, 200_000, 10, [0, 1, 2, 3])
    assert np.max(np.abs(mean) / se) > 10


@pytest.mark.parametrize("law", ["gaussian", "rademacher", "laplace"])
def test_task_law_full_model_against_monte_carlo(law):
    """Non-Gaussian tasks (``task_law``): the full d = 1 model's derived loss, where the task's
    fourth moment enters through M_yy = lambda^2 mean(u^2), against an independent NumPy
    forward pass.  Estimator: the mean of 1/2 (prediction - y)^2 over n = 400 000 prompts
    (seed 11), SE = sample std / sqrt(n); tolerance 5 SE.  The Rademacher and Laplace losses
    also differ from the Gaussian one by more than 8 SE (E[lambda^4] = 1, 6 against 3)."""
    theta = {"WP_1_1": 0.3, "WP_1_2": -0.2, "WP_2_1": 0.5, "WP_2_2": 0.8,
             "WQ_1_1": 0.6, "WQ_1_2": 0.35, "WQ_2_1": -0.7, "WQ_2_2": 0.1}
    N = 4
    model = linear_transformer(1, reduction="none", N=N, spectrum=[1], task_law=law)
    assert model.options.get("task_law", "gaussian") == law
    derived = float(model.expected_loss().subs({p: theta[p.name] for p in model.parameters}))
    gauss = linear_transformer(1, reduction="none", N=N, spectrum=[1])
    derived_gauss = float(gauss.expected_loss().subs({p: theta[p.name]
                                                      for p in gauss.parameters}))
    rng = np.random.default_rng(11)
    n = 400_000
    u, xq = rng.standard_normal((n, N)), rng.standard_normal(n)
    lam = {"gaussian": rng.standard_normal(n), "rademacher": rng.choice([-1.0, 1.0], n),
           "laplace": rng.laplace(0.0, 1.0 / np.sqrt(2.0), n)}[law]
    WP = np.array([[theta["WP_1_1"], theta["WP_1_2"]], [theta["WP_2_1"], theta["WP_2_2"]]])
    WQ = np.array([[theta["WQ_1_1"], theta["WQ_1_2"]], [theta["WQ_2_1"], theta["WQ_2_2"]]])
    z = np.stack([u, lam[:, None] * u], axis=1)                    # (n, 2, N)
    zq = np.stack([xq, np.zeros(n)], axis=1)                        # (n, 2)
    M = np.einsum("kin,kjn->kij", z, z) / N + np.einsum("ki,kj->kij", zq, zq) / N
    pred = np.einsum("j,kjl,lm,km->k", WP[1], M, WQ, zq)
    err = 0.5 * (pred - lam * xq) ** 2
    mean, se = err.mean(), err.std(ddof=1) / np.sqrt(n)
    assert abs(mean - derived) <= 5 * se, (law, mean, derived, se)
    if law != "gaussian":
        assert abs(derived - derived_gauss) > 8 * se
