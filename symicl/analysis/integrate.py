"""Reference integrators of a derived polynomial flow (the checks of closed forms).

:func:`integrate_ivp` is scipy's ``solve_ivp`` (double precision, DOP853).
:func:`integrate_taylor` integrates at high precision by the Taylor series.

For a polynomial vector field  dy/dt = F(y)  the Taylor coefficients of
y(t0 + h s) = sum_k Y_k s^k  follow exactly from the recursion

    Y_{k+1} = h [F(y)]_k / (k + 1),

where [F(y)]_k is the k-th coefficient of F along the series; a monomial's
coefficients are Cauchy products of its factors' (each monomial is built
from a smaller one times one variable, so one convolution per monomial and
order).  Arithmetic is fixed-point on Python integers with ``dps`` decimal
digits plus guard bits, so a step costs no floating-point rounding beyond
2^-bits; the step h is shrunk until the last two coefficients are below
the tolerance 10^-(dps+5) (the series' tail), and the next step is chosen
from the tail's size, which scales like h^order.  This is the reference
integrator the closed forms are checked against (agreement to 1e-30 at
50 digits); it is not fast and is meant for a handful of parameters.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import mpmath
import sympy as sp

from ..errors import ModelError

__all__ = ["integrate_taylor", "integrate_ivp"]


def _fixed(value, bits: int) -> int:
    """round(value * 2^bits) for a SymPy number (exact for rationals and floats)."""
    value = sp.Rational(value) if isinstance(value, str) else sp.sympify(value)
    if value.is_Rational or value.is_Float:
        return int(sp.floor(sp.Rational(value) * sp.Integer(2) ** bits + sp.Rational(1, 2)))
    if not value.is_number:
        raise ModelError(f"{value} is not a number")
    with mpmath.workprec(bits + 64):
        return int(mpmath.nint(mpmath.mpf(sp.N(value, bits // 3 + 30)) * mpmath.mpf(2) ** bits))


class _PolyField:
    """F as fixed-point integer monomial tables, with a product tree."""

    def __init__(self, exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], bits: int):
        self.n = len(variables)
        self.bits = bits
        self.monomials: list[tuple[int, ...]] = [(0,) * self.n]   # index 0: the constant 1
        self.index = {(0,) * self.n: 0}
        self.parent: list[tuple[int, int]] = [(-1, -1)]         # (monomial index, variable)
        self.terms: list[list[tuple[int, int]]] = []             # per component: (monomial, coeff)
        for e in exprs:
            poly = sp.Poly(sp.expand(e), *variables)
            if poly.free_symbols - set(variables):
                stray = ", ".join(sorted(s.name for s in poly.free_symbols - set(variables)))
                raise ModelError(f"the flow still holds symbols {stray}: give them values")
            row = []
            for exps, c in poly.terms():
                row.append((self._add(tuple(exps)), _fixed(c, bits)))
            self.terms.append(row)

    def _add(self, exps: tuple[int, ...]) -> int:
        if exps in self.index:
            return self.index[exps]
        var = next(i for i, e in enumerate(exps) if e)
        smaller = tuple(e - (i == var) for i, e in enumerate(exps))
        parent = self._add(smaller)
        self.index[exps] = len(self.monomials)
        self.monomials.append(exps)
        self.parent.append((parent, var))
        return self.index[exps]

    def series(self, y: list[int], h: int, order: int) -> list[list[int]]:
        """Coefficients Y_0..Y_order of y(t0 + h s) in s (fixed point)."""
        B = self.bits
        Y = [[v] for v in y]
        M = [[1 << B]] + [Y[var] if par == 0 else [] for par, var in self.parent[1:]]
        products = [m for m in range(1, len(self.monomials)) if self.parent[m][0] != 0]
        for k in range(order):
            if k > 0:
                M[0].append(0)
            for m in products:
                par, var = self.parent[m]
                A, C = M[par], Y[var]
                M[m].append(sum(A[j] * C[k - j] for j in range(k + 1)) >> B)
            for v, row in enumerate(self.terms):
                f = sum(c * M[m][k] for m, c in row) >> B
                Y[v].append(((h * f) >> B) // (k + 1))
        return Y


def integrate_taylor(flow: Mapping[sp.Symbol, sp.Expr], start: Mapping[sp.Symbol, object],
                     times: Sequence, *, constants: Mapping | None = None, dps: int = 50,
                     order: int | None = None) -> list[dict[sp.Symbol, mpmath.mpf]]:
    """Integrate  d theta/dt = flow(theta)  from ``start`` at t = 0 to each of ``times``.

    ``flow`` maps each variable to a polynomial right-hand side (e.g.
    ``model.flow()``); ``constants`` gives values to its other symbols.
    Start values may be SymPy numbers (exact), strings or mpf.  Returns one
    dict variable -> mpf (at ``dps`` digits) per time, in order.
    """
    variables = list(flow)
    missing = [v.name for v in variables if v not in start]
    if missing:
        raise ModelError(f"no start value for {', '.join(missing)}")
    exprs = [sp.sympify(flow[v]) for v in variables]
    # constants by symbol or by name (a name finds the flow's symbol, whatever its assumptions)
    by_name = {s.name: s for e in exprs for s in e.free_symbols}
    subs = {(by_name.get(k, sp.Symbol(k)) if isinstance(k, str) else k): sp.sympify(v)
            for k, v in (constants or {}).items()}
    exprs = [e.xreplace(subs) for e in exprs]
    bits = int(dps * 3.33) + 40
    field = _PolyField(exprs, variables, bits)
    order = order or int(1.2 * dps) + 5
    tol = 1 << max(bits - int((dps + 5) * 3.33), 1)   # 10^-(dps+5) in fixed point

    y = [_fixed(start[v], bits) for v in variables]
    with mpmath.workprec(bits):
        checkpoints = [mpmath.mpf(_fixed(t, bits)) / mpmath.mpf(2) ** bits for t in times]
        if any(b < a for a, b in zip(checkpoints, checkpoints[1:])) or (
                checkpoints and checkpoints[0] < 0):
            raise ModelError("times must be non-negative and increasing")
        out = []
        t = mpmath.mpf(0)
        h = mpmath.mpf("0.25")
        for target in checkpoints:
            while t < target:
                step = min(h, target - t)
                while True:
                    Y = field.series(y, int(mpmath.nint(step * 2 ** bits)), order)
                    tail = max(max(abs(c[-1]), abs(c[-2])) for c in Y)
                    # the tail scales like step^order: aim at tol / 2^8
                    factor = 2 ** ((math.log2(tol) - 8 - math.log2(max(tail, 1))) / order)
                    if tail <= tol:
                        break
                    step = step * min(factor, 0.5)
                h = step * min(factor, 2)
                y = [sum(c) for c in Y]
                t += step
            out.append({v: mpmath.mpf(val) / mpmath.mpf(2) ** bits for v, val in zip(variables, y)})
    return out


def integrate_ivp(flow: Mapping[sp.Symbol, sp.Expr], start: Mapping[sp.Symbol, object],
                  times: Sequence, *, constants: Mapping | None = None, rtol: float = 1e-12,
                  atol: float = 1e-14, method: str = "DOP853") -> list[dict[sp.Symbol, float]]:
    """Double-precision reference: scipy ``solve_ivp`` on the lambdified flow."""
    from scipy.integrate import solve_ivp

    variables = list(flow)
    missing = [v.name for v in variables if v not in start]
    if missing:
        raise ModelError(f"no start value for {', '.join(missing)}")
    exprs = [sp.sympify(flow[v]) for v in variables]
    # constants by symbol or by name (a name finds the flow's symbol, whatever its assumptions)
    by_name = {s.name: s for e in exprs for s in e.free_symbols}
    subs = {(by_name.get(k, sp.Symbol(k)) if isinstance(k, str) else k): sp.sympify(v)
            for k, v in (constants or {}).items()}
    exprs = [e.xreplace(subs) for e in exprs]
    stray = set().union(*(e.free_symbols for e in exprs)) - set(variables)
    if stray:
        names = ", ".join(sorted(s.name for s in stray))
        raise ModelError(f"the flow still holds symbols {names}: give them values")
    f = sp.lambdify([variables], exprs, modules="numpy", cse=True)
    y0 = [float(sp.N(sp.sympify(start[v]))) for v in variables]
    times = [float(t) for t in times]
    sol = solve_ivp(lambda t, y: f(y), (0.0, max(times) if times else 0.0), y0, method=method,
                    t_eval=times, rtol=rtol, atol=atol)
    if not sol.success:
        raise ModelError(f"solve_ivp failed: {sol.message}")
    return [{v: float(sol.y[j, k]) for j, v in enumerate(variables)} for k in range(len(times))]
