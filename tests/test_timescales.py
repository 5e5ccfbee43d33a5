"""Growth rates, escape times and learning order from the derived Jacobian (analysis issue).

Independent checks from math-spec: the origin block of mode a of the aligned
transformer is [[0, s_a^2], [s_a^2, 0]] (rate s_a^2, tau ~ 1/s_a^2); deep
linear networks grow mode a at the teacher's singular value s_a (Saxe et al.);
modes with larger s_a are learned first.
"""

import json

import numpy as np
import pytest
import sympy as sp

from symicl.analysis.timescales import linearise, timescales
from symicl.errors import ModelError
from symicl.models import build


def test_aligned_d1_symbolic_rates_and_escape_time():
    m = build("linear-transformer", dim=1, reduction="aligned")
    ts = timescales(m)
    N, s = m.symbol("N"), m.symbol("s_1")
    assert list(ts.growth.values()) == [s ** 2]
    mode = ts.origin.growing()[0]
    assert mode.support == ("p_1", "q_1")
    # learned scale: the balanced point p = q = sqrt(N/((N+2)s)) has norm sqrt(2N/((N+2)s))
    t = list(ts.escape.values())[0]
    expected = sp.log(sp.sqrt(2 * N / ((N + 2) * s)) / ts.eps) / s ** 2
    assert sp.simplify(sp.expand_log(t - expected, force=True)) == 0
    assert list(ts.relaxation.values()) == [2 * s ** 2]


def test_aligned_d3_rates_follow_spectrum_squared():
    spectrum = [sp.Rational(1, 2), 2, 1]
    m = build("linear-transformer", dim=3, reduction="aligned", N=8, spectrum=spectrum)
    ts = timescales(m, scale=1)
    assert ts.growth == {"mode 1 (+)": sp.Rational(1, 4), "mode 2 (+)": 4, "mode 3 (+)": 1}
    assert ts.order == ["mode 2 (+)", "mode 3 (+)", "mode 1 (+)"]
    for m_ in ts.origin.growing():
        a = m_.label.split()[1]
        assert m_.support == (f"p_{a}", f"q_{a}") and m_.multiplicity == 1
    eps = ts.eps
    assert ts.escape["mode 2 (+)"] == sp.log(1 / eps) / 4
    out = ts.to_dict()
    assert out["order"] == ts.order and "t_escape" in out["definition"]
    assert json.dumps(out, sort_keys=True) == json.dumps(
        timescales(m, scale=1).to_dict(), sort_keys=True)


def test_aligned_d2_stable_point_relaxation_and_learned_scale():
    m = build("linear-transformer", dim=2, reduction="aligned", N=8, spectrum=[2, 0.5])
    ts = timescales(m)
    assert ts.order == ["mode 1 (+)", "mode 2 (+)"]
    assert ts.stable is not None
    # one zero eigenvalue along the rescaling family, three relaxation rates > 0
    assert len(ts.stable.neutral()) == 1 and sum(md.multiplicity for md in ts.stable.decaying()) == 3
    assert all(float(r) > 0 for r in ts.relaxation.values())
    # the stable point used is the balanced (minimum-norm) member: ||p||^2 = ||q||^2
    pt = ts.stable.point
    p2 = sum(pt[m.symbol(f"p_{a}")] ** 2 for a in (1, 2))
    q2 = sum(pt[m.symbol(f"q_{a}")] ** 2 for a in (1, 2))
    assert sp.simplify(p2 - q2) == 0
    for t in ts.escape.values():
        assert t.has(ts.eps)


def test_deep_linear_rates_are_teacher_singular_values():
    T = np.array([[2, 1], [1, 2]])   # singular values 3 and 1
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=T)
    ts = timescales(m, scale=1)
    assert sorted(ts.growth.values(), reverse=True) == [3, 1]
    assert [ts.growth[k] for k in ts.order] == [3, 1]
    assert [md.multiplicity for md in ts.origin.growing()] == [2, 2]   # one per hidden unit
    assert sorted(md.eigenvalue for md in ts.origin.decaying()) == [-3, -1]


def test_deep_linear_212_learned_scale():
    m = build("deep-linear", n_in=2, n_hidden=1, n_out=2, teacher=np.diag([3, 1]))
    ts = timescales(m)
    assert ts.order == ["eigenvalue 3", "eigenvalue 1"]
    # the stable point learns mode 1 only: its balanced member has W1 = W2^T = sqrt(3) e_1
    assert sp.simplify(ts.escape["eigenvalue 3"] - sp.log(sp.sqrt(6) / ts.eps) / 3) == 0
    # one hidden unit: the weak mode grows at first but the stable point does not learn it
    assert ts.escape["eigenvalue 1"] == sp.oo


def test_linearise_needs_every_parameter():
    m = build("linear-transformer", dim=1, reduction="aligned")
    with pytest.raises(ModelError, match="missing"):
        linearise(m, {"p_1": 0})
