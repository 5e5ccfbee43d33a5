"""Index networks: a scalar term written with explicit index labels.

A term  c * A_1 A_2 .. A_k  (a 1x1 product, or the trace of a square one)
becomes a network: one :class:`Tensor` per matrix occurrence, whose row and
column slots carry index *labels*; a label shared by two slots is a summed
index, one shared by more slots is a *hub* (e.g. sum_i A_ii B_ii), and one
with no slot left stands for a free sum, i.e. a factor equal to its
dimension.  Dimensions equal to 1 carry no label, so a 1x1 symbol is a plain
scalar factor and a vector has a single slot.

Diag(W) in a word is a hub: its two outer slots and both ends of W share one
label.  :class:`Builder` makes networks with a union-find over labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions import MatrixSymbol

from ..errors import ModelError
from .words import Diag, Sym

__all__ = ["Tensor", "Network", "Builder", "network_of_chain", "network_of_traces"]


@dataclass(frozen=True)
class Tensor:
    """One occurrence of ``symbol`` with (row, col) labels (None on a side of size 1)."""
    symbol: MatrixSymbol
    row: int | None
    col: int | None

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def slots(self) -> tuple:
        return tuple(s for s in (self.row, self.col) if s is not None)


@dataclass(frozen=True)
class Network:
    """Tensors over labels; ``dims`` lists every label (also slot-less ones)."""
    tensors: tuple
    dims: tuple  # ((label, dimension), ...)

    def dim(self, label: int):
        return dict(self.dims)[label]

    def __str__(self) -> str:
        return " ".join(f"{t.name}[{t.row},{t.col}]" for t in self.tensors)


def _same_dim(a, b) -> bool:
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


class Builder:
    """Assembles a :class:`Network`: labels with a union-find, tensors on them."""

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.dims: dict[int, sp.Expr] = {}
        self.tensors: list[Tensor] = []

    def new(self, dim) -> int | None:
        """A fresh label of dimension ``dim`` (None for dimension 1)."""
        dim = sp.sympify(dim)
        if dim == 1:
            return None
        label = max(self.parent, default=-1) + 1
        self.parent[label] = label
        self.dims[label] = dim
        return label

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b, what: str = "") -> None:
        if a is None or b is None:
            if a is not b:
                raise ModelError(f"index of size 1 joined to a larger index {what}")
            return
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if not _same_dim(self.dims[ra], self.dims[rb]):
            raise ModelError(f"indices of sizes {self.dims[ra]} and {self.dims[rb]} "
                             f"joined {what}")
        lo, hi = min(ra, rb), max(ra, rb)
        self.parent[hi] = lo

    def add(self, symbol: MatrixSymbol, row, col) -> None:
        self.tensors.append(Tensor(symbol, row, col))

    def chain(self, word: tuple, left, right) -> None:
        """Place the word's atoms between the labels ``left`` and ``right``."""
        if not word:
            self.union(left, right, "by an identity")
            return
        for i, atom in enumerate(word):
            rows, cols = atom.shape
            if i + 1 < len(word):
                nxt_rows = word[i + 1].shape[0]
                if not _same_dim(cols, nxt_rows):
                    raise ModelError(f"shapes do not fit in the product at factor {i + 1}: "
                                     f"{cols} columns against {nxt_rows} rows")
                r = self.new(cols)
            else:
                r = right
            if isinstance(atom, Sym):
                if atom.transposed:
                    self.add(atom.symbol, r, left)
                else:
                    self.add(atom.symbol, left, r)
            elif isinstance(atom, Diag):
                self.union(left, r, "by Diag")
                self.chain(atom.word, left, left)
            else:
                raise TypeError(f"not a word atom: {atom!r}")
            left = r

    def network(self) -> Network:
        find = self.find
        tensors = tuple(Tensor(t.symbol, None if t.row is None else find(t.row),
                               None if t.col is None else find(t.col)) for t in self.tensors)
        roots = sorted({find(a) for a in self.parent})
        return Network(tensors, tuple((r, self.dims[r]) for r in roots))


def network_of_chain(word: tuple) -> Network:
    """The network of a 1x1 product (its outer sides have size 1)."""
    if word:
        rows, cols = word[0].shape[0], word[-1].shape[1]
        if rows != 1 or cols != 1:
            raise ModelError(f"a scalar term must be 1x1, got {rows}x{cols}")
    b = Builder()
    b.chain(word, None, None)
    return b.network()


def network_of_traces(traces: tuple, extra: tuple = ()) -> Network:
    """The network of a product of traces of (square) words."""
    b = Builder()
    for w in traces:
        if not w:
            raise ModelError("tr(I) needs its dimension; it belongs in the coefficient")
        label = b.new(w[0].shape[0])
        b.chain(w, label, label)
    for t in extra:
        b.add(t, None, None)
    return b.network()
