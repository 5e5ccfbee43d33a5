"""The SGD simulators: hand-written gradients, seeding, divergence, and the
exact check of the derivation (property 2 of the verification issue)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symicl.codegen import kernels
from symicl.errors import SymiclError
from symicl.models import build
from symicl.simulate import DeepLinearSGD, DivergenceError, TransformerSGD


def fd_check(f, W, g, eps=1e-6):
    """Central differences of a scalar function of W against the gradient g."""
    out = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        E = np.zeros_like(W)
        E[idx] = eps
        out[idx] = (f(W + E) - f(W - E)) / (2 * eps)
    return np.max(np.abs(out - g))


@pytest.mark.parametrize("tasks", ["aligned", "isotropic"])
def test_transformer_prompt_gradient_is_the_derivative(tasks):
    sim = TransformerSGD(2, 5, [1.3, 0.6], tasks=tasks)
    rng = np.random.default_rng(1)
    D = sim.D
    WP, WQ = rng.normal(0, 0.5, (D, D)), rng.normal(0, 0.5, (D, D))
    M, zq, yq = sim.sample(rng, ())
    _, gP, gQ = sim.prompt_gradients(WP, WQ, M, zq, yq)
    assert fd_check(lambda W: sim.prompt_gradients(W, WQ, M, zq, yq)[0], WP, gP) < 1e-7
    assert fd_check(lambda W: sim.prompt_gradients(WP, W, M, zq, yq)[0], WQ, gQ) < 1e-7


def test_deep_linear_prompt_gradient_is_the_derivative():
    rng = np.random.default_rng(2)
    sim = DeepLinearSGD(rng.normal(size=(2, 3)))
    W1, W2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    x = rng.normal(size=3)
    _, g1, g2 = sim.prompt_gradients(W1, W2, x)
    assert fd_check(lambda W: sim.prompt_gradients(W, W2, x)[0], W1, g1) < 1e-7
    assert fd_check(lambda W: sim.prompt_gradients(W1, W, x)[0], W2, g2) < 1e-7


def theta_from_blocks(names, blocks):
    out = []
    for n in names:
        head, i, j = n.split("_")
        out.append(blocks[head][int(i) - 1, int(j) - 1])
    return np.array(out)


@settings(derandomize=True, deadline=None, max_examples=6)
@given(d=st.integers(1, 2), N=st.integers(1, 12), seed=st.integers(0, 2**31 - 1),
       tasks=st.sampled_from(["aligned", "isotropic"]))
def test_mean_stochastic_gradient_equals_the_derived_gradient(d, N, seed, tasks):
    """Estimator: mean per-prompt gradient over n = 200,000 prompts; SE = std/sqrt(n);
    every parameter within 5 SE of the derived expected gradient (and the loss too)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.3, 2.0, d)
    m = build("linear-transformer", dim=d, tasks=tasks)
    k = kernels(m, "numpy")
    sim = TransformerSGD(d, N, s, tasks=tasks)        # the defaults: sampler "auto"
    assert sim.context_sampler == ("wishart" if N >= d else "tokens")
    D = sim.D
    WP, WQ = rng.normal(0, 0.5, (D, D)), rng.normal(0, 0.5, (D, D))
    consts = {"N": N, **{f"s_{a + 1}": s[a] for a in range(d)}}
    c = k.constants_vector(consts)
    theta = theta_from_blocks(k.parameters, {"WP": WP, "WQ": WQ})
    expected = -k.flow(theta, c)
    n = 200_000
    M, zq, yq = sim.sample(rng, (n,))
    loss, gP, gQ = sim.prompt_gradients(WP, WQ, M, zq, yq)
    per = theta_from_blocks(k.parameters, {"WP": gP.transpose(1, 2, 0),
                                           "WQ": gQ.transpose(1, 2, 0)})   # (P, n)
    mean, se = per.mean(axis=1), per.std(axis=1, ddof=1) / np.sqrt(n)
    inert = se == 0
    assert np.all(expected[inert] == 0) and np.all(mean[inert] == 0)
    z = (mean[~inert] - expected[~inert]) / se[~inert]
    assert np.max(np.abs(z)) < 5, dict(zip(np.array(k.parameters)[~inert], np.round(z, 2)))
    zl = (loss.mean() - k.loss(theta, c)) / (loss.std(ddof=1) / np.sqrt(n))
    assert abs(zl) < 5


