"""Closed forms derived from the flow, against the literature and high-precision integration.

Literature formulas (the ICL paper's logistic mode, Saxe et al.'s sigmoid,
Fukumizu's Riccati solution with F^{-1}) are typed here only, as independent
checks of what symicl derives.  Numerical references: the Taylor integrator
at 50 digits (agreement 1e-30) and scipy solve_ivp at rtol 1e-12 (1e-9).
"""

import mpmath
import numpy as np
import pytest
import scipy.linalg
import sympy as sp

from symicl import symbols
from symicl.analysis.closed_forms import NotBalancedError, logistic_mode
from symicl.models import per_mode_model
from symicl.analysis.integrate import integrate_ivp, integrate_taylor
from symicl.analysis.riccati import riccati_form, riccati_solve, zero_balanced_factor
from symicl.errors import ModelError
from symicl.models import build

DPS = 50
N = symbols.context_length()
s = sp.Symbol("s", positive=True)
a0, t = sp.Symbol("a0", real=True), sp.Symbol("t", nonnegative=True)


def same(x, y):
    return sp.simplify(sp.sympify(x) - sp.sympify(y)) == 0


def paper_logistic(s_a, s_inf):
    """The ICL paper (Eq. 13), unit eta P: tau = 1/s_a^2, a_inf = 1/s_inf."""
    tau, a_inf = 1 / s_a ** 2, 1 / s_inf
    return {"tau": tau, "a_inf": a_inf,
            "ode": 2 * sp.Symbol("a") * (1 - sp.Symbol("a") * s_inf) / tau,
            "solution": a_inf * a0 / (a0 + (a_inf - a0) * sp.exp(-2 * t / tau)),
            "t_half": tau / 2 * sp.log((a_inf - a0) / a0),
            "t_escape": tau / 2 * sp.log(1 / (s_inf * a0))}


def check_against(mode, expected, subs=None):
    subs = subs or {}
    for key, value in expected.items():
        got = getattr(mode, key)
        got = got.subs(mode.gain, sp.Symbol("a")) if key == "ode" else got
        assert same(got.xreplace(subs), value), (key, got, value)


# -- logistic modes: derived forms against the literature ----------------------------------------

def test_paper_per_mode_model_gives_the_papers_logistic():
    model = per_mode_model(2)
    S = symbols.spectrum(2)
    for a in (1, 2):
        mode = logistic_mode(model, f"p_{a}", f"q_{a}")
        assert mode.balance == 1 and mode.invariance == 0
        assert same(mode.conserved, model.symbol(f"p_{a}") ** 2 - model.symbol(f"q_{a}") ** 2)
        s_inf = ((N + 1) * S[a - 1] + S[0] + S[1]) / N              # the paper's s_inf
        check_against(mode, paper_logistic(S[a - 1], s_inf))


def test_isotropic_scalar_model_recovers_the_paper_at_d1_and_shares_p_at_d2():
    m1 = build("linear-transformer", dim=1, reduction="aligned", tasks="isotropic")
    mode = logistic_mode(m1, "p_1", "q_1")
    S1 = m1.symbol("s_1")
    check_against(mode, paper_logistic(S1, (N + 2) * S1 / N))
    # d = 2, isotropic spectrum, equal modes q_2 = q_1: the flow conserves p^2 - q_1^2 - q_2^2,
    # so on q_2 = q_1 the balanced set is p = sqrt(2) q.  Then a = p q_a has the paper's a_inf
    # but, p being shared by the two modes, the rate 2 sqrt(2) s^2 (by hand: dp/dt = 2 q s^2 (...)).
    m2 = build("linear-transformer", dim=2, reduction="aligned", tasks="isotropic")
    mode = logistic_mode(m2, "p_1", "q_1", restrict={"q_2": m2.symbol("q_1")},
                         constants={"s_1": s, "s_2": s})
    assert mode.balance == 2
    s_inf = ((N + 1) * s + 2 * s) / N
    assert same(mode.a_inf, 1 / s_inf)
    assert same(mode.rate, 2 * sp.sqrt(2) * s ** 2)
    assert same(mode.solution, paper_logistic(s, s_inf)["solution"].subs(t, sp.sqrt(2) * t))


def test_exact_aligned_flow_isotropic_equal_modes_is_the_papers_logistic():
    m = build("linear-transformer", dim=2, reduction="aligned", tasks="aligned")
    mode = logistic_mode(m, "p_1", "q_1", restrict={"p_2": m.symbol("p_1"), "q_2": m.symbol("q_1")},
                         constants={"s_1": s, "s_2": s})
    check_against(mode, paper_logistic(s, ((N + 1) * s + 2 * s) / N))


