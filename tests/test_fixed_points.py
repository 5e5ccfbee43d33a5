"""Fixed points and their stability, found by the polynomial method (analysis issue).

Independent checks: the d = 1 stable point N/((N+2) s) and the paper's
s_inf_a = ((N+1) s_a + Tr S)/N from math-spec; for the anisotropic stable
point, the coupled linear system derived by hand from the exact aligned loss
L = (1/2)[((N+1)/N) sum_a s_a^3 a_a^2 + (1/N) (sum_a p_a^2 s_a)(sum_b q_b^2 s_b^2)
- 2 sum_a a_a s_a^2 + Tr S]: minimising the product over p, q at fixed a_a
(Cauchy-Schwarz) gives, for positive gains,

    (N+1) x_a + sum_b x_b = N sqrt(s_a),   x_a = s_a^{3/2} a_a,

(the optimum has p_a^2 proportional to s_a q_a^2, not p_a = q_a); the paper's
1/s_inf_a solves (N+1) s_a a_a + Tr S a_a = N instead;

and a numerical search (scipy least squares from many starts) that must
land on the reported families.
"""

import json

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import least_squares

from symicl.analysis.fixed_points import (
    FixedPointBudgetError,
    fixed_points,
    learned_map,
)
from symicl.analysis.stability import classify
from symicl.errors import ModelError
from symicl.models import build

S2 = [2, sp.Rational(1, 2)]


def _hand_gains(N, s):
    """Solve (N+1) x_a + sum_b x_b = N sqrt(s_a), x_a = s_a^{3/2} a_a (see module docstring)."""
    d = len(s)
    M = sp.Matrix(d, d, lambda i, j: (N + 1 if i == j else 0) + 1)
    x = M.LUsolve(sp.Matrix([N * sp.sqrt(v) for v in s]))
    return [sp.radsimp(x[a] / sp.Integer(1) / s[a] ** sp.Rational(3, 2)) for a in range(d)]


def test_d1_aligned_symbolic_saddle_and_stable_family():
    m = build("linear-transformer", dim=1, reduction="aligned")
    res = fixed_points(m)
    N, s = m.symbol("N"), m.symbol("s_1")
    p, q = m.symbol("p_1"), m.symbol("q_1")
    assert len(res) == 2
    origin, family = res.points
    assert origin.values == {p: 0, q: 0} and not origin.is_family
    assert origin.stability.kind == "saddle" and origin.stability.n_unstable == 1
    assert family.free == (p,)
    assert family.stability.kind == "stable" and family.stability.along_family == 1
    assert family.stability.n_zero == 1
    gain = sp.simplify(family.values[p] * family.values[q])
    assert sp.simplify(gain - N / ((N + 2) * s)) == 0
    # the learned predictor p2 q1 on the family
    pred = learned_map(m, family.values)["P22*Q11"]
    assert sp.simplify(pred[0, 0] - N / ((N + 2) * s)) == 0
    # paper's 1/s_inf agrees at d = 1
    assert sp.simplify(gain - N / ((N + 1) * s + s)) == 0
    assert all(pt.verified == "exact" for pt in res)
    out = res.to_dict()
    assert out[1] == {"p_1": "p_1", "q_1": "N/(p_1*s_1*(N + 2))"}
    assert json.dumps(out) == json.dumps(fixed_points(m).to_dict())


def test_d2_origin_saddle_two_unstable_directions_symbolic():
    m = build("linear-transformer", dim=2, reduction="aligned")
    st = classify(m, {p: 0 for p in m.parameters})
    assert (st.kind, st.n_unstable, st.n_stable, st.n_zero) == ("saddle", 2, 2, 0)
    s1, s2 = m.symbol("s_1"), m.symbol("s_2")
    assert {e for e, _ in st.eigenvalues} == {s1 ** 2, -s1 ** 2, s2 ** 2, -s2 ** 2}


def _numeric_fixed_points(flow, params, n_starts=60, seed=0):
    """Independent search: least squares on F from random starts; converged roots only."""
    f = sp.lambdify([params], [flow[p] for p in params], "numpy")
    rng = np.random.default_rng(seed)
    roots = []
    for _ in range(n_starts):
        x0 = rng.normal(scale=1.0, size=len(params))
        r = least_squares(lambda x: np.array(f(x), dtype=float), x0, xtol=1e-15, ftol=1e-15,
                          gtol=1e-15)
        if np.max(np.abs(r.fun)) < 1e-10:
            roots.append(r.x)
    return roots


