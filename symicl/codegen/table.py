"""Kernels for very large expected losses: a monomial table instead of printed source.

Beyond :data:`TABLE_TERMS` terms (a two-layer attention's loss has 269,206)
printing the loss, flow and Jacobian and eliminating common subexpressions
would not finish.  The expected loss is then kept as its terms,

    L(theta) = sum_m a_m(c) prod_i theta_i^{e_mi},
    a_m(c)   = sum_k q_mk prod_j g_j(c)^{f_mkj},

(g_j the ring's constant generators: a constant or its reciprocal 1/N), and
compiled evaluators walk the table:

* the loss, with a table of powers theta_i^e;
* the gradient from the same monomials: for a monomial with factors
  p_1 ... p_k (p_l = theta_{v_l}^{e_l}), dm/dtheta_{v_l} = e_l theta_{v_l}^{e_l - 1}
  prod_{j != l} p_j from prefix and suffix products, O(k) per monomial and
  exact at theta_i = 0;
* the Hessian likewise, prod_{j != l, r} p_j as prefix x middle x suffix, O(k^2).

The flow is -grad L and the Jacobian -Hess L.  The coefficients a_m(c) are
computed once for each new constant vector.  Nothing is generated on disk:
the table is built from the engine's terms in a second or two.
"""

from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np

from ..errors import SymiclError

__all__ = ["TABLE_TERMS", "table_module"]

TABLE_TERMS = 20_000     # expected-loss terms beyond which kernels() builds a table


def table_module(model, gens, negative) -> SimpleNamespace:
    """A kernel module (PARAMETERS, CONSTANTS, loss, flow, jacobian) over the loss's terms."""
    params, consts = list(model.parameters), list(model.constants)
    pindex = {p: i for i, p in enumerate(params)}
    cindex = {c: i for i, c in enumerate(consts)}
    pcols, ccols, cmap, cinv = [], [], [], []
    for j, g in enumerate(gens):
        if j in negative:
            ccols.append(j), cmap.append(cindex[negative[j]]), cinv.append(True)
        elif g in pindex:
            pcols.append((j, pindex[g]))
        elif g in cindex:
            ccols.append(j), cmap.append(cindex[g]), cinv.append(False)
        else:
            raise SymiclError(f"the loss's generator {g} is neither a parameter nor a constant")
    groups: dict = {}
    for monom, coeff in model._expected.items():
        pkey = tuple((i, monom[j]) for j, i in pcols if monom[j])
        groups.setdefault(tuple(sorted(pkey)), []).append(
            (tuple(monom[j] for j in ccols), float(coeff)))
    order = sorted(groups)
    mptr, mvar, mexp, cptr, cval, cexp = [0], [], [], [0], [], []
    for key in order:
        for i, e in key:
            mvar.append(i), mexp.append(e)
        mptr.append(len(mvar))
        for f, q in sorted(groups[key]):
            cexp.append(f), cval.append(q)
        cptr.append(len(cval))
    table = _Table(
        np.array(mptr, np.int64), np.array(mvar, np.int64), np.array(mexp, np.int64),
        np.array(cptr, np.int64), np.array(cval, float),
        np.array(cexp, np.int64).reshape(len(cval), len(ccols)),
        np.array(cmap, np.int64), np.array(cinv, np.bool_), len(params),
        max((e for e in mexp), default=0))
    return SimpleNamespace(PARAMETERS=tuple(p.name for p in params),
                           CONSTANTS=tuple(c.name for c in consts), TERMS=len(cval),
                           MONOMIALS=len(order), loss=table.loss, flow=table.flow,
                           jacobian=table.jacobian)


