"""The generated Monte Carlo simulator (``symicl.simulate.GeneratedSGD``).

(a) its mean per-example gradient is the derived expected gradient;
(b) at the built-in transformer it agrees in distribution with the
    hand-written ``TransformerSGD`` fast path;
(c) the Numba and NumPy back ends compute the same numbers from the same draws;
(d) a model given by its expected loss alone is refused;
and the data sampler draws the stated law (correlated Gaussians, Wishart and
token contexts).

Seeds are fixed, so each statistical check is deterministic; the z
tolerances below are chosen so that a correct simulator would fail at a
fresh seed with probability < 1e-4 per test.
"""

import numpy as np
import pytest
import sympy as sp

from symicl.codegen import kernels
from symicl.context import Context
from symicl.errors import ModelError
from symicl.models import build
from symicl.models.linear_transformer import hand_written
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.simulate import DataSampler, GeneratedSGD
from symicl.symbols import vector

TRANSFORMER_CONSTANTS = {"N": 8, "s_1": 2.0, "s_2": 0.5}
DEEP_CONSTANTS = {"T_1_1": 2.0, "T_1_2": 0.5, "T_2_1": -0.25, "T_2_2": 1.0}


@pytest.fixture(scope="module")
def transformer():
    return build("linear-transformer", dim=2)


@pytest.fixture(scope="module")
def deep_linear():
    return build("deep-linear", n_in=2, n_hidden=2, n_out=2)


@pytest.mark.parametrize("which", ["transformer", "deep_linear"])
def test_mean_example_gradient_is_the_derived_gradient(which, request):
    """Estimator: the mean of the per-example gradient g(theta; xi) over n = 200,000 fresh
    examples (``GeneratedSGD.examples``) at one random theta (seed 3), SE = sample std
    (ddof 1) / sqrt(n) per parameter.  Every parameter within 5 SE of the derived expected
    gradient -flow(theta) (about 30 parameters, so a false failure has probability about
    30 x 6e-7); parameters whose per-example gradient is identically 0 (SE = 0: the inert
    blocks of the full transformer) must have an expected gradient of exactly 0."""
    model = request.getfixturevalue(which)
    consts = TRANSFORMER_CONSTANTS if which == "transformer" else DEEP_CONSTANTS
    k = kernels(model, "numpy")
    sim = GeneratedSGD(model, consts, batch=1)
    assert sim.parameters == k.parameters
    rng = np.random.default_rng(3)
    theta = rng.normal(0.0, 0.5, len(k.parameters))
    expected = -k.flow(theta, k.constants_vector(consts))
    n = 200_000
    _, g = sim.examples(theta, n, rng)
    mean, se = g.mean(axis=0), g.std(axis=0, ddof=1) / np.sqrt(n)
    inert = se == 0
    assert np.all(expected[inert] == 0) and np.all(mean[inert] == 0)
    z = (mean[~inert] - expected[~inert]) / se[~inert]
    assert np.max(np.abs(z)) < 5, z
    assert (~inert).sum() >= (8 if which == "deep_linear" else 12)


def _stats(loss, grad):
    """Per-quantity mean, variance and their standard errors over independent rows."""
    v = np.column_stack([loss, grad])
    n = v.shape[0]
    mean, var = v.mean(axis=0), v.var(axis=0, ddof=1)
    m4 = np.mean((v - mean) ** 4, axis=0)
    return mean, var, np.sqrt(var / n), np.sqrt(np.maximum(m4 - var ** 2, 0.0) / n)


