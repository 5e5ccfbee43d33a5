"""The one-layer linear transformer trained on in-context regression.

Tokens z_n = (x_n; y_n), n = 1..N, and the query z_q = (x_q; 0) form
Z = [z_1 .. z_N z_q].  One layer, one head, no softmax:

    f(Z) = Z + W^P (Z Z^T / N) W^Q Z,

and the prediction is the y-rows of the last column of f(Z).  With N
symbolic the moment matrix is written exactly as

    Z Z^T / N = mean_n(z_n z_n^T) + z_q z_q^T / N,

so the query token sits inside the x-x block S_xx, as in the model.

Inputs x ~ N(0, S), S = diag(s_1..s_d): we work in the eigenbasis of the
input covariance, which loses nothing since the tasks share it.  Tasks:

* ``aligned``: y = Lambda x, Lambda = diag(lambda_a), lambda_a iid N(0,1)
  (vector-valued, d outputs);
* ``isotropic``: y = w^T x, w ~ N(0, I_d) (scalar output).

Reductions: ``none`` (all eight blocks of W^P and W^Q), ``null-zero``
(P21 = Q21 = 0 and the inert blocks P11, P12, Q12, Q22 dropped: only
p2 = P22 and q1 = Q11 remain), ``aligned`` (p2 = diag(p), q1 = diag(q)).
"""

from __future__ import annotations

from typing import Sequence

import sympy as sp

from .. import symbols
from ..context import Context
from ..errors import ModelError
from ..expectation import Distribution
from ..gaussian import Gaussian
from ..model import Model

__all__ = ["linear_transformer", "per_mode_model", "TASKS", "REDUCTIONS"]

TASKS = ("aligned", "isotropic")
REDUCTIONS = ("none", "null-zero", "aligned")


def _spectrum(dim: int, spectrum):
    if spectrum is None:
        return symbols.spectrum(dim)
    values = []
    for v in spectrum:
        if isinstance(v, float) and not abs(v) < float("inf"):  # inf or nan
            raise ModelError(f"input eigenvalues must be finite numbers > 0, got {v}")
        try:
            value = sp.nsimplify(v, rational=True) if isinstance(v, float) else sp.sympify(v)
        except (sp.SympifyError, TypeError, ValueError):
            raise ModelError(f"input eigenvalue {v!r} is not a number or a SymPy expression") \
                from None
        values.append(value)
    if len(values) != dim:
        raise ModelError(f"spectrum has {len(values)} eigenvalues for dimension {dim}")
    for v in values:
        if not isinstance(v, sp.Expr) or v.has(sp.nan, sp.oo, -sp.oo, sp.zoo):
            raise ModelError(f"input eigenvalues must be finite numbers > 0, got {v}")
        if v.is_number and not v.is_positive:
            raise ModelError(f"input eigenvalues must be positive, got {v}")
        if v.is_positive is not True:
            raise ModelError(f"input eigenvalue {v} is not known to be positive; use numbers > 0 "
                             f"or symbols declared positive, e.g. sympy.Symbol('s', positive=True)")
    return values


def _weights(prefix: str, dim: int, out: int, reduction: str, diag_name: str, lower: bool):
    """W^P (lower=True: the y-rows act) or W^Q, with the reduction applied.

    Returns the full (d+out) x (d+out) matrix and its named blocks.
    """
    size = dim + out
    full = symbols.matrix(prefix, size, size)
    letter = "P" if prefix == "WP" else "Q"
    blocks = {
        f"{letter}11": full[:dim, :dim], f"{letter}12": full[:dim, dim:],
        f"{letter}21": full[dim:, :dim], f"{letter}22": full[dim:, dim:],
    }
    if reduction == "none":
        return full, blocks
    active = f"{letter}22" if lower else f"{letter}11"
    n_active = out if lower else dim
    if reduction == "aligned":
        active_block = sp.diag(*symbols.vector(diag_name, n_active))
    else:
        active_block = blocks[active]
    mat = sp.zeros(size, size)
    if lower:
        mat[dim:, dim:] = active_block
    else:
        mat[:dim, :dim] = active_block
    return mat, {active: active_block}


