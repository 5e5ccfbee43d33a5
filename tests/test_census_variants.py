"""The committed critical-point censuses of the attention variants (two merged heads, two
separate rank-one heads, d = 2): one class per file re-verified at 50 digits as on derive, a
perturbed point refused, and the learned function at the least loss."""

import copy
import json
from importlib.resources import files

import pytest
import sympy as sp

from symicl.analysis.fixed_points import learned_map
from symicl.derivations import config_for
from symicl.models import build
from symicl.sections import census_section

VARIANTS = {"heads": {"dim": 2, "heads": 2, "tasks": "isotropic"},
            "separate": {"dim": 2, "heads": 2, "kq": "separate", "tasks": "isotropic"}}


def census(name):
    path = files("symicl").joinpath("data", "critical_points",
                                    f"linear_transformer_{name}_d2.json")
    return json.loads(path.read_text("utf-8"))


def one_class(data, pick):
    """The census reduced to its anisotropic case and the class ``pick`` chooses."""
    data = copy.deepcopy(data)
    case = data["cases"]["anisotropic"]
    case["classes"] = [pick(case["classes"])]
    return data


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    model = build("linear-transformer", **VARIANTS[request.param])
    return request.param, model, census(request.param)


def test_the_committed_derivation_carries_the_census(variant):
    name, model, _ = variant
    assert config_for(model).census == f"critical_points/linear_transformer_{name}_d2.json"


def test_a_committed_class_reverifies_and_a_perturbed_one_is_refused(variant):
    name, model, data = variant
    # the least-loss class of the merged heads (a minimum), a saddle of index >= 2 otherwise
    pick = (lambda cs: cs[0]) if name == "heads" else \
        (lambda cs: next(c for c in cs if c["index"] >= 2))
    good = one_class(data, pick)
    sec = census_section(model, good, "test")
    out = sec.data["critical_points"]["cases"]["anisotropic"]
    (cls,) = out["classes"]
    if name == "heads":     # the least-loss class: the one-head minimum and its function
        assert out["one_head_minimum"]["same_function"] is True
        assert out["one_head_minimum"]["least_loss_minus_it"].startswith("below 1e-40")
        assert out["least_loss"]["y_hat"] == "16*Sxy_1*x_1/41 + 8*Sxy_2*x_2/7"
    assert cls["residual"] == "< 1e-30" and cls["index"] == pick(
        data["cases"]["anisotropic"]["classes"])["index"]
    wrong = copy.deepcopy(good)
    wrong["cases"]["anisotropic"]["classes"][0]["orbit_dimension"] += 1
    with pytest.raises(ArithmeticError, match="orbit dimension"):
        census_section(model, wrong, "test")
    bad = copy.deepcopy(good)
    point = bad["cases"]["anisotropic"]["classes"][0]["point"]
    first = next(iter(point))
    point[first] = str(sp.Float(point[first], 60) + sp.Float("1e-12", 60))
    with pytest.raises(ArithmeticError, match="is not below 1e-30"):
        census_section(model, bad, "test")


def test_merged_heads_reach_the_one_head_minimum_and_its_function():
    """The least loss of two merged heads equals the one-head model's (its aligned stable
    point, exact), and y_hat there is S_xy^T Gamma x_q with Gamma = diag(N / ((N + 1) s_a +
    tr S)) (the known optimum of one merged head with scalar tasks, typed here as the check)."""
    model = build("linear-transformer", **VARIANTS["heads"])
    case = census("heads")["cases"]["anisotropic"]
    best = case["classes"][0]
    assert best["index"] == 0 and "global" in best["kind"]
    N, s = 8, [sp.Integer(2), sp.Rational(1, 2)]
    assert sp.Rational(case["one_head_minimum"]["loss"]) == sp.Rational(375, 1148)
    assert abs(sp.Float(best["loss"], 25) - sp.Rational(375, 1148)) < 1e-22
    y_hat = learned_map(model, {**{p.name: 0 for p in model.parameters},
                                **{k: sp.Float(v, 55) for k, v in best["point"].items()}})
    y_hat = y_hat["y_hat"][0]
    name = {str(v): v for v in y_hat.free_symbols}
    expected = sum(N / ((N + 1) * s[a] + sum(s)) * name[f"Sxy_{a + 1}"] * name[f"x_{a + 1}"]
                   for a in range(2))
    residual = sp.Poly(sp.expand(y_hat - expected), *sorted(y_hat.free_symbols, key=str))
    assert max(abs(c) for c in residual.coeffs()) < 1e-40


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_learned_function_is_the_forward_pass_on_the_context_statistics(name):
    """y_hat of the hook, with S = Z Z^T / N of a random context (query inside) and random
    weights, equals an independent NumPy forward pass of H-head linear attention,
    y_hat = sum_h [W^P_h (Z Z^T / N) W^Q_h z_q]_y (separate: W^Q_h = W^K_h^T W^Q_h)."""
    import numpy as np

    from symicl.models.linear_transformer import learned_function, statistics

    model = build("linear-transformer", **VARIANTS[name])
    rng = np.random.default_rng(5)
    d, D, N = 2, 3, 6
    u = rng.standard_normal((N, d))
    w = rng.standard_normal(d)
    xq = rng.standard_normal(d)
    Z = np.column_stack([np.vstack([u.T, u @ w]), np.append(xq, 0.0)])
    S = Z @ Z.T / N
    theta = {p.name: float(v) for p, v in zip(model.parameters,
                                              rng.standard_normal(len(model.parameters)))}
    expected = 0.0
    for h in (1, 2):
        WP = np.array([[theta[f"WP_1_{h}_{i}_{j}"] for j in range(1, D + 1)]
                       for i in range(1, D + 1)])
        if name == "heads":
            WQ = np.array([[theta[f"WQ_1_{h}_{i}_{j}"] for j in range(1, D + 1)]
                           for i in range(1, D + 1)])
        else:
            k = np.array([theta[f"WK_1_{h}_1_{j}"] for j in range(1, D + 1)])
            q = np.array([theta[f"WQ_1_{h}_1_{j}"] for j in range(1, D + 1)])
            WQ = np.outer(k, q)
        expected += (WP @ S @ WQ @ Z[:, -1])[d]
    f = learned_function(model)[0]
    stats = statistics(d, 1)
    values = {**{model.symbol(k): v for k, v in theta.items()},
              **{stats[i, j]: S[i, j] for i in range(D) for j in range(D)},
              **{v: xq[int(v.name[2:]) - 1] for v in f.free_symbols if v.name.startswith("x_")}}
    assert f.free_symbols <= set(values)
    assert abs(float(f.xreplace(values)) - expected) < 1e-12 * (1 + abs(expected))


def test_reductions_have_no_learned_function():
    from symicl.models.linear_transformer import learned_function

    assert learned_function(build("linear-transformer", dim=2, reduction="aligned")) is None
