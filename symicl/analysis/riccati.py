"""The matrix Riccati form of two-layer linear networks and its solution.

For f(x) = W2 W1 x (W1: h x i, W2: o x h) stack Q = [W1^T; W2]
((i+o) x h) and P = Q Q^T.  :func:`riccati_form` derives from the model's
flow (nothing typed but the target form):

* F, the linear part of the flow in Q:  dQ/dt = F Q + (cubic terms), read
  off the flow's linear terms (for a teacher T this is [[0, T^T], [T, 0]]);
* the residual E = dQ/dt - (F Q - (1/2) Q Q^T Q) written as
  E = sum_{a<=b} M_ab(Q) B_ab, B = W1 W1^T - W2^T W2, with multipliers M_ab
  linear in the weights, found by a linear solve and checked by expansion;
* hence  dP/dt - (F P + P F - P^2) = E Q^T + Q E^T  (checked by expansion),
  which vanishes on the zero-balanced set B = 0: there
  dP/dt = F P + P F - P^2;
* lambda-balanced weights, W2^T W2 - W1 W1^T = lambda I (B = -lambda I): the
  certificate turns E into  -lambda sum_a M_aa = G_lambda Q,  G_lambda read off
  the multipliers (checked by expansion), so with F_lambda = F + G_lambda

      dQ/dt - (F_lambda Q - Q Q^T Q / 2) = sum_{a<=b} M_ab (B + lambda I)_ab,
      dP/dt - (F_lambda P + P F_lambda - P^2) = E_l Q^T + Q E_l^T

  (both checked by expansion with lambda a symbol): the same Riccati
  equation with F_lambda holds on the lambda-balanced set.

Its solution (Fukumizu 1998; Braun et al. 2022) from P(0) = Q0 Q0^T is

    P(t) = e^{Ft} Q0 [I + Q0^T K(t) Q0]^{-1} Q0^T e^{Ft},
    K(t) = int_0^t e^{2 F u} du  (= (e^{2Ft} - I)(2F)^{-1} when F is invertible).

K is read off one exponential of an augmented matrix,
expm([[2F, I], [0, 0]] t) = [[e^{2Ft}, K(t)], [0, I]], so a singular F
(rank-deficient teacher, i != o) needs no inverse.  The same formula with
F_lambda solves the lambda-balanced case (P has rank <= h throughout).  The one-shot form is
ill-conditioned at long times (cond ~ e^{2 |F| t}); :func:`riccati_solve`
advances in steps of length h with |F| h <= 1 and restarts from the factor,
M = I + Q^T K(h) Q = L L^T,  Q <- e^{Fh} Q L^{-T}, which keeps rank P <= h.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np
import scipy.linalg
import sympy as sp
from sympy.polys.matrices import DomainMatrix

from ..algebra import Ring
from ..errors import ModelError
from ..model import Model
from .closed_forms import NotBalancedError

__all__ = ["LAMBDA", "RiccatiForm", "balance_of", "lambda_balanced_factor", "riccati_form",
           "riccati_section", "riccati_solve", "zero_balanced_factor"]

LAMBDA = sp.Symbol("lambda", real=True)


@dataclass(frozen=True)
class RiccatiForm:
    """The derived Riccati structure of a two-layer linear network's flow.

    ``F`` ((i+o) x (i+o)), ``Q`` = [W1^T; W2] (symbols), ``balance`` B =
    W1 W1^T - W2^T W2, ``residual`` = dP/dt - (F P + P F - P^2) as derived
    (not 0 off the balanced set), ``certificate``: the multipliers
    {(a, b): M_ab} with  dQ/dt - (F Q - Q Q^T Q / 2) = sum_{a<=b} M_ab B_ab,
    so residual = E Q^T + Q E^T vanishes where B = 0.  ``lam`` is the symbol
    lambda, ``G`` = G_lambda (linear in lambda), ``F_lambda`` = F + G and
    ``residual_lambda`` = dP/dt - (F_l P + P F_l - P^2), which vanishes where
    W2^T W2 - W1 W1^T = lambda I.  A RiccatiForm is only returned when every
    one of these identities has been checked.
    """

    model: str
    sizes: tuple[int, int, int]          # (in, hidden, out)
    F: sp.Matrix
    Q: sp.Matrix
    balance: sp.Matrix
    residual: sp.Matrix
    certificate: dict
    lam: sp.Symbol = LAMBDA
    G: sp.Matrix | None = None
    F_lambda: sp.Matrix | None = None
    residual_lambda: sp.Matrix | None = None

    def F_numeric(self, teacher=None, dps: int | None = None, lam=None):
        """F (or F_lambda with ``lam``) with teacher values (numpy, or mp.matrix at ``dps``)."""
        if lam is not None:
            exact = isinstance(lam, (int, sp.Rational)) and not isinstance(lam, bool)
            lam = sp.sympify(lam) if exact else sp.Float(str(lam), (dps or 15) + 10)
        F = self.F if lam is None else self.F_lambda.xreplace({self.lam: lam})
        if F.free_symbols:
            if teacher is None:
                raise ModelError(f"F holds the symbols {sorted(map(str, F.free_symbols))}: "
                                 "give the teacher")
            i, _, o = self.sizes
            T = sp.Matrix(np.asarray(teacher, dtype=object).tolist())
            if T.shape != (o, i):
                raise ModelError(f"teacher has shape {T.shape}, expected {(o, i)}")
            names = {sp.Symbol(f"T_{r + 1}_{c + 1}", real=True): T[r, c]
                     for r in range(o) for c in range(i)}
            F = F.xreplace(names)
        return _to_numeric(F, dps)


def _to_numeric(M, dps):
    M = sp.Matrix(M)
    if dps is None:
        return np.array(M.evalf(), dtype=float)
    with mpmath.workdps(dps):
        return mpmath.matrix([[mpmath.mpf(sp.N(x, dps + 10)) if not isinstance(x, mpmath.mpf)
                               else x for x in row] for row in M.tolist()])


def riccati_form(model: Model) -> RiccatiForm:
    """Derive F and the Riccati equation on the zero-balanced set from ``model.flow()``.

    ``model`` must have blocks ``W1`` (h x i) and ``W2`` (o x h) (the built-in
    ``deep-linear``).  Raises :class:`~symicl.errors.ModelError` if the flow
    has no Riccati structure (a constant term, a linear part that is not
    F Q, or a residual outside the balance ideal).  Works in the sparse ring
    QQ[weights, constants].
    """
    if set(model.blocks) != {"W1", "W2"}:
        raise ModelError(f"model {model.name} has blocks {sorted(model.blocks)}; the Riccati form "
                         "needs a two-layer linear network with blocks W1 and W2")
    W1s, W2s = model.blocks["W1"], model.blocks["W2"]
    h, i = W1s.shape
    o = W2s.shape[0]
    n = i + o
    weights = list(model.parameters)
    nw = len(weights)
    if LAMBDA in model.constants or LAMBDA in weights:
        raise ModelError(f"model {model.name} already uses the symbol lambda")
    ring = Ring(weights + [c for c in model.constants if c not in weights] + [LAMBDA])
    flow = model.flow()
    Qs = sp.Matrix.vstack(W1s.T, W2s)
    Q = [[ring(Qs[r, k]) for k in range(h)] for r in range(n)]
    Qdot = [[ring(flow[Qs[r, k]]) if isinstance(Qs[r, k], sp.Symbol) else ring.zero
             for k in range(h)] for r in range(n)]

    def wdeg(monom):
        return sum(monom[:nw])

    if any(wdeg(m) == 0 for row in Qdot for e in row for m in e):
        raise ModelError(f"the flow of {model.name} has a constant term: no Riccati form")
    # F: the linear part, dQ[:, k]/dt = F Q[:, k] + higher order (read off column 0)
    F = [[ring.zero] * n for _ in range(n)]
    for r in range(n):
        for monom, coeff in Qdot[r][0].terms():
            if wdeg(monom) != 1:
                continue
            var = next(j for j in range(nw) if monom[j])
            rest = tuple(0 if j == var else e for j, e in enumerate(monom))
            s = next((s for s in range(n) if Q[s][0] == ring.ring.gens[var]), None)
            if s is None:
                raise ModelError(f"the linear part of the flow of {model.name} is not F Q")
            F[r][s] += ring.ring({rest: coeff})
    FQ = _mul(F, Q, ring)
    for r in range(n):
        for k in range(h):
            lin = ring.ring({m: c for m, c in Qdot[r][k].terms() if wdeg(m) == 1})
            if lin != FQ[r][k]:
                raise ModelError(f"the linear part of the flow of {model.name} is not F Q")

    # residual of dQ/dt = F Q - (1/2) Q Q^T Q, in the ideal of the balance B
    QT = _transpose(Q)
    P = _mul(Q, QT, ring)
    QQQ = _mul(P, Q, ring)
    half = sp.QQ(1, 2)
    E = [[Qdot[r][k] - FQ[r][k] + QQQ[r][k] * half for k in range(h)] for r in range(n)]
    W1 = [[ring(W1s[a, c]) for c in range(i)] for a in range(h)]
    W2 = [[ring(W2s[a, c]) for c in range(h)] for a in range(o)]
    W1W1T = _mul(W1, _transpose(W1), ring)
    W2TW2 = _mul(_transpose(W2), W2, ring)
    pairs = [(a, b) for a in range(h) for b in range(a, h)]
    B = {ab: W1W1T[ab[0]][ab[1]] - W2TW2[ab[0]][ab[1]] for ab in pairs}
    basis = [(j, ab, ring.ring.gens[j] * B[ab]) for j in range(nw) for ab in pairs]
    cert = [[{} for _ in range(h)] for _ in range(n)]
    for r in range(n):
        for k in range(h):
            if not E[r][k]:
                continue
            coeffs = _particular_solution([g for *_, g in basis], E[r][k])
            if coeffs is None:
                raise ModelError(
                    f"the residual {ring.to_expr(E[r][k])} of dQ/dt = F Q - Q Q^T Q / 2 at "
                    f"({r}, {k}) is not in the ideal of the balance W1 W1^T - W2^T W2")
            for (j, ab, _), c in zip(basis, coeffs):
                if c:
                    cert[r][k][ab] = cert[r][k].get(ab, ring.zero) + ring.ring.gens[j] * c
    # checks by expansion: E = sum_ab M_ab B_ab, and dP/dt - (FP + PF - P^2) = E Q^T + Q E^T
    for r in range(n):
        for k in range(h):
            if sum((m * B[ab] for ab, m in cert[r][k].items()), ring.zero) != E[r][k]:
                raise ModelError("internal: the balance certificate does not expand to "
                                 "the residual")
    Pdot = _add(_mul(Qdot, QT, ring), _mul(Q, _transpose(Qdot), ring))
    FP, PF, PP = _mul(F, P, ring), _mul(P, F, ring), _mul(P, P, ring)
    residual = [[Pdot[r][c] - FP[r][c] - PF[r][c] + PP[r][c] for c in range(n)] for r in range(n)]
    EQT = _mul(E, QT, ring)
    via_E = _add(EQT, _transpose(EQT))
    if via_E != residual:
        raise ModelError("internal: dP/dt - (F P + P F - P^2) is not E Q^T + Q E^T")
    # on B = 0 every E entry vanishes, hence the residual: the equation holds there
    G, F_lam, res_lam = _lambda_part(ring, nw, n, h, Q, QT, P, Pdot, Qdot, QQQ, F, B, cert, pairs)
    to_sp = lambda M: sp.Matrix([[ring.to_expr(e) for e in row] for row in M])
    certificate = {ab: sp.Matrix([[ring.to_expr(cert[r][k].get(ab, ring.zero)) for k in range(h)]
                                  for r in range(n)]) for ab in pairs}
    return RiccatiForm(model.name, (i, h, o), to_sp(F), Qs,
                       sp.Matrix(h, h, lambda a, b: ring.to_expr(B[(min(a, b), max(a, b))])),
                       to_sp(residual), certificate, LAMBDA, to_sp(G), to_sp(F_lam),
                       to_sp(res_lam))


def _lambda_part(ring, nw, n, h, Q, QT, P, Pdot, Qdot, QQQ, F, B, cert, pairs):
    """G_lambda from the certificate on B = -lambda I, and the checks of the lambda identities."""
    lam = ring.ring.gens[ring.index[LAMBDA]]
    # S = sum_a M_aa (linear in the weights); on B = -lambda I, E = -lambda S = G Q
    S = [[sum((cert[r][k].get((a, a), ring.zero) for a in range(h)), ring.zero)
          for k in range(h)] for r in range(n)]
    G0 = [[sp.QQ(0)] * n for _ in range(n)]
    for r in range(n):
        for monom, coeff in S[r][0].terms():
            var = next(j for j in range(nw) if monom[j])
            s = next((s for s in range(n) if Q[s][0] == ring.ring.gens[var]), None)
            if s is None or sum(monom) != 1:
                raise ModelError("the balance multipliers on B = -lambda I are not linear in Q: "
                                 "no lambda-balanced Riccati form")
            G0[r][s] -= coeff
    G = [[lam * g for g in row] for row in G0]
    GQ = _mul(G, Q, ring)
    for r in range(n):
        for k in range(h):
            if GQ[r][k] != -lam * S[r][k]:
                raise ModelError("the balance multipliers on B = -lambda I are not G Q: "
                                 "no lambda-balanced Riccati form")
    F_lam = _add(F, G)
    FQ = _mul(F_lam, Q, ring)
    half = sp.QQ(1, 2)
    E_lam = [[Qdot[r][k] - FQ[r][k] + QQQ[r][k] * half for k in range(h)] for r in range(n)]
    Bl = {ab: B[ab] + (lam if ab[0] == ab[1] else ring.zero) for ab in pairs}
    for r in range(n):
        for k in range(h):
            if sum((m * Bl[ab] for ab, m in cert[r][k].items()), ring.zero) != E_lam[r][k]:
                raise ModelError("internal: dQ/dt - (F_l Q - Q Q^T Q / 2) is not "
                                 "sum M_ab (B + lambda I)_ab")
    FP, PF, PP = _mul(F_lam, P, ring), _mul(P, F_lam, ring), _mul(P, P, ring)
    res = [[Pdot[r][c] - FP[r][c] - PF[r][c] + PP[r][c] for c in range(n)] for r in range(n)]
    EQT = _mul(E_lam, QT, ring)
    if _add(EQT, _transpose(EQT)) != res:
        raise ModelError("internal: dP/dt - (F_l P + P F_l - P^2) is not E_l Q^T + Q E_l^T")
    return G, F_lam, res


def _transpose(M):
    return [list(col) for col in zip(*M)]


def _mul(A, B, ring):
    return [[sum((A[r][j] * B[j][c] for j in range(len(B))), ring.zero)
             for c in range(len(B[0]))] for r in range(len(A))]


def _add(A, B):
    return [[a + b for a, b in zip(ra, rb)] for ra, rb in zip(A, B)]


def _particular_solution(columns, target):
    """Rational c with sum_j c_j columns_j = target (ring elements), or None."""
    monos = sorted({m for g in columns for m in g} | set(target.keys()))
    index = {m: i for i, m in enumerate(monos)}
    rows = [[sp.QQ(0)] * (len(columns) + 1) for _ in monos]
    for j, g in enumerate(columns):
        for m, c in g.terms():
            rows[index[m]][j] = c
    for m, c in target.terms():
        rows[index[m]][-1] = c
    aug = DomainMatrix(rows, (len(monos), len(columns) + 1), sp.QQ)
    rref, pivots = aug.rref()
    if len(columns) in pivots:
        return None
    sol = [sp.QQ(0)] * len(columns)
    dense = rref.to_list()
    for row, col in enumerate(pivots):
        sol[col] = dense[row][-1] / dense[row][col]
    return sol


# -- numerical solution ------------------------------------------------------------------------

def _weights(W1, W2, dps):
    """(W1, W2) as float arrays or mp.matrix, shapes checked."""
    if dps is None:
        W1 = np.atleast_2d(np.asarray(W1, dtype=float))
        W2 = np.atleast_2d(np.asarray(W2, dtype=float))
        shapes = W1.shape, W2.shape
    else:
        W1, W2 = mpmath.matrix(W1), mpmath.matrix(W2)
        shapes = (W1.rows, W1.cols), (W2.rows, W2.cols)
    if shapes[0][0] != shapes[1][1]:
        raise ModelError(f"W1 is {shapes[0][0]}x{shapes[0][1]} and W2 is "
                         f"{shapes[1][0]}x{shapes[1][1]}: W1 must be hidden x in and W2 "
                         "out x hidden")
    return W1, W2


def _stack(W1, W2, dps):
    if dps is None:
        return np.vstack([W1.T, W2])
    Q0 = mpmath.matrix(W1.cols + W2.rows, W1.rows)
    for r in range(W1.cols):
        for c in range(W1.rows):
            Q0[r, c] = W1[c, r]
    for r in range(W2.rows):
        for c in range(W2.cols):
            Q0[W1.cols + r, c] = W2[r, c]
    return Q0


_USE_THE_FLOW = ("integrate the flow instead (symicl.simulate.integrate with the generated "
                 "kernels, or symicl.analysis.integrate: integrate_ivp or integrate_taylor on "
                 "model.flow())")


def balance_of(W1, W2, *, dps: int | None = None, tol: float | None = None):
    """lambda with W2^T W2 - W1 W1^T = lambda I (relative ``tol``), else NotBalancedError.

    lambda = tr(W2^T W2 - W1 W1^T) / h; the check is
    ||W2^T W2 - W1 W1^T - lambda I||_F <= tol (||W1||_F^2 + ||W2||_F^2).
    Default tolerances: 1e-10 (double), 10^-(dps - 10) (mpmath).
    """
    ctx = mpmath.workdps(dps) if dps is not None else _nullcontext()
    with ctx:
        W1, W2 = _weights(W1, W2, dps)
        if dps is None:
            D = W2.T @ W2 - W1 @ W1.T
            lam = float(np.trace(D)) / D.shape[0]
            gap = np.linalg.norm(D - lam * np.eye(D.shape[0]))
            scale = np.linalg.norm(W1) ** 2 + np.linalg.norm(W2) ** 2
            tol = 1e-10 if tol is None else tol
        else:
            D = W2.T * W2 - W1 * W1.T
            lam = sum(D[a, a] for a in range(D.rows)) / D.rows
            gap = mpmath.mnorm(D - lam * mpmath.eye(D.rows), "f")
            scale = mpmath.mnorm(W1, "f") ** 2 + mpmath.mnorm(W2, "f") ** 2
            tol = mpmath.mpf(10) ** (-(dps - 10)) if tol is None else tol
        if gap > tol * max(scale, 1e-300):
            raise NotBalancedError(
                f"the weights are not lambda-balanced: W2^T W2 - W1 W1^T is lambda I plus a "
                f"remainder of norm {float(gap):.3g} (relative {float(gap / scale):.3g} > "
                f"{float(tol):.3g}); the Riccati closed form needs W2^T W2 - W1 W1^T = lambda I: "
                + _USE_THE_FLOW)
        return lam


def lambda_balanced_factor(W1, W2, *, dps: int | None = None, tol: float | None = None):
    """(Q0, lambda): Q0 = [W1^T; W2] after checking W2^T W2 - W1 W1^T = lambda I."""
    lam = balance_of(W1, W2, dps=dps, tol=tol)
    ctx = mpmath.workdps(dps) if dps is not None else _nullcontext()
    with ctx:
        W1, W2 = _weights(W1, W2, dps)
        return _stack(W1, W2, dps), lam


def zero_balanced_factor(W1, W2, *, dps: int | None = None, tol: float | None = None, lam=0):
    """Q0 = [W1^T; W2] after checking W2^T W2 - W1 W1^T = lam I (default 0) (relative ``tol``).

    Raises :class:`NotBalancedError` otherwise: the closed form does not hold
    off the (lambda-)balanced set, where the flow itself must be integrated.
    Default tolerances: 1e-10 (double), 10^-(dps - 10) (mpmath).
    """
    ctx = mpmath.workdps(dps) if dps is not None else _nullcontext()
    with ctx:
        W1, W2 = _weights(W1, W2, dps)
        if dps is None:
            h = W1.shape[0]
            gap = np.linalg.norm(W2.T @ W2 - W1 @ W1.T - lam * np.eye(h))
            scale = np.linalg.norm(W1) ** 2 + np.linalg.norm(W2) ** 2
            tol = 1e-10 if tol is None else tol
        else:
            h = W1.rows
            gap = mpmath.mnorm(W2.T * W2 - W1 * W1.T - mpmath.mpf(lam) * mpmath.eye(h), "f")
            scale = mpmath.mnorm(W1, "f") ** 2 + mpmath.mnorm(W2, "f") ** 2
            tol = mpmath.mpf(10) ** (-(dps - 10)) if tol is None else tol
        if gap > tol * max(scale, 1e-300):
            what = "zero-balanced" if lam == 0 else f"lambda-balanced with lambda = {float(lam):.6g}"
            try:
                measured = f"; they are lambda-balanced with lambda = {float(balance_of(W1, W2, dps=dps, tol=tol)):.6g} (use that F_lambda)"
            except NotBalancedError:
                measured = ""
            raise NotBalancedError(
                f"the weights are not {what}: ||W2^T W2 - W1 W1^T - lambda I||_F = "
                f"{float(gap):.3g} (relative {float(gap / scale) if scale else float('inf'):.3g} "
                f"> {float(tol):.3g}){measured}; the Riccati closed form with this F holds only "
                f"there: " + _USE_THE_FLOW)
        return _stack(W1, W2, dps)


def _propagators(F, h, dps):
    """e^{Fh} and K(h) = int_0^h e^{2Fu} du from exp([[2F, I], [0, 0]] h)."""
    n = F.rows if dps is not None else F.shape[0]
    if dps is None:
        aug = np.zeros((2 * n, 2 * n))
        aug[:n, :n] = 2 * F * h
        aug[:n, n:] = np.eye(n) * h
        big = scipy.linalg.expm(aug)
        K = big[:n, n:]
        return scipy.linalg.expm(F * h), (K + K.T) / 2
    aug = mpmath.zeros(2 * n, 2 * n)
    for r in range(n):
        for c in range(n):
            aug[r, c] = 2 * F[r, c] * h
        aug[r, n + r] = h
    big = mpmath.expm(aug)
    K = mpmath.matrix(n, n)
    for r in range(n):
        for c in range(n):
            K[r, c] = (big[r, n + c] + big[c, n + r]) / 2
    return mpmath.expm(F * h), K


_ILL_CONDITIONED = ("I + Q^T K(h) Q is numerically not positive definite: the step is too long "
                    "(its condition grows like e^{2 |F| h}); use a smaller max_step (the default "
                    "|F| h <= 1) or more digits")


def _step(Q, E, K, dps):
    """Q <- e^{Fh} Q L^{-T}, L L^T = I + Q^T K(h) Q."""
    if dps is None:
        M = np.eye(Q.shape[1]) + Q.T @ K @ Q
        # Cholesky alone fails or not by rounding luck; a condition beyond 1e12 loses
        # more than 12 of the 16 digits either way
        if not np.all(np.isfinite(M)) or np.linalg.cond(M) > 1e12:
            raise ModelError(_ILL_CONDITIONED)
        try:
            L = np.linalg.cholesky((M + M.T) / 2)
        except np.linalg.LinAlgError:
            raise ModelError(_ILL_CONDITIONED) from None
        return np.linalg.solve(L, (E @ Q).T).T          # L lower triangular: Q L^{-T}
    M = mpmath.eye(Q.cols) + Q.T * K * Q
    try:
        L = mpmath.cholesky((M + M.T) / 2)
    except ValueError:
        raise ModelError(_ILL_CONDITIONED) from None
    # Q L^{-T} = (L^{-1} Q^T)^T, forward substitution column by column
    X = (E * Q).T
    out = mpmath.matrix(X.rows, X.cols)
    for c in range(X.cols):
        for r in range(X.rows):
            acc = X[r, c] - sum((L[r, j] * out[j, c] for j in range(r)), mpmath.mpf(0))
            out[r, c] = acc / L[r, r]
    return out.T


def riccati_solve(F, W1, W2, times: Sequence, *, dps: int | None = None,
                  max_step: float | None = None, tol: float | None = None, lam=0) -> list:
    """Q(t) with Q(t) Q(t)^T = P(t), the Riccati solution from the balanced (W1, W2).

    ``lam``: the weights must be lambda-balanced, W2^T W2 - W1 W1^T = lam I,
    and ``F`` must then be F_lambda (``RiccatiForm.F_numeric(teacher, lam=lam)``);
    lam = 0 is the zero-balanced case.

    ``F`` is a numpy array (double) or, with ``dps``, anything mpmath.matrix
    takes (evaluated at ``dps`` digits).  Steps have |F|_2 h <= 1 unless
    ``max_step`` is given (``max_step=inf``: the one-shot closed form from
    t = 0, ill-conditioned at long times).  Returns the factor Q(t) at each
    time (numpy arrays or mp.matrix); P(t) = Q Q^T, W2 W1(t) is its lower-left
    o x i block.
    """
    Q = zero_balanced_factor(W1, W2, dps=dps, tol=tol, lam=lam)
    ctx = mpmath.workdps(dps) if dps is not None else _nullcontext()
    with ctx:
        if dps is None:
            F = np.asarray(F, dtype=float)
            norm = float(np.linalg.norm(F, 2))
            n = F.shape[0]
        else:
            F = mpmath.matrix(F)
            norm = float(mpmath.mnorm(F, "f"))
            n = F.rows
        if (Q.shape[0] if dps is None else Q.rows) != n:
            raise ModelError(f"F is {n}x{n} but Q0 = [W1^T; W2] has "
                             f"{Q.shape[0] if dps is None else Q.rows} rows")
        if not np.allclose(np.array(F.tolist(), dtype=float), np.array(F.tolist(), dtype=float).T):
            raise ModelError("F must be symmetric")
        h_max = max_step if max_step is not None else (1.0 / norm if norm > 0 else float("inf"))
        cache = {}
        out, t = [], 0
        for target in times:
            target = float(target) if dps is None else mpmath.mpf(target)
            if target < t:
                raise ModelError("times must be non-negative and increasing")
            if target > t:
                steps = max(1, int(np.ceil(float(target - t) / h_max)))
                h = (target - t) / steps
                key = str(h)
                if key not in cache:
                    cache[key] = _propagators(F, h, dps)
                E, K = cache[key]
                for _ in range(steps):
                    Q = _step(Q, E, K, dps)
                t = target
            out.append(Q.copy())
        return out


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- derivation text ---------------------------------------------------------------------------

def _solution_check() -> str:
    """Differentiate P = X M^{-1} X^T (X = e^{Ft} Q0, M = I + Q0^T K(t) Q0) with
    noncommuting symbols: dX/dt = F X, dX^T/dt = X^T F (F = F^T), dM/dt = X^T X,
    d(M^{-1})/dt = -M^{-1} (dM/dt) M^{-1}; the result must expand to F P + P F - P^2."""
    F, X, Xt, Mi = sp.symbols("F X X^T M^{-1}", commutative=False)
    P = X * Mi * Xt
    dP = F * X * Mi * Xt + X * (-Mi * (Xt * X) * Mi) * Xt + X * Mi * Xt * F
    if sp.expand(dP - (F * P + P * F - P * P)) != 0:
        raise ModelError("internal: the Riccati solution formula does not differentiate to "
                         "F P + P F - P^2")
    return "d/dt [X M^{-1} X^T] - (F P + P F - P^2) = 0"


def riccati_section(model: Model) -> dict:
    """The Riccati derivation of a two-layer linear network as text.

    Returns {"data": json-serialisable strings, "tex": [LaTeX align blocks],
    "md": [Markdown lines]}: the derived F, the balance certificate
    E = sum M_ab B_ab and the residual identity, G_lambda and F_lambda, and the
    solution formula with its check by differentiation (noncommuting symbols).
    """
    from ..export.names import latex

    form = riccati_form(model)
    check = _solution_check()
    syms = list(model.parameters) + list(model.constants)
    i, h, o = form.sizes
    cert = {f"M_{a + 1}_{b + 1}": m for (a, b), m in form.certificate.items()
            if any(e != 0 for e in m)}
    data = {
        "sizes": {"in": i, "hidden": h, "out": o},
        "Q": "[W1^T; W2]",
        "F": str(form.F.tolist()),
        "balance": "B = W1 W1^T - W2^T W2 = " + str(form.balance.tolist()),
        "certificate": {k: str(m.tolist()) for k, m in cert.items()},
        "residual_identity": "dQ/dt - (F Q - Q Q^T Q / 2) = E = sum_{a<=b} M_ab B_ab; "
                             "dP/dt - (F P + P F - P^2) = E Q^T + Q E^T (P = Q Q^T)",
        "G_lambda": str(form.G.tolist()),
        "F_lambda": str(form.F_lambda.tolist()),
        "lambda_identity": "on W2^T W2 - W1 W1^T = lambda I: dQ/dt - (F_lambda Q - Q Q^T Q / 2) "
                           "= sum_{a<=b} M_ab (B + lambda I)_ab = 0, hence "
                           "dP/dt = F_lambda P + P F_lambda - P^2",
        "solution": "P(t) = e^{F t} Q0 [I + Q0^T K(t) Q0]^{-1} Q0^T e^{F t}, "
                    "K(t) = int_0^t e^{2 F u} du, read off expm([[2F, I], [0, 0]] t)",
        "solution_check": check,
        "checked": ["E = sum M_ab B_ab by expansion", "residual = E Q^T + Q E^T by expansion",
                    "G_lambda Q = -lambda sum_a M_aa by expansion",
                    "lambda identities by expansion (lambda symbolic)",
                    "solution formula by differentiation"],
    }
    L = lambda e: latex(e, syms)
    mats = " \\\\\n".join(f"M_{{{k[2:].replace('_', ',')}}} &= {L(m)}" for k, m in cert.items())
    tex = [
        ("% Riccati form: Q = [W1^T; W2], P = Q Q^T, F read off the flow's linear part\n"
        "\\begin{align}\n"
        f"F &= {L(form.F)} \\\\\n"
        f"B &= W_1 W_1^\\top - W_2^\\top W_2 = {L(form.balance)}\n\\end{{align}}"),
        "% certificate: dQ/dt - (F Q - Q Q^T Q / 2) = sum_{a<=b} M_ab B_ab (checked by expansion)\n"
        "\\begin{align}\n" + mats + " \\\\\n"
        "\\dot P - (F P + P F - P^2) &= E Q^\\top + Q E^\\top, \\quad "
        "E = \\sum_{a \\le b} M_{ab} B_{ab}\n\\end{align}",
        ("% lambda-balanced weights W2^T W2 - W1 W1^T = lambda I: F_lambda = F + G_lambda\n"
        "\\begin{align}\n"
        f"G_\\lambda &= {L(form.G)} \\\\\n"
        f"F_\\lambda &= {L(form.F_lambda)} \\\\\n"
        "\\dot Q - (F_\\lambda Q - \\tfrac12 Q Q^\\top Q) &= \\sum_{a \\le b} M_{ab} "
        "(B + \\lambda I)_{ab} \\\\\n"
        "\\dot P &= F_\\lambda P + P F_\\lambda - P^2 \\quad "
        "\\text{on } W_2^\\top W_2 - W_1 W_1^\\top = \\lambda I\n\\end{align}"),
        ("% solution (checked by differentiation with noncommuting symbols)\n"
        "\\begin{align}\n"
        "P(t) &= e^{F t} Q_0 \\left[I + Q_0^\\top K(t) Q_0\\right]^{-1} Q_0^\\top e^{F t}, "
        "\\quad K(t) = \\int_0^t e^{2 F u}\\, du\n\\end{align}"),
    ]
    md = [
        "## Riccati form and its closed-form solution", "",
        (f"Stack Q = [W1^T; W2] ({i + o} x {h}) and P = Q Q^T. F is read off the linear part "
        "of the derived flow, dQ/dt = F Q + (cubic terms):"), "",
        f"$$F = {L(form.F)}$$", "",
        ("The remainder of dQ/dt = F Q - Q Q^T Q / 2 lies in the ideal of the conserved "
        "balance B = W1 W1^T - W2^T W2, with multipliers linear in the weights (found by a "
        "linear solve, checked by expansion):"), "",
        *[f"$$M_{{{k[2:].replace('_', ',')}}} = {L(m)}$$" for k, m in cert.items()], "",
        ("so dP/dt - (F P + P F - P^2) = E Q^T + Q E^T with E = sum M_ab B_ab, zero on the "
        "zero-balanced set B = 0."), "",
        ("On lambda-balanced weights, W2^T W2 - W1 W1^T = lambda I, E = -lambda sum_a M_aa "
        "is linear in Q, E = G_lambda Q, and the same Riccati equation holds with "
        "F_lambda = F + G_lambda (both identities checked by expansion, lambda symbolic):"), "",
        f"$$G_\\lambda = {L(form.G)}, \\quad F_\\lambda = {L(form.F_lambda)}$$", "",
        ("Solution from P(0) = Q0 Q0^T (checked by differentiation with noncommuting "
        "symbols; K is read off one exponential of [[2F, I], [0, 0]], so no inverse of F "
        "is formed and singular F — rank-deficient teachers, in != out — is covered):"), "",
        ("$$P(t) = e^{F t} Q_0 \\left[I + Q_0^\\top K(t) Q_0\\right]^{-1} Q_0^\\top e^{F t}, "
        "\\quad K(t) = \\int_0^t e^{2 F u}\\, du$$"), "",
        ("P's blocks are the representations: W1^T W1 (upper left, input RSM), W2 W1 "
        "(lower left, the network function) and W2 W2^T (lower right, output RSM)."),
    ]
    return {"data": data, "tex": tex, "md": md}
