"""Three models that are not built-ins, written through symicl's public API only.

Each FUNCTION(**options) returns a symicl Model; the tests run them through
``symicl derive|verify|sweep tests/user_models/models.py:FUNCTION``.
"""

import sympy as sp

from symicl.context import Context
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.symbols import matrix, vector


def diagonal_network(correlation=0.5):
    """f(x) = sum_i u_i v_i x_i with correlated inputs, teacher y = x_1 - x_2 / 2."""
    x, u, v = vector("x", 2), vector("u", 2), vector("v", 2)
    c = sp.nsimplify(correlation)
    data = Distribution(Gaussian(x, [[1, c], [c, 1]]))
    prediction = sum(ui * vi * xi for ui, vi, xi in zip(u, v, x))
    target = x[0] - x[1] / 2
    return Model("diagonal-network", {"u": sp.Matrix(u), "v": sp.Matrix(v)}, data,
                 prediction=prediction, target=target)


def three_layer(width=2):
    """f(x) = W3 W2 W1 x, whitened inputs, a fixed teacher T = [[2, 1/2], [0, 1]]."""
    x = sp.Matrix(vector("x", 2))
    W1, W2, W3 = matrix("A", width, 2), matrix("B", width, width), matrix("C", 2, width)
    T = sp.Matrix([[2, sp.Rational(1, 2)], [0, 1]])
    return Model("three-layer", {"A": W1, "B": W2, "C": W3},
                 Distribution(Gaussian(list(x), name="x")),
                 prediction=W3 * (W2 * (W1 * x)), target=T * x)


def separate_kqv():
    """Linear attention with separate key, query and value matrices on in-context regression
    (d = 1): yhat = W_V mean(z z^T) W_K^T W_Q z_q, z = (x, w x), w ~ N(0, 1), N symbolic."""
    u, xq, w = sp.Symbol("u_1", real=True), sp.Symbol("x_1", real=True), sp.Symbol("w_1", real=True)
    context = Context(Gaussian([u], name="u"))
    z = sp.Matrix([u, w * u])
    zq = sp.Matrix([xq, 0])
    K, Q, V = matrix("K", 2, 2), matrix("Q", 2, 2), matrix("V", 1, 2)
    moments = context.mean(z * z.T)
    prediction = V * moments * K.T * Q * zq
    data = Distribution(Gaussian([w], name="w"), Gaussian([xq], name="x"), context)
    return Model("separate-kqv", {"K": K, "Q": Q, "V": V}, data,
                 prediction=prediction, target=sp.Matrix([w * xq]))
