"""The alignment measure, the endpoint classification of the basin study, and the study's
reproducibility from its seeds (numerics/studies/landscape_basins.py, quick mode)."""

import math

import numpy as np
import pytest
import sympy as sp

from numerics.studies import landscape_basins as lb
from symicl.analysis.alignment import alignment, alignment_blocks
from symicl.errors import ModelError
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.models import build
from symicl.spec import MatrixPacking

D = 4   # d = 2: W^P, W^Q are 4 x 4, x-part first


@pytest.fixture(scope="module")
def full():
    return build("linear-transformer", dim=2, reduction="none")


@pytest.fixture(scope="module")
def setup():
    return lb.Setup(2, 8)


def _pack(model, WP, WQ):
    return MatrixPacking(model, {"WP": (D, D), "WQ": (D, D)}).pack({"WP": WP, "WQ": WQ})


def _blocks(P21=None, P22=None, Q11=None, Q21=None, inert=0.0, rng=None):
    WP, WQ = np.zeros((D, D)), np.zeros((D, D))
    if inert:   # the blocks that never enter the prediction: P11, P12, Q12, Q22
        WP[:2, :] = inert * rng.standard_normal((2, D))
        WQ[:2, 2:] = inert * rng.standard_normal((2, 2))
        WQ[2:, 2:] = inert * rng.standard_normal((2, 2))
    for M, block, (r, c) in ((WP, P21, (2, 0)), (WP, P22, (2, 2)), (WQ, Q11, (0, 0)),
                             (WQ, Q21, (2, 0))):
        if block is not None:
            M[r:r + 2, c:c + 2] = block
    return WP, WQ


def test_blocks_named_by_the_learned_map(full):
    assert alignment_blocks(full) == (("P22", "Q11"), ("P21", "Q21"))
    nz = build("linear-transformer", dim=2, reduction="null-zero")
    assert alignment_blocks(nz) == (("P22", "Q11"), ())


def test_zero_on_aligned_one_on_null_weights(full):
    rng = np.random.default_rng(0)
    # aligned: diagonal main path; the inert blocks do not count
    th = _pack(full, *_blocks(P22=np.diag([0.7, -1.2]), Q11=np.diag([0.5, 2.0]), inert=1.0,
                              rng=rng))
    a = alignment(full, th)
    assert a.misalignment == 0.0 and a.off_diagonal == 0.0 and a.null_share == 0.0
    # purely null weights: mu = nu = 1; diagonal null blocks have delta = 0
    th = _pack(full, *_blocks(P21=np.diag([0.3, 0.4]), Q21=np.diag([1.0, -2.0])))
    a = alignment(full, th)
    assert a.misalignment == 1.0 and a.null_share == 1.0 and a.off_diagonal == 0.0
    # only off-diagonal entries: mu = delta = 1, nu = 0
    off = np.array([[0.0, 1.5], [-0.5, 0.0]])
    a = alignment(full, _pack(full, *_blocks(P22=off, Q11=off.T)))
    assert a.misalignment == 1.0 and a.off_diagonal == 1.0 and a.null_share == 0.0


def test_formula_on_a_mixed_point(full):
    """mu^2 = 1 - ||diag main||^2 / total, delta^2 = ||off||^2 / total, nu^2 = ||null||^2 / total."""
    P22, Q11 = np.array([[1.0, 2.0], [0.0, 3.0]]), np.eye(2)
    P21, Q21 = np.array([[0.0, 0.0], [1.0, 0.0]]), np.diag([0.0, 2.0])
    a = alignment(full, _pack(full, *_blocks(P21, P22, Q11, Q21)))
    total = 1 + 4 + 9 + 2 + 1 + 4          # 21
    assert math.isclose(a.misalignment, math.sqrt((total - (1 + 9 + 2)) / total))
    assert math.isclose(a.off_diagonal, math.sqrt((4 + 1) / total))
    assert math.isclose(a.null_share, math.sqrt(5 / total))


def test_invariances_and_records(full):
    rng = np.random.default_rng(1)
    th = rng.standard_normal(len(full.parameters))
    ref = alignment(full, th)
    pk = MatrixPacking(full, {"WP": (D, D), "WQ": (D, D)})
    W = pk.unpack(th)
    # a common permutation of the modes (x_1 <-> x_2 and y_1 <-> y_2) and sign flips
    perm = np.eye(D)[[1, 0, 3, 2]]
    signs = np.diag([1.0, -1.0, -1.0, 1.0])
    T = signs @ perm
    moved = pk.pack({"WP": T @ W["WP"] @ T.T, "WQ": T @ W["WQ"] @ T.T})
    for other in (alignment(full, -2.5 * th), alignment(full, moved)):
        for key in ("misalignment", "off_diagonal", "null_share"):
            assert math.isclose(getattr(other, key), getattr(ref, key), rel_tol=1e-12)
    # records (T, P) give the same numbers row by row; theta = 0 is 0/0, NaN
    recs = np.stack([th, np.zeros_like(th), 3 * th])
    a = alignment(full, recs)
    assert a.misalignment.shape == (3,) and np.isnan(a.misalignment[1])
    assert a.misalignment[0] == pytest.approx(ref.misalignment)
    assert a.misalignment[2] == pytest.approx(ref.misalignment)


