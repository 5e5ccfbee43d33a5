"""Critical points of L at numeric constants, refined and classified at high precision.

For a model beyond the exact polynomial-system method a critical point found
numerically (e.g. by many-start Newton) is made trustworthy here:

* :func:`refine`: Newton steps with the pseudo-inverse of the Hessian,
  delta = -H^+ grad L, in mpmath at ``dps`` digits.  On a manifold of
  critical points of constant rank (symmetry orbits, flat families) this
  converges quadratically to a nearby point of it, moving only across it;
* :func:`classify`: the residual |grad L|, the loss, and the Hessian's
  eigenvalues at ``dps`` digits: the index (negative eigenvalues) and the
  zero modes (|lambda| below ``zero``), to compare with the orbit dimension
  (:func:`orbit_dimension`: the rank of the symmetry directions A_k theta).

Everything is exact arithmetic on the derived loss with the constants
substituted as rationals, evaluated by mpmath: the same input gives the same
digits on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import mpmath as mp
import sympy as sp

from ..model import Model

__all__ = ["PrecisionSystem", "Classification", "refine", "classify", "orbit_dimension"]


class PrecisionSystem:
    """grad L and the Hessian of ``model`` at ``constants``, over its active parameters."""

    def __init__(self, model: Model, constants: dict):
        self.model = model
        self.constants = {model.symbol(str(k)) if isinstance(k, str) else k: sp.nsimplify(v)
                          for k, v in constants.items()}
        grads = model._gradient
        self.active = [p for p in model.parameters if grads[p]]
        self.inert = [p for p in model.parameters if not grads[p]]
        self._fields: dict = {}     # symmetry fields compiled for orbit_dimension

    @cached_property
    def loss_expr(self) -> sp.Expr:
        return sp.expand(self.model.expected_loss().xreplace(self.constants))

    @cached_property
    def _gradient_polys(self) -> list:
        poly = sp.Poly(self.loss_expr, *self.active)
        return [poly.diff(p) for p in self.active]

    @cached_property
    def gradient_exprs(self) -> list:
        return [g.as_expr() for g in self._gradient_polys]

    @cached_property
    def hessian_exprs(self) -> list:
        return [[g.diff(q).as_expr() for q in self.active] for g in self._gradient_polys]

    @cached_property
    def _mp(self):
        args = self.active
        return (sp.lambdify(args, self.loss_expr, "mpmath"),
                sp.lambdify(args, self.gradient_exprs, "mpmath"),
                sp.lambdify(args, self.hessian_exprs, "mpmath"))

    def loss(self, x) -> mp.mpf:
        return self._mp[0](*x)

    def gradient(self, x) -> mp.matrix:
        return mp.matrix(self._mp[1](*x))

    def hessian(self, x) -> mp.matrix:
        return mp.matrix(self._mp[2](*x))

    def numpy(self):
        """(loss, gradient, Hessian) as NumPy functions of an array of the active parameters
        (leading axes: a batch of points evaluated at once)."""
        import numpy as np

        n = len(self.active)
        fns = [sp.lambdify(self.active, e, "numpy") for e in
               (self.loss_expr, self.gradient_exprs, self.hessian_exprs)]

        def make(fn, shape):
            def call(x):
                x = np.asarray(x, dtype=float)
                batch = x.shape[:-1]
                out = fn(*[x[..., k] for k in range(n)])
                flat = [np.broadcast_to(np.asarray(o, dtype=float), batch)
                        for o in (_flat(out) if shape else [out])]
                return np.stack(flat, axis=-1).reshape(batch + shape)
            return call

        return make(fns[0], ()), make(fns[1], (n,)), make(fns[2], (n, n))


def _flat(out) -> list:
    if isinstance(out, (list, tuple)):
        return [y for o in out for y in _flat(o)]
    return [out]


def _pinv_step(H: mp.matrix, g: mp.matrix, rel: mp.mpf) -> mp.matrix:
    """-H^+ g with singular values below rel * max cut (H symmetric: its eigen-decomposition)."""
    E, Q = mp.eigsy(H)
    top = max(abs(e) for e in E)
    step = mp.matrix(H.rows, 1)
    for k in range(H.rows):
        lam = E[k]
        if abs(lam) <= rel * top:
            continue
        col = Q[:, k]
        c = sum(col[i] * g[i] for i in range(H.rows)) / lam
        for i in range(H.rows):
            step[i] -= c * col[i]
    return step


def refine(system: PrecisionSystem, point, dps: int = 60, tol: float = 1e-40,
           max_steps: int = 200) -> list:
    """``point`` (values of the active parameters) refined by pseudo-inverse Newton at ``dps``
    digits until |grad L| < ``tol``; returns mpf values, or raises ArithmeticError.  (At a
    singular root, where the Hessian's rank drops, Newton converges only linearly: hence the
    generous ``max_steps``.)"""
    with mp.workdps(dps):
        x = mp.matrix([mp.mpf(str(v)) if not isinstance(v, mp.mpf) else v for v in point])
        rel = mp.mpf(10) ** (15 - dps)      # cut only rounding-level eigenvalues
        for _ in range(max_steps):
            g = system.gradient(list(x))
            if mp.norm(g) < tol:
                return [x[i] for i in range(x.rows)]
            x = x + _pinv_step(system.hessian(list(x)), g, rel)
        g = system.gradient(list(x))
        if mp.norm(g) < tol:
            return [x[i] for i in range(x.rows)]
    raise ArithmeticError(f"refinement did not converge: |grad L| = {mp.nstr(mp.norm(g), 5)}")


@dataclass(frozen=True)
class Classification:
    """Residual, loss and Hessian spectrum of one critical point at ``dps`` digits."""

    residual: mp.mpf
    loss: mp.mpf
    eigenvalues: list
    index: int
    zero_modes: int
    dps: int


def classify(system: PrecisionSystem, point, dps: int = 50, zero: float = 1e-20) -> Classification:
    """The residual |grad L|, the loss and the Hessian's index and zero modes at ``point``
    (decimal strings or mpf), evaluated at ``dps`` digits."""
    with mp.workdps(dps):
        x = [mp.mpf(v) if isinstance(v, str) else +v for v in point]
        res = mp.norm(system.gradient(x))
        E = mp.eigsy(system.hessian(x), eigvals_only=True)
        eig = sorted(E[k] for k in range(len(x)))
        index = sum(1 for e in eig if e < -zero)
        zeros = sum(1 for e in eig if abs(e) <= zero)
        return Classification(res, system.loss(x), eig, index, zeros, dps)


def orbit_dimension(system: PrecisionSystem, syms: list, point, dps: int = 50,
                    rel: float = 1e-12) -> int:
    """The dimension of the symmetry orbit through ``point`` (decimal strings or mpf of the
    active parameters; inert ones 0): the number of singular values of [A_1 theta, ..,
    A_k theta] above ``rel`` times the largest, at ``dps`` digits, ``syms`` the derived
    linear symmetries.  (Relative: where a block converges to 0 only linearly, a degenerate
    critical point, refinement leaves it at ~1e-20, which is 0 for the orbit.)"""
    if not syms:
        return 0
    params = system.model.parameters
    key = tuple(tuple(s.field) for s in syms)
    if key not in system._fields:
        system._fields[key] = [sp.lambdify(params, list(s.field), "mpmath") for s in syms]
    fields = system._fields[key]
    with mp.workdps(dps):
        x = dict(zip(system.active, (mp.mpf(v) if isinstance(v, str) else +v for v in point)))
        values = [x.get(p, mp.mpf(0)) for p in params]
        A = mp.matrix([[mp.mpf(e) for e in f(*values)] for f in fields]).T
        sv = [abs(v) for v in mp.svd_r(A, compute_uv=False)]
        top = max(sv)
        return sum(1 for v in sv if top > 0 and v > rel * top)