def test_exact_aligned_flow_with_anisotropic_spectrum_does_not_decouple():
    m = build("linear-transformer", dim=2, reduction="aligned", tasks="aligned")
    with pytest.raises(ModelError, match="does not decouple: its flow depends on p_2, q_2"):
        logistic_mode(m, "p_1", "q_1")


def saxe(s_, a_0=a0):
    """Saxe et al. (2014), unit tau: a(t) = s e^{2st} / (e^{2st} - 1 + s/a0)."""
    return s_ * sp.exp(2 * s_ * t) / (sp.exp(2 * s_ * t) - 1 + s_ / a_0)


def saxe_time(s_, a_from, a_to):
    return sp.log(a_to * (s_ - a_from) / (a_from * (s_ - a_to))) / (2 * s_)


def test_deep_linear_scalar_mode_is_saxes_sigmoid():
    m = build("deep-linear", n_in=1, n_hidden=1, n_out=1)
    mode = logistic_mode(m, "W1_1_1", "W2_1_1", constants={"T_1_1": s})
    assert same(mode.ode, 2 * mode.gain * (s - mode.gain))
    assert same(mode.solution, saxe(s))
    assert mode.a_inf == s and same(mode.tau, 1 / s)
    assert same(mode.t_half, saxe_time(s, a0, s / 2))


def test_deep_linear_aligned_diagonal_modes():
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=[[3, 0], [0, sp.Rational(1, 2)]])
    off = {"W1_1_2": 0, "W1_2_1": 0, "W2_1_2": 0, "W2_2_1": 0}
    for k, s_k in ((1, 3), (2, sp.Rational(1, 2))):
        mode = logistic_mode(m, f"W1_{k}_{k}", f"W2_{k}_{k}", restrict=off)
        assert mode.a_inf == s_k and same(mode.solution, saxe(s_k))
    # a non-diagonal teacher drives the off-diagonal weights: the restriction is not invariant
    full = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=[[3, 1], [0, 1]])
    with pytest.raises(ModelError, match="not invariant"):
        logistic_mode(full, "W1_1_1", "W2_1_1", restrict=off)


def test_unbalanced_start_is_refused():
    m = build("deep-linear", n_in=1, n_hidden=1, n_out=1, teacher=[[2]])
    mode = logistic_mode(m, "W1_1_1", "W2_1_1")
    mode.check_start(0.3, 0.3)
    with pytest.raises(NotBalancedError, match="not balanced.*integrate the flow"):
        mode.check_start(0.3, 0.1)
    start = mode.start(sp.Rational(1, 10))
    assert start[mode.p] == start[mode.q]
    assert same(start[mode.p] * start[mode.q], sp.Rational(1, 10))


# -- logistic modes: numerical agreement with the integrated flow -------------------------------

def _logistic_cases():
    paper = per_mode_model(2)
    S = symbols.spectrum(2)
    consts = {S[0]: 2, S[1]: sp.Rational(1, 2), N: 4}
    paper_consts = consts
    iso = build("linear-transformer", dim=2, reduction="aligned", tasks="isotropic",
                N=4, spectrum=[sp.Rational(3, 4), sp.Rational(3, 4)])
    dln = build("deep-linear", n_in=2, n_hidden=2, n_out=2,
                teacher=[[3, 0], [0, sp.Rational(1, 2)]])
    off = {"W1_1_2": 0, "W1_2_1": 0, "W2_1_2": 0, "W2_2_1": 0}
    return [
        ("paper", paper, paper_consts, [("p_1", "q_1", {}), ("p_2", "q_2", {})],
         [sp.Rational(1, 100), sp.Rational(1, 50)], [1, 3, 8]),
        ("isotropic", iso, {}, [("p_1", "q_1", {"q_2": iso.symbol("q_1")})],
         [sp.Rational(1, 100)], [2, 5, 10]),
        ("deep-linear", dln, {}, [("W1_1_1", "W2_1_1", off), ("W1_2_2", "W2_2_2", off)],
         [sp.Rational(1, 100), sp.Rational(1, 20)], [sp.Rational(1, 2), 2, 6]),
    ]


@pytest.mark.parametrize("case", _logistic_cases(), ids=lambda c: c[0])
def test_logistic_solution_agrees_with_integrated_flow(case):
    name, model, consts, modes, starts, times = case
    derived = [logistic_mode(model, p, q, restrict=r) for p, q, r in modes]
    start = {x: sp.Integer(0) for x in model.parameters}
    for mode, a_0 in zip(derived, starts):
        start.update(mode.start(a_0))
        for theta, phi in mode.restrict.items():
            start[theta] = sp.sympify(phi).xreplace(start)
    ref = integrate_taylor(model.flow(), start, times, constants=consts, dps=DPS)
    dbl = integrate_ivp(model.flow(), start, times, constants=consts, rtol=1e-12, atol=1e-14)
    with mpmath.workdps(DPS):
        for k, tk in enumerate(times):
            for mode, a_0 in zip(derived, starts):
                exact = mode.value(tk, a_0, consts, dps=DPS)
                assert abs(ref[k][mode.p] * ref[k][mode.q] - exact) < mpmath.mpf("1e-30")
                assert abs(dbl[k][mode.p] * dbl[k][mode.q] - float(exact)) < 1e-9
        # each mode has gone more than half-way to a_inf (the check is not vacuous)
        for mode, a_0 in zip(derived, starts):
            a_inf = mode.a_inf.xreplace(consts)
            assert mode.value(times[-1], a_0, consts) - a_0 > (a_inf - a_0) / 2