def _on_some_family(x, res, params):
    """Does the numeric root x satisfy the equations of a reported point or family?"""
    sub = dict(zip(params, x))
    for pt in res:
        if not pt.is_family:
            if all(abs(float(pt.values[p]) - sub[p]) < 1e-6 for p in params):
                return True
            continue
        eqs = pt.equations
        if all(abs(complex(sp.N(e.xreplace(sub)))) < 1e-6 for e in eqs):
            # same real branch: the chart's values agree at x's free coordinates
            chart = {p: complex(sp.N(sp.sympify(pt.values[p]).xreplace(
                {f: sub[f] for f in pt.free}))) for p in params}
            if all(abs(chart[p] - sub[p]) < 1e-6 for p in params):
                return True
    return False


def test_d2_anisotropic_all_fixed_points_and_stable_gains_differ_from_paper():
    N = 8
    m = build("linear-transformer", dim=2, reduction="aligned", N=N, spectrum=S2)
    res = fixed_points(m)
    params = list(m.parameters)
    kinds = sorted((pt.dimension, pt.stability.kind, pt.stability.n_unstable) for pt in res)
    # origin, one family per single learned mode, two full-learning families (sign of mode 1)
    assert kinds == [(0, "saddle", 2), (1, "saddle", 1), (1, "saddle", 1),
                     (1, "stable", 0), (1, "stable", 0)]
    flow = m.flow()
    for pt in res:
        assert pt.verified == "exact"
        for val in ({f: sp.Rational(7, 5) for f in pt.free}, {f: -3 for f in pt.free}):
            full = {p: sp.sympify(v).xreplace(val) for p, v in pt.values.items()}
            assert max(abs(float(sp.N(flow[p].xreplace(full), 30))) for p in params) < 1e-12
    stable = res.stable()
    a = [sp.simplify(stable[0].values[m.symbol(f"p_{k}")] * stable[0].values[m.symbol(f"q_{k}")])
         for k in (1, 2)]
    assert a == [sp.Rational(38, 99), sp.Rational(128, 99)]
    gains = learned_map(m, stable[1].values)["P22*Q11"]
    assert [sp.simplify(gains[k, k]) for k in (0, 1)] == a
    assert [sp.simplify(g) for g in _hand_gains(N, S2)] == a
    s_inf = [((N + 1) * s + sum(S2)) / N for s in S2]
    paper = [1 / v for v in s_inf]
    assert paper == [sp.Rational(32, 82), sp.Rational(8, 7)]
    assert abs(float(a[0] - paper[0])) > 5e-3 and abs(float(a[1] - paper[1])) > 0.1
    # an independent numerical search finds nothing the method missed
    roots = _numeric_fixed_points(flow, params)
    assert len(roots) > 30
    assert all(_on_some_family(x, res, params) for x in roots)


def test_d2_symbolic_stable_gains_with_square_roots():
    m = build("linear-transformer", dim=2, reduction="aligned")
    res = fixed_points(m, square_roots=["s_1", "s_2"], classify=False)
    N, s1, s2 = m.symbol("N"), m.symbol("s_1"), m.symbol("s_2")
    full = [pt for pt in res if all(pt.values[p] != 0 for p in m.parameters)]
    assert len(res) == 5 and len(full) == 2
    for pt in full:
        for k, (sa, sb) in enumerate([(s1, s2), (s2, s1)], start=1):
            a = pt.values[m.symbol(f"p_{k}")] * pt.values[m.symbol(f"q_{k}")]
            hand = N * ((N + 2) * sp.sqrt(sa) - sp.sqrt(sb)) / ((N + 1) * (N + 3) * sa ** sp.Rational(3, 2))
            check = {N: 8, s1: 2, s2: sp.Rational(1, 2)}
            assert abs(float(sp.N((a - hand).xreplace(check), 30))) < 1e-20
            check = {N: 5, s1: 3, s2: sp.Rational(2, 3)}
            assert abs(float(sp.N((a - hand).xreplace(check), 30))) < 1e-20


