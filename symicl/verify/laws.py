"""Numerical checks of a derived conservation law, for any model."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import sympy as sp

from ..codegen import kernels
from ..model import Model
from ..simulate import integrate
from .checks import Check, bound_check

__all__ = ["flow_drift_checks", "gd_law_check"]


def flow_drift_checks(model: Model, laws: Sequence[tuple[sp.Expr, str]], start, t_end: float,
                      constants: Mapping[str, float], bound: float = 1e-10) -> list[Check]:
    """max_t |h(theta(t)) - h(theta(0))| / scale along one integrated flow, for each law.

    ``laws`` holds (h, label) pairs.  The scale is max(|h(0)|, max_t |theta(t)|^2),
    so a law that starts at 0 is judged against the size of the weights.
    """
    tr = integrate(model, start, t_end, constants, method="DOP853", rtol=1e-12, atol=1e-14,
                   backend="numpy", conserved=[h for h, _ in laws])
    size = float(np.max(np.sum(tr.theta ** 2, axis=1)))
    checks = []
    for h, label in laws:
        values = tr.conserved[str(h)]
        scale = max(abs(values[0]), size)
        checks.append(bound_check(f"relative drift of {label or h} along the flow",
                                  float(np.max(np.abs(values - values[0]))) / scale, bound))
    return checks


def gd_law_check(model: Model, h: sp.Expr, start, constants: Mapping[str, float],
                 eta: float = 0.05, steps: int = 100, bound: float = 1e-9,
                 label: str | None = None) -> Check:
    """Gradient descent on the derived loss: Delta h = eta^2 g^T A g at every step.

    For a quadratic law h = theta^T A theta this is exact (g = grad L); the
    check reports the largest deviation relative to the size of the terms
    that make the change, max(|Delta h|, eta ||A||_2 |theta| |g|): the
    first-order term 2 eta theta^T A g cancels for a conserved h, and its
    rounding (not the tiny change of a law that barely moves) sets the floor.
    """
    k = kernels(model, "numpy")
    c = k.constants_vector(constants)
    syms = [model.parameter(n) for n in k.parameters]
    A = np.array(sp.hessian(h, syms).tolist(), dtype=float) / 2
    theta = np.asarray(start, dtype=float).copy()
    norm_A = float(np.linalg.norm(A, 2))
    worst = largest = terms = 0.0
    for _ in range(steps):
        g = -k.flow(theta, c)
        new = theta - eta * g
        dh = new @ A @ new - theta @ A @ theta
        worst = max(worst, abs(dh - eta ** 2 * g @ A @ g))
        largest = max(largest, abs(dh))
        terms = max(terms, eta * norm_A * float(np.linalg.norm(theta) * np.linalg.norm(g)))
        theta = new
    return bound_check(f"GD per-step change of {label or h} vs eta^2 g^T A g (relative)",
                       worst / max(largest, terms, 1e-300), bound,
                       note=f"{steps} steps at eta = {eta}, largest change {largest:.3g}")
