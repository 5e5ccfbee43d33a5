"""Representations of a two-layer linear network over training, in closed form and from the flow.

With Q = [W1^T; W2] and P = Q Q^T (see :mod:`.riccati`), P's blocks are

    P = [[W1^T W1, W1^T W2^T], [W2 W1, W2 W2^T]]:

the input representational similarity matrix (RSM) W1^T W1, the network
function W2 W1 and the output RSM W2 W2^T.  They and the loss are invariant
under W1 -> R W1, W2 -> W2 R^T (R orthogonal), so a factor Q of P (what
:func:`~.riccati.riccati_solve` returns) gives them as well as the weights do.

The neural tangent kernel on inputs X, Theta(x, x') = J(x) J(x')^T with
J = d f / d theta, is computed from the model's own forward pass:
:func:`ntk_symbolic` differentiates ``model.prediction`` with SymPy;
:func:`ntk` differentiates the matrix-level forward pass W2 W1 x numerically
by central differences, exact (up to rounding) because f is of degree <= 2
in each single parameter (checked by comparing two step sizes).

:func:`closed_form` solves the (lambda-)Riccati equation, :func:`flow_path`
integrates the matrix-level derived flow with scipy (DOP853) at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ..errors import ModelError
from ..model import Model
from .riccati import balance_of, riccati_form, riccati_solve

__all__ = [
    "F_lambda",
    "Representations",
    "closed_form",
    "flow_path",
    "ntk",
    "ntk_symbolic",
    "representations",
]


@dataclass
class Representations:
    """Network function, RSMs, loss (and NTK on X) at times ``t``."""

    t: np.ndarray
    network: np.ndarray               # (T, o, i)   W2 W1
    rsm_in: np.ndarray                # (T, i, i)   W1^T W1
    rsm_out: np.ndarray               # (T, o, o)   W2 W2^T
    loss: np.ndarray                  # (T,)        derived expected loss
    ntk: np.ndarray | None = None     # (T, N, N, o, o)  Theta(x_n, x_m)
    lam: float | None = None

    def singular_values(self) -> np.ndarray:
        """Singular values of the network function W2 W1 at each time, (T, min(o, i))."""
        return np.linalg.svd(self.network, compute_uv=False)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k).tolist() for k in ("t", "network", "rsm_in", "rsm_out", "loss")}
        out["singular_values"] = self.singular_values().tolist()
        if self.ntk is not None:
            out["ntk"] = self.ntk.tolist()
        out["lam"] = self.lam
        return out


# -- derived kernels -----------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _matrix_level():
    """The matrix-level deep-linear model's NumPy kernels: loss, flow and forward pass."""
    from ..matrix_level import build

    m = build("deep-linear")
    loss = m.expected_loss().to_numpy("loss")
    flow = {b: f.to_numpy(f"flow_{b}") for b, f in m.flow().items()}
    x = next(s for s in m.prediction.free_symbols if s.name not in m.parameters)
    forward = sp.lambdify([m.parameters["W1"], m.parameters["W2"], x], m.prediction, "numpy")
    return loss, flow, forward


def expected_loss(T, W1, W2) -> float:
    """The derived L = E (1/2)||T x - W2 W1 x||^2 (matrix-level kernel)."""
    return float(_matrix_level()[0](T=T, W1=W1, W2=W2))


def flow_field(T, W1, W2):
    """(dW1/dt, dW2/dt) of the derived matrix-level flow."""
    flow = _matrix_level()[1]
    return flow["W1"](T=T, W1=W1, W2=W2), flow["W2"](T=T, W1=W1, W2=W2)


# -- NTK -----------------------------------------------------------------------------------------

