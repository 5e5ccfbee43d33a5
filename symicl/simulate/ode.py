"""Integration of a derived flow d theta/dt = F(theta) with generated kernels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ..codegen import kernels as make_kernels
from ..errors import StiffnessError, SymiclError
from ..model import Model

__all__ = ["Trajectory", "integrate", "COMPILED"]

COMPILED = ("numba-dop853",)


@dataclass
class Trajectory:
    """theta(t) of a flow, with the loss and conserved quantities along it."""

    t: np.ndarray
    theta: np.ndarray                       # (len(t), P)
    loss: np.ndarray                        # (len(t),)
    parameters: tuple[str, ...]
    conserved: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        """theta_name(t) for one parameter."""
        return self.theta[:, self.parameters.index(name)]


def integrate(model: Model, theta0: Sequence[float] | Mapping[str, float], t_end: float,
              constants: Mapping[str, float], t_eval: Sequence[float] | None = None,
              method: str = "LSODA", rtol: float = 1e-10, atol: float = 1e-12,
              backend: str = "numba", conserved: Sequence[sp.Expr] = (),
              max_steps: int | None = None, time_limit: float | None = None) -> Trajectory:
    """Integrate the flow of ``model`` from ``theta0`` over [0, t_end].

    Uses the generated flow and Jacobian kernels (stiff-capable methods such
    as LSODA, Radau and BDF get the exact Jacobian).  ``conserved`` are
    expressions in the parameters evaluated along the trajectory.

    ``method="numba-dop853"`` runs scipy's DOP853 compiled with Numba around
    the generated Numba flow (:mod:`symicl.simulate.integrator`): the same
    steps as ``method="DOP853"`` without the Python cost per step.  It stops
    with a SymiclError naming stiffness after ``max_steps`` accepted steps
    (default 200,000) or ``time_limit`` seconds.  The scipy methods take
    ``time_limit`` too (checked at every flow evaluation); ``max_steps``
    belongs to the compiled method only.
    """
    if method in COMPILED:
        if backend != "numba":
            raise SymiclError(f"method {method!r} needs backend='numba', got {backend!r}")
    elif max_steps is not None:
        raise SymiclError(f"max_steps applies to method='numba-dop853'; with method {method!r} "
                          f"bound the run with time_limit")
    if time_limit is not None and not time_limit > 0:
        raise SymiclError(f"time_limit must be positive, got {time_limit}")
    if max_steps is not None and max_steps < 1:
        raise SymiclError(f"max_steps must be at least 1, got {max_steps}")
    k = make_kernels(model, backend)
    if isinstance(theta0, Mapping):
        missing = [p for p in k.parameters if p not in theta0]
        if missing:
            raise SymiclError(f"initial values missing for {', '.join(missing)}")
        theta0 = [theta0[p] for p in k.parameters]
    theta0 = np.asarray(theta0, dtype=float)
    if theta0.shape != (len(k.parameters),):
        raise SymiclError(f"theta0 has shape {theta0.shape}, expected ({len(k.parameters)},)")
    if not np.all(np.isfinite(theta0)):
        raise SymiclError("theta0 must be finite")
    if not t_end > 0:
        raise SymiclError(f"t_end must be positive, got {t_end}")
    c = k.constants_vector(constants)
    if method in COMPILED:
        from .integrator import dop853     # compiled on first use (cached on disk)

        res = dop853(k.module.flow, c, theta0, float(t_end), t_eval=t_eval, rtol=rtol,
                     atol=atol, max_steps=200_000 if max_steps is None else max_steps,
                     time_limit=time_limit)
        sol_t, theta = res.t, res.y
    else:
        sol_t, theta = _solve_scipy(k, c, theta0, float(t_end), t_eval, method, rtol, atol,
                                    time_limit)
    loss = np.array([k.loss(row, c) for row in theta])
    names = tuple(k.parameters)
    values = {}
    if conserved:
        syms = [model.parameter(n) for n in names]
        const_syms = {s: constants[s.name] for s in model.constants}
        for h in conserved:
            f = sp.lambdify([syms], sp.sympify(h).subs(const_syms), "numpy")
            values[str(h)] = np.array([f(row) for row in theta], dtype=float)
    return Trajectory(sol_t, theta, loss, names, values)


class _OverTime(Exception):
    pass


def _solve_scipy(k, c, theta0, t_end, t_eval, method, rtol, atol, time_limit):
    out_f = np.empty_like(theta0)
    out_j = np.empty((theta0.size, theta0.size))
    implicit = method in ("Radau", "BDF", "LSODA")
    jac = (lambda t, y: k.jacobian(y, c, out_j).copy()) if implicit else None
    if time_limit is None:
        fun = lambda t, y: k.flow(y, c, out_f).copy()  # noqa: E731
    else:
        deadline = time.perf_counter() + time_limit
        last = [0.0]

        def fun(t, y):
            if time.perf_counter() > deadline:
                raise _OverTime(t)
            last[0] = t
            return k.flow(y, c, out_f).copy()
    try:
        sol = solve_ivp(fun, (0.0, t_end), theta0, method=method, t_eval=t_eval, rtol=rtol,
                        atol=atol, **({"jac": jac} if implicit else {}))
    except _OverTime as exc:
        hint = ("use method='LSODA' or method='Radau', which use the generated Jacobian"
                if not implicit else "loosen rtol/atol or shorten t_end")
        raise StiffnessError(
            f"integration stopped (method {method!r}) after time_limit = {time_limit} s at "
            f"t = {float(exc.args[0]):.6g} of {t_end:.6g}: the flow looks stiff or the "
            f"tolerances too tight; {hint}") from None
    if not sol.success:
        raise SymiclError(f"integration failed: {sol.message}")
    return sol.t, sol.y.T
