"""Integration of a derived flow d theta/dt = F(theta) with generated kernels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ..codegen import kernels as make_kernels
from ..errors import SymiclError
from ..model import Model

__all__ = ["Trajectory", "integrate"]


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
              backend: str = "numba", conserved: Sequence[sp.Expr] = ()) -> Trajectory:
    """Integrate the flow of ``model`` from ``theta0`` over [0, t_end].

    Uses the generated flow and Jacobian kernels (stiff-capable methods such
    as LSODA, Radau and BDF get the exact Jacobian).  ``conserved`` are
    expressions in the parameters evaluated along the trajectory.
    """
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
    out_f = np.empty_like(theta0)
    out_j = np.empty((theta0.size, theta0.size))
    implicit = method in ("Radau", "BDF", "LSODA")
    jac = (lambda t, y: k.jacobian(y, c, out_j).copy()) if implicit else None
    sol = solve_ivp(lambda t, y: k.flow(y, c, out_f).copy(), (0.0, float(t_end)), theta0,
                    method=method, t_eval=t_eval, rtol=rtol, atol=atol,
                    **({"jac": jac} if implicit else {}))
    if not sol.success:
        raise SymiclError(f"integration failed: {sol.message}")
    theta = sol.y.T
    loss = np.array([k.loss(row, c) for row in theta])
    names = tuple(k.parameters)
    values = {}
    if conserved:
        syms = [model.parameter(n) for n in names]
        const_syms = {s: constants[s.name] for s in model.constants}
        for h in conserved:
            f = sp.lambdify([syms], sp.sympify(h).subs(const_syms), "numpy")
            values[str(h)] = np.array([f(row) for row in theta], dtype=float)
    return Trajectory(sol.t, theta, loss, names, values)
