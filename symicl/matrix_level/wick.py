"""Averaging a network over its random tensors: Wick pairings and sample coincidences.

For independent random symbols the expectation factorises, so each random
symbol contributes a list of *options* -- (weight, index joins, covariance
tensors) -- and the averaged network is the sum over all combinations:

* Gaussian vector x ~ N(0, C), occurrences at labels a_1..a_2m: one option per
  perfect pairing, each pair (a, b) adding the tensor C_ab (joining a and b
  when C = I);
* empirical moment Sigma_hat = (1/N) sum_n u_n u_n^T, K occurrences:
  E[prod_k Sigma_hat] = sum_pi (N)_{|pi|} / N^K  prod_{B in pi} E[prod_{k in B} u u^T],
  pi over the set partitions of the occurrences (samples that coincide),
  with a Wick pairing of the 2|B| slots inside each block B;
* diagonal Lambda (iid N(0,1) diagonal): each occurrence joins its row and
  column, and each perfect pairing of the occurrences joins the pairs;
* Gaussian matrix W (iid N(0,1) entries): W_ij W_kl -> delta_ik delta_jl.

An odd number of occurrences gives no option: the term averages to zero.
"""

from __future__ import annotations

import itertools
from typing import Mapping

import sympy as sp

from ..context import coincidence_weight, set_partitions
from ..errors import DistributionError
from .network import Builder, Network
from .randoms import DiagonalGaussian, EmpiricalMoment, GaussianMatrix, GaussianVector, Random

__all__ = ["perfect_matchings", "expect_network"]


def perfect_matchings(items: list):
    """All pairings of ``items`` ((2m-1)!! of them; none for an odd count)."""
    if not items:
        yield []
        return
    if len(items) % 2:
        return
    first, rest = items[0], items[1:]
    for k in range(len(rest)):
        for tail in perfect_matchings(rest[:k] + rest[k + 1:]):
            yield [(first, rest[k])] + tail


def _pair_ops(pairs, cov):
    """Joins (cov None: identity covariance) or covariance tensors for Wick pairs."""
    if cov is None:
        return [("join", a, b) for a, b in pairs]
    return [("tensor", cov, a, b) for a, b in pairs]


def _options(random: Random, occ: list) -> list[tuple[sp.Expr, list]]:
    one = sp.Integer(1)
    if isinstance(random, GaussianVector):
        slots = [t.row for t in occ]
        return [(one, _pair_ops(m, random.covariance)) for m in perfect_matchings(slots)]
    if isinstance(random, EmpiricalMoment):
        K = len(occ)
        out = []
        for part in set_partitions(K):
            weight = coincidence_weight(len(part), K, 1 / random.N)
            per_block = []
            for block in part:
                slots = [s for k in block for s in (occ[k].row, occ[k].col)]
                per_block.append(list(perfect_matchings(slots)))
            for choice in itertools.product(*per_block):
                pairs = [p for m in choice for p in m]
                out.append((weight, _pair_ops(pairs, random.covariance)))
        return out
    if isinstance(random, DiagonalGaussian):
        base = [("join", t.row, t.col) for t in occ]
        return [(one, base + [("join", a.row, b.row) for a, b in m])
                for m in perfect_matchings(list(occ))]
    if isinstance(random, GaussianMatrix):
        return [(one, [op for a, b in m for op in (("join", a.row, b.row), ("join", a.col, b.col))])
                for m in perfect_matchings(list(occ))]
    raise DistributionError(f"unknown kind of random symbol: {random!r}")


def expect_network(net: Network, randoms: Mapping[str, Random]) -> list[tuple[sp.Expr, Network]]:
    """E[net] = sum_r weight_r * network_r, the networks free of random tensors."""
    occurrences: dict[str, list] = {}
    constant = []
    for t in net.tensors:
        if t.name in randoms:
            occurrences.setdefault(t.name, []).append(t)
        else:
            constant.append(t)
    names = sorted(occurrences)
    per_random = [_options(randoms[n], occurrences[n]) for n in names]
    out = []
    for combo in itertools.product(*per_random):
        b = Builder()
        for label, dim in net.dims:
            b.parent[label] = label
            b.dims[label] = dim
        for t in constant:
            b.add(t.symbol, t.row, t.col)
        weight = sp.Integer(1)
        for w, ops in combo:
            weight = weight * w
            for op in ops:
                if op[0] == "join":
                    b.union(op[1], op[2], "by a random pairing")
                else:
                    b.add(op[1], op[2], op[3])
        out.append((weight, b.network()))
    return out
