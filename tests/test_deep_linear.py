import numpy as np
import pytest
import sympy as sp

from symicl import symbols
from symicl.errors import ModelError
from symicl.models import build


@pytest.mark.parametrize("sizes", [(1, 1, 1), (2, 2, 2), (3, 2, 2), (2, 3, 1)])
def test_loss_is_half_squared_frobenius_distance(sizes):
    i, h, o = sizes
    m = build("deep-linear", n_in=i, n_hidden=h, n_out=o)
    W1, W2, T = m.blocks["W1"], m.blocks["W2"], symbols.matrix("T", o, i)
    R = T - W2 * W1
    assert sp.expand(m.expected_loss() - sum(e ** 2 for e in R) / 2) == 0
    flow = m.flow()
    G1 = W2.T * R                      # -dL/dW1 = W2^T (T - W2 W1)
    G2 = R * W1.T                      # -dL/dW2 = (T - W2 W1) W1^T
    for mat, G in ((W1, G1), (W2, G2)):
        for p, g in zip(mat, G):
            assert sp.expand(flow[p] - g) == 0


def test_numeric_teacher_and_bad_shapes():
    m = build("deep-linear", n_in=2, n_hidden=1, n_out=1, teacher=np.array([[1.0, 0.5]]))
    assert m.constants == []
    with pytest.raises(ModelError, match="teacher has shape"):
        build("deep-linear", n_in=2, n_hidden=1, n_out=1, teacher=np.eye(2))
    with pytest.raises(ModelError, match="hidden size"):
        build("deep-linear", n_hidden=0)