def test_runs_are_seeded_and_reproducible():
    sim = TransformerSGD(1, 4, [1.0], batch=8, eta=0.05, task_set=3)
    WP = np.zeros((2, 2)); WP[1, 1] = 0.1
    WQ = np.zeros((2, 2)); WQ[0, 0] = 0.1
    a = sim.run(WP, WQ, steps=20, seeds=3, seed=11, record_every=5)
    b = sim.run(WP, WQ, steps=20, seeds=3, seed=11, record_every=5)
    c = sim.run(WP, WQ, steps=20, seeds=3, seed=12, record_every=5)
    assert np.array_equal(a.params["WP"], b.params["WP"]) and np.array_equal(a.loss, b.loss, equal_nan=True)
    assert not np.array_equal(a.params["WP"], c.params["WP"])
    assert a.params["WP"].shape == (3, 5, 2, 2) and np.allclose(a.t, 0.05 * a.steps)


def test_divergence_stops_with_a_clear_message():
    sim = DeepLinearSGD(np.array([[3.0]]), batch=16, eta=2.0)
    with pytest.raises(DivergenceError, match=r"diverged at step \d+.*eta = 2.*bound.*0\.33"):
        sim.run(np.array([[1.0]]), np.array([[1.0]]), steps=500, stability_bound=1 / 3)


def test_bad_configuration():
    with pytest.raises(SymiclError, match="context length"):
        TransformerSGD(2, 0, [1, 1])
    with pytest.raises(SymiclError, match="spectrum"):
        TransformerSGD(2, 4, [1, -1])
    with pytest.raises(SymiclError, match="do not fit"):
        DeepLinearSGD(np.eye(2)).run(np.eye(3), np.eye(2), steps=1)


# -- the context samplers and the fused kernels --------------------------------------------

def _moment_features(M, zq, yq):
    """Per prompt: the unique entries m of M, all products m_a m_b (a <= b),
    y_q z_q^T and y_q^2 -- first and second moments of M and the query's law."""
    D = M.shape[-1]
    iu = np.triu_indices(D)
    m = M[:, iu[0], iu[1]]
    ia = np.triu_indices(m.shape[1])
    return np.concatenate([m, m[:, ia[0]] * m[:, ia[1]],
                           (yq[:, :, None] * zq[:, None, :]).reshape(len(yq), -1), yq * yq], axis=1)


@pytest.mark.parametrize("tasks,query,scale", [("aligned", True, "N"), ("isotropic", False, "N+1")])
def test_wishart_sampler_matches_the_token_sampler_in_distribution(tasks, query, scale):
    """Estimator: the mean of each feature (entries of M, their pairwise products, y_q z_q and
    y_q^2) over n = 60,000 prompts from each sampler (independent seeds); SE of the difference
    = sqrt(var_tokens / n + var_wishart / n); every feature within 5 SE.  d = 2, N = 3 (close
    to N = d, where the Bartlett chi degrees of freedom matter most), anisotropic s."""
    n, s = 60_000, [1.4, 0.5]
    feats = []
    for sampler, seed in (("tokens", 31), ("wishart", 32)):
        sim = TransformerSGD(2, 3, s, tasks=tasks, scale=scale, query_in_moments=query,
                             context_sampler=sampler)
        assert sim.context_sampler == sampler
        feats.append(_moment_features(*sim.sample(np.random.default_rng(seed), (n,))))
    (ft, fw) = feats
    se = np.sqrt(ft.var(axis=0, ddof=1) / n + fw.var(axis=0, ddof=1) / n)
    live = se > 0
    assert np.all(ft[:, ~live] == fw[:, ~live])             # structural zeros agree exactly
    z = (ft.mean(axis=0) - fw.mean(axis=0))[live] / se[live]
    assert np.max(np.abs(z)) < 5, np.round(z, 2)
    assert 0.3 < np.mean(z * z) < 2.0                        # the SEs are not inflated


