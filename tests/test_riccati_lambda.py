"""The lambda-balanced Riccati form: derived F_lambda against Dominé et al. (ICLR 2025), and
its closed-form solution against the integrated flow (mpmath 50 digits 1e-30, scipy 1e-9).

The typed F_lambda = [[-lambda/2 I, T^T], [T, lambda/2 I]] below is the independent check
(Dominé, Anguita, Proca, Braun, Kunin, Mediano, Saxe, "From lazy to rich: exact learning
dynamics in deep linear networks", ICLR 2025, their F for lambda-balanced weights).
"""

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_closed_forms import _rational_orthogonal as _cayley

from symicl import symbols
from symicl.analysis.closed_forms import NotBalancedError
from symicl.analysis.integrate import integrate_ivp, integrate_taylor
from symicl.analysis.prior_knowledge import balanced_weights
from symicl.analysis.representations import F_lambda, closed_form, flow_path
from symicl.analysis.riccati import (
    LAMBDA,
    balance_of,
    lambda_balanced_factor,
    riccati_form,
    riccati_section,
    riccati_solve,
    zero_balanced_factor,
)
from symicl.errors import ModelError
from symicl.models import build

DPS = 50
SCALE = sp.Rational(1, 10)


def _lambda_balanced(i, h, o, lam, seed, scale=SCALE):
    """Exactly lambda-balanced rational weights W1 = R A V^T, W2 = U B R^T, b^2 - a^2 = lam.

    h <= min(i, o); b - a = d, b + a = lam / d with rational d (lam != 0), or a = b (lam = 0).
    """
    rng = np.random.default_rng(seed)
    R, V, U = _cayley(h, seed), _cayley(i, seed + 1)[:, :h], _cayley(o, seed + 2)[:, :h]
    A, B = sp.zeros(h, h), sp.zeros(h, h)
    for k in range(h):
        if lam == 0:
            A[k, k] = B[k, k] = scale * sp.Rational(int(rng.integers(1, 10)), 3)
        else:
            d = sp.Rational(int(rng.integers(1, 6)), 5) * lam
            A[k, k], B[k, k] = (lam / d - d) / 2, (lam / d + d) / 2
    return R * A * V.T, U * B * R.T


def _P(form, state, to):
    Q = form.Q
    return to([[state[Q[r, c]] for c in range(Q.cols)] for r in range(Q.rows)])


@pytest.mark.parametrize("sizes", [(2, 2, 2), (3, 2, 1), (2, 3, 2), (1, 2, 3)])
def test_F_lambda_derived_is_domine_et_al(sizes):
    i, h, o = sizes
    form = riccati_form(build("deep-linear", n_in=i, n_hidden=h, n_out=o))
    T, lam = symbols.matrix("T", o, i), LAMBDA
    typed = sp.Matrix(sp.BlockMatrix([[-lam / 2 * sp.eye(i), T.T], [T, lam / 2 * sp.eye(o)]]))
    assert sp.expand(form.F_lambda - typed) == sp.zeros(i + o, i + o)
    assert form.F_lambda.subs(lam, 0) == form.F


def test_lambda_residual_vanishes_exactly_on_the_lambda_balanced_set():
    m = build("deep-linear", n_in=3, n_hidden=2, n_out=2)
    form = riccati_form(m)
    lam = sp.Rational(3, 4)
    W1, W2 = _lambda_balanced(3, 2, 2, lam, 5)
    assert sp.simplify(W2.T * W2 - W1 * W1.T) == lam * sp.eye(2)
    point = {**dict(zip(m.blocks["W1"], W1)), **dict(zip(m.blocks["W2"], W2)),
             **{x: sp.Rational(k + 1, 3) for k, x in enumerate(symbols.matrix("T", 2, 3))}}
    assert form.residual_lambda.xreplace({**point, LAMBDA: lam}).applyfunc(sp.simplify) == \
        sp.zeros(5, 5)
    # the zero-balanced residual does not vanish there, nor the lambda one at another lambda
    assert form.residual.xreplace(point).applyfunc(sp.simplify) != sp.zeros(5, 5)
    assert form.residual_lambda.xreplace({**point, LAMBDA: 1}).applyfunc(sp.simplify) != \
        sp.zeros(5, 5)


