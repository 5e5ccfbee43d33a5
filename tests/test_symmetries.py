"""Continuous linear symmetries of the expected loss (issue 14): exact discovery,
certificates, Noether pairing with the conservation laws, gauge fixing."""

import importlib
import json

import pytest
import sympy as sp

from symicl import symbols
from symicl.analysis.symmetries import gauge_fix, lie_algebra, noether, symmetries
from symicl.export import derivation, load_json
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.models import build

symmod = importlib.import_module("symicl.analysis.symmetries")   # the module, not the function


def identity_holds(model, sym):
    """grad L . A theta == 0 by independent expression-level expansion."""
    grad = model.gradient()
    return sp.expand(sum(grad[p] * e for p, e in zip(model.parameters, sym.field))) == 0


def in_span(basis, M):
    cs = sp.symbols(f"c0:{len(basis)}")
    diff = M - sum((c * B for c, B in zip(cs, basis)), sp.zeros(*M.shape))
    eqs = [e for e in diff if e != 0]
    return not eqs or bool(sp.solve(eqs, cs, dict=True))


def test_deep_linear_finds_exactly_gl_hidden():
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    found = symmetries(m)
    assert len(found) == 4
    assert all(identity_holds(m, s) for s in found)
    W1, W2 = m.blocks["W1"], m.blocks["W2"]
    pos = {p: k for k, p in enumerate(m.parameters)}
    # typed independently: W1 -> G W1, W2 -> W2 G^-1, G = 1 + t E_ab
    for a in range(2):
        for b in range(2):
            E = sp.zeros(2, 2)
            E[a, b] = 1
            dW1, dW2 = E * W1, -W2 * E
            A = sp.zeros(8, 8)
            for block, d in ((W1, dW1), (W2, dW2)):
                for k in range(4):
                    target = block[k]
                    for p, c in sp.Poly(d[k], *m.parameters).as_dict().items():
                        A[pos[target], p.index(1)] = c
            assert in_span([s.matrix for s in found], A)
    alg = lie_algebra(found)
    assert (alg.dimension, alg.center_dimension, alg.derived_dimension) == (4, 1, 3)
    assert (alg.symmetric_dimension, alg.antisymmetric_dimension) == (3, 1)
    # Noether for gradient flow: symmetric generators <-> conserved quadratics, the balance laws
    pairs = noether(m, found)
    balance = W1 * W1.T - W2.T * W2
    laws = [pair.law for pair in pairs]
    for e in (balance[0, 0], balance[0, 1], balance[1, 1]):
        cs = sp.symbols("c0:3")
        diff = sp.Poly(sp.expand(e - sum(c * h for c, h in zip(cs, laws))), *m.parameters)
        assert sp.solve(diff.coeffs(), cs, dict=True)


def test_scaling_symmetry_of_a_product_model():
    x, a, b, t = sp.symbols("x a b t", real=True)
    s = sp.Symbol("s", positive=True)
    m = Model("product", {"a": sp.Matrix([a]), "b": sp.Matrix([b])},
              Distribution(Gaussian([x], [[s]])), prediction=a * b * x, target=t * x,
              constants=[t])
    found = symmetries(m)
    assert len(found) == 1
    assert found[0].matrix == sp.diag(1, -1)
    assert found[0].kind == "scaling"
    assert [str(e) for e in found[0].field] == ["a", "-b"]
    assert sp.expand(noether(m, found)[0].law - (a ** 2 - b ** 2)) == 0


def test_model_without_symmetries():
    x = symbols.vector("x", 2)
    w = sp.symbols("w1 w2", real=True)
    t = sp.symbols("t1 t2", real=True)
    s = [sp.Symbol("s_1", positive=True), sp.Symbol("s_2", positive=True)]
    m = Model("regression", {"w": sp.Matrix(w)}, Distribution(Gaussian(x, sp.diag(*s))),
              prediction=w[0] * x[0] + w[1] * x[1], target=t[0] * x[0] + t[1] * x[1],
              constants=list(t))
    assert symmetries(m) == []
    assert lie_algebra([]).dimension == 0


def test_a_candidate_failing_the_certificate_is_never_returned(monkeypatch):
    m = build("linear-transformer", dim=1)
    real = symmod._ring_basis

    def corrupted(fr, entries, support):
        basis = real(fr, entries, support)
        return [[v * 2 if k == 0 else v for k, v in enumerate(vec)] for vec in basis]

    monkeypatch.setattr(symmod, "_ring_basis", corrupted)
    monkeypatch.setattr(symmod, "_rational_basis", lambda *args: None)   # the ring path
    with pytest.raises(ArithmeticError, match="fails its certificate"):
        symmetries(m)


@pytest.mark.parametrize("name, options", [("linear-transformer", {"dim": 1}),
                                           ("deep-linear", {"n_in": 2, "n_hidden": 2,
                                                            "n_out": 2})])
def test_rational_point_path_equals_the_ring_path(monkeypatch, name, options):
    """Elimination at one rational point of the constants (kept only when every vector
    certifies with the constants symbolic) gives exactly the ring's echelon basis."""
    m = build(name, **options)
    real, used = symmod._rational_basis, []

    def spy(*args):
        used.append(real(*args))
        return used[-1]
    monkeypatch.setattr(symmod, "_rational_basis", spy)
    fast = [s.matrix for s in symmetries(m)]
    assert fast and used and used[0] is not None      # the rational path answered
    monkeypatch.setattr(symmod, "_rational_basis", lambda *args: None)
    assert [s.matrix for s in symmetries(m)] == fast


