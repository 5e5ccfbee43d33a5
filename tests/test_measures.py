"""Checks of symicl.measures on matrices and series with known answers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symicl.measures import (
    MeasureError,
    autocorrelation_curvature,
    curvature,
    effective_rank,
    frobenius_norm,
    loss_autocorrelation,
    marginalized_effective_rank,
    norm_curvature,
    singular_values,
    subspace_distance,
)

FAST = settings(derandomize=True, max_examples=40, deadline=None)


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def two_level_erank(a, x, b, y):
    """exp(H) for a singular values equal to x and b equal to y (closed form)."""
    z = a * x + b * y
    p, q = x / z, y / z
    return np.exp(-a * p * np.log(p) - b * q * np.log(q))


# ----------------------------------------------------------------- effective rank
@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_erank_identity_is_n(n):
    assert effective_rank(np.eye(n)) == pytest.approx(n, rel=1e-14)


def test_erank_rank_one_is_one():
    rng = np.random.default_rng(0)
    M = np.outer(rng.standard_normal(7), rng.standard_normal(4))
    assert effective_rank(M) == pytest.approx(1.0, abs=1e-12)


def test_erank_diag_1100_is_two():
    assert effective_rank(np.diag([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0, rel=1e-14)


def test_erank_reference_example_and_marginalised():
    # math-reference A.10.3: erank(diag(10,1,1,1)) = 2.21, erank_1 = 3
    M = np.diag([10.0, 1.0, 1.0, 1.0])
    assert effective_rank(M) == pytest.approx(two_level_erank(1, 10.0, 3, 1.0), rel=1e-14)
    assert round(effective_rank(M), 2) == 2.21
    assert marginalized_effective_rank(M, 1) == pytest.approx(3.0, rel=1e-14)
    assert marginalized_effective_rank(M, 3) == pytest.approx(1.0, rel=1e-14)
    assert marginalized_effective_rank(M, 4) == 0.0
    assert marginalized_effective_rank(M, 0) == effective_rank(M)


def test_erank_zero_matrix_is_zero_by_convention():
    assert effective_rank(np.zeros((3, 4))) == 0.0


def test_erank_discards_numerically_zero_singular_values():
    M = np.diag([1.0, 1.0, 1e-14, 0.0])  # 1e-14 < 1e-12 sigma_1: discarded
    assert effective_rank(M) == pytest.approx(2.0, rel=1e-14)
    assert effective_rank(np.diag([1.0, 1.0, 1e-3])) > 2.0  # a real small value counts


@FAST
@given(a=st.integers(1, 6), b=st.integers(1, 6), x=st.floats(0.01, 100.0), y=st.floats(0.01, 100.0))
def test_erank_two_level_closed_form(a, b, x, y):
    M = np.diag([x] * a + [y] * b)
    assert effective_rank(M) == pytest.approx(two_level_erank(a, x, b, y), rel=1e-12)
    hi, lo, n_hi, n_lo = (x, y, a, b) if x >= y else (y, x, b, a)
    # removing the n_hi largest leaves n_lo equal values: erank = n_lo exactly
    assert marginalized_effective_rank(M, n_hi) == pytest.approx(n_lo, rel=1e-12)


@FAST
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 7), n=st.integers(2, 7),
       c=st.floats(1e-3, 1e3), k=st.integers(0, 2))
def test_erank_invariances(seed, m, n, c, k):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, n))
    e = marginalized_effective_rank(M, k)
    assert marginalized_effective_rank(c * M, k) == pytest.approx(e, rel=1e-10)
    assert marginalized_effective_rank(M.T, k) == pytest.approx(e, rel=1e-10)
    U, V = orthogonal(rng, m), orthogonal(rng, n)
    assert marginalized_effective_rank(U @ M @ V.T, k) == pytest.approx(e, rel=1e-9)
    if k == 0:
        assert 1.0 - 1e-12 <= e <= np.linalg.matrix_rank(M) + 1e-12


def test_erank_stack_matches_single_and_flattens_leading_axes():
    rng = np.random.default_rng(1)
    S = rng.standard_normal((2, 3, 5, 4))
    out = effective_rank(S)
    assert out.shape == (6,)
    flat = S.reshape(6, 5, 4)
    assert np.allclose(out, [effective_rank(M) for M in flat], rtol=1e-14)
    assert np.allclose(marginalized_effective_rank(flat, 2),
                       [marginalized_effective_rank(M, 2) for M in flat], rtol=1e-14)


def test_singular_values_sorted_and_cut():
    s = singular_values(np.diag([3.0, 1e-13, 2.0]))
    assert np.array_equal(s, [3.0, 2.0, 0.0])


@pytest.mark.parametrize("bad, what", [
    (np.ones(3), "shape"),
    (np.ones((0, 3)), "empty"),
    (np.array([[1.0, np.nan]]), "non-finite"),
    (np.array([[1.0, np.inf]]), "non-finite"),
    (np.ones((2, 2), dtype=complex), "complex"),
])
def test_erank_bad_input(bad, what):
    with pytest.raises(MeasureError, match=what):
        effective_rank(bad)


def test_marginalised_bad_k():
    with pytest.raises(MeasureError, match="k must be"):
        marginalized_effective_rank(np.eye(3), -1)
    assert issubclass(MeasureError, ValueError)


# ------------------------------------------------------------- subspace distance
def lstsq_distance(Mt, Mf, rcond):
    """min_A ||A Mt - Mf||_F / ||Mf||_F solved by numpy.linalg.lstsq (Mt^T A^T = Mf^T)."""
    At, *_ = np.linalg.lstsq(Mt.T, Mf.T, rcond=rcond)
    return np.linalg.norm(At.T @ Mt - Mf) / np.linalg.norm(Mf)


def low_rank(rng, m, n, r):
    return rng.standard_normal((m, r)) @ rng.standard_normal((r, n))


@FAST
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 8), n=st.integers(3, 9), r=st.integers(1, 2))
def test_subspace_distance_equals_lstsq_and_in_unit_interval(seed, m, n, r):
    rng = np.random.default_rng(seed)
    Mt, Mf = low_rank(rng, m, n, r), rng.standard_normal((m, n))
    d = subspace_distance(Mt, Mf)
    assert d == pytest.approx(lstsq_distance(Mt, Mf, rcond=1e-6), abs=1e-10)
    assert 0.0 <= d <= 1.0


@FAST
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 8), n=st.integers(4, 9))
def test_subspace_distance_zero_when_row_spaces_agree(seed, m, n):
    rng = np.random.default_rng(seed)
    Mf = low_rank(rng, m, n, 2)
    A = rng.standard_normal((m, m)) + 3 * np.eye(m)          # invertible left map
    assert subspace_distance(A @ Mf, Mf) == pytest.approx(0.0, abs=1e-9)
    B = rng.standard_normal((m, m))
    assert subspace_distance(Mf, B @ Mf) == pytest.approx(0.0, abs=1e-9)  # rows of B Mf lie in rowspace(Mf)


def test_subspace_distance_orthogonal_rows_is_one_and_partial_overlap():
    Mt = np.zeros((3, 4)); Mt[0, 0] = 2.0; Mt[1, 1] = 5.0
    Mf = np.zeros((3, 4)); Mf[0, 2] = 1.0
    assert subspace_distance(Mt, Mf) == pytest.approx(1.0, abs=1e-15)
    Mf2 = np.zeros((3, 4)); Mf2[0, 0] = 3.0; Mf2[1, 3] = 4.0
    assert subspace_distance(Mt, Mf2) == pytest.approx(4.0 / 5.0, abs=1e-15)
    assert subspace_distance(np.zeros((3, 4)), Mf2) == 1.0


def test_subspace_distance_full_rank_pitfall_and_rank_cut():
    rng = np.random.default_rng(3)
    # a full-rank square M(t) spans everything: d = 0 identically (math-reference C7)
    assert subspace_distance(rng.standard_normal((6, 6)), rng.standard_normal((6, 6))) < 1e-12
    # low rank plus tiny noise: the rank cut keeps the distance informative
    Mt = low_rank(rng, 6, 6, 2) + 1e-9 * rng.standard_normal((6, 6))
    Mf = low_rank(rng, 6, 6, 2)
    d = subspace_distance(Mt, Mf)
    assert d > 0.1
    assert subspace_distance(Mt, Mf, rank=2) == pytest.approx(d, abs=1e-7)
    assert subspace_distance(Mt, Mf, rtol=0.0) < 1e-6  # no cut: the noise directions span the rest


def test_subspace_distance_stack_column_side_and_invariance():
    rng = np.random.default_rng(4)
    stack = np.stack([low_rank(rng, 5, 7, 2) for _ in range(4)])
    Mf = low_rank(rng, 5, 7, 3)
    d = subspace_distance(stack, Mf)
    assert d.shape == (4,)
    assert np.allclose(d, [subspace_distance(M, Mf) for M in stack], atol=1e-14)
    assert np.allclose(subspace_distance(stack, Mf, side="column"),
                       [subspace_distance(M.T, Mf.T) for M in stack], atol=1e-14)
    assert subspace_distance(stack[0], 7.0 * Mf) == pytest.approx(d[0], abs=1e-13)   # scale of M_f
    A = rng.standard_normal((5, 5)) + 4 * np.eye(5)
    assert subspace_distance(A @ stack[0], Mf) == pytest.approx(d[0], abs=1e-9)     # left map on M_t
    assert subspace_distance(stack, stack) == pytest.approx(np.zeros(4), abs=1e-9)  # paired stacks


def test_subspace_distance_errors():
    with pytest.raises(MeasureError, match="zero matrix"):
        subspace_distance(np.eye(3), np.zeros((3, 3)))
    with pytest.raises(MeasureError, match="shape"):
        subspace_distance(np.eye(3), np.eye(4))
    with pytest.raises(MeasureError, match="side"):
        subspace_distance(np.eye(3), np.eye(3), side="left")
    with pytest.raises(MeasureError, match="rank or rtol"):
        subspace_distance(np.eye(3), np.eye(3), rank=1, rtol=1e-3)


# ------------------------------------------------------------ temporal measures
def test_autocorrelation_constant():
    A = loss_autocorrelation(np.full(50, 3.0), window=10, max_lag=4, normalise=False)
    assert A.shape == (50 - 10 - 4 + 1, 5)
    assert np.allclose(A, 9.0, rtol=1e-14)
    assert np.allclose(autocorrelation_curvature(np.full(50, 3.0), window=10), 0.0, atol=1e-14)


def test_autocorrelation_brute_force():
    rng = np.random.default_rng(5)
    L = rng.uniform(0.5, 2.0, 40)
    w, J = 7, 3
    A = loss_autocorrelation(L, w, J, normalise=False)
    for s in range(A.shape[0]):
        for j in range(J + 1):
            assert A[s, j] == pytest.approx(np.mean([L[k] * L[k + j] for k in range(s, s + w)]), rel=1e-12)
    assert np.allclose(loss_autocorrelation(L, w, J), A / A[:, :1], rtol=1e-14)


def test_autocorrelation_geometric_and_alternating_known_values():
    r = 0.9
    L = r ** np.arange(60)
    A = loss_autocorrelation(L, window=12, max_lag=3)
    assert np.allclose(A, r ** np.arange(4), rtol=1e-12)           # A~(j) = r^j exactly
    assert np.allclose(autocorrelation_curvature(L, 12), 2 * (r - 1), rtol=1e-12)
    alt = np.tile([1.0, -1.0], 20)
    assert np.allclose(autocorrelation_curvature(alt, 8), -4.0, rtol=1e-14)


def test_autocorrelation_curvature_quadratic_fit_matches_polyfit():
    rng = np.random.default_rng(6)
    L = 1.0 + 0.1 * rng.standard_normal(80) ** 2
    kappa = autocorrelation_curvature(L, window=20, fit_lags=3)
    A = loss_autocorrelation(L, 20, 3)
    j = np.arange(-3, 4)
    for s in (0, 17, len(kappa) - 1):
        sym = np.concatenate([A[s, :0:-1], A[s]])
        c = np.polyfit(j ** 2, sym, 1)[0]
        assert kappa[s] == pytest.approx(2 * c, rel=1e-10)


def test_curvature_of_quadratic_uniform_and_nonuniform():
    t = np.arange(10.0)
    assert np.allclose(curvature(3 * t ** 2 - t + 2), 6.0, rtol=1e-13)
    tn = np.cumsum(np.random.default_rng(7).uniform(0.1, 2.0, 12))
    x = -0.5 * tn ** 2 + 4 * tn
    assert np.allclose(curvature(x, tn), -1.0, rtol=1e-9)
    stack = np.stack([x, 2 * x])
    assert np.allclose(curvature(stack, tn), [[-1.0] * 10, [-2.0] * 10], rtol=1e-9)


def test_norm_curvature_of_quadratic_growth():
    rng = np.random.default_rng(8)
    M0 = rng.standard_normal((4, 3))
    t = np.array([0.0, 1.0, 3.0, 4.0, 8.0])
    traj = (1.0 + t ** 2)[:, None, None] * M0
    assert np.allclose(frobenius_norm(traj), (1 + t ** 2) * np.linalg.norm(M0), rtol=1e-14)
    assert np.allclose(norm_curvature(traj, t), 2 * np.linalg.norm(M0), rtol=1e-9)


def test_temporal_errors():
    with pytest.raises(MeasureError, match="at least"):
        loss_autocorrelation(np.ones(5), window=5, max_lag=1)
    with pytest.raises(MeasureError, match="non-finite"):
        curvature([1.0, np.nan, 2.0])
    with pytest.raises(MeasureError, match="strictly increasing"):
        curvature([1.0, 2.0, 3.0], t=[0.0, 1.0, 1.0])
    with pytest.raises(MeasureError, match="window"):
        loss_autocorrelation(np.ones(5), window=0, max_lag=1)
    with pytest.raises(MeasureError, match="trajectory"):
        norm_curvature(np.eye(3))


def test_autocorrelation_all_zero_window_is_nan_not_an_error():
    L = np.concatenate([np.ones(10), np.zeros(20)])
    A = loss_autocorrelation(L, window=5, max_lag=1)
    assert np.all(np.isfinite(A[:10])) and np.all(np.isnan(A[10:]))
    assert np.isnan(autocorrelation_curvature(L, 5)[-1])
