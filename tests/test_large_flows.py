"""Kernels and conservation laws of flows too large to print or expand.

The table kernels (:mod:`symicl.codegen.table`) and the sampled law search
(:mod:`symicl.analysis.modular`) take over beyond 20,000 loss terms (two
attention layers: 269,206).  Here both are forced on small models and must
give what the printed kernels and the ring path give.
"""

import importlib

import numpy as np
import pytest

from symicl.analysis.modular import PRIME, gradients, loss_table, rational
from symicl.codegen import kernels
from symicl.models import build

conservation = importlib.import_module("symicl.analysis.conservation")


def test_table_kernels_equal_printed_kernels():
    model = build("linear-transformer", dim=2, reduction="none", heads=2)
    printed = kernels(model, "numpy")
    table = kernels(model, "table").module
    assert table.PARAMETERS == printed.parameters and table.CONSTANTS == printed.constants
    rng = np.random.default_rng(3)
    theta = rng.normal(size=len(printed.parameters))
    theta[[0, 5]] = 0.0                      # exact at zeros (prefix and suffix products)
    c = rng.uniform(1.0, 3.0, len(printed.constants))
    P = theta.size
    assert table.loss(theta, c) == pytest.approx(printed.loss(theta, c), rel=1e-12)
    np.testing.assert_allclose(table.flow(theta, c, np.empty(P)), printed.flow(theta, c),
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(table.jacobian(theta, c, np.empty((P, P))),
                               printed.jacobian(theta, c), rtol=1e-11, atol=1e-11)
    batch = rng.normal(size=(P, 4))
    np.testing.assert_allclose(table.loss(batch, c), printed.loss(batch, c), rtol=1e-12)
    # a wrong constant vector gives a different answer (the cache of a(c) is keyed by c)
    assert table.loss(theta, c * 1.5) != pytest.approx(table.loss(theta, c), rel=1e-6)


def test_modular_gradient_is_the_exact_gradient_mod_p():
    model = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    ring = model._engine.coefficients
    p_idx = [ring.index[p] for p in model.parameters]
    c_idx = [i for i in range(len(ring.gens)) if i not in p_idx]
    c_star = [3 + 2 * k for k in range(len(c_idx))]
    table = loss_table(model._expected, p_idx, c_idx, c_star)
    point = np.array([[2, -1, 3, 0, 1, -2, 4, 1, -3, 2, 1, 5][:len(p_idx)]], np.int64)
    got = gradients(*table, point % PRIME, PRIME)[0]
    for k, p in enumerate(model.parameters):
        g = model._gradient[p]
        values = [0] * len(ring.gens)
        for i, v in zip(p_idx, point[0]):
            values[i] = int(v)
        for i, v in zip(c_idx, c_star):
            values[i] = v
        exact = g(*values) if len(ring.gens) > 1 else g(values[0])
        exact = int(exact.numerator) * pow(int(exact.denominator), -1, PRIME) % PRIME
        assert got[k] == exact


def test_rational_reconstruction():
    for a, b in [(1, 1), (-1, 1), (3, 7), (-22, 5), (0, 1)]:
        assert rational(a * pow(b, -1, PRIME) % PRIME) == (a, b)
    assert rational(1234567891) is None      # no fraction with |r|, s <= 32767


@pytest.mark.parametrize("options", [
    dict(model="linear-transformer", dim=1, reduction="none", heads=2),
    dict(model="linear-transformer", dim=2, reduction="none"),
    dict(model="deep-linear", n_in=2, n_hidden=2, n_out=2),
])
def test_sampled_laws_equal_ring_laws(options, monkeypatch):
    options = dict(options)
    name = options.pop("model")
    ring = conservation.conservation_laws(build(name, **options))
    monkeypatch.setattr(conservation, "SAMPLED_TERMS", 0)
    calls = []
    original = conservation._sampled_laws
    monkeypatch.setattr(conservation, "_sampled_laws",
                        lambda *a: calls.append(1) or original(*a))
    sampled = conservation.conservation_laws(build(name, **options))
    assert calls, "the sampled path was not taken"
    assert [law.to_dict() for law in sampled.laws] == [law.to_dict() for law in ring.laws]
    assert sampled.inert == ring.inert and len(ring.laws) >= 1


def test_sampled_laws_refuse_an_uncertified_vector(monkeypatch):
    """Null vectors that are not laws (too few sample rows) fail to lift or fail their
    certificate: the sampled path answers None and the ring path is used instead."""
    model = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    modular = importlib.import_module("symicl.analysis.modular")
    real = modular.null_rref
    monkeypatch.setattr(modular, "null_rref",
                        lambda flint, rows: real(flint, rows[:3]))   # too few rows: spurious
    assert conservation._sampled_laws(model, 2, False) is None
