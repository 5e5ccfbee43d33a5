"""Exact evaluation of a large flow modulo a prime, for sampled linear systems.

For a flow too large to expand an ansatz system (two attention layers: a
loss of 269,206 terms), the analysis samples it instead: the loss's terms at
an integer point c* of the constants become a table of monomials in the
parameters with coefficients mod p, and the gradient at integer points
theta_k is evaluated mod p by prefix and suffix products (dm/dtheta_v =
e theta_v^{e-1} prod of the other factors).  Null spaces are then taken mod
p and lifted by rational reconstruction; whatever is lifted is certified
exactly by the caller, so an unlucky prime can only cost a fallback, never a
wrong answer (rank mod p <= rank over QQ: no law is lost).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["PRIME", "loss_table", "gradients", "null_rref", "rational"]

PRIME = 2_147_483_647          # 2^31 - 1: products of two residues fit in int64


def loss_table(expected, p_idx, c_idx, c_values):
    """The loss at the constants' integer values ``c_values`` as (mptr, mvar, mexp, coef)."""
    pos = {i: k for k, i in enumerate(p_idx)}
    groups: dict = {}
    for monom, coeff in expected.items():
        q = int(coeff.numerator) * pow(int(coeff.denominator), -1, PRIME)
        for i, v in zip(c_idx, c_values):
            if monom[i]:
                q *= pow(v, monom[i], PRIME)
        key = tuple((pos[i], monom[i]) for i in p_idx if monom[i])
        groups[key] = (groups.get(key, 0) + q) % PRIME
    keys = sorted(k for k, v in groups.items() if v)
    mptr, mvar, mexp = [0], [], []
    for key in keys:
        for v, e in key:
            mvar.append(v), mexp.append(e)
        mptr.append(len(mvar))
    return (np.array(mptr, np.int64), np.array(mvar, np.int64), np.array(mexp, np.int64),
            np.array([groups[k] for k in keys], np.int64))


@numba.njit(cache=True)
def gradients(table_mptr, table_mvar, table_mexp, coef, points, p):
    """grad L mod p at each row of ``points`` (integers mod p); shape (K, P)."""
    K, P = points.shape
    out = np.zeros((K, P), np.int64)
    maxdeg = 0
    for e in table_mexp:
        maxdeg = max(maxdeg, e)
    pw = np.empty((P, maxdeg + 1), np.int64)
    pre = np.empty(P + 1, np.int64)
    for k in range(K):
        for i in range(P):
            pw[i, 0] = 1
            for e in range(1, maxdeg + 1):
                pw[i, e] = pw[i, e - 1] * points[k, i] % p
        for m in range(coef.size):
            lo, hi = table_mptr[m], table_mptr[m + 1]
            pre[0] = coef[m]
            for l in range(hi - lo):
                pre[l + 1] = pre[l] * pw[table_mvar[lo + l], table_mexp[lo + l]] % p
            suf = 1
            for l in range(hi - lo - 1, -1, -1):
                v, e = table_mvar[lo + l], table_mexp[lo + l]
                d = pre[l] * suf % p * (e * pw[v, e - 1] % p) % p
                out[k, v] = (out[k, v] + d) % p
                suf = suf * pw[v, e] % p
    return out


def null_rref(flint, rows: np.ndarray) -> list[list[int]]:
    """The reduced row-echelon basis of the null space of ``rows`` mod PRIME."""
    K, n = rows.shape
    null, nullity = flint.nmod_mat(K, n, [int(x) for x in rows.ravel()], PRIME).nullspace()
    if nullity == 0:
        return []
    vecs = flint.nmod_mat(nullity, n, [int(null[i, k]) for k in range(nullity)
                                       for i in range(n)], PRIME)
    reduced, _ = vecs.rref()
    return [[int(reduced[k, i]) for i in range(n)] for k in range(nullity)]


def rational(a: int) -> tuple[int, int] | None:
    """The fraction r/s = a mod PRIME with |r|, s <= sqrt(PRIME / 2), or None."""
    bound = int((PRIME // 2) ** 0.5)
    r0, r1, s0, s1 = PRIME, a % PRIME, 0, 1
    while r1 > bound:
        q = r0 // r1
        r0, r1, s0, s1 = r1, r0 - q * r1, s1, s0 - q * s1
    if abs(s1) > bound or s1 == 0:
        return None
    return (r1, s1) if s1 > 0 else (-r1, -s1)
