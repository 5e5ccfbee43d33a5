"""The Python API's inputs: the JSON contract read back with symicl's symbols, constants
substituted by name, flows computed once, bad covariances and spectra refused, and
warnings for unused parameters and undeclared symbols."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symicl import symbols
from symicl.errors import DistributionError, ModelError, ModelWarning
from symicl.expectation import Distribution
from symicl.export import ContractError, load_json
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.models import build

ROOT = Path(__file__).resolve().parents[1] / "derivations"


@pytest.mark.parametrize("folder, model, options", [
    ("linear_transformer_aligned", "linear-transformer", {"dim": 2, "reduction": "aligned"}),
    ("linear_transformer_per_mode", "linear-transformer-per-mode", {"dim": 2}),
    ("deep_linear", "deep-linear", {}),
])
def test_load_json_gives_the_models_own_symbols_and_expressions(folder, model, options):
    m = build(model, **options)
    path = ROOT / folder / "derivation.json"
    for source in (path, str(path), path.read_text(), json.loads(path.read_text())):
        d = load_json(source)
        assert d["parameters"] == m.parameters          # equal symbols: same assumptions
        assert d["constants"] == m.constants
        assert sp.expand(d["loss"] - m.expected_loss()) == 0
        assert all(sp.expand(d["flow"][p] - e) == 0 for p, e in m.flow().items())


def test_load_json_substitutes_by_symicls_symbols():
    d = load_json(ROOT / "linear_transformer_aligned" / "derivation.json")
    N = symbols.context_length()
    assert N in d["loss"].free_symbols and N in d["constants"]
    at4 = d["loss"].subs(N, 4)
    assert N not in at4.free_symbols
    s1, s2 = symbols.spectrum(2)
    p1, p2, q1, q2 = d["parameters"]
    # at p = q = 0 the loss is E[y^2]/2 = (s_1 + s_2)/2 whatever N
    assert sp.simplify(d["loss"].subs({p1: 0, p2: 0, q1: 0, q2: 0}) - (s1 + s2) / 2) == 0
    # plain sympify reads N as SymPy's N() function: the contract's text needs load_json
    assert not isinstance(sp.sympify("N"), sp.Symbol)


@pytest.mark.parametrize("source, words", [
    ("{not json", "not valid JSON"),
    ({"model": "m"}, "has no options, parameters, constants, loss, flow"),
    ({"model": "m", "options": {}, "parameters": ["w"], "constants": [], "loss": "w**2 + c",
      "flow": {"w": "-2*w"}}, "uses c, which is neither a parameter nor a constant"),
    ({"model": "m", "options": {}, "parameters": ["w"], "constants": [],
      "loss": "__import__('os').system('echo hacked')", "flow": {"w": "0"}}, "uses __import__"),
    ({"model": "m", "options": {}, "parameters": ["w"], "constants": [], "loss": "w.__class__",
      "flow": {"w": "0"}}, "not part of an expression"),
    ({"model": "m", "options": {}, "parameters": ["w"], "constants": [], "loss": "w**2",
      "flow": {}}, "flow has no entry for w"),
    ({"model": "m", "options": {}, "parameters": ["w"], "constants": [], "loss": "w**2 +",
      "flow": {"w": "0"}}, "is not an expression"),
    ("/nonexistent/derivation.json", "cannot read /nonexistent/derivation.json"),
])
def test_load_json_refuses_what_is_not_the_contract(source, words):
    with pytest.raises(ContractError) as info:
        load_json(source)
    assert words in str(info.value)


def test_subs_constants_by_name():
    m = build("linear-transformer", dim=1, reduction="aligned")
    N, s1 = m.symbol("N"), m.symbol("s_1")
    got = m.subs_constants(N=8, s_1=2)
    assert set(got) == {"loss", "flow"}
    assert sp.expand(got["loss"] - m.expected_loss().subs({N: 8, s1: 2})) == 0
    assert got["loss"].free_symbols == set(m.parameters)
    for p, e in m.flow().items():
        assert sp.expand(got["flow"][p] - e.subs({N: 8, s1: 2})) == 0
    partial = m.subs_constants(N=0.5e1 + 3)        # a float that is an integer: exact 8
    assert partial["loss"].free_symbols == set(m.parameters) | {s1}
    assert sp.expand(partial["loss"].subs(s1, 2) - got["loss"]) == 0


@pytest.mark.parametrize("values, words", [
    ({"M": 3}, "model linear-transformer has no constant M; constants: N, s_1"),
    ({"p_1": 3}, "p_1 is a parameter of model linear-transformer, not a constant"),
    ({"N": 0}, "N must be positive"),
    ({"N": 2.5}, "N must be an integer"),
    ({"s_1": -1}, "s_1 must be positive"),
    ({"s_1": float("nan")}, "not a finite value"),
])
def test_subs_constants_names_a_bad_input(values, words):
    m = build("linear-transformer", dim=1, reduction="aligned")
    with pytest.raises(ModelError) as info:
        m.subs_constants(**values)
    assert words in str(info.value)


def test_flow_gradient_and_loss_are_computed_once(monkeypatch):
    m = build("linear-transformer", dim=1, reduction="aligned")
    flow, grad, loss = m.flow(), m.gradient(), m.expected_loss()
    monkeypatch.setattr(m._engine, "to_expr", lambda *a: pytest.fail("recomputed"))
    assert m.flow() == flow and m.gradient() == grad and m.expected_loss() == loss
    m.flow().clear()                                   # a caller's dict, not the cache
    assert m.flow() == flow
    assert all(sp.expand(flow[p] + grad[p]) == 0 for p in m.parameters)


@pytest.mark.parametrize("cov, words", [
    ([float("nan")], "variance 1 is nan, not a finite number"),
    ([1.0, float("inf")], "variance 2 is inf, not a finite number"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "entry (1,2) is nan, not finite"),
    ([[1, sp.oo], [sp.oo, 1]], "entry (1,2) is oo, not finite"),
    ([sp.zoo], "is zoo, not finite"),
    ([-sp.Symbol("s")], "variance 1 is -s, not known to be >= 0"),
    ([sp.Symbol("s")], "variance 1 is s, not known to be >= 0"),
    ([-sp.Symbol("s", positive=True)], "not positive semi-definite"),
    (["1 +"], "not a number or a SymPy expression"),
])
def test_covariance_entries_must_be_finite_and_variances_known_nonnegative(cov, words):
    variables = symbols.vector("x", np.shape(cov)[0] if not isinstance(cov, list) else len(cov))
    with pytest.raises(DistributionError) as info:
        Gaussian(variables, cov)
    assert words in str(info.value)


def test_good_covariances_still_pass():
    s = sp.Symbol("s", positive=True)
    t = sp.Symbol("t", nonnegative=True)
    x = symbols.vector("x", 2)
    assert Gaussian(x, [s, t]).covariance == sp.diag(s, t)
    assert Gaussian(x, [0, 2.5]).covariance == sp.diag(0, sp.Rational(5, 2))
    assert Gaussian(x, np.eye(2)).covariance == sp.eye(2)


@pytest.mark.parametrize("spectrum, words", [
    ([-sp.Symbol("s")], "input eigenvalue -s is not known to be positive"),
    ([sp.Symbol("s")], "input eigenvalue s is not known to be positive"),
    ([sp.Symbol("s", real=True)], "not known to be positive"),
    ([-sp.Symbol("s", positive=True)], "not known to be positive"),
    ([float("inf")], "must be finite numbers > 0, got inf"),
    ([float("nan")], "must be finite numbers > 0, got nan"),
    ([sp.oo], "must be finite numbers > 0, got oo"),
    ([0], "must be positive, got 0"),
])
def test_spectra_not_known_positive_are_refused(spectrum, words):
    with pytest.raises(ModelError) as info:
        build("linear-transformer", dim=1, spectrum=spectrum)
    assert words in str(info.value)
    assert build("linear-transformer", dim=1, spectrum=[sp.Symbol("s", positive=True)])


def test_unused_parameter_and_undeclared_symbol_warn_by_name():
    x = sp.Symbol("x", real=True)
    w, b, c = sp.symbols("w b c", real=True)
    dist = Distribution(Gaussian([x]))
    with pytest.warns(ModelWarning, match="parameter b never appears in the loss"):
        Model("m", {"w": sp.Matrix([w]), "b": sp.Matrix([b])}, dist, prediction=w * x,
              target=x)
    with pytest.warns(ModelWarning, match="the prediction uses c, neither a parameter"):
        m = Model("m", {"w": sp.Matrix([w])}, dist, prediction=c * w * x, target=x)
    assert m.constants == [c]
    for declared in ([c], ["c"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ModelWarning)
            m = Model("m", {"w": sp.Matrix([w])}, dist, prediction=c * w * x, target=x,
                      constants=declared)
        assert m.constants == [c] and m.declared_constants == [c]
        assert sp.expand(m.subs_constants(c=2)["loss"] - (2 * w - 1) ** 2 / 2) == 0
    with pytest.raises(ModelError, match="w is a parameter, not a constant"):
        Model("m", {"w": sp.Matrix([w])}, dist, prediction=c * w * x, target=x, constants=[w])
    with pytest.raises(ModelError, match="declared constant d does not appear"):
        Model("m", {"w": sp.Matrix([w])}, dist, prediction=c * w * x, target=x,
              constants=["c", "d"])


@pytest.mark.parametrize("name, options", [
    ("linear-transformer", {"dim": 1}),
    ("linear-transformer", {"dim": 2}),
    ("linear-transformer", {"dim": 2, "tasks": "isotropic"}),
    ("linear-transformer", {"dim": 2, "reduction": "null-zero"}),
    ("linear-transformer", {"dim": 2, "reduction": "aligned", "N": 4, "spectrum": [1.0, 2.0]}),
    ("linear-transformer-per-mode", {"dim": 2}),
    ("deep-linear", {}),
    ("deep-linear", {"teacher": [[1, 0], [0, 2]]}),
])
def test_builtin_models_raise_no_model_warning(name, options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        m = build(name, **options)
    assert m.parameters