# -- Riccati: derivation ------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [(2, 2, 2), (3, 2, 1), (2, 3, 2)])
def test_riccati_form_derived_from_the_flow(sizes):
    i, h, o = sizes
    m = build("deep-linear", n_in=i, n_hidden=h, n_out=o)
    form = riccati_form(m)
    T = symbols.matrix("T", o, i)
    assert form.F == sp.Matrix.vstack(sp.Matrix.hstack(sp.zeros(i, i), T.T),
                                      sp.Matrix.hstack(T, sp.zeros(o, o)))      # Braun et al.'s F
    values = np.arange(1, i * o + 1, dtype=float).reshape(o, i)
    assert np.array_equal(form.F_numeric(teacher=values),
                          np.block([[np.zeros((i, i)), values.T], [values, np.zeros((o, o))]]))
    with pytest.raises(ModelError, match="give the teacher"):
        form.F_numeric()
    # the residual dP/dt - (FP + PF - P^2) is not 0 in general, but is 0 on W1 W1^T = W2^T W2
    rng = np.random.default_rng(1)
    r = min(i, h, o)
    C = sp.Matrix(h, r, lambda *_: sp.Rational(int(rng.integers(-9, 10)), 7))
    U1, U2 = _rational_orthogonal(i, 3)[:, :r], _rational_orthogonal(o, 4)[:, :r]
    W1, W2 = C * U1.T, U2 * C.T
    point = {**dict(zip(m.blocks["W1"], W1)), **dict(zip(m.blocks["W2"], W2)),
             **{x: sp.Rational(int(rng.integers(-5, 6)), 3) for x in T}}
    assert sp.expand(W1 * W1.T - W2.T * W2) == sp.zeros(h, h)
    assert form.residual.xreplace(point) == sp.zeros(i + o, i + o)
    off = dict(point)
    off[m.blocks["W1"][0, 0]] += 1
    assert form.residual.xreplace(off) != sp.zeros(i + o, i + o)


def test_riccati_form_needs_a_two_layer_network():
    with pytest.raises(ModelError, match="W1 and W2"):
        riccati_form(build("linear-transformer", dim=1, reduction="aligned"))


# -- Riccati: numerical solution ----------------------------------------------------------------

def _rational_orthogonal(n, seed):
    """Cayley transform (I - S)(I + S)^{-1} of a rational skew matrix: exactly orthogonal."""
    rng = np.random.default_rng(seed)
    S = sp.zeros(n, n)
    for r in range(n):
        for c in range(r + 1, n):
            S[r, c] = sp.Rational(int(rng.integers(-5, 6)), 7)
            S[c, r] = -S[r, c]
    return (sp.eye(n) - S) * (sp.eye(n) + S).inv()


def _balanced(i, h, o, scale, seed):
    """Exactly zero-balanced rational weights W1 = C U1^T, W2 = U2 C^T."""
    rng = np.random.default_rng(seed)
    r = min(i, h, o)
    C = sp.Matrix(h, r, lambda *_: sp.Rational(int(rng.integers(-9, 10)), 10) * scale)
    U1, U2 = _rational_orthogonal(i, seed + 1)[:, :r], _rational_orthogonal(o, seed + 2)[:, :r]
    return C * U1.T, U2 * C.T


def _flow_P(model, form, states, to):
    Q = form.Q
    return [to([[st[Q[r, c]] for c in range(Q.cols)] for r in range(Q.rows)]) for st in states]


RICCATI_CASES = [
    ("square", [[3, 1], [0, sp.Rational(1, 2)]], (2, 2, 2), [sp.Rational(1, 2), 2, 5]),
    # rank-1 teacher, i != o: F is singular (rank 2 of 5)
    ("singular-unequal", [[2, 1, 0], [4, 2, 0]], (3, 2, 2), [1, 3, 6]),
]