def test_bad_input_is_one_clear_error(full):
    with pytest.raises(ModelError, match="last axis"):
        alignment(full, np.zeros(5))
    x, w = sp.Symbol("x_1", real=True), sp.Symbol("w_1", real=True)
    a = sp.Symbol("A_1_1", real=True)
    m = Model("no-learned-map", {"A": sp.Matrix([[a]])},
              Distribution(Gaussian([w], name="w"), Gaussian([x], name="x")),
              prediction=sp.Matrix([a * x]), target=sp.Matrix([w * x]))
    with pytest.raises(ModelError, match="names no learned map"):
        alignment(m, np.zeros(1))


def test_wilson_interval():
    # Wilson (1927) score interval, 95%: 5 of 10 -> (0.2366, 0.7634); 0 of 20 -> (0, 0.1611)
    lo, hi = lb.wilson(5, 10)
    assert lo == pytest.approx(0.23659, abs=1e-4) and hi == pytest.approx(0.76341, abs=1e-4)
    lo, hi = lb.wilson(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.16113, abs=1e-4)


def _at_rest(setup, WP, WQ):
    theta0 = setup.pack["none"].pack({"WP": WP, "WQ": WQ})
    theta, _, g = lb.flow_to_rest(setup, "none", theta0, lb.QUICK)
    return lb.classify(setup, "none", theta, g, lb.QUICK)


def test_known_minima_classified(setup):
    """The aligned minimum (main path), its mirror on the null path and a mixed point, each
    reached by the flow from a start on the matching path; the aligned gains at N = 8,
    s = (2, 1/2) are 38/99 and 128/99 (README, derived by fixed_points)."""
    main = _at_rest(setup, *_blocks(P22=0.1 * np.eye(2), Q11=0.1 * np.eye(2)))
    assert main["label"] == "main" and main["paths"] == "MM"
    assert main["index"] == 0 and main["grad_refined"] < 1e-12
    assert main["zero_modes"] == 17          # 16 inert entries and the rescaling
    assert main["gain_main"] == pytest.approx([38 / 99, 128 / 99], abs=1e-10)
    assert main["gain_null"] == pytest.approx([0, 0], abs=1e-12)
    assert main["misalignment"] == pytest.approx(0.0, abs=1e-12)
    null = _at_rest(setup, *_blocks(P21=0.1 * np.eye(2), Q21=0.1 * np.eye(2)))
    assert null["label"] == "null" and null["paths"] == "NN" and null["index"] == 0
    assert null["gain_null"] == pytest.approx([38 / 99, 128 / 99], abs=1e-10)
    assert null["loss"] == pytest.approx(main["loss"], abs=1e-12)
    assert null["null_share"] == pytest.approx(1.0, abs=1e-12)
    mixed = _at_rest(setup, *_blocks(P21=np.diag([0.1, 0]), Q21=np.diag([0.1, 0]),
                                     P22=np.diag([0, 0.1]), Q11=np.diag([0, 0.1])))
    assert mixed["label"] == "mixed" and mixed["paths"] == "NM" and mixed["index"] == 0
    assert mixed["loss"] > main["loss"] + 1e-3        # a spurious minimum


def _strip_times(obj):
    if isinstance(obj, dict):
        return {k: _strip_times(v) for k, v in obj.items()
                if not str(k).startswith(("seconds", "sgd_seconds"))}
    if isinstance(obj, list):
        return [_strip_times(v) for v in obj]
    return obj


def test_quick_mode_reproducible_from_its_seeds():
    a = _strip_times(lb.run(lb.QUICK))
    b = _strip_times(lb.run(lb.QUICK))
    assert a == b
    cells = a["basins"]["2"]["cells"]
    assert len(cells) == 4 and all(len(c["none"]["runs"]) == 6 for c in cells)
    for c in cells:
        n = sum(v["count"] for v in c["none"]["fractions"].values())
        assert n == 6
        # the null-zero reduction ends on the main path at the least loss from every start
        assert all(r["label"] == "main" for r in c["null-zero"]["runs"])
    assert a["alignment"]["predicted_order"] == [1, 2]
