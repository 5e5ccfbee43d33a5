"""The model-definition API: a new model in a few lines, and clear errors."""

import numpy as np
import pytest
import sympy as sp

from symicl.context import Context
from symicl.errors import DistributionError, ModelError, NotPolynomialError, SymiclError
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.models import build


def test_a_new_polynomial_model_in_a_few_lines():
    """Scalar linear regression with label noise: L = (1/2)((w - a)^2 s + sigma2)."""
    x, eps = sp.symbols("x eps", real=True)
    w, a, s, sigma2 = sp.symbols("w a s sigma2", positive=True)
    m = Model("regression", {"w": sp.Matrix([w])},
              Distribution(Gaussian([x], [s]), Gaussian([eps], [sigma2])),
              prediction=w * x, target=a * x + eps)
    assert sp.expand(m.expected_loss() - ((w - a) ** 2 * s + sigma2) / 2) == 0
    assert sp.expand(m.flow()[w] + (w - a) * s) == 0


def test_model_defined_by_its_loss_alone():
    p, q = sp.symbols("p q", real=True)
    m = Model("scalar", {"p": sp.Matrix([p]), "q": sp.Matrix([q])}, loss=(1 - p * q) ** 2 / 2)
    assert m.flow() == {p: q * (1 - p * q), q: p * (1 - p * q)} or all(
        sp.expand(m.flow()[k] - v) == 0 for k, v in {p: q * (1 - p * q), q: p * (1 - p * q)}.items())


def test_context_model_with_symbolic_N():
    """E[(mean(u^2) - s)^2] = 2 s^2 / N: the variance of an empirical variance."""
    u = sp.Symbol("u", real=True)
    s = sp.Symbol("s", positive=True)
    c = sp.Symbol("c", real=True)
    ctx = Context(Gaussian([u], [s]))
    m = Model("variance", {"c": sp.Matrix([c])}, Distribution(ctx),
              prediction=c * ctx.mean(u ** 2), target=s)
    L = m.expected_loss()
    assert sp.expand(L.subs(c, 1) - s ** 2 / ctx.N) == 0


def test_non_polynomial_forward_pass_is_named():
    x = sp.Symbol("x", real=True)
    w = sp.Symbol("w", real=True)
    m = Model("bad", {"w": sp.Matrix([w])}, Distribution(Gaussian([x])),
              prediction=sp.tanh(w * x), target=x)
    with pytest.raises(NotPolynomialError, match="tanh"):
        m.expected_loss()


def test_mismatched_shapes():
    x = sp.Symbol("x", real=True)
    w = sp.Symbol("w", real=True)
    with pytest.raises(ModelError, match="shape"):
        Model("bad", {"w": sp.Matrix([w])}, Distribution(Gaussian([x])),
              prediction=sp.Matrix([w * x, x]), target=sp.Matrix([x]))


def test_parameters_must_not_be_random():
    x = sp.Symbol("x", real=True)
    with pytest.raises(ModelError, match="also random"):
        Model("bad", {"x": sp.Matrix([x])}, Distribution(Gaussian([x])), prediction=x, target=0)


def test_context_length_must_be_a_positive_integer():
    u = sp.Symbol("u", real=True)
    for bad in (0, -3, 2.5):
        with pytest.raises(DistributionError, match="context length"):
            Context(Gaussian([u]), N=bad)
    with pytest.raises(SymiclError, match="context length"):
        build("linear-transformer", N=0)


def test_covariance_must_be_positive_semidefinite():
    x, y = sp.symbols("x y", real=True)
    with pytest.raises(DistributionError, match="positive semi-definite"):
        Gaussian([x, y], np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(DistributionError, match="not symmetric"):
        Gaussian([x, y], [[1, 0.5], [0.2, 1]])
    with pytest.raises(DistributionError, match="shape"):
        Gaussian([x, y], np.eye(3))
    with pytest.raises(ModelError, match="positive"):
        build("linear-transformer", dim=2, spectrum=[1.0, -1.0])


def test_sample_variables_only_inside_means():
    u = sp.Symbol("u", real=True)
    w = sp.Symbol("w", real=True)
    ctx = Context(Gaussian([u]))
    m = Model("leak", {"w": sp.Matrix([w])}, Distribution(ctx), prediction=w * u, target=0)
    with pytest.raises(DistributionError, match="outside a context mean"):
        m.expected_loss()


def test_unknown_model_and_option():
    with pytest.raises(ModelError, match="unknown model"):
        build("transformer")
    with pytest.raises(ModelError, match="no option"):
        build("linear-transformer", depth=2)
    with pytest.raises(ModelError, match="reduction"):
        build("linear-transformer", reduction="diagonal")
