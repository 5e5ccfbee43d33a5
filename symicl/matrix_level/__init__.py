"""Matrix-level (dimension-free) expectations, losses and gradients.

Write a forward pass with SymPy matrix symbols, register the random ones by
kind, and symicl derives exact expectations as sums of

    coefficient(N) * prod tr(word)  [* word],

words being products of matrix symbols, transposes and Diag(word):

    >>> from symicl.matrix_level import build
    >>> m = build("deep-linear")
    >>> print(m.expected_loss())
    1/2 * tr(T T^T) - tr(T W1^T W2^T) + 1/2 * tr(W1 W1^T W2^T W2)

Pipeline: expand into words -> index networks -> Wick pairings and sample
coincidences -> back to traces with Diag -> canonical, merged forms.
"""

from .calculus import gradient
from .expand import expand_words
from .expect import expectation, expected_matrix
from .forms import MatrixForm, ScalarForm, Term
from .model import MatrixModel
from .models import build, deep_linear, linear_transformer
from .randoms import DiagonalGaussian, EmpiricalMoment, GaussianMatrix, GaussianVector, Random
from .words import Diag, Sym, canon_trace, canon_word

__all__ = [
    "expectation", "expected_matrix", "gradient", "expand_words",
    "ScalarForm", "MatrixForm", "Term",
    "MatrixModel", "build", "linear_transformer", "deep_linear",
    "Random", "GaussianVector", "EmpiricalMoment", "DiagonalGaussian", "GaussianMatrix",
    "Sym", "Diag", "canon_trace", "canon_word",
]
