"""Gradients of matrix-level forms, by the product rule on their networks.

For a scalar form L and a parameter matrix P, each term is turned back into
its index network (Diag(W) becomes a hub), and for every occurrence of P the
occurrence is removed, leaving its row index a and column index b open:

    dL/dP_ab = sum_occurrences (network with P_{a b} taken out).

The two open indices are closed with a marker X placed as X_{ba}, so that
sum_ab X_ba G_ab = tr(X G); the network is converted to traces, and the
trace holding X is cut open at X: tr(X V) gives G = V.  Where X sits inside
a Diag, tr(Diag(U) V) = tr(U Diag(V)) brings it out first.  A 1x1 parameter
is a scalar factor and is differentiated as one.
"""

from __future__ import annotations

from sympy.matrices.expressions import MatrixSymbol

from ..errors import ModelError
from .convert import to_traces
from .forms import MatrixForm, ScalarForm
from .network import Network, Tensor, network_of_traces
from .words import Diag, Sym, transpose

__all__ = ["gradient", "cut_open"]


def _contains(word, symbol) -> bool:
    for a in word:
        if isinstance(a, Sym) and a.symbol == symbol:
            return True
        if isinstance(a, Diag) and _contains(a.word, symbol):
            return True
    return False


def cut_open(word: tuple, marker: MatrixSymbol) -> tuple:
    """V with tr(word) = tr(marker V), for a word holding the marker exactly once."""
    word = tuple(word)
    for _ in range(10_000):
        for i, a in enumerate(word):
            if isinstance(a, Sym) and a.symbol == marker:
                if a.transposed:  # tr(W) = tr(W^T) puts the marker upright
                    word = transpose(word)
                    i = len(word) - 1 - i
                return word[i + 1:] + word[:i]
        i = next(i for i, a in enumerate(word) if isinstance(a, Diag) and _contains(a.word, marker))
        rest = word[i + 1:] + word[:i]
        word = word[i].word + ((Diag(rest),) if rest else ())  # tr(Diag(U) V) = tr(U Diag(V))
    raise RuntimeError("cut_open did not terminate")  # pragma: no cover


def _symmetric_atoms(words) -> set:
    out = set()
    for w in words:
        for a in w:
            if isinstance(a, Sym) and a.symmetric:
                out.add(a.name)
            elif isinstance(a, Diag):
                out |= _symmetric_atoms([a.word])
    return out


def _term_text(term) -> str:
    from .words import render_word
    return " ".join(f"tr({render_word(w)})" for w in term.traces) or "a scalar term"


def gradient(form: ScalarForm, parameter: MatrixSymbol, symmetric=()) -> MatrixForm:
    """dL/dP as a :class:`MatrixForm` of the parameter's shape.

    Symbols marked symmetric in the form stay symmetric; ``symmetric`` may
    name more (MatrixSymbols or names).
    """
    if not isinstance(form, ScalarForm):
        raise ModelError(f"gradient needs a ScalarForm, got {type(form).__name__}")
    if not isinstance(parameter, MatrixSymbol):
        raise ModelError(f"the parameter must be a MatrixSymbol, got {parameter!r}")
    symmetric = frozenset(s.name if isinstance(s, MatrixSymbol) else str(s) for s in symmetric)
    symmetric |= _symmetric_atoms(w for t in form.terms for w in t.traces)
    if parameter.name in symmetric:
        raise ModelError(f"parameter {parameter.name} is declared symmetric; the gradient "
                         "is taken over independent entries only")
    rows, cols = parameter.shape
    marker = MatrixSymbol("_X_" + parameter.name, cols, rows)
    items = []
    for term in form.terms:
        if parameter.shape == (1, 1):
            k = sum(1 for s in term.scalars if s == parameter)
            if k:
                rest = list(term.scalars)
                rest.remove(parameter)
                items.append((term.coeff * k, rest, term.traces, ()))
            continue
        net = network_of_traces(term.traces, extra=term.scalars)
        for i, t in enumerate(net.tensors):
            if t.symbol != parameter:
                continue
            tensors = net.tensors[:i] + (Tensor(marker, t.col, t.row),) + net.tensors[i + 1:]
            factor, scalars, traces = to_traces(Network(tensors, net.dims), symmetric,
                                                f"d/d{parameter.name} of {_term_text(term)}")
            hit = [w for w in traces if _contains(w, marker)]
            others = [w for w in traces if not _contains(w, marker)]
            if len(hit) != 1:  # pragma: no cover - the marker is one tensor of one closed path
                raise RuntimeError("marker lost while cutting the network open")
            items.append((term.coeff * factor, scalars, others, cut_open(hit[0], marker)))
    return MatrixForm.from_raw(items, parameter.shape, form.latex_names)
