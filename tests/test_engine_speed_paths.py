"""The engine's fast paths equal its reference paths exactly.

* the flint backend (python-flint fmpq_mpoly, one-variable Gaussian blocks
  integrated out of the whole polynomial, lazy sum pieces) against the SymPy
  ring backend, on random polynomials over Gaussian vectors (diagonal,
  coupled, singular and symbolic covariances), contexts with symbolic and
  numeric N, and the full transformer's flow;
* ``expr_from_terms`` (canonical Add/Mul built with ``_from_args``) against
  ``PolyElement.as_expr`` + ``xreplace``: the same tree (``srepr``), not just
  an equal value.

Exact comparisons, fixed seeds; no timing.
"""

import random

import pytest
import sympy as sp

from symicl.algebra import Ring, expr_from_terms
from symicl.context import Context
from symicl.expectation import Distribution, Expectation, SumOfPieces
from symicl.gaussian import Gaussian
from symicl.models import build

pytest.importorskip("flint")

th = sp.symbols("a b c", real=True)
s1, s2 = sp.symbols("s_1 s_2", positive=True)
N = sp.Symbol("N", positive=True, integer=True)


def both(dist, expr, coeffs):
    out = []
    for backend in ("sympy", "flint"):
        eng = Expectation(dist, coeffs, backend=backend)
        out.append(eng(expr))
    return out


def random_poly(rng, randoms, degree=4, terms=6):
    out = sp.Integer(0)
    for _ in range(terms):
        m = sp.Rational(rng.randint(-5, 5), rng.randint(1, 4))
        for _ in range(rng.randint(0, degree)):
            m *= rng.choice(randoms)
        for _ in range(rng.randint(0, 2)):
            m *= rng.choice(th)
        out += m
    return out


COVARIANCES = [
    None,                                  # identity: all one-variable blocks
    [s1, s2, 3],                           # symbolic diagonal
    [[2, 1, 0], [1, 3, 0], [0, 0, 0]],     # a coupled block and a zero variance
    [[1, 1, 1], [1, 1, 1], [1, 1, 1]],     # singular, one block
    [[s1, 1, 0], [1, s2, 0], [0, 0, sp.Rational(1, 2)]],
]


@pytest.mark.parametrize("cov", COVARIANCES)
def test_gaussian_backends_agree(cov):
    x = list(sp.symbols("x0:3", real=True))
    rng = random.Random(17)
    dist = Distribution(Gaussian(x, cov, name="x"))
    for _ in range(6):
        expr = random_poly(rng, x) * random_poly(rng, x)
        ref, fast = both(dist, expr, list(th))
        assert sp.expand(ref - fast) == 0
        assert sp.srepr(ref) == sp.srepr(fast)


@pytest.mark.parametrize("n_ctx", [N, 3])
def test_context_and_gaussian_backends_agree(n_ctx):
    u = list(sp.symbols("u0:2", real=True))
    w = list(sp.symbols("w0:2", real=True))
    ctx = Context(Gaussian(u, [s1, 2], name="u"), N=n_ctx)
    dist = Distribution(Gaussian(w, [[1, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]], name="w"),
                        ctx)
    rng = random.Random(5)
    for _ in range(4):
        g1 = ctx.mean(u[0] * u[rng.randint(0, 1)] * rng.choice(th))
        g2 = ctx.mean(u[1] ** 2 + u[0] * rng.choice(w))
        expr = (g1 + w[0] * g2) ** 2 + g1 * g2 * w[1] ** 2 + g2 / n_ctx
        ref, fast = both(dist, expr, list(th))
        assert sp.srepr(ref) == sp.srepr(fast)
        assert sp.expand(ref - fast) == 0


def test_no_coefficients_and_numeric_answer():
    x = sp.symbols("x0:2", real=True)
    dist = Distribution(Gaussian(list(x), [[2, 1], [1, 3]], name="x"))
    ref, fast = both(dist, x[0] ** 2 * x[1] ** 2 + 3 * x[0] ** 4, [])
    assert ref == fast == 2 * 3 + 2 * 1 + 3 * 3 * 4


