"""From an averaged network back to matrix form: traces of words with Diag.

View every matrix tensor as an edge between its row and column labels.  A
label met by exactly two slots is an ordinary summed index; the reduction
repeats three moves until none applies:

1. a hub (a label met by three or more slots) with a self-loop W (a path that
   leaves the hub and comes back) loses it and keeps the diagonal factor
   Diag(W): sum_i W_ii (..)_i;
2. a label of degree two with its diagonal factors D is contracted away: the
   two paths A (into it) and B (out of it) become the single path A D B, or,
   if they are one closed path W, the trace tr(W D);
3. a label of degree zero is a closed sum: tr(D_1 .. D_k) of its diagonal
   factors, or its dimension if it has none (tr I).

What remains -- a hub joining three or more distinct paths after its
self-loops are gone, e.g. sum_ij A_ij B_ij C_ij D_ij -- is not a product of
traces of words with Diag, and raises NotImplementedError naming the term.
"""

from __future__ import annotations

import sympy as sp

from .network import Network
from .words import Diag, Sym, transpose

__all__ = ["to_traces"]


def to_traces(net: Network, symmetric=frozenset(), what: str = "term"):
    """(factor, scalars, traces): net = factor * prod(scalars) * prod_k tr(traces[k]).

    ``scalars`` are 1x1 symbols; ``traces`` raw (non-canonical) words.
    """
    factor = sp.Integer(1)
    scalars = []
    edges: dict[int, list] = {}
    for t in net.tensors:
        if t.row is None and t.col is None:
            scalars.append(t.symbol)
            continue
        if t.row is None or t.col is None:
            raise NotImplementedError(
                f"{what}: the vector {t.name} remains after averaging; the matrix-level "
                "form supports only matrix symbols and 1x1 scalars outside the random ones")
        edges[len(edges)] = [t.row, t.col, (Sym(t.symbol, False, t.name in symmetric),)]
    dims = dict(net.dims)
    labels = sorted(dims)
    diags: dict[int, list] = {a: [] for a in labels}
    traces = []
    next_id = len(edges)

    while labels:
        ends: dict[int, list] = {a: [] for a in labels}
        for eid, (u, v, _) in edges.items():
            ends[u].append((eid, 0))
            ends[v].append((eid, 1))
        progress = False
        for a in labels:
            here = ends[a]
            if not here:
                if diags[a]:
                    traces.append(tuple(diags[a]))
                else:
                    factor = factor * dims[a]
                labels.remove(a)
                progress = True
                break
            if len(here) == 2:
                (e1, s1), (e2, s2) = here
                if e1 == e2:  # a closed path through a
                    traces.append(edges.pop(e1)[2] + tuple(diags[a]))
                else:
                    u1, v1, w1 = edges.pop(e1)
                    u2, v2, w2 = edges.pop(e2)
                    into, start = (w1, u1) if s1 == 1 else (transpose(w1), v1)
                    out, stop = (w2, v2) if s2 == 0 else (transpose(w2), u2)
                    edges[next_id] = [start, stop, into + tuple(diags[a]) + out]
                    next_id += 1
                labels.remove(a)
                progress = True
                break
            if len(here) > 2:
                loop = next((eid for eid, s in here if s == 0 and edges[eid][1] == a), None)
                if loop is not None:
                    diags[a].append(Diag(edges.pop(loop)[2]))
                    progress = True
                    break
        if not progress:
            degrees = sorted(len(ends[a]) for a in labels)
            raise NotImplementedError(
                f"{what}: after averaging, an index is shared by {degrees[-1]} matrix slots "
                "that do not close into Diag(...) loops (a Hadamard-type sum such as "
                "sum_ij A_ij B_ij C_ij D_ij, or an open vector index); this is beyond products, "
                "traces and Diag")
    return factor, scalars, traces