def test_context_sampler_choice_and_the_N_below_d_fallback():
    assert TransformerSGD(3, 3, [1, 1, 1]).context_sampler == "wishart"        # auto, N >= d
    sim = TransformerSGD(3, 2, [1, 0.5, 0.2])                                    # auto, N < d
    assert sim.context_sampler == "tokens"
    M, zq, yq = sim.sample(np.random.default_rng(0), (4, 5))
    assert M.shape == (4, 5, 6, 6) and zq.shape == (4, 5, 6) and yq.shape == (4, 5, 3)
    assert np.linalg.matrix_rank(M[0, 0]) == 3                   # rank N + 1 (query inside)
    with pytest.raises(SymiclError, match="N >= d"):
        TransformerSGD(3, 2, [1, 1, 1], context_sampler="wishart")
    with pytest.raises(SymiclError, match="context_sampler"):
        TransformerSGD(2, 4, [1, 1], context_sampler="bartlett")
    with pytest.raises(SymiclError, match="backend"):
        TransformerSGD(2, 4, [1, 1], backend="torch")


@pytest.mark.parametrize("tasks", ["aligned", "isotropic"])
def test_numba_kernels_equal_the_numpy_forms(tasks):
    """The same draws through the Numba and NumPy assemblies of M, and the same minibatch
    through the fused gradient kernel and prompt_gradients: equal to rounding."""
    kw = {"tasks": tasks, "batch": 64, "task_set": 5, "scale": "N+1"}
    fast = TransformerSGD(3, 7, [1.2, 0.7, 0.3], backend="numba", **kw)
    ref = TransformerSGD(3, 7, [1.2, 0.7, 0.3], backend="numpy", **kw)
    draws = fast.wishart_draws(np.random.default_rng(4), (2, 64))
    for a, b in zip(fast.wishart_moments_numba(*draws), ref.wishart_moments_numpy(*draws)):
        assert a.shape == b.shape and np.max(np.abs(a - b)) < 1e-13
    rng = np.random.default_rng(5)
    D = fast.D
    WP, WQ = rng.normal(0, 0.5, (2, D, D)), rng.normal(0, 0.5, (2, D, D))
    bank = fast.draw_tasks(rng, (2, 5))
    for sampler in ("wishart", "tokens"):
        fast.context_sampler = ref.context_sampler = sampler
        a = fast.minibatch_gradient(WP, WQ, np.random.default_rng(6), bank)
        b = ref.minibatch_gradient(WP, WQ, np.random.default_rng(6), bank)
        for u, v in zip(a, b):
            assert u.shape == v.shape and np.max(np.abs(u - v)) < 1e-12 * max(1, np.max(np.abs(v)))


@pytest.mark.parametrize("sampler,backend,tasks", [("wishart", "numba", "isotropic"),
                                                   ("tokens", "numba", "aligned"),
                                                   ("wishart", "numpy", "aligned")])
def test_every_sampler_and_backend_is_seeded(sampler, backend, tasks):
    sim = TransformerSGD(2, 4, [1.0, 0.4], tasks=tasks, batch=8, eta=0.05, task_set=3,
                         context_sampler=sampler, backend=backend)
    D = sim.D
    WP = np.zeros((D, D)); WP[D - 1, D - 1] = 0.1
    WQ = np.zeros((D, D)); WQ[0, 0] = 0.1
    a = sim.run(WP, WQ, steps=10, seeds=2, seed=11, record_every=5)
    b = sim.run(WP, WQ, steps=10, seeds=2, seed=11, record_every=5)
    c = sim.run(WP, WQ, steps=10, seeds=2, seed=12, record_every=5)
    assert np.array_equal(a.params["WQ"], b.params["WQ"]) and np.array_equal(a.loss, b.loss, equal_nan=True)
    assert not np.array_equal(a.params["WQ"], c.params["WQ"])