def ntk_symbolic(model: Model) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Theta(x, x') = J(x) J(x')^T from ``model.prediction`` (SymPy Jacobian).

    Returns (Theta, x, x'), Theta an out x out matrix polynomial in the
    weights and the two inputs (x' the inputs renamed ``xp_k``).
    """
    params = sp.Matrix(model.parameters)
    pred = sp.Matrix(model.prediction)
    xs = sorted(pred.free_symbols - set(model.parameters) - set(model.constants),
                key=lambda s: s.name)
    if not xs:
        raise ModelError(f"the prediction of {model.name} has no input variables")
    xp = [sp.Symbol(f"xp_{s.name.split('_', 1)[-1]}", real=True) for s in xs]
    J = pred.jacobian(params)
    Jp = J.xreplace(dict(zip(xs, xp)))
    theta = (J * Jp.T).applyfunc(sp.expand)
    return theta, sp.Matrix(xs), sp.Matrix(xp)


def _jacobian(W1, W2, X, step: float) -> np.ndarray:
    """d f(x_n) / d theta by central differences: (N, o, P), theta = (vec W1, vec W2)."""
    forward = _matrix_level()[2]
    cols = []
    for W, other in ((W1, 1), (W2, 2)):
        for idx in np.ndindex(W.shape):
            E = np.zeros_like(W)
            E[idx] = step
            if other == 1:
                d = forward(W1 + E, W2, X) - forward(W1 - E, W2, X)
            else:
                d = forward(W1, W2 + E, X) - forward(W1, W2 - E, X)
            cols.append(np.asarray(d) / (2 * step))
    return np.stack(cols, axis=-1).transpose(1, 0, 2)     # (N, o, P)


def ntk(W1, W2, X) -> np.ndarray:
    """Theta(x_n, x_m) = J(x_n) J(x_m)^T on the columns of X (in x N): (N, N, o, o)."""
    W1, W2, X = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (W1, W2, X))
    if W1.shape[0] != W2.shape[1] or X.shape[0] != W1.shape[1]:
        raise ModelError(f"W1 {W1.shape}, W2 {W2.shape} and inputs X {X.shape} (in x N) "
                         "do not fit")
    scale = max(1.0, float(np.abs(W1).max()), float(np.abs(W2).max()))
    J = _jacobian(W1, W2, X, scale)
    J2 = _jacobian(W1, W2, X, scale / 2)
    if np.abs(J - J2).max() > 1e-10 * max(1.0, np.abs(J).max()):
        raise ModelError("the forward pass is not of degree <= 2 in each parameter: central "
                         "differences are not exact")
    return np.einsum("nap,mbp->nmab", J, J)


# -- closed form and flow ------------------------------------------------------------------------

def _check_sizes(T, W1, W2):
    T = np.atleast_2d(np.asarray(T, dtype=float))
    W1, W2 = np.atleast_2d(np.asarray(W1, dtype=float)), np.atleast_2d(np.asarray(W2, dtype=float))
    o, i = T.shape
    if W1.shape[1] != i or W2.shape[0] != o or W1.shape[0] != W2.shape[1]:
        raise ModelError(f"W1 {W1.shape} (hidden x in) and W2 {W2.shape} (out x hidden) do not "
                         f"fit the teacher {T.shape} (out x in)")
    return T, W1, W2


@lru_cache(maxsize=1)
def _lambda_pattern() -> tuple[float, float]:
    """(g_in, g_out): F_lambda = [[g_in lambda I, T^T], [T, g_out lambda I]], read off the
    Riccati form derived at 2-1-2 (checked there to have exactly this block pattern)."""
    from ..models import build

    form = riccati_form(build("deep-linear", n_in=2, n_hidden=1, n_out=2))
    G = form.G / form.lam
    g_in, g_out = G[0, 0], G[2, 2]
    T = sp.Matrix(2, 2, lambda r, c: sp.Symbol(f"T_{r + 1}_{c + 1}", real=True))
    want = sp.Matrix(sp.BlockMatrix([[g_in * form.lam * sp.eye(2), T.T],
                                     [T, g_out * form.lam * sp.eye(2)]]))
    if sp.expand(form.F_lambda - want) != sp.zeros(4, 4):
        raise ModelError("internal: F_lambda does not have the block pattern "
                         "[[g lambda I, T^T], [T, g' lambda I]]")
    return float(g_in), float(g_out)


def F_lambda(T, lam: float = 0.0, *, check_with=None) -> np.ndarray:
    """F_lambda for a numeric teacher at any size, from the derived block pattern.

    ``check_with=(W1, W2)``: also certify at that (lambda-balanced) point that
    the derived matrix-level flow equals F_lambda Q - Q Q^T Q / 2 (relative 1e-10).
    """
    T = np.atleast_2d(np.asarray(T, dtype=float))
    o, i = T.shape
    g_in, g_out = _lambda_pattern()
    F = np.block([[g_in * lam * np.eye(i), T.T], [T, g_out * lam * np.eye(o)]])
    if check_with is not None:
        W1, W2 = check_with
        d1, d2 = flow_field(T, W1, W2)
        Q = np.vstack([W1.T, W2])
        want = F @ Q - Q @ Q.T @ Q / 2
        got = np.vstack([d1.T, d2])
        if np.abs(got - want).max() > 1e-10 * max(1.0, np.abs(want).max()):
            raise ModelError("the derived flow is not F_lambda Q - Q Q^T Q / 2 at these weights")
    return F


def representations(t, factors, n_in: int, T, X=None, lam=None) -> Representations:
    """Representations from factors Q(t) = [W1^T; W2] (or anything with Q Q^T = P)."""
    T = np.atleast_2d(np.asarray(T, dtype=float))
    Qs = [np.array(Q.tolist(), dtype=float) if not isinstance(Q, np.ndarray) else Q
          for Q in factors]
    W1s = [Q[:n_in].T for Q in Qs]
    W2s = [Q[n_in:] for Q in Qs]
    net = np.stack([b @ a for a, b in zip(W1s, W2s)])
    rin = np.stack([a.T @ a for a in W1s])
    rout = np.stack([b @ b.T for b in W2s])
    loss = np.array([expected_loss(T, a, b) for a, b in zip(W1s, W2s)])
    K = None if X is None else np.stack([ntk(a, b, X) for a, b in zip(W1s, W2s)])
    return Representations(np.asarray(t, dtype=float), net, rin, rout, loss, K, lam)


def closed_form(T, W1, W2, times, *, X=None, tol: float | None = None) -> Representations:
    """Representations along the Riccati closed form from (lambda-)balanced (W1, W2).

    lambda is measured (:func:`~.riccati.balance_of`, NotBalancedError off the
    balanced set), F_lambda built from the derived pattern and certified at the
    start against the derived flow, P(t) by :func:`~.riccati.riccati_solve`.
    """
    T, W1, W2 = _check_sizes(T, W1, W2)
    lam = balance_of(W1, W2, tol=tol)
    F = F_lambda(T, lam, check_with=(W1, W2))
    Qs = riccati_solve(F, W1, W2, times, lam=lam, tol=tol)
    return representations(times, Qs, T.shape[1], T, X, lam)


def flow_path(T, W1, W2, times, *, X=None, rtol: float = 1e-12, atol: float = 1e-14,
              method: str = "DOP853") -> Representations:
    """Representations along the integrated matrix-level derived flow (scipy ``solve_ivp``).

    Needs no balance: the reference for the closed form, and the answer off
    the balanced set.
    """
    T, W1, W2 = _check_sizes(T, W1, W2)
    times = np.asarray(times, dtype=float)
    n1 = W1.size

    def rhs(_, y):
        a, b = y[:n1].reshape(W1.shape), y[n1:].reshape(W2.shape)
        d1, d2 = flow_field(T, a, b)
        return np.concatenate([np.ravel(d1), np.ravel(d2)])

    y0 = np.concatenate([W1.ravel(), W2.ravel()])
    if times.size and times[0] == 0 and times.size == 1:
        ys = y0[:, None]
    else:
        sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, method=method, t_eval=times,
                        rtol=rtol, atol=atol)
        if not sol.success:
            raise ModelError(f"integration failed: {sol.message}")
        ys = sol.y
    factors = [np.vstack([y[:n1].reshape(W1.shape).T, y[n1:].reshape(W2.shape)]) for y in ys.T]
    try:
        lam = balance_of(W1, W2)
    except ModelError:
        lam = None
    return representations(times, factors, T.shape[1], T, X, lam)
