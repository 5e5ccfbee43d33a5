"""Two-layer linear networks: f(x) = W2 W1 x.

Whitened Gaussian inputs x ~ N(0, I), a teacher y = T x, and the squared
error (1/2) ||y - W2 W1 x||^2.  W1 is hidden x in, W2 is out x hidden; the
teacher is symbolic (``T_i_j``) unless given as a numeric matrix.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import symbols
from ..errors import ModelError
from ..expectation import Distribution
from ..gaussian import Gaussian
from ..model import Model

__all__ = ["deep_linear"]


def _teacher(n_in: int, n_out: int, teacher) -> sp.Matrix:
    if teacher is None:
        return symbols.matrix("T", n_out, n_in)
    mat = sp.Matrix(np.asarray(teacher, dtype=object).tolist()) if not isinstance(
        teacher, sp.MatrixBase) else sp.Matrix(teacher)
    if mat.shape != (n_out, n_in):
        raise ModelError(f"teacher has shape {mat.shape[0]}x{mat.shape[1]}, "
                         f"expected out x in = {n_out}x{n_in}")
    return mat


def deep_linear(n_in: int = 2, n_hidden: int = 2, n_out: int = 2, teacher=None) -> Model:
    """The two-layer linear network as a :class:`Model` (blocks ``W1``, ``W2``)."""
    for name, n in (("input", n_in), ("hidden", n_hidden), ("output", n_out)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ModelError(f"{name} size must be a positive integer, got {n!r}")
    x = symbols.vector("x", n_in)
    W1 = symbols.matrix("W1", n_hidden, n_in)
    W2 = symbols.matrix("W2", n_out, n_hidden)
    T = _teacher(n_in, n_out, teacher)
    xv = sp.Matrix(x)
    options = {"in": int(n_in), "hidden": int(n_hidden), "out": int(n_out),
               "teacher": "symbolic" if teacher is None else [[str(e) for e in row]
                                                              for row in T.tolist()]}
    return Model("deep-linear", {"W1": W1, "W2": W2}, Distribution(Gaussian(x, name="x")),
                 prediction=W2 * (W1 * xv), target=T * xv, options=options)