def test_lazy_pieces_sum_to_the_polynomial():
    x = list(sp.symbols("x0:2", real=True))
    eng = Expectation(Distribution(Gaussian(x, name="x")), list(th), backend="flint")
    expr = sum(((x[0] + th[0] * x[1]) ** 3 * th[i % 3] for i in range(7)), sp.Integer(0))
    lazy = eng.polynomial(expr)
    assert isinstance(lazy, SumOfPieces)
    ref = Expectation(Distribution(Gaussian(x, name="x")), list(th), backend="sympy")(expr)
    old = SumOfPieces.PIECE_TERMS
    try:
        SumOfPieces.PIECE_TERMS = 2          # force many pieces
        assert len(list(lazy.pieces())) > 1
        assert sp.srepr(eng.to_expr(eng.expect_polynomial(lazy))) == sp.srepr(ref)
    finally:
        SumOfPieces.PIECE_TERMS = old
    assert lazy.expand() == eng._flint.from_sympy_poly(eng.full(expr))


def test_full_transformer_flow_identical_across_backends():
    m_ref = build("linear-transformer", dim=2, reduction="none")
    m_fast = build("linear-transformer", dim=2, reduction="none")
    for m, backend in ((m_ref, "sympy"), (m_fast, "flint")):
        n_syms = {c.N for c in m.distribution.contexts}
        coeffs = [s for s in m.constants if s not in n_syms]
        m.__dict__["_engine"] = Expectation(m.distribution, m.parameters + coeffs,
                                            inverted=m._denominator_constants(n_syms),
                                            backend=backend)
    ref, fast = m_ref.flow(), m_fast.flow()
    assert list(ref) == list(fast)
    for p in ref:
        assert sp.srepr(ref[p]) == sp.srepr(fast[p])
    assert str(m_ref.expected_loss()) == str(m_fast.expected_loss())


def test_expr_from_terms_is_the_canonical_tree():
    rng = random.Random(3)
    a, b = sp.symbols("a b", real=True)
    n = sp.Symbol("N", positive=True, integer=True)
    inv = sp.Dummy("inv_N")
    gens = [b, a, sp.Symbol("Z_1_2", real=True), s1, inv]
    ring = Ring(gens)
    for _ in range(40):
        terms = {}
        for _ in range(rng.randint(1, 12)):
            monom = tuple(rng.randint(0, 3) if rng.random() < 0.5 else 0 for _ in gens)
            terms[monom] = sp.QQ(rng.randint(-9, 9), rng.randint(1, 5))
        poly = ring.ring.from_dict(terms)
        ref = poly.as_expr().xreplace({inv: 1 / n})
        fast = expr_from_terms(dict(poly.items()), gens, {4: n})
        assert sp.srepr(fast) == sp.srepr(ref)
        assert fast == ref and hash(fast) == hash(ref)


def test_unknown_backend_raises(monkeypatch):
    x = list(sp.symbols("x0:1", real=True))
    with pytest.raises(ValueError, match="backend"):
        Expectation(Distribution(Gaussian(x, name="x")), [], backend="maple")
    monkeypatch.setenv("SYMICL_POLY_BACKEND", "maple")
    with pytest.raises(ValueError, match="SYMICL_POLY_BACKEND"):
        Expectation(Distribution(Gaussian(x, name="x")), [])
    monkeypatch.setenv("SYMICL_POLY_BACKEND", "sympy")
    assert Expectation(Distribution(Gaussian(x, name="x")), []).backend == "sympy"


def test_ring_elements_hold_python_ints():
    """Exponents handed back to SymPy's rings are ints (flint gives fmpz)."""
    m = build("linear-transformer", dim=1, reduction="none")
    assert m._engine.backend == "flint"
    assert all(type(e) is int for monom in m._expected.keys() for e in monom)


