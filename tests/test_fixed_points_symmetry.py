"""Fixed points of deeper linear networks: the FLINT Groebner path and saturated splitting.

The FLINT backend must give the reduced lex Groebner basis SymPy gives (it is
unique), hence the same fixed points; saturated splitting must give the same
components as plain splitting.  Independent check: Newton's method on
grad L = 0 from many random starts (numerically, from the flow and its
Jacobian); every converged root must lie on a reported component (satisfy its
defining equations, or equal a reported point).
"""

import importlib
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symicl.models import build

fp = importlib.import_module("symicl.analysis.fixed_points")
sys.path.insert(0, str(Path(__file__).parent / "user_models"))
from models import three_layer  # noqa: E402


def _summary(res):
    return [(p.dimension, p.stability.kind, p.to_dict()) for p in res]


def test_flint_basis_is_sympys_reduced_basis():
    x, y, z = sp.symbols("x y z")
    rng = random.Random(7)
    for _ in range(25):
        polys = [sp.expand(sum(sp.Rational(rng.randint(-5, 5), rng.randint(1, 4))
                               * x ** rng.randint(0, 2) * y ** rng.randint(0, 1)
                               * z ** rng.randint(0, 1) for _ in range(3)))
                 for _ in range(rng.randint(2, 3))]
        ours = fp._groebner(polys, [x, y, z], sp.QQ)
        ref = list(sp.groebner(polys, x, y, z, order="lex", domain=sp.QQ).exprs)
        assert [sp.expand(g) for g in ours] == [sp.expand(g) for g in ref]


def test_deep_linear_222_same_fixed_points_on_both_backends(monkeypatch):
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=[[3, 0], [0, 1]])
    new = fp.fixed_points(m)
    monkeypatch.setattr(fp, "_GB_BACKEND", "sympy")
    old = fp.fixed_points(m)
    assert _summary(new) == _summary(old)
    assert new.dropped == old.dropped
    assert [p.dimension for p in new] == [0, 3, 3, 4]


def _newton_roots(model, n_starts=80, seed=3):
    """Damped Newton on F = -grad L = 0 (least-squares step where J is singular)."""
    params = list(model.parameters)
    flow = model.flow()
    F = sp.Matrix([flow[p] for p in params])
    f = sp.lambdify([params], list(F), "numpy")
    jac = sp.lambdify([params], F.jacobian(params), "numpy")
    rng = np.random.default_rng(seed)
    roots = []
    for _ in range(n_starts):
        x = rng.normal(scale=1.5, size=len(params))
        for _ in range(200):
            r = np.array(f(x), dtype=float)
            if np.max(np.abs(r)) < 1e-13:
                break
            step = np.linalg.lstsq(np.array(jac(x), dtype=float), -r, rcond=None)[0]
            x = x + step
            if not np.all(np.isfinite(x)) or np.max(np.abs(x)) > 1e6:
                break
        if np.all(np.isfinite(x)) and np.max(np.abs(np.array(f(x), dtype=float))) < 1e-11:
            roots.append(x)
    return params, roots


def _on_component(x, res, params):
    sub = dict(zip(params, x))
    for pt in res:
        if not pt.is_family:
            if all(abs(float(pt.values[p]) - sub[p]) < 1e-6 for p in params):
                return True
        elif all(abs(complex(sp.N(e.xreplace(sub)))) < 1e-6 for e in pt.equations):
            return True
    return False


def test_three_layer_width_one_saturated_split_and_newton_roots():
    m = three_layer(width=1)
    plain = fp.fixed_points(m)
    sat = fp.fixed_points(m, saturate=True)
    assert sorted(_summary(plain), key=str) == sorted(_summary(sat), key=str)
    assert sorted((p.dimension, p.stability.kind) for p in sat) == [
        (1, "saddle"), (2, "saddle"), (2, "stable"), (3, "saddle")]
    assert all(p.verified == "exact" for p in sat)
    params, roots = _newton_roots(m)
    assert len(roots) >= 40
    missed = [x for x in roots if not _on_component(x, sat, params)]
    assert not missed, missed[:3]


def test_saturate_is_off_by_default_and_keeps_outputs():
    m = build("deep-linear", n_in=2, n_hidden=1, n_out=2, teacher=[[3, 0], [0, 1]])
    assert _summary(fp.fixed_points(m)) == _summary(fp.fixed_points(m, saturate=True))


@pytest.mark.parametrize("bad", ["maybe"])
def test_backend_name_is_checked(monkeypatch, bad):
    monkeypatch.setattr(fp, "_GB_BACKEND", bad)
    x = sp.Symbol("x")
    with pytest.raises(fp.ModelError, match="backend"):
        fp._groebner([x - 1], [x], sp.QQ)
