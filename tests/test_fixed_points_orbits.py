"""Fixed points by rank strata and gauge slices (``fixed_points(..., orbits=True)``).

Independent characterisation (Baldi & Hornik 1989; Kawaguchi 2016), typed here:
for the deep linear network f(x) = C B A x with whitened inputs and teacher T
(L = ||C B A - T||_F^2 / 2), at every critical point the end-to-end map is

    W = C B A = U_S U_S^T T

for a subset S of the left singular vectors U of T (T's singular values distinct),
|S| at most the narrowest width; every such S occurs.  Each reported family is
sampled at rational values of its free parameters and W compared with the
2^rank projections; the subsets found must be exactly the admissible ones.
The strata must be disjoint: at each sample the reported condition holds.
Here on the width-1 network (2-1-1-2); the same check on 2-2-2-2 (23 families,
about 28 s) runs in ``numerics.benchmarks.bench_analysis``.
"""

import importlib
import itertools
import random
import sys
from pathlib import Path

import numpy as np
import sympy as sp

fp = importlib.import_module("symicl.analysis.fixed_points")
from symicl.analysis.orbit_strata import block_actions  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "user_models"))
from models import three_layer  # noqa: E402

T = np.array([[2.0, 0.5], [0.0, 1.0]])


def _projections(width):
    U, _, _ = np.linalg.svd(T)
    out = {}
    for k in range(0, min(width, 2) + 1):
        for S in itertools.combinations(range(2), k):
            P = sum((np.outer(U[:, i], U[:, i]) for i in S), np.zeros((2, 2)))
            out[S] = P @ T
    return out


def _samples(point, n=3, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(40):
        sub = {f: sp.Rational(rng.choice((-1, 1)) * rng.randint(1, 9), rng.randint(1, 5))
               for f in point.free}
        try:
            vals = point.numeric(sub)
        except (TypeError, ZeroDivisionError, ValueError):
            continue
        if all(np.isfinite(v) for v in vals.values()):
            out.append(vals)
        if len(out) == n:
            break
    return out


def _holds(cond, M):
    """The stratum condition at numeric blocks M."""
    if cond.startswith("det("):
        d = abs(np.linalg.det(M[cond[4]]))
        return d < 1e-9 if cond.endswith("= 0") and "!=" not in cond else d > 1e-9
    if cond.endswith(" = 0"):
        return np.max(np.abs(M[cond[0]])) < 1e-12
    X = M[cond[5]]                     # rank(X) = 1, first non-zero row i, column j
    i, j = int(cond.split("row ")[1][0]) - 1, int(cond.split("column ")[1][0]) - 1
    nz = np.abs(X) > 1e-12
    return (np.linalg.matrix_rank(X, tol=1e-9) == 1 and not nz[:i].any()
            and nz[i].any() and not nz[:, :j].any() and nz[:, j].any())


def _check(width):
    model = three_layer(width)
    res = fp.fixed_points(model, max_variables=12, time_budget=300, orbits=True,
                          classify=False)
    b = model.blocks
    targets = _projections(width)
    seen = set()
    for point in res:
        assert point.verified == "exact"
        samples = _samples(point)
        assert samples, f"no finite sample of {point.to_dict()}"
        subsets = set()
        for vals in samples:
            M = {k: np.array(v.subs(vals).tolist(), dtype=float) for k, v in b.items()}
            W = M["C"] @ M["B"] @ M["A"]
            hits = [S for S, P in targets.items() if np.max(np.abs(W - P)) < 1e-9]
            assert len(hits) == 1, f"W = {W.tolist()} is no projection of T"
            subsets.add(hits[0])
            for cond in point.condition:
                assert _holds(cond, M), (cond, M)
        assert len(subsets) == 1, f"one family, several end-to-end maps {subsets}"
        seen |= subsets
    assert seen == set(targets)
    return res


def test_block_actions_are_derived_from_the_loss():
    acts = {(a.X, a.Y, a.side) for a in block_actions(three_layer(2))}
    assert acts == {("A", "B", "left"), ("B", "C", "left"), ("B", "A", "right"),
                    ("C", "B", "right")}


def test_width_one_network_strata_match_the_characterisation():
    res = _check(1)
    assert {p.condition for p in res} == {("det(B) != 0",), ("det(B) = 0",)}


def test_rank_one_chart_factors_the_block():
    from symicl.analysis.orbit_strata import rank_one_lift
    X = sp.Matrix(2, 2, sp.symbols("x11 x12 x21 x22"))
    for i, j in itertools.product(range(2), range(2)):
        Xv, g, H, coords = rank_one_lift(X, i, j, X[i, j])
        assert g.det() == 1 and H.det() == 1
        assert sp.simplify(Xv.det()) == 0 and Xv[i, j] == X[i, j]
        assert all(Xv[k, l] == X[k, l] for k, l in itertools.product(range(2), range(2))
                   if X[k, l] in coords)
        assert all(Xv[k, l] == 0 for k in range(2) for l in range(2) if k < i or l < j)