def test_flint_backend_under_pure_python_ground_types():
    """SymPy with SYMPY_GROUND_TYPES=python (no flint coefficients) and the flint engine."""
    import os
    import subprocess
    import sys

    code = ("import sympy as sp\n"
            "from symicl.models import build\n"
            "m = build('linear-transformer', dim=1, reduction='none')\n"
            "assert m._engine.backend == 'flint'\n"
            "print(sp.polys.domains.QQ.__class__.__name__, sorted((p.name, str(e)) "
            "for p, e in m.flow().items()))\n")
    out = {}
    for backend in ("flint", "sympy"):
        env = dict(os.environ, SYMPY_GROUND_TYPES="python", SYMICL_POLY_BACKEND=backend)
        run = subprocess.run([sys.executable, "-c", code.replace(
            "assert m._engine.backend == 'flint'", f"assert m._engine.backend == '{backend}'")],
            env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        out[backend] = run.stdout
    assert "PythonRational" in out["flint"] or "RationalField" in out["flint"]
    assert out["flint"] == out["sympy"]


# -- matrix-level code generation: the minimal product plan ------------------------------

MATRIX_MODELS = [
    ("linear-transformer", {"reduction": "null-zero", "tasks": "aligned"}),
    ("linear-transformer", {"tasks": "aligned"}),
    ("linear-transformer", {"tasks": "isotropic"}),
    ("deep-linear", {}),
]


def _arrays(forms, symmetric, rng):
    import numpy as np

    sizes = {"n_in": 5, "n_hidden": 3, "n_out": 4}
    out = {}
    for form in forms:
        for s in form.symbols():
            if s.name in out:
                continue
            shape = tuple(int(sp.sympify(k).subs({x: sizes.get(x.name, 4)
                                                  for x in sp.sympify(k).free_symbols}))
                          for k in s.shape)
            a = rng.standard_normal(shape)
            out[s.name] = (a + a.T) / 2 if s.name in symmetric else a
        for c in form.coefficient_symbols():
            out[c.name] = 7.0
    return out


@pytest.mark.parametrize("name, options", MATRIX_MODELS)
def test_minimal_plan_equals_the_chain(name, options):
    import numpy as np

    from symicl.matrix_level import build as build_matrix

    mm = build_matrix(name, **options)
    rng = np.random.default_rng(7)
    forms = [mm.expected_loss()] + list(mm.flow().values())
    values = _arrays(forms, mm.symmetric, rng)
    for form in forms:
        fast, ref = form.to_numpy(), form.to_numpy(plan="chain")
        assert fast.arguments == ref.arguments
        args = {k: values[k] for k in fast.arguments}
        want = np.asarray(ref(**args))
        assert np.max(np.abs(want)) > 0
        np.testing.assert_allclose(fast(**args), want, rtol=1e-11,
                                   atol=1e-11 * np.max(np.abs(want)))
        assert fast.products <= ref.products
    together = mm.flow_numpy()
    assert together.outputs == tuple(mm.flow())
    got = together(**{k: values[k] for k in together.arguments})
    for block, g in zip(together.outputs, got):
        f = mm.flow()[block].to_numpy(plan="chain")
        want = f(**{k: values[k] for k in f.arguments})
        np.testing.assert_allclose(g, want, rtol=1e-11, atol=1e-11 * np.max(np.abs(want)))


def test_transformer_flow_needs_five_products():
    """The null-zero transformer flow: 18 d x d products in the chain, 5 in the plan."""
    from symicl.matrix_level import build as build_matrix

    mm = build_matrix("linear-transformer", reduction="null-zero", tasks="aligned")
    chain = sum(f.to_numpy(plan="chain").products for f in mm.flow().values())
    assert chain == 18
    assert mm.flow_numpy().products == 5
    deep = build_matrix("deep-linear")
    # the residual T - W2 W1 is factored out and shared: 3 products, as written by hand
    assert deep.flow_numpy().products == 3


def test_matrix_flow_workspace_is_not_returned():
    """Intermediates live in arrays kept between calls; what a call returns does not, so a
    second call (other values, then another size) leaves the first call's result as it was."""
    import numpy as np

    from symicl.matrix_level import build as build_matrix

    for name, options in (("linear-transformer", {"reduction": "null-zero", "tasks": "aligned"}),
                          ("deep-linear", {})):
        mm = build_matrix(name, **options)
        together = mm.flow_numpy()
        assert "_work(" in together.source
        chain = {b: f.to_numpy(plan="chain") for b, f in mm.flow().items()}
        rng = np.random.default_rng(3)
        results, wants = [], []
        for d in (5, 5, 7):
            values = {"N": 9.0}
            for s in mm.flow()[together.outputs[0]].symbols() + [
                    s for f in mm.flow().values() for s in f.symbols()]:
                a = rng.standard_normal((d, d))
                values.setdefault(s.name, a + a.T if s.name in mm.symmetric else a)
            got = together(**{k: values[k] for k in together.arguments})
            results.append([g.copy() for g in got] + list(got))
            wants.append([chain[b](**{k: values[k] for k in chain[b].arguments})
                          for b in together.outputs])
        for res, want in zip(results, wants):
            k = len(want)
            for copy, kept, w in zip(res[:k], res[k:], want):
                np.testing.assert_array_equal(kept, copy)
                np.testing.assert_allclose(kept, w, rtol=1e-12, atol=1e-12 * np.max(np.abs(w)))