def test_full_transformer_scaling_and_rotation_with_isotropic_data():
    m = build("linear-transformer", dim=1)
    found = symmetries(m)
    assert len(found) == 1 and found[0].kind == "scaling"
    WP, WQ = m.blocks["P22"], m.blocks["Q11"]
    assert found[0].matrix[m.parameters.index(WP[0]), m.parameters.index(WP[0])] == 1
    assert found[0].matrix[m.parameters.index(WQ[0]), m.parameters.index(WQ[0])] == -1
    s = sp.Symbol("s", positive=True)
    iso = build("linear-transformer", dim=2, spectrum=[s, s], tasks="isotropic")
    found = symmetries(iso)
    alg = lie_algebra(found)
    assert (alg.dimension, alg.abelian, alg.symmetric_dimension, alg.antisymmetric_dimension) \
        == (2, True, 1, 1)
    assert all(identity_holds(iso, f) for f in found)
    assert len(noether(iso, found)) == 1


def test_gauge_fixed_system_of_deep_linear():
    T = [[3, 0], [0, 1]]
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2, teacher=T)
    g = gauge_fix(m)
    assert g.orbit_dimension == 4 and len(g.unknowns) == 4 == len(g.equations)
    assert set(g.fixed) == set(m.blocks["W1"])       # W1 fixed: G W1 reaches any invertible W1
    V = m.blocks["W1"].xreplace(g.fixed)
    assert V.det() != 0 and g.condition != 0
    # the global minimum on the slice, W2 = T V^-1, solves the reduced system
    W2 = sp.Matrix(T) * V.inv()
    sol = dict(zip(list(m.blocks["W2"]), list(W2)))
    assert all(sp.simplify(e.xreplace(sol)) == 0 for e in g.equations)
    full = g.lift(sol)
    assert all(sp.simplify(e.xreplace(full)) == 0 for e in m.gradient().values())


def test_json_contract_lists_the_generators(monkeypatch):
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    data = json.loads(json.dumps(derivation(m)))
    syms = data["symmetries"]
    assert len(syms) == 4
    assert len(syms[0]["matrix"]) == 8 and all(isinstance(e, str) for e in syms[0]["matrix"][0])
    assert syms[0]["field"] == {"W1_1_1": "W1_1_1", "W1_1_2": "W1_1_2",
                                "W2_1_1": "-W2_1_1", "W2_2_1": "-W2_2_1"}
    assert load_json(data)["model"] == "deep-linear"
    monkeypatch.setattr(symmod, "MAX_UNKNOWNS", 10)
    data = derivation(m)
    assert data["symmetries"] is None
    assert "more than the limit 10" in data["symmetries_skipped"]


# -- the committed critical-point census of the full d = 2 transformer ------------------------------

def census_data():
    from importlib.resources import files

    path = files("symicl").joinpath("data", "critical_points", "linear_transformer_full_d2.json")
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def anisotropic_census():
    from symicl.analysis.critical_points import PrecisionSystem

    case = census_data()["cases"]["anisotropic"]
    model = build("linear-transformer", dim=2)
    return model, PrecisionSystem(model, case["constants"]), case


def test_census_points_pass_the_residual_bound_and_their_classification_at_50_digits(
        anisotropic_census):
    import mpmath as mp

    from symicl.analysis.critical_points import classify

    model, system, case = anisotropic_census
    classes = case["classes"]
    minima = [c for c in classes if c["index"] == 0]
    picks = [minima[0], next(c for c in minima if "spurious" in c["kind"]),
             next(c for c in classes if c["index"] >= 2)]
    found = symmetries(model)
    for c in picks:
        cl = classify(system, [c["point"][p.name] for p in system.active], dps=50)
        assert cl.residual < mp.mpf("1e-30")
        assert (cl.index, cl.zero_modes) == (c["index"], c["zero_modes"])
        with mp.workdps(50):
            assert abs(cl.loss - mp.mpf(c["loss"])) < mp.mpf("1e-20")
            # every symmetry direction A theta* is a zero mode of the Hessian there
            x = [mp.mpf(c["point"][p.name]) for p in system.active]
            H = system.hessian(x)
            values = dict(zip(system.active, x))
            for sym in found:
                v = mp.matrix([sp.sympify(sym.field[model.parameters.index(p)]).xreplace(values)
                               for p in system.active])
                assert mp.norm(H * v) < mp.mpf("1e-30") * (1 + mp.norm(v))


def test_census_global_minimum_is_the_aligned_stable_point(anisotropic_census):
    from symicl.analysis.fixed_points import fixed_points

    _, _, case = anisotropic_census
    aligned = build("linear-transformer", dim=2, reduction="aligned")
    constants = {"N": 8, "s_1": 2, "s_2": sp.Rational(1, 2)}
    stable = fixed_points(aligned, constants).stable()[0]
    subs = {aligned.symbol(k): v for k, v in constants.items()}
    exact = sp.nsimplify(aligned.expected_loss().xreplace(subs).xreplace(stable.values))
    best = min(sp.Float(c["loss"], 25) for c in case["classes"] if c["index"] == 0)
    assert abs(best - exact) < 1e-20


def test_gauge_fix_names_a_bad_choice():
    from symicl.errors import ModelError

    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    with pytest.raises(ModelError, match="orbits have dimension 4: fix 4 parameters, not 1"):
        gauge_fix(m, fix=["W1_1_1"])
    with pytest.raises(ModelError, match="degenerate"):
        gauge_fix(m, fix=["W1_1_1", "W1_1_2", "W1_2_1", "W1_2_2"], values=[1, 1, 1, 1])
    t = build("linear-transformer", dim=1)
    with pytest.raises(ModelError, match="WP_1_1: not an active parameter"):
        gauge_fix(t, fix=["WP_1_1"])
