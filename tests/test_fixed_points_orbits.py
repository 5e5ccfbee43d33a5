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
                name, rel = cond[4], cond.split(")")[1].strip()
                d = np.linalg.det(M[name])
                assert (abs(d) < 1e-9) == (rel == "= 0"), (cond, d)
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


def test_width_two_network_strata_match_the_characterisation():
    res = _check(2)
    assert {c for p in res for c in p.condition} >= {"det(B) != 0", "det(A) != 0",
                                                    "det(C) != 0"}
