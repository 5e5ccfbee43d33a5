"""Conservation laws found by the engine, with exact counts (analysis issue)."""

import numpy as np
import pytest
import sympy as sp

from symicl import symbols
from symicl.analysis.conservation import conservation_laws, gradient_symbol
from symicl.model import Model
from symicl.models import build


def span_contains(laws, target, params):
    """True if ``target`` is a linear combination of the law expressions."""
    cs = sp.symbols(f"c0:{len(laws)}")
    diff = sp.expand(target - sum(c * h for c, h in zip(cs, laws)))
    eqs = sp.Poly(diff, *params).coeffs() if diff != 0 else []
    return diff == 0 or bool(sp.solve(eqs, cs, dict=True))


@pytest.mark.parametrize("d", [1, 2])
def test_full_transformer_rescaling_law_and_inert_blocks(d):
    m = build("linear-transformer", dim=d)
    result = conservation_laws(m, with_step_change=False)
    inert_blocks = {p for b in ("P11", "P12", "Q12", "Q22") for p in m.blocks[b]}
    assert set(result.inert) == inert_blocks
    WP = symbols.matrix("WP", 2 * d, 2 * d)
    WQ = symbols.matrix("WQ", 2 * d, 2 * d)
    norm_difference = sum(e ** 2 for e in WP) - sum(e ** 2 for e in WQ)
    # inert entries are conserved one by one, so remove them from the global law
    active_part = norm_difference.subs({p: 0 for p in inert_blocks})
    assert span_contains(result.expressions(), active_part, m.parameters)
    assert len(result.laws) == 1


@pytest.mark.parametrize("d", [2, 3])
def test_aligned_anisotropic_finite_N_has_exactly_one_law(d):
    m = build("linear-transformer", dim=d, reduction="aligned")
    result = conservation_laws(m)
    p, q = symbols.vector("p", d), symbols.vector("q", d)
    assert len(result.laws) == 1
    assert sp.expand(result.laws[0].expression - sum(a ** 2 - b ** 2 for a, b in zip(p, q))) == 0
    assert result.inert == []


@pytest.mark.parametrize("d", [2, 3])
def test_paper_per_mode_flow_has_one_law_per_mode(d):
    N = symbols.context_length()
    s = symbols.spectrum(d)
    p, q = symbols.vector("p", d), symbols.vector("q", d)
    loss = sum(s[a] * (s[a] * (p[a] * q[a]) ** 2 * ((N + 1) * s[a] + sum(s)) / N
                       - 2 * s[a] * p[a] * q[a] + 1) for a in range(d)) / 2
    m = Model("paper-per-mode", {"p": sp.Matrix(p), "q": sp.Matrix(q)}, loss=loss)
    result = conservation_laws(m)
    assert len(result.laws) == d
    for a in range(d):
        assert span_contains(result.expressions(), p[a] ** 2 - q[a] ** 2, m.parameters)


def test_deep_linear_222_has_exactly_the_three_balance_entries():
    m = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    result = conservation_laws(m)
    assert len(result.laws) == 3
    W1, W2 = m.blocks["W1"], m.blocks["W2"]
    B = W1 * W1.T - W2.T * W2
    for i, j in ((0, 0), (0, 1), (1, 1)):
        assert span_contains(result.expressions(), B[i, j], m.parameters)


def test_quartic_ansatz_finds_the_square_of_the_quadratic_law():
    m = build("linear-transformer", dim=1, reduction="aligned")
    result = conservation_laws(m, degree=4, with_step_change=False)
    p, q = m.parameter("p_1"), m.parameter("q_1")
    assert len(result.laws) == 1
    ratio = sp.cancel(result.laws[0].expression / (p ** 2 - q ** 2) ** 2)
    assert ratio.is_number and ratio != 0


def test_scalar_per_step_law_matches_math_spec():
    """p'^2 - q'^2 = (p^2 - q^2)(1 - eta^2 e^2) for L = (1/2)(t - p q)^2."""
    p, q, t, eta = sp.symbols("p q t eta", real=True)
    m = Model("scalar", {"p": sp.Matrix([p]), "q": sp.Matrix([q])}, loss=(t - p * q) ** 2 / 2)
    law = conservation_laws(m).laws[0]
    assert sp.expand(law.expression - (p ** 2 - q ** 2)) == 0
    g = m.gradient()
    change = law.step_change[2].xreplace({gradient_symbol(k): v for k, v in g.items()})
    e = t - p * q
    assert sp.expand(change + (p ** 2 - q ** 2) * e ** 2) == 0
    assert set(law.step_change) == {2}


def test_full_transformer_gd_step_changes_norm_difference_by_eta_squared_law():
    """One numeric GD step on the derived loss: the change equals eta^2 g^T A g."""
    m = build("linear-transformer", dim=1, N=4, spectrum=[1.5])
    law = conservation_laws(m).laws[0]
    rng = np.random.default_rng(7)
    theta = {p: sp.Float(v, 30) for p, v in zip(m.parameters, rng.normal(0, 0.5, len(m.parameters)))}
    eta = sp.Rational(1, 20)
    grads = {p: g.subs(theta) for p, g in m.gradient().items()}
    after = {p: theta[p] - eta * grads[p] for p in m.parameters}
    observed = law.expression.subs(after) - law.expression.subs(theta)
    predicted = (eta ** 2 * law.step_change[2]).subs({gradient_symbol(p): grads[p] for p in m.parameters})
    assert abs(float(observed - predicted)) < 1e-20
    assert abs(float(observed)) > 1e-6        # the change is real, not zero


@pytest.mark.parametrize("options", [{"dim": 1}, {"dim": 2}])
def test_laws_at_a_rational_point_equal_the_ring_path(monkeypatch, options):
    """The null space computed at one rational point of the constants and certified with the
    constants symbolic gives the same canonical laws as elimination over their rational
    functions (the reference path)."""
    import symicl.analysis.conservation as conservation

    model = build("linear-transformer", **options)
    fast = [law.to_dict() for law in conservation.conservation_laws(model).laws]
    assert fast
    monkeypatch.setattr(conservation, "_rational_basis", lambda *args: None)
    assert [law.to_dict() for law in conservation.conservation_laws(model).laws] == fast
