"""The derived expected loss of the linear transformer against independent checks.

The formulas typed here (math-spec section 1) are the independent checks of
what the engine derives from the model definition; none is in the library.
"""

import numpy as np
import pytest
import sympy as sp

from symicl import symbols
from symicl.models import build


def exact_coupled_form(d):
    """math-spec 1.1: the exact aligned loss with diagonal p, q."""
    N = symbols.context_length()
    s = symbols.spectrum(d)
    p, q = symbols.vector("p", d), symbols.vector("q", d)
    cross = sum(q[b] ** 2 * s[b] ** 2 for b in range(d)) / N
    return sp.Rational(1, 2) * (
        sum(p[a] ** 2 * s[a] * ((N + 1) / N * s[a] ** 2 * q[a] ** 2 + cross) for a in range(d))
        - 2 * sum(p[a] * q[a] * s[a] ** 2 for a in range(d)) + sum(s))


def paper_per_mode_form(d):
    """math-spec 1: the paper's per-mode loss in a_a = p_a q_a."""
    N = symbols.context_length()
    s = symbols.spectrum(d)
    p, q = symbols.vector("p", d), symbols.vector("q", d)
    trace = sum(s)
    total = 0
    for a in range(d):
        s_inf = ((N + 1) * s[a] + trace) / N
        aa = p[a] * q[a]
        total += s[a] * (s[a] * aa ** 2 * s_inf - 2 * s[a] * aa + 1)
    return total / 2


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_aligned_loss_is_the_exact_coupled_form(d):
    loss = build("linear-transformer", dim=d, reduction="aligned").expected_loss()
    assert sp.expand(loss - exact_coupled_form(d)) == 0


@pytest.mark.parametrize("d", [1, 2, 3])
def test_aligned_loss_reduces_to_paper_form_for_isotropic_equal_modes(d):
    m = build("linear-transformer", dim=d, reduction="aligned")
    s, sigma, pp, qq = symbols.spectrum(d), sp.Symbol("sigma", positive=True), *sp.symbols("P Q")
    equal = {**{x: sigma for x in s}, **{x: pp for x in symbols.vector("p", d)},
             **{x: qq for x in symbols.vector("q", d)}}
    diff = (m.expected_loss() - paper_per_mode_form(d)).subs(equal)
    assert sp.expand(diff) == 0


def test_aligned_and_paper_forms_agree_to_leading_order_in_N():
    d = 3
    m = build("linear-transformer", dim=d, reduction="aligned")
    N = m.symbol("N")
    diff = sp.expand(m.expected_loss() - paper_per_mode_form(d))
    assert sp.limit(diff, N, sp.oo) == 0            # same N = infinity limit
    assert sp.limit(diff * N, N, sp.oo) != 0         # differ at order 1/N
    assert sp.expand(diff * N).has(N) is False       # and only at order 1/N


def test_forms_differ_for_anisotropic_spectrum_at_finite_N():
    """math-spec 1.1 example: exact 2.139, paper 1.788 at d=2, N=4."""
    m = build("linear-transformer", dim=2, reduction="aligned")
    vals = {"N": 4, "s_1": 2, "s_2": sp.Rational(1, 2), "p_1": sp.Rational(7, 10),
            "p_2": sp.Rational(13, 10), "q_1": sp.Rational(11, 10), "q_2": sp.Rational(2, 5)}
    sub = {m.symbol(k): v for k, v in vals.items()}
    exact = float(m.expected_loss().subs(sub))
    paper = float(paper_per_mode_form(2).subs(sub))
    assert exact == pytest.approx(2.139, abs=5e-4)
    assert paper == pytest.approx(1.788, abs=5e-4)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_isotropic_tasks_give_the_paper_form_exactly(d):
    """With scalar y = w^T x the per-mode form is exact in a_a = p q_a."""
    m = build("linear-transformer", dim=d, reduction="aligned", tasks="isotropic")
    p = m.parameter("p_1")
    paper = paper_per_mode_form(d).subs({x: p for x in symbols.vector("p", d)})
    assert sp.expand(m.expected_loss() - paper) == 0