def test_full_model_d1_finds_main_and_null_path_families():
    m = build("linear-transformer", dim=1, reduction="none", N=8, spectrum=[2])
    res = fixed_points(m)
    P21, P22, Q11, Q21 = (m.symbol(n) for n in ("WP_2_1", "WP_2_2", "WQ_1_1", "WQ_2_1"))
    inert = {m.symbol(n) for n in ("WP_1_1", "WP_1_2", "WQ_1_2", "WQ_2_2")}
    target = sp.Rational(8, 10 * 2)   # N / ((N+2) s)
    main = [pt for pt in res if pt.values[P21] == 0 and pt.values[Q21] == 0
            and pt.values[P22] != 0]
    null = [pt for pt in res if pt.values[P22] == 0 and pt.values[Q11] == 0
            and pt.values[P21] != 0]
    assert len(main) == 1 and len(null) == 1
    assert sp.simplify(main[0].values[P22] * main[0].values[Q11] - target) == 0
    assert sp.simplify(null[0].values[P21] * null[0].values[Q21] - target) == 0
    for pt in res:
        assert inert <= set(pt.free) and set(pt.inert) == inert
        assert pt.verified == "exact"
    assert main[0].stability.kind == "stable" and null[0].stability.kind == "stable"
    assert main[0].stability.along_family == 5
    origin = [pt for pt in res if all(pt.values[p] == 0 for p in (P21, P22, Q11, Q21))]
    assert len(origin) == 1 and origin[0].stability.n_unstable == 2
    mixed = [pt for pt in res if all(pt.values[p] != 0 for p in (P21, P22, Q11, Q21))]
    assert len(mixed) == 2 and all(pt.stability.kind == "saddle" for pt in mixed)
    assert len(res) == 5
    flow = m.flow()
    active = [P21, P22, Q11, Q21]
    roots = _numeric_fixed_points({p: flow[p].xreplace({i: 0 for i in inert}) for p in active},
                                  active, n_starts=40, seed=1)
    params = list(m.parameters)
    assert len(roots) > 20
    assert all(_on_some_family(np.r_[0, 0, x[0], x[1], x[2], 0, x[3], 0], res, params)
               for x in roots)


def test_deep_linear_111_symbolic_and_211():
    m = build("deep-linear", n_in=1, n_hidden=1, n_out=1)
    res = fixed_points(m)
    w1, w2, T = m.symbol("W1_1_1"), m.symbol("W2_1_1"), m.symbol("T_1_1")
    assert [pt.stability.kind for pt in res] == ["saddle", "stable"]
    assert sp.simplify(res.points[1].values[w1] * res.points[1].values[w2] - T) == 0
    m = build("deep-linear", n_in=2, n_hidden=1, n_out=1)
    res = fixed_points(m)
    assert [(pt.dimension, pt.stability.kind) for pt in res] == [(1, "saddle"), (1, "stable")]
    stable = res.stable()[0]
    W = learned_map(m, stable.values)["W2*W1"]
    assert sp.simplify(W - sp.Matrix([[m.symbol("T_1_1"), m.symbol("T_1_2")]])) == sp.zeros(1, 2)


def test_deep_linear_212_partial_learning_saddles():
    m = build("deep-linear", n_in=2, n_hidden=1, n_out=2, teacher=np.diag([3, 1]))
    res = fixed_points(m)
    summary = []
    for pt in res:
        W = learned_map(m, pt.values)["W2*W1"].applyfunc(sp.simplify)
        summary.append((W[0, 0], W[1, 1], pt.stability.kind, pt.stability.n_unstable))
    # nothing learned: 2 unstable directions; the weak mode alone: saddle; the strong one: stable
    assert sorted(summary, key=str) == sorted(
        [(0, 0, "saddle", 2), (0, 1, "saddle", 1), (3, 0, "stable", 0)], key=str)


def test_deep_linear_222_families():
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=np.diag([3, 1]))
    res = fixed_points(m)
    summary = []
    for pt in res:
        W = learned_map(m, pt.values)["W2*W1"].applyfunc(sp.simplify)
        summary.append((pt.dimension, W[0, 0], W[1, 1], pt.stability.kind,
                        pt.stability.n_unstable))
    assert sorted(summary, key=str) == sorted([
        (0, 0, 0, "saddle", 4), (3, 0, 1, "saddle", 2), (3, 3, 0, "saddle", 1),
        (4, 3, 1, "stable", 0)], key=str)
    assert res.dropped and all(d.startswith("in the closure") for d in res.dropped)


def test_errors_and_budget():
    m = build("linear-transformer", dim=2, reduction="aligned", N=8, spectrum=S2)
    with pytest.raises(FixedPointBudgetError, match="max_variables"):
        fixed_points(m, max_variables=3)
    with pytest.raises(ModelError, match="not a constant"):
        fixed_points(build("linear-transformer", dim=1, reduction="aligned"), {"p_1": 1})
    with pytest.raises(ModelError, match="number"):
        fixed_points(build("linear-transformer", dim=1, reduction="aligned"), {"N": "M"})
    with pytest.raises(ModelError):
        fixed_points("not a model")
    big = build("linear-transformer", dim=3, reduction="aligned", N=8, spectrum=[2, 1, 0.5])
    with pytest.raises(FixedPointBudgetError, match="time budget"):
        fixed_points(big, time_budget=0.5)