def test_generated_and_hand_written_transformer_agree_in_distribution(transformer):
    """At one fixed theta, S = 40,000 independent minibatches of B = 8 from each simulator
    (independent seeds): the generated one (Numba, its own sampler) and the hand-written
    TransformerSGD (Wishart sampler) through the theta-vector wrapper.  For the minibatch loss
    and four gradient entries (one per block row/column that acts), the means and the
    variances agree: |z| < 5, z = difference / sqrt(SE_1^2 + SE_2^2), SE of a variance
    sqrt((m4 - var^2) / S)."""
    B, S = 8, 40_000
    gen = GeneratedSGD(transformer, TRANSFORMER_CONSTANTS, batch=B)
    hand = hand_written(transformer, {"dim": 2, "tasks": "aligned"}, TRANSFORMER_CONSTANTS, B)
    assert hand.parameters == gen.parameters
    theta = np.random.default_rng(4).normal(0.0, 0.5, len(gen.parameters))
    pick = [gen.parameters.index(p) for p in ("WP_3_1", "WP_4_4", "WQ_1_1", "WQ_2_1")]
    rows = np.broadcast_to(theta, (S, len(theta)))
    out = []
    for sim, seed in ((gen, 5), (hand, 6)):
        loss, grad = sim.minibatch(np.array(rows), np.random.default_rng(seed))
        assert loss.shape == (S,) and grad.shape == (S, len(theta))
        out.append(_stats(loss, grad[:, pick]))
    (m1, v1, sm1, sv1), (m2, v2, sm2, sv2) = out
    assert np.all(sv1 > 0) and np.all(sv2 > 0)
    z_mean = (m1 - m2) / np.hypot(sm1, sm2)
    z_var = (v1 - v2) / np.hypot(sv1, sv2)
    assert np.max(np.abs(z_mean)) < 5, z_mean
    assert np.max(np.abs(z_var)) < 5, z_var


@pytest.mark.parametrize("which", ["transformer", "deep_linear"])
def test_numba_and_numpy_back_ends_agree_on_the_same_draws(which, request):
    """Same seed, so the same draws (the sampler is shared code); the two back ends then
    differ only in the order of floating-point sums: relative 1e-12."""
    model = request.getfixturevalue(which)
    consts = TRANSFORMER_CONSTANTS if which == "transformer" else DEEP_CONSTANTS
    sims = {b: GeneratedSGD(model, consts, batch=16, backend=b) for b in ("numba", "numpy")}
    theta = np.random.default_rng(8).normal(0.0, 0.5, (5, len(sims["numba"].parameters)))
    got = {b: (s.minibatch(theta, np.random.default_rng(9)),
               s.examples(theta[0], 50, np.random.default_rng(10))) for b, s in sims.items()}
    for a, b in zip(got["numba"], got["numpy"]):
        for x, y in zip(a, b):
            assert x.shape == y.shape
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * np.max(np.abs(y)))
    draws = [s.sampler.draw(np.random.default_rng(11), (5, 16)) for s in sims.values()]
    assert np.array_equal(*draws)


def test_model_given_by_its_loss_alone_is_refused():
    model = build("linear-transformer-per-mode", dim=1)
    with pytest.raises(ModelError, match="expected loss alone.*cannot be simulated"):
        GeneratedSGD(model, {"N": 8, "s_1": 1.0})


@pytest.mark.parametrize("N", [5, 2])
def test_sampler_draws_the_law(N):
    """x ~ N(0, C) (3 variables, 2 used, out of order) and a context of N samples u ~ N(0, C)
    with all six means of degree 2 (N = 5: the Wishart path; N = 2 < 3: the token path).
    Over n = 200,000 draws: E[x_i x_j] = C_ij, E[mean(u_i u_j)] = C_ij and
    Var[mean(u_i u_j)] = (C_ij^2 + C_ii C_jj) / N, each within 5 SE (SE from the sample's
    own second and fourth moments); the means of x within 5 SE of 0."""
    C = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
    x, u = vector("x", 3), vector("u", 3)
    ctx = Context(Gaussian(u, sp.Matrix(C), name="u"), N=sp.Symbol("N"))
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    atoms = [ctx.atom(tuple(int(k == i) + int(k == j) for k in range(3))) for i, j in pairs]
    sampler = DataSampler(Distribution(Gaussian(x, sp.Matrix(C), name="x"), ctx),
                          [x[2], x[0]] + atoms, {"N": N})
    n = 200_000
    X = sampler.draw(np.random.default_rng(12), (n // 1000, 1000)).reshape(n, -1)
    z = []

    def check(values, expected):
        se = values.std(ddof=1) / np.sqrt(n)
        z.append((values.mean() - expected) / se)

    xs = {2: X[:, 0], 0: X[:, 1]}
    for i, j in ((2, 2), (0, 0), (0, 2)):
        check(xs[i] * xs[j], C[i, j])
    for k in xs:
        check(xs[k], 0.0)
    for c, (i, j) in enumerate(pairs):
        a = X[:, 2 + c]
        check(a, C[i, j])
        check((a - C[i, j]) ** 2, (C[i, j] ** 2 + C[i, i] * C[j, j]) / N)
    assert np.max(np.abs(z)) < 5, z