@pytest.mark.parametrize("d,tasks", [(1, "aligned"), (2, "aligned"), (1, "isotropic"), (2, "isotropic")])
def test_inert_and_null_blocks(d, tasks):
    m = build("linear-transformer", dim=d, tasks=tasks)
    grad = m.gradient()
    for name in ("P11", "P12", "Q12", "Q22"):
        for p in m.blocks[name]:
            assert grad[p] == 0, f"{p} should be inert"
    null = {p: 0 for name in ("P21", "Q21") for p in m.blocks[name]}
    for name in ("P21", "Q21"):
        for p in m.blocks[name]:
            assert grad[p] != 0
            assert sp.expand(grad[p].subs(null)) == 0, f"{p} should vanish on P21 = Q21 = 0"


def test_null_zero_is_the_full_model_restricted():
    full = build("linear-transformer", dim=2)
    red = build("linear-transformer", dim=2, reduction="null-zero")
    zero = {p: 0 for name in ("P11", "P12", "P21", "Q12", "Q21", "Q22") for p in full.blocks[name]}
    assert sp.expand(full.expected_loss().subs(zero) - red.expected_loss()) == 0


def forward_loss(WP, WQ, s, N, rng, n_prompts):
    """Per-prompt loss of the untruncated f(Z) = Z + W^P (Z Z^T/N) W^Q Z, plain NumPy."""
    d = len(s)
    lam = rng.standard_normal((n_prompts, d))
    x = rng.standard_normal((n_prompts, d, N + 1)) * np.sqrt(s)[None, :, None]
    y = lam[:, :, None] * x
    y[:, :, -1] = 0.0                                   # the query's label slot
    Z = np.concatenate([x, y], axis=1)                  # (n, 2d, N+1)
    M = Z @ Z.transpose(0, 2, 1) / N
    F = Z + WP @ M @ WQ @ Z
    yhat = F[:, d:, -1]
    return 0.5 * np.sum((yhat - lam * x[:, :, -1]) ** 2, axis=1)


def test_full_model_loss_matches_monte_carlo_of_the_forward_pass():
    """Estimator: mean per-prompt loss over n iid prompts; SE = std/sqrt(n); |z| <= 4."""
    d, N, s = 2, 4, np.array([2.0, 0.5])
    rng = np.random.default_rng(20261124)
    WP = rng.normal(0, 0.4, (2 * d, 2 * d))
    WQ = rng.normal(0, 0.4, (2 * d, 2 * d))
    m = build("linear-transformer", dim=d)
    sub = {m.symbol("N"): N, m.symbol("s_1"): 2, m.symbol("s_2"): sp.Rational(1, 2)}
    for i in range(2 * d):
        for j in range(2 * d):
            sub[m.symbol(f"WP_{i + 1}_{j + 1}")] = WP[i, j]
            sub[m.symbol(f"WQ_{i + 1}_{j + 1}")] = WQ[i, j]
    theory = float(m.expected_loss().subs(sub))
    losses = np.concatenate([forward_loss(WP, WQ, s, N, rng, 100_000) for _ in range(4)])
    mean, se = losses.mean(), losses.std(ddof=1) / np.sqrt(losses.size)
    z = (theory - mean) / se
    assert abs(z) <= 4, f"theory {theory:.5f}, Monte Carlo {mean:.5f} +- {se:.5f} (z = {z:.2f})"


def test_numeric_context_length_and_spectrum():
    sym = build("linear-transformer", dim=2, reduction="aligned")
    num = build("linear-transformer", dim=2, reduction="aligned", N=5, spectrum=[2.0, 0.5])
    sub = {sym.symbol("N"): 5, sym.symbol("s_1"): 2, sym.symbol("s_2"): sp.Rational(1, 2)}
    assert sp.expand(sym.expected_loss().subs(sub) - num.expected_loss()) == 0
    assert [c.name for c in num.constants] == []
