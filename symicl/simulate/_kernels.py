"""Numba kernels of the linear transformer's SGD: M from Wishart draws, and
the minibatch gradient.

``wishart_moments_py`` assembles M, z_q, y_q from the Bartlett factors of the
context sum (the loop form of ``TransformerSGD``'s NumPy assembly, see
``_sample_wishart``).  ``batch_gradients_py`` is the same hand-written chain rule as ``TransformerSGD.prompt_gradients``
(written from the forward pass, independent of the symbolic engine), as one
loop over seeds and prompts with no temporaries:

    v = W^Q z_q,  u = M v,  r = W^P_{y,:} u - y_q,  loss = |r|^2 / 2,
    dW^P_{y,:} += r u^T,  a = (W^P_{y,:})^T r,  dW^Q += (M a) z_q^T,

averaged over the batch.  Serial (one thread), IEEE arithmetic (no
fastmath), so results are deterministic.  Numba is imported, and the kernel
compiled (or loaded from Numba's on-disk cache), on first use only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_gradient_kernel", "batch_gradients_py", "wishart_moments_kernel",
           "wishart_moments_py"]


def batch_gradients_py(WP, WQ, M, zq, yq, gP, gQ, loss):
    """Mean loss and gradient per seed; the pure-Python body of the kernel.

    WP, WQ (S, D, D); M (S, B, D, D); zq (S, B, D); yq (S, B, o), the label
    rows being the last o of D.  Writes gP, gQ (S, D, D) and loss (S,).
    """
    S, B, D = zq.shape
    o = yq.shape[2]
    d = D - o
    v = np.empty(D)
    u = np.empty(D)
    a = np.empty(D)
    r = np.empty(o)
    inv = 1.0 / B
    for s in range(S):
        for i in range(D):
            for j in range(D):
                gP[s, i, j] = 0.0
                gQ[s, i, j] = 0.0
        lsum = 0.0
        for b in range(B):
            for i in range(D):                              # v = W^Q z_q
                acc = 0.0
                for j in range(D):
                    acc += WQ[s, i, j] * zq[s, b, j]
                v[i] = acc
            for i in range(D):                              # u = M v
                acc = 0.0
                for j in range(D):
                    acc += M[s, b, i, j] * v[j]
                u[i] = acc
            for k in range(o):                              # r = W^P_y u - y_q
                acc = 0.0
                for j in range(D):
                    acc += WP[s, d + k, j] * u[j]
                r[k] = acc - yq[s, b, k]
                lsum += 0.5 * r[k] * r[k]
            for k in range(o):                              # dW^P_y += r u^T
                for j in range(D):
                    gP[s, d + k, j] += r[k] * u[j]
            for i in range(D):                              # a = W^P_y^T r
                acc = 0.0
                for k in range(o):
                    acc += WP[s, d + k, i] * r[k]
                a[i] = acc
            for i in range(D):                              # dW^Q += (M a) z_q^T
                acc = 0.0
                for j in range(D):
                    acc += M[s, b, i, j] * a[j]
                for j in range(D):
                    gQ[s, i, j] += acc * zq[s, b, j]
        for i in range(D):
            for j in range(D):
                gP[s, i, j] *= inv
                gQ[s, i, j] *= inv
        loss[s] = lsum * inv


def wishart_moments_py(chi, off, xq, task, sq, aligned, query_in_moments, norm, M, zq, yq):
    """M, z_q, y_q of n prompts from the Bartlett factors of S = sum_n x_n x_n^T.

    chi (n, d): the diagonal of A; off (n, d(d-1)/2): A below the diagonal in
    ``np.tril_indices(d, -1)`` order; xq (n, d); task (n, d): Lambda's
    diagonal (aligned) or w; sq = sqrt(s).  S = L A A^T L with L = diag(sq),
    context sum T S T^T with T = [I; Lambda] or [I; w^T].  Writes M (n, D, D),
    zq (n, D), yq (n, o).
    """
    n, d = chi.shape
    D = M.shape[1]
    S = np.empty((d, d))
    Sw = np.empty(d)
    inv = 1.0 / norm
    for p in range(n):
        for i in range(d):                                  # S = L A A^T L
            for j in range(i + 1):
                acc = 0.0
                for t in range(j + 1):
                    ait = chi[p, i] if t == i else off[p, i * (i - 1) // 2 + t]
                    ajt = chi[p, j] if t == j else off[p, j * (j - 1) // 2 + t]
                    acc += ait * ajt
                acc *= sq[i] * sq[j]
                S[i, j] = acc
                S[j, i] = acc
        if aligned:
            for i in range(d):
                li = task[p, i]
                for j in range(d):
                    lj = task[p, j]
                    M[p, i, d + j] = S[i, j] * lj * inv
                    M[p, d + i, j] = li * S[i, j] * inv
                    M[p, d + i, d + j] = li * S[i, j] * lj * inv
                yq[p, i] = li * xq[p, i]
        else:
            wSw = 0.0
            yv = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += S[i, j] * task[p, j]
                Sw[i] = acc
                wSw += task[p, i] * acc
                yv += task[p, i] * xq[p, i]
            for i in range(d):
                M[p, i, d] = Sw[i] * inv
                M[p, d, i] = Sw[i] * inv
            M[p, d, d] = wSw * inv
            yq[p, 0] = yv
        for i in range(d):
            for j in range(d):
                h = S[i, j]
                if query_in_moments:
                    h += xq[p, i] * xq[p, j]
                M[p, i, j] = h * inv
        for i in range(d):
            zq[p, i] = xq[p, i]
        for i in range(d, D):
            zq[p, i] = 0.0


_compiled: dict = {}


def batch_gradient_kernel():
    """The Numba-compiled :func:`batch_gradients_py` (compiled once per process)."""
    if "grad" not in _compiled:
        import numba
        _compiled["grad"] = numba.njit(cache=True, fastmath=False)(batch_gradients_py)
    return _compiled["grad"]


def wishart_moments_kernel():
    """The Numba-compiled :func:`wishart_moments_py` (compiled once per process)."""
    if "wishart" not in _compiled:
        import numba
        _compiled["wishart"] = numba.njit(cache=True, fastmath=False)(wishart_moments_py)
    return _compiled["wishart"]