def linear_transformer(dim: int = 1, reduction: str = "none", tasks: str = "aligned",
                       N=None, spectrum: Sequence | None = None) -> Model:
    """The linear transformer on in-context regression, as a :class:`Model`.

    ``dim`` is the input dimension d; ``N`` the context length (symbolic by
    default); ``spectrum`` the input eigenvalues (symbolic s_1..s_d by
    default).  Parameter names: ``WP_i_j``, ``WQ_i_j`` (1-based entries of the
    full matrices, x-part first) or ``p_a``, ``q_a`` for the aligned reduction.
    """
    if not isinstance(dim, int) or dim < 1:
        raise ModelError(f"dimension must be a positive integer, got {dim!r}")
    if tasks not in TASKS:
        raise ModelError(f"unknown task distribution {tasks!r}; choose one of {', '.join(TASKS)}")
    if reduction not in REDUCTIONS:
        raise ModelError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    s = _spectrum(dim, spectrum)
    out = dim if tasks == "aligned" else 1

    u = symbols.vector("u", dim)
    xq = symbols.vector("x", dim)
    if tasks == "aligned":
        lam = symbols.vector("lambda", dim)
        task = Gaussian(lam, name="lambda")
        label = lambda x: sp.diag(*lam) * sp.Matrix(x)  # noqa: E731
    else:
        w = symbols.vector("w", dim)
        task = Gaussian(w, name="w")
        label = lambda x: sp.Matrix(w).T * sp.Matrix(x)  # noqa: E731
    context = Context(Gaussian(u, s, name="u"), N=N)
    query = Gaussian(xq, s, name="x")

    z = sp.Matrix.vstack(sp.Matrix(u), label(u))
    zq = sp.Matrix.vstack(sp.Matrix(xq), sp.zeros(out, 1))
    moments = context.mean(z * z.T) + zq * zq.T / context.N

    WP, p_blocks = _weights("WP", dim, out, reduction, "p", lower=True)
    WQ, q_blocks = _weights("WQ", dim, out, reduction, "q", lower=False)
    prediction = WP[dim:, :] * (moments * (WQ * zq))
    target = label(xq)
    order = ["P11", "P12", "P21", "P22", "Q11", "Q12", "Q21", "Q22"]
    blocks = {k: v for k, v in sorted({**p_blocks, **q_blocks}.items(),
                                       key=lambda kv: order.index(kv[0]))}
    options = {"dim": dim, "reduction": reduction, "tasks": tasks,
               "N": "N" if N is None else str(N),
               "spectrum": "symbolic" if spectrum is None else [str(v) for v in s]}
    return Model("linear-transformer", blocks, Distribution(task, query, context),
                 prediction=prediction, target=target, options=options)


def per_mode_model(dim: int = 1, N=None, spectrum: Sequence | None = None) -> Model:
    """The per-mode approximation of the aligned transformer, derived.

    With scalar tasks y = w^T x the aligned reduction's exact loss depends on
    the gains a_a = p q_a mode by mode.  Writing a_a = p_a q_a in it gives the
    per-mode loss of the vector model (the ICL paper's approximation),

        L_pm(p, q) = L_scalar(p = 1, q_a = p_a q_a),

    a model defined by its loss, with the parameters p_a, q_a of the aligned
    reduction.  It differs from the exact aligned loss at order 1/N.
    """
    scalar = linear_transformer(dim, reduction="aligned", tasks="isotropic", N=N, spectrum=spectrum)
    p, q = symbols.vector("p", dim), symbols.vector("q", dim)
    loss = scalar.expected_loss().xreplace({scalar.parameter("p_1"): 1})
    loss = loss.xreplace({qa: pa * qa for pa, qa in zip(p, q)})
    options = {**scalar.options, "tasks": "aligned", "reduction": "per-mode"}
    return Model("linear-transformer-per-mode", {"P22": sp.diag(*p), "Q11": sp.diag(*q)},
                 loss=loss, options=options)