class _Table:
    def __init__(self, mptr, mvar, mexp, cptr, cval, cexp, cmap, cinv, n, maxdeg):
        self.m = (mptr, mvar, mexp)
        self.c = (cptr, cval, cexp, cmap, cinv)
        self.n, self.maxdeg = n, maxdeg
        self._key, self._a = None, None

    def _coefficients(self, c) -> np.ndarray:
        c = np.ascontiguousarray(c, dtype=float)
        key = c.tobytes()
        if key != self._key:
            cptr, cval, cexp, cmap, cinv = self.c
            g = np.where(cinv, 1.0 / c[cmap], c[cmap]) if len(cmap) else np.empty(0)
            self._a = _coefficients(cptr, cval, cexp, g)
            self._key = key
        return self._a

    def _columns(self, theta):
        theta = np.asarray(theta, dtype=float)
        return theta.reshape(self.n, -1), theta.shape[1:]

    def loss(self, theta, c):
        a = self._coefficients(c)
        cols, shape = self._columns(theta)
        out = np.array([_loss(np.ascontiguousarray(cols[:, b]), a, *self.m, self.maxdeg)
                        for b in range(cols.shape[1])])
        return out.reshape(shape) if shape else float(out[0])

    def flow(self, theta, c, out):
        a = self._coefficients(c)
        cols, shape = self._columns(theta)
        res = np.empty_like(cols)
        g = np.empty(self.n)
        for b in range(cols.shape[1]):
            _gradient(np.ascontiguousarray(cols[:, b]), a, *self.m, self.maxdeg, g)
            res[:, b] = -g
        out[...] = res.reshape(out.shape)
        return out

    def jacobian(self, theta, c, out):
        a = self._coefficients(c)
        theta = np.ascontiguousarray(theta, dtype=float)
        if theta.ndim != 1:
            raise SymiclError("the table Jacobian takes one parameter vector")
        _hessian(theta, a, *self.m, self.maxdeg, out)
        out *= -1.0
        return out


@numba.njit(cache=True)
def _coefficients(cptr, cval, cexp, g):
    M = cptr.size - 1
    a = np.zeros(M)
    for m in range(M):
        acc = 0.0
        for k in range(cptr[m], cptr[m + 1]):
            term = cval[k]
            for j in range(g.size):
                for _ in range(cexp[k, j]):
                    term *= g[j]
            acc += term
        a[m] = acc
    return a


@numba.njit(cache=True)
def _powers(theta, maxdeg):
    pw = np.empty((theta.size, maxdeg + 1))
    for i in range(theta.size):
        pw[i, 0] = 1.0
        for e in range(1, maxdeg + 1):
            pw[i, e] = pw[i, e - 1] * theta[i]
    return pw


@numba.njit(cache=True)
def _loss(theta, a, mptr, mvar, mexp, maxdeg):
    pw = _powers(theta, maxdeg)
    total = 0.0
    for m in range(a.size):
        term = a[m]
        for l in range(mptr[m], mptr[m + 1]):
            term *= pw[mvar[l], mexp[l]]
        total += term
    return total


@numba.njit(cache=True)
def _prefix(m, a, mptr, mvar, mexp, pw, pre):
    """pre[l] = a_m p_1 ... p_l over monomial m's factors p_l = theta_v^e; (start, k)."""
    lo = mptr[m]
    k = mptr[m + 1] - lo
    pre[0] = a[m]
    for l in range(k):
        pre[l + 1] = pre[l] * pw[mvar[lo + l], mexp[lo + l]]
    return lo, k


@numba.njit(cache=True)
def _gradient(theta, a, mptr, mvar, mexp, maxdeg, out):
    pw = _powers(theta, maxdeg)
    out[:] = 0.0
    pre = np.empty(theta.size + 1)
    for m in range(a.size):
        lo, k = _prefix(m, a, mptr, mvar, mexp, pw, pre)
        suf = 1.0
        for l in range(k - 1, -1, -1):
            v, e = mvar[lo + l], mexp[lo + l]
            out[v] += pre[l] * suf * e * pw[v, e - 1]
            suf *= pw[v, e]


@numba.njit(cache=True)
def _hessian(theta, a, mptr, mvar, mexp, maxdeg, out):
    pw = _powers(theta, maxdeg)
    out[:, :] = 0.0
    pre = np.empty(theta.size + 1)
    suf = np.empty(theta.size + 1)
    for m in range(a.size):
        lo, k = _prefix(m, a, mptr, mvar, mexp, pw, pre)
        suf[k] = 1.0
        for l in range(k - 1, -1, -1):
            suf[l] = suf[l + 1] * pw[mvar[lo + l], mexp[lo + l]]
        for l in range(k):
            v, e = mvar[lo + l], mexp[lo + l]
            d1 = e * pw[v, e - 1]
            if e >= 2:
                out[v, v] += pre[l] * suf[l + 1] * e * (e - 1) * pw[v, e - 2]
            mid = 1.0
            for r in range(l + 1, k):
                u, f = mvar[lo + r], mexp[lo + r]
                h = pre[l] * d1 * mid * f * pw[u, f - 1] * suf[r + 1]
                out[v, u] += h
                out[u, v] += h
                mid *= pw[u, f]
