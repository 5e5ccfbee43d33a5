"""Representations over training: network function, RSMs and the NTK, from the closed form and
the integrated flow.

Independent check typed here only: the NTK of f(x) = W2 W1 x,
Theta(x, x') = (x^T x') W2 W2^T + (x^T W1^T W1 x') I_out
(Braun, Dominé, Fitzgerald & Saxe, "Exact learning dynamics of deep linear networks with prior
knowledge", NeurIPS 2022).
"""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symicl.analysis.prior_knowledge import balanced_weights
from symicl.analysis.representations import (
    closed_form,
    expected_loss,
    flow_path,
    ntk,
    ntk_symbolic,
)
from symicl.errors import ModelError
from symicl.models import build


def typed_ntk(W1, W2, X):
    """Braun et al. (2022): Theta(x_n, x_m) = (x_n.x_m) W2 W2^T + (x_n^T W1^T W1 x_m) I."""
    o = W2.shape[0]
    G, H = X.T @ X, X.T @ W1.T @ W1 @ X
    return G[:, :, None, None] * (W2 @ W2.T) + H[:, :, None, None] * np.eye(o)


@pytest.mark.parametrize("sizes", [(2, 2, 3), (3, 1, 2)])
def test_symbolic_ntk_from_the_forward_pass_is_the_typed_formula(sizes):
    i, h, o = sizes
    m = build("deep-linear", n_in=i, n_hidden=h, n_out=o)
    theta, x, xp = ntk_symbolic(m)
    W1, W2 = m.blocks["W1"], m.blocks["W2"]
    typed = (x.T * xp)[0, 0] * W2 * W2.T + (x.T * W1.T * W1 * xp)[0, 0] * sp.eye(o)
    assert (theta - typed).applyfunc(sp.expand) == sp.zeros(o, o)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(i=st.integers(1, 5), h=st.integers(1, 4), o=st.integers(1, 5), n=st.integers(1, 4),
       scale=st.sampled_from([1e-3, 0.3, 5.0]), seed=st.integers(0, 99))
def test_numeric_ntk_is_the_typed_formula(i, h, o, n, scale, seed):
    rng = np.random.default_rng(seed)
    W1, W2 = scale * rng.standard_normal((h, i)), scale * rng.standard_normal((o, h))
    X = rng.standard_normal((i, n))
    K, want = ntk(W1, W2, X), typed_ntk(W1, W2, X)
    assert K.shape == (n, n, o, o)
    assert np.abs(K - want).max() <= 1e-10 * max(1.0, np.abs(want).max())


def test_representations_along_closed_form_and_flow():
    rng = np.random.default_rng(4)
    T = rng.standard_normal((3, 4))
    X = rng.standard_normal((4, 3))
    times = np.linspace(0, 5, 6)
    for lam in (0.0, 2.0):
        W1, W2 = balanced_weights(4, 2, 3, lam, 0.05, seed=1)
        cf, fl = closed_form(T, W1, W2, times, X=X), flow_path(T, W1, W2, times, X=X)
        assert cf.lam == pytest.approx(lam, abs=1e-12)
        for name in ("network", "rsm_in", "rsm_out", "loss", "ntk"):
            a, b = getattr(cf, name), getattr(fl, name)
            assert np.abs(a - b).max() <= 1e-9 * max(1.0, np.abs(b).max()), name
        # NTK at every time from the RSM blocks (typed formula), loss from the network function
        for k in range(len(times)):
            want = (X.T @ X)[:, :, None, None] * cf.rsm_out[k] + \
                (X.T @ cf.rsm_in[k] @ X)[:, :, None, None] * np.eye(3)
            assert np.abs(cf.ntk[k] - want).max() < 1e-10 * np.abs(want).max()
        assert np.allclose(cf.loss, 0.5 * np.sum((cf.network - T) ** 2, axis=(1, 2)), atol=1e-12)
        assert cf.singular_values().shape == (6, 3)
        json_ready = cf.to_dict()
        assert len(json_ready["ntk"]) == 6


def test_shape_errors():
    with pytest.raises(ModelError, match="do not fit"):
        ntk(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 4)))
    with pytest.raises(ModelError, match="do not fit the teacher"):
        closed_form(np.eye(2), np.ones((2, 3)), np.ones((2, 2)), [1.0])
    assert expected_loss(np.eye(2), np.zeros((1, 2)), np.zeros((2, 1))) == pytest.approx(1.0)