@pytest.mark.parametrize("case", RICCATI_CASES, ids=lambda c: c[0])
def test_riccati_solution_agrees_with_integrated_flow(case):
    _, teacher, (i, h, o), times = case
    m = build("deep-linear", n_in=i, n_hidden=h, n_out=o, teacher=teacher)
    form = riccati_form(m)
    W1, W2 = _balanced(i, h, o, sp.Rational(1, 10), 0)
    start = {**dict(zip(m.blocks["W1"], W1)), **dict(zip(m.blocks["W2"], W2))}
    if case[0].startswith("singular"):
        assert np.linalg.matrix_rank(form.F_numeric()) < i + o
    # 50 digits: stepped closed form vs Taylor integration of the derived flow
    with mpmath.workdps(DPS):
        Qs = riccati_solve(form.F_numeric(dps=DPS), mpmath.matrix(W1.tolist()),
                           mpmath.matrix(W2.tolist()), times, dps=DPS)
        ref = _flow_P(m, form, integrate_taylor(m.flow(), start, times, dps=DPS), mpmath.matrix)
        for Q, Qr in zip(Qs, ref):
            assert mpmath.mnorm(Q * Q.T - Qr * Qr.T, "f") < mpmath.mpf("1e-30")
        W_end = (Qs[-1] * Qs[-1].T)[i:, :i]
        assert mpmath.mnorm(W_end, "f") > 1                       # learning happened
    # double precision: numpy/scipy closed form vs solve_ivp
    Qd = riccati_solve(form.F_numeric(), np.array(W1.tolist(), float), np.array(W2.tolist(), float),
                       [float(x) for x in times])
    ivp = _flow_P(m, form, integrate_ivp(m.flow(), start, times, rtol=1e-12, atol=1e-14), np.array)
    for Q, Qr in zip(Qd, ivp):
        assert np.abs(Q @ Q.T - Qr @ Qr.T).max() < 1e-9


def test_fukumizu_inverse_form_where_F_is_invertible():
    """Fukumizu's form with (e^{2Ft} - I)(2F)^{-1}, typed here, equals the one-shot solution."""
    T = np.array([[3.0, 1.0], [0.0, 0.5]])
    F = np.block([[np.zeros((2, 2)), T.T], [T, np.zeros((2, 2))]])
    W1, W2 = (np.array(M.tolist(), float) for M in _balanced(2, 2, 2, sp.Rational(1, 5), 7))
    Q0 = np.vstack([W1.T, W2])
    for tk in (0.3, 1.0, 2.0):
        E = scipy.linalg.expm(F * tk)
        K = (scipy.linalg.expm(2 * F * tk) - np.eye(4)) @ np.linalg.inv(2 * F)
        P = E @ Q0 @ np.linalg.inv(np.eye(2) + Q0.T @ K @ Q0) @ Q0.T @ E
        (Q,) = riccati_solve(F, W1, W2, [tk], max_step=np.inf)
        assert np.abs(Q @ Q.T - P).max() < 1e-9 * max(1, np.abs(P).max())


def test_stepping_from_the_factor_keeps_long_times_accurate():
    """From a small start, out to convergence (t = 40), the stepped solution follows the flow."""
    T = np.array([[3.0, 1.0], [0.0, 0.5]])
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=T)
    form = riccati_form(m)
    W1, W2 = _balanced(2, 2, 2, sp.Rational(1, 1000), 0)
    start = {**dict(zip(m.blocks["W1"], W1)), **dict(zip(m.blocks["W2"], W2))}
    times = [6.0, 12.0, 40.0]
    args = (form.F_numeric(), np.array(W1.tolist(), float), np.array(W2.tolist(), float), times)
    ref = _flow_P(m, form, integrate_ivp(m.flow(), start, times, rtol=1e-12, atol=1e-14), np.array)
    for Q, Qr in zip(riccati_solve(*args), ref):
        assert np.abs(Q @ Q.T - Qr @ Qr.T).max() < 1e-9
    assert np.abs((Q @ Q.T)[2:, :2] - T).max() < 1e-9                 # converged to the teacher
    # the one-shot form (one step from t = 0) breaks down here, and says so
    with pytest.raises(ModelError, match="not positive definite.*smaller max_step"):
        riccati_solve(*args[:3], [40.0], max_step=np.inf)


def test_riccati_refuses_weights_that_are_not_zero_balanced():
    W1 = np.array([[0.1, 0.2], [0.0, 0.3]])
    W2 = np.array([[0.1, 0.0], [0.2, 0.1]])
    with pytest.raises(NotBalancedError, match="not zero-balanced.*integrate the flow"):
        riccati_solve(np.zeros((4, 4)), W1, W2, [1.0])
    with pytest.raises(NotBalancedError, match="not zero-balanced"):
        zero_balanced_factor(W1, W2, dps=DPS)
    with pytest.raises(ModelError, match="hidden x in"):
        zero_balanced_factor(np.ones((2, 3)), np.ones((2, 3)))
