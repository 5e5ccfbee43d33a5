"""Tests of the matrix-level (dimension-free) expectation engine.

Known identities are typed here, and only here, as independent checks:

* E[x^T A x] = tr(A S),  E[x^T A x x^T B x] = tr(AS) tr(BS) + tr(ASBS) + tr(ASB^T S);
* Wishart: E[S_hat A S_hat] = ((N+1)/N) S A S + (1/N) tr(A S) S  (A symmetric);
* E[Lambda B Lambda] = Diag(B) for diagonal Lambda with iid N(0,1) entries;
* E[W B W^T] = tr(B) I for W with iid N(0,1) entries.

The derived losses and gradients of the built-in models are compared with
the component-wise engine (``symicl.models``) at d = 1, 2, 3.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from sympy import Inverse, MatrixSymbol, Trace

from symicl import symbols
from symicl.context import Context
from symicl.errors import DistributionError, ModelError, NotPolynomialError
from symicl.expectation import expectation as componentwise_expectation
from symicl.gaussian import Gaussian
from symicl.matrix_level import (Diag, DiagonalGaussian, EmpiricalMoment, GaussianMatrix,
                                 GaussianVector, MatrixModel, ScalarForm, Sym, build,
                                 canon_trace, expectation, expected_matrix, gradient)

d = sp.Symbol("d", positive=True, integer=True)
A, B, C, D = (MatrixSymbol(n, d, d) for n in "ABCD")
S = MatrixSymbol("S", d, d)
x = MatrixSymbol("x", d, 1)
Sh = MatrixSymbol("Sigma_hat", d, d)
Lam = MatrixSymbol("Lambda", d, d)
W = MatrixSymbol("W", d, d)
N = symbols.context_length()


def explicit(name: str, n: int, symmetric: bool = False) -> sp.Matrix:
    """An n x n matrix of real entry symbols (symmetric if asked)."""
    return sp.Matrix(n, n, lambda i, j: symbols.entry(name, *sorted((i + 1, j + 1)))
                     if symmetric else symbols.entry(name, i + 1, j + 1))


def is_zero(expr) -> bool:
    if isinstance(expr, sp.MatrixBase):
        return all(sp.expand(e) == 0 for e in expr)
    return sp.expand(expr) == 0


# --- the engine against typed identities ---------------------------------------------

@pytest.mark.parametrize("n", [2, 3])
def test_gaussian_quadratic_form(n):
    form = expectation(x.T * A * x, [GaussianVector(x, S)])
    a, s = explicit("a", n), explicit("s", n, symmetric=True)
    assert str(form) == "tr(A S)"
    assert is_zero(form.evaluate({A: a, S: s}) - (a * s).trace())


@pytest.mark.parametrize("n", [2, 3])
def test_gaussian_fourth_moment(n):
    form = expectation(x.T * A * x * x.T * B * x, [GaussianVector(x, S)])
    a, b, s = explicit("a", n), explicit("b", n), explicit("s", n, symmetric=True)
    typed = (a * s).trace() * (b * s).trace() + (a * s * b * s).trace() + (a * s * b.T * s).trace()
    assert len(form) == 3
    assert is_zero(form.evaluate({A: a, B: b, S: s}) - typed)


@pytest.mark.parametrize("n", [2, 3])
def test_wishart_fourth_moment(n):
    form = expected_matrix(Sh * A * Sh, [EmpiricalMoment(Sh, S)])
    a, s = explicit("a", n, symmetric=True), explicit("s", n, symmetric=True)
    typed = (N + 1) / N * s * a * s + (a * s).trace() / N * s
    assert is_zero(form.evaluate({A: a, S: s}) - typed)


def test_wishart_general_matrix_against_componentwise_engine():
    """Non-symmetric A, non-diagonal covariance: the component-wise engine as referee."""
    form = expected_matrix(Sh * A * Sh, [EmpiricalMoment(Sh, S)])
    cov = sp.Matrix([[2, 1], [1, 3]])
    a = explicit("a", 2)
    u = symbols.vector("u", 2)
    ctx = Context(Gaussian(u, cov))
    m = ctx.mean(sp.Matrix(u) * sp.Matrix(u).T)
    brute = (m * a * m).applyfunc(lambda e: componentwise_expectation(sp.expand(e), ctx))
    assert is_zero(form.evaluate({A: a, S: cov}) - brute)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_diagonal_task_matrix(n):
    form = expected_matrix(Lam * B * Lam, [DiagonalGaussian(Lam)])
    b = explicit("b", n)
    assert str(form) == "Diag(B)"
    assert is_zero(form.evaluate({B: b}) - sp.diag(*[b[i, i] for i in range(n)]))


def test_gaussian_matrix_pairing():
    form = expected_matrix(W * B * W.T, [GaussianMatrix(W)])
    b = explicit("b", 3)
    assert is_zero(form.evaluate({B: b}) - b.trace() * sp.eye(3))


def test_odd_moments_vanish_and_free_sums_give_dimensions():
    w = MatrixSymbol("w", d, 1)
    assert len(expectation(w.T * A * x, [GaussianVector(x, S), GaussianVector(w)])) == 0
    # E[x^T x x^T A x] = tr(I) tr(A) + tr(A) + tr(A^T) for x ~ N(0, I)
    assert str(expectation(x.T * x * x.T * A * x, [GaussianVector(x)])) == "(d + 2) * tr(A)"
    assert str(expectation(Trace(Lam * Lam), [DiagonalGaussian(Lam)])) == "d"


def test_hub_beyond_traces_and_diag_raises_naming_the_term():
    with pytest.raises(NotImplementedError, match=r"tr\(Lambda A Lambda B Lambda C Lambda D\)"):
        expectation(Trace(Lam * A * Lam * B * Lam * C * Lam * D), [DiagonalGaussian(Lam)])


# --- canonical forms -------------------------------------------------------------------

def _sym(m, t=False, symmetric=False):
    return Sym(m, t, symmetric)


def test_canonical_trace_rotation_transpose_and_diag_rootings():
    a, b, c, e = _sym(A), _sym(B), _sym(C), _sym(D)
    rot = canon_trace((a, b, c))
    assert canon_trace((b, c, a)) == rot == canon_trace((c.T(), b.T(), a.T()))
    one = canon_trace((Diag((a,)), b))
    assert canon_trace((a, Diag((b,)))) == one == canon_trace((Diag((a,)), Diag((b,))))
    assert canon_trace((Diag((a,)), b.T())) == one
    two = canon_trace((Diag((a,)), b, Diag((c,)), e))
    assert canon_trace((Diag((c,)), Diag((e, Diag((a,)), b)))) == two
    assert canon_trace((Diag((a,)), Diag((b, Diag((c,)), e)))) == two
    s = _sym(S, symmetric=True)
    assert canon_trace((s, a, s, b)) == canon_trace((s, b.T(), s, a.T()))


def _random_word(rng, depth=0):
    atoms = [A, B, S]
    word = []
    for _ in range(rng.randint(1, 3)):
        if depth < 2 and rng.random() < 0.3:
            word.append(Diag(tuple(_random_word(rng, depth + 1))))
        else:
            m = rng.choice(atoms)
            word.append(Sym(m, rng.random() < 0.5 and m is not S, m is S))
    return word


def test_canonical_forms_keep_values_and_merge_equivalent_words():
    """Random words with Diag: rotations, transposes and rootings canonicalise alike."""
    rng = random.Random(7)
    vals = {"A": sp.Matrix([[1, 2, 0], [3, -1, 4], [2, 5, 1]]),
            "B": sp.Matrix([[2, -3, 1], [0, 1, 2], [-1, 4, 3]]),
            "S": sp.Matrix([[3, 1, 0], [1, 2, 1], [0, 1, 4]])}
    for _ in range(60):
        w = tuple(_random_word(rng))
        forms = [w[i:] + w[:i] for i in range(len(w))]
        forms.append(tuple(a.T() for a in reversed(w)))
        if isinstance(w[0], Diag) and len(w) > 1:  # tr(Diag(U) V) = tr(U Diag(V))
            forms.append(w[0].word + (Diag(w[1:]),))
        canon = {canon_trace(f) for f in forms}
        assert len(canon) == 1, forms
        values = {ScalarForm.from_raw([(1, [], [f])]).evaluate(vals) for f in forms + list(canon)}
        assert len(values) == 1


# --- the built-in models against the component-wise engine ------------------------------

def _check_against_componentwise(mm: MatrixModel, cm, values: dict):
    assert is_zero(mm.expected_loss().evaluate(values) - cm.expected_loss())
    flow = cm.flow()
    for block, param in mm.parameters.items():
        entries = values[param]
        g = mm.gradient(block).evaluate(values)
        assert g.shape == entries.shape
        for i, j in itertools.product(range(entries.rows), range(entries.cols)):
            assert is_zero(g[i, j] + flow[entries[i, j]]), (block, i, j)
        f = mm.flow()[block].evaluate(values)
        assert is_zero(f + g)


@pytest.mark.parametrize("tasks", ["aligned", "isotropic"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_linear_transformer_matches_componentwise(tasks, dim):
    from symicl.models import build as build_componentwise
    mm = build("linear-transformer", reduction="null-zero", tasks=tasks)
    cm = build_componentwise("linear-transformer", dim=dim, reduction="null-zero", tasks=tasks)
    values = mm.bind(d=dim)
    assert set(cm.constants) == {N, *symbols.spectrum(dim)}
    _check_against_componentwise(mm, cm, values)


def _null_zero_slice(cm, variant: dict, d: int):
    """The component-wise variant's entries by role on the null-zero slice: those that never
    enter the loss, and the slice (zero at the start): P21_h = WP_h[y, x], and Q21_h =
    WQ_h[y, x] (merged) or the y-columns of W^K_h (separate)."""
    used = cm.expected_loss().free_symbols
    inert = {p for p in cm.parameters if p not in used}

    def on_slice(p):
        block, i, j = p.name.split("_")[0], *map(int, p.name.split("_")[-2:])
        if block == "WP" or (block == "WQ" and variant.get("kq", "merged") == "merged"):
            return i > d >= j
        return block == "WK" and j > d

    return inert, {p for p in cm.parameters if on_slice(p)}


@pytest.mark.parametrize("tasks", ["aligned", "isotropic"])
@pytest.mark.parametrize("variant", [{"heads": 2}, {"heads": 2, "kq": "separate"},
                                     {"kq": "separate", "rank": 2}])
def test_attention_variants_match_componentwise_on_the_null_zero_slice(tasks, variant):
    """At d = 2 the component-wise variant (reduction none) keeps the null-zero slice (the
    flow of its entries vanishes there), the blocks the twin drops never enter its loss, and
    its loss and flow on the slice equal the bound matrix-level forms."""
    from symicl.models import build as build_componentwise
    dim = 2
    mm = build("linear-transformer", tasks=tasks, **variant)
    cm = build_componentwise("linear-transformer", dim=dim, tasks=tasks, **variant)
    values = mm.bind(d=dim)
    active = {e for param in mm.parameters.values() for e in values[param]}
    inert, slice_ = _null_zero_slice(cm, variant, dim)
    assert inert and slice_ and not (inert | slice_) & active
    assert inert | slice_ | active == set(cm.parameters)
    zero = dict.fromkeys(slice_, 0)
    flow = cm.flow()
    for p in slice_:
        assert is_zero(flow[p].xreplace(zero)), p
    assert is_zero(mm.expected_loss().evaluate(values) - cm.expected_loss().xreplace(zero))
    for block, param in mm.parameters.items():
        entries = values[param]
        f = mm.flow()[block].evaluate(values)
        assert f.shape == entries.shape
        for i, j in itertools.product(range(entries.rows), range(entries.cols)):
            assert is_zero(f[i, j] - flow[entries[i, j]].xreplace(zero)), (block, i, j)


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 2, 2), (3, 2, 2), (2, 3, 1)])
def test_deep_linear_matches_componentwise(shape):
    from symicl.models import build as build_componentwise
    n_in, n_hidden, n_out = shape
    mm = build("deep-linear")
    cm = build_componentwise("deep-linear", n_in=n_in, n_hidden=n_hidden, n_out=n_out)
    _check_against_componentwise(mm, cm, mm.bind(n_in=n_in, n_hidden=n_hidden, n_out=n_out))


def test_derived_forms_read_as_expected():
    """The aligned loss couples the modes through tr(Diag(S) P^T P) tr(Q S Q^T S) / N."""
    loss = build("linear-transformer", tasks="aligned").expected_loss()
    text = str(loss)
    assert "tr(Diag(S) P22^T P22) * tr(Q11 S Q11^T S)" in text
    assert "((N + 1)/(2*N)) * tr(Diag(P22^T P22) S Q11 S Q11^T S)" in text
    assert len(loss) == 4
    dl = build("deep-linear")
    assert str(dl.gradient("W1")) == "-W2^T T + W2^T W2 W1"
    assert str(dl.gradient("W2")) == "-T W1^T + W2 W1 W1^T"
    assert "\\operatorname{Diag}" in loss.latex() and "\\operatorname{tr}" in loss.latex()


@pytest.mark.parametrize("n", [2, 3])
def test_gradient_through_nested_diag_matches_sympy_derivative(n):
    P = MatrixSymbol("P", d, d)
    M = MatrixSymbol("M", d, d)
    form = expectation(Trace(Lam * P * M * A * P * M * B * Lam * C * P.T),
                       [DiagonalGaussian(Lam), DiagonalGaussian(M)])
    assert str(form) == "tr(Diag(A P) B Diag(C P^T) P)"
    grad = gradient(form, P)
    assert "Diag(P Diag(A P) B)" in str(grad)
    assert str(gradient(form, P, [S])) == str(grad)
    vals = {P: explicit("p", n), A: explicit("a", n), B: explicit("b", n), C: explicit("c", n)}
    value = form.evaluate(vals)
    g = grad.evaluate(vals)
    for i, j in itertools.product(range(n), range(n)):
        assert is_zero(g[i, j] - sp.diff(value, vals[P][i, j]))


def test_sympy_matrix_expressions():
    dl = build("deep-linear")
    vals = {k: sp.ImmutableMatrix(v) for k, v in dl.bind(n_in=3, n_hidden=2, n_out=2).items()}
    loss = dl.expected_loss()
    assert is_zero(loss.to_sympy().subs(vals).doit() - loss.evaluate(vals))
    g = dl.gradient("W2")
    assert is_zero(sp.Matrix(g.to_sympy().subs(vals).doit()) - g.evaluate(vals))
    lt = build("linear-transformer", tasks="aligned").expected_loss().to_sympy()
    assert lt.has(Trace) and "DiagonalMatrix(P22)" in str(lt)


# --- NumPy evaluation ----------------------------------------------------------------

def _numeric_values(mm: MatrixModel, sizes: dict, rng):
    out = {}
    for sym, m in mm.bind(**sizes).items():
        if sym.name == "S":  # a general symmetric positive-definite covariance
            n = m.rows
            r = sp.Matrix(n, n, lambda i, j: sp.Rational(rng.integers(-9, 10), 7))
            out[sym] = r * r.T + sp.eye(n)
        else:
            out[sym] = sp.Matrix(m.rows, m.cols,
                                 lambda i, j: sp.Rational(rng.integers(-99, 100), 37))
    return out


@pytest.mark.parametrize("name, options, sizes", [
    ("linear-transformer", {"tasks": "aligned"}, {"d": 4}),
    ("linear-transformer", {"tasks": "isotropic"}, {"d": 3}),
    ("linear-transformer", {"tasks": "aligned", "heads": 2, "kq": "separate"},
     {"d": 3, "r": 2}),
    ("deep-linear", {}, {"n_in": 4, "n_hidden": 3, "n_out": 2}),
])
def test_numpy_agrees_with_sympy(name, options, sizes):
    rng = np.random.default_rng(11)
    mm = build(name, **options)
    for _ in range(3):
        vals = _numeric_values(mm, sizes, rng)
        n_ctx = int(rng.integers(1, 20))
        arrays = {s.name: np.array(v.tolist(), dtype=float) for s, v in vals.items()}
        if any(s.name == "S" for s in vals):
            arrays["N"] = float(n_ctx)
        exact = {**vals, N: n_ctx}
        forms = [mm.expected_loss()] + list(mm.gradients().values())
        for form in forms:
            f = form.to_numpy()
            got = f(**{k: v for k, v in arrays.items() if k in f.arguments})
            want = np.array(sp.Matrix([form.evaluate(exact)]).tolist() if form.shape is None
                            else form.evaluate(exact).tolist(), dtype=float)
            np.testing.assert_allclose(np.reshape(got, want.shape), want, rtol=1e-12,
                                       atol=1e-12 * np.max(np.abs(want)))


# --- determinism ----------------------------------------------------------------------

def _derive_all() -> str:
    parts = []
    for name, options in (("linear-transformer", {"tasks": "aligned"}),
                          ("linear-transformer", {"tasks": "isotropic"}), ("deep-linear", {})):
        mm = build(name, **options)
        parts.append(str(mm.expected_loss()))
        parts.append(mm.expected_loss().latex())
        for block, g in mm.gradients().items():
            parts += [block, str(g), g.latex(), g.to_numpy().source]
    return "\n".join(parts)


def test_deriving_twice_gives_identical_strings():
    first = _derive_all()
    assert first == _derive_all()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; sys.path.insert(0, {!r}); from tests.test_matrix_level import _derive_all; "
            "sys.stdout.write(_derive_all())").format(root)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=root, check=True)
    assert out.stdout == first


# --- clear errors -----------------------------------------------------------------------

def test_bad_input_gets_clear_errors():
    with pytest.raises(DistributionError, match="must be square"):
        EmpiricalMoment(MatrixSymbol("M", d, 2), S)
    with pytest.raises(DistributionError, match="covariance"):
        GaussianVector(x, MatrixSymbol("S2", 2, 2))
    with pytest.raises(DistributionError, match="column"):
        GaussianVector(MatrixSymbol("r", 1, d))
    with pytest.raises(DistributionError, match="at least 1"):
        EmpiricalMoment(Sh, S, N=0)
    with pytest.raises(DistributionError, match="registered twice"):
        expectation(x.T * A * x, [GaussianVector(x, S), GaussianVector(x)])
    with pytest.raises(ModelError, match="1x1"):
        expectation(A * x, [GaussianVector(x, S)])
    with pytest.raises(NotPolynomialError, match=r"A\*\*\(-1\)"):
        expectation(x.T * Inverse(A) * x, [GaussianVector(x, S)])
    with pytest.raises(ModelError, match="also a random"):
        MatrixModel("bad", A * x, x, {"A": x}, [GaussianVector(x, S)])
    with pytest.raises(ModelError, match="no parameter block"):
        build("deep-linear").gradient("W3")
    with pytest.raises(ModelError, match="unknown matrix-level model"):
        build("transformer")
    with pytest.raises(ModelError, match="null-zero"):
        build("linear-transformer", reduction="none")
    with pytest.raises(ModelError, match="positive integer"):
        build("linear-transformer").bind(d=0)
    with pytest.raises(ModelError, match="covers one layer, got layers = 2"):
        build("linear-transformer", heads=2, layers=2)
    with pytest.raises(ModelError, match="rank applies to separate key and query"):
        build("linear-transformer", heads=2, rank=2)
    with pytest.raises(ModelError, match="heads must be a positive integer"):
        build("linear-transformer", heads=0)
    with pytest.raises(ModelError, match="unknown key-query form"):
        build("linear-transformer", kq="both")
    with pytest.raises(ModelError, match="r must be a positive integer"):
        build("linear-transformer", kq="separate").bind(d=2, r=0)
    with pytest.raises(ModelError, match="has no option dim"):
        build("linear-transformer", dim=2, heads=2)
    loss = build("deep-linear").expected_loss()
    with pytest.raises(ModelError, match="no value given for the matrix W2"):
        loss.evaluate({"W1": sp.eye(2), "T": sp.eye(2)})
    with pytest.raises(ModelError, match="n_hidden"):
        loss.evaluate({"W1": sp.eye(2), "W2": sp.ones(2, 3), "T": sp.eye(2)})