CASES = [
    ("lazy-positive", [[3, 1], [0, sp.Rational(1, 2)]], (2, 2, 2), sp.Rational(3, 2), [1, 3]),
    ("negative-unequal", [[2, 1, 0], [1, 2, 1]], (3, 2, 2), sp.Rational(-1, 2), [1, 4]),
    # rank-1 teacher, in != out: F_lambda singular only at special lambda, F singular
    ("rank-deficient", [[1, 2, 0], [2, 4, 0]], (3, 1, 2), sp.Rational(1, 3), [2, 5]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_lambda_closed_form_against_taylor_50_digits_and_scipy(case):
    _, teacher, (i, h, o), lam, times = case
    m = build("deep-linear", n_in=i, n_hidden=h, n_out=o, teacher=teacher)
    form = riccati_form(m)
    W1, W2 = _lambda_balanced(i, h, o, lam, 11)
    start = {**dict(zip(m.blocks["W1"], W1)), **dict(zip(m.blocks["W2"], W2))}
    with mpmath.workdps(DPS):
        Fl = form.F_numeric(dps=DPS, lam=lam)
        Qs = riccati_solve(Fl, mpmath.matrix(W1.tolist()), mpmath.matrix(W2.tolist()), times,
                           dps=DPS, lam=mpmath.mpf(lam.p) / lam.q)
        ref = [_P(form, st, mpmath.matrix) for st in integrate_taylor(m.flow(), start, times,
                                                                        dps=DPS)]
        for Q, Qr in zip(Qs, ref):
            assert mpmath.mnorm(Q * Q.T - Qr * Qr.T, "f") < mpmath.mpf("1e-30")
        Q0 = mpmath.matrix(W1.T.col_join(W2).tolist())
        assert mpmath.mnorm(Qs[-1] * Qs[-1].T - Q0 * Q0.T, "f") > mpmath.mpf("0.5")  # it moved
    W1f, W2f = np.array(W1.tolist(), float), np.array(W2.tolist(), float)
    assert abs(balance_of(W1f, W2f) - float(lam)) < 1e-12
    Qd = riccati_solve(form.F_numeric(lam=float(lam)), W1f, W2f, times, lam=float(lam))
    ivp = [_P(form, st, np.array) for st in integrate_ivp(m.flow(), start, times, rtol=1e-12,
                                                          atol=1e-14)]
    for Q, Qr in zip(Qd, ivp):
        assert np.abs(Q @ Q.T - Qr @ Qr.T).max() < 1e-9
    # the lifted F_lambda (derived pattern, any size) equals the derived one here
    assert np.abs(F_lambda(np.array(teacher, float), float(lam)) -
                  form.F_numeric(lam=float(lam))).max() < 1e-15


def test_50_by_20_by_30_closed_form_against_scipy_flow():
    rng = np.random.default_rng(7)
    U, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    V, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    s = np.concatenate([np.linspace(3, 0.5, 15), np.zeros(15)])       # rank 15 teacher
    T = U @ np.diag(s) @ V[:, :30].T
    times = [0.5, 2.0, 6.0]
    for lam, scale in ((0.0, 1e-2), (4.0, 1e-2), (-1.0, 0.3)):
        W1, W2 = balanced_weights(50, 20, 30, lam, scale, seed=3)
        cf, fl = closed_form(T, W1, W2, times), flow_path(T, W1, W2, times)
        for a, b in ((cf.network, fl.network), (cf.rsm_in, fl.rsm_in), (cf.rsm_out, fl.rsm_out)):
            rel = np.abs(a - b).max(axis=(1, 2)) / np.abs(b).max(axis=(1, 2))
            assert rel.max() < 1e-9
    assert np.linalg.norm(cf.network[-1] - T) < 0.1 * np.linalg.norm(T)       # learned


def test_balance_errors_name_the_problem_and_offer_the_flow():
    W1 = np.array([[0.1, 0.2], [0.0, 0.3]])
    W2 = np.array([[0.1, 0.0], [0.2, 0.1]])
    with pytest.raises(NotBalancedError, match="not lambda-balanced.*symicl.simulate.integrate"):
        balance_of(W1, W2)
    with pytest.raises(NotBalancedError, match="not lambda-balanced"):
        lambda_balanced_factor(W1, W2, dps=DPS)
    with pytest.raises(NotBalancedError, match="not lambda-balanced"):
        closed_form(np.eye(2), W1, W2, [1.0])
    W1, W2 = balanced_weights(2, 2, 2, 0.5, 0.1, seed=0)
    Q0, lam = lambda_balanced_factor(W1, W2)
    assert Q0.shape == (4, 2) and abs(lam - 0.5) < 1e-12
    with pytest.raises(NotBalancedError, match="not zero-balanced.*lambda = 0.5.*F_lambda"):
        zero_balanced_factor(W1, W2)
    with pytest.raises(NotBalancedError, match="lambda-balanced with lambda = 1"):
        riccati_solve(np.zeros((4, 4)), W1, W2, [1.0], lam=1.0)


def test_balanced_weights_refuse_impossible_sizes():
    with pytest.raises(ModelError, match="needs hidden <= out"):
        balanced_weights(4, 3, 2, 1.0, 0.1)
    with pytest.raises(ModelError, match="needs hidden <= in"):
        balanced_weights(2, 3, 4, -1.0, 0.1)
    with pytest.raises(ModelError, match="scale"):
        balanced_weights(2, 2, 2, 0.0, [0.1, 0.2, 0.3])
    W1, W2 = balanced_weights(2, 4, 3, 0.0, [0.5, 0.2])        # hidden > both: lambda = 0 only
    assert abs(balance_of(W1, W2)) < 1e-12
    assert np.allclose(np.linalg.svd(W2 @ W1, compute_uv=False), [0.5, 0.2])


def test_riccati_section_is_serialisable_and_complete():
    import json

    sec = riccati_section(build("deep-linear"))
    json.dumps(sec["data"])
    assert "lambda/2" in sec["data"]["F_lambda"] and sec["data"]["certificate"]
    assert len(sec["tex"]) == 4 and all("\\begin{align}" in b for b in sec["tex"])
    assert any("F_\\lambda" in line for line in sec["md"])


@settings(max_examples=12, deadline=None, derandomize=True)
@given(i=st.integers(1, 4), h=st.integers(1, 4), o=st.integers(1, 4),
       lam=st.sampled_from([-2.0, -0.5, 0.0, 0.3, 1.0, 3.0]),
       scale=st.sampled_from([1e-3, 0.05, 0.5, 2.0]), rank=st.integers(0, 4),
       seed=st.integers(0, 1000))
def test_property_closed_form_matches_the_flow(i, h, o, lam, scale, rank, seed):
    rng = np.random.default_rng(seed)
    if (lam > 0 and h > o) or (lam < 0 and h > i):
        with pytest.raises(ModelError, match="needs hidden"):
            balanced_weights(i, h, o, lam, scale, seed)
        return
    W1, W2 = balanced_weights(i, h, o, lam, scale, seed)
    assert abs(balance_of(W1, W2) - lam) < 1e-10 * max(1, abs(lam))
    # teacher of rank <= rank (0: the zero teacher)
    T = rng.standard_normal((o, rank)) @ rng.standard_normal((rank, i)) if rank else np.zeros((o, i))
    times = [0.5, 3.0]
    cf, fl = closed_form(T, W1, W2, times), flow_path(T, W1, W2, times)
    for a, b in ((cf.network, fl.network), (cf.rsm_in, fl.rsm_in), (cf.rsm_out, fl.rsm_out)):
        assert np.abs(a - b).max() <= 1e-8 * max(1.0, np.abs(b).max())
    assert np.abs(cf.loss - fl.loss).max() <= 1e-8 * max(1.0, fl.loss.max())
