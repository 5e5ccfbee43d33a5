"""Words: products of matrix symbols, transposes and Diag(word), in canonical form.

An *atom* is either a matrix symbol, possibly transposed (:class:`Sym`), or
the diagonal part of a word, Diag(W)_ij = delta_ij W_ii (:class:`Diag`).  A
*word* is a tuple of atoms, read as their matrix product.  Equal values get
equal words through these rules, applied bottom-up:

* a symmetric symbol is never transposed;
* Diag(W) = Diag(W^T), and the smaller of the two is kept;
* Diag(D1 W D2) = D1 Diag(W) D2 for diagonal D1, D2 (and Diag(D) = D);
* adjacent diagonal atoms commute, so each run of them is sorted;
* tr(W) is invariant under rotation and under W -> W^T;
* a trace through diagonal atoms equals tr(Diag(U_1) .. Diag(U_k)) for its
  "petals" U_k, rooted at any of its hubs: the smallest rooting is kept, and
  written tr(Diag(U_1) .. Diag(U_{k-1}) U_k).

Keys (:func:`word_key`) order atoms and words deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

import sympy as sp

__all__ = ["Sym", "Diag", "Atom", "Word", "transpose", "word_key", "atom_key",
           "canon_word", "canon_diag", "canon_trace", "word_shape", "render_word",
           "is_diag"]


@dataclass(frozen=True)
class Sym:
    """One occurrence of a matrix symbol; ``transposed`` reads it as its transpose."""
    symbol: sp.MatrixSymbol
    transposed: bool = False
    symmetric: bool = False

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def shape(self) -> tuple:
        r, c = self.symbol.shape
        return (c, r) if self.transposed else (r, c)

    def T(self) -> "Sym":
        if self.symmetric:
            return self
        return Sym(self.symbol, not self.transposed, self.symmetric)


@dataclass(frozen=True)
class Diag:
    """Diag(W): the diagonal part of the (square) word W."""
    word: tuple

    @property
    def shape(self) -> tuple:
        return word_shape(self.word)

    def T(self) -> "Diag":
        return self


Atom = Union[Sym, Diag]
Word = tuple


def is_diag(atom) -> bool:
    return isinstance(atom, Diag)


def transpose(word: Iterable) -> tuple:
    """(A_1 .. A_k)^T = A_k^T .. A_1^T."""
    return tuple(a.T() for a in reversed(tuple(word)))


def word_shape(word: tuple) -> tuple:
    """(rows, cols) of a non-empty word."""
    if not word:
        raise ValueError("the empty word has no shape of its own")
    return (word[0].shape[0], word[-1].shape[1])


def atom_key(atom) -> tuple:
    if isinstance(atom, Sym):
        return (0, atom.name, int(atom.transposed))
    return (1, word_key(atom.word))


def word_key(word: tuple) -> tuple:
    """Order: shorter words, then fewer top-level transposes, then by atoms."""
    flips = sum(1 for a in word if isinstance(a, Sym) and a.transposed)
    return (len(word), flips, tuple(atom_key(a) for a in word))


def _sort_runs(word: tuple) -> tuple:
    """Sort each maximal run of adjacent Diag atoms (they commute)."""
    out, run = [], []
    for a in word:
        if isinstance(a, Diag):
            run.append(a)
        else:
            out.extend(sorted(run, key=atom_key))
            run = []
            out.append(a)
    out.extend(sorted(run, key=atom_key))
    return tuple(out)


def canon_word(word: Iterable) -> tuple:
    """Canonical form of an open word (a matrix): atoms canonical, Diag runs sorted."""
    out = []
    for a in word:
        if isinstance(a, Diag):
            out.extend(canon_diag(a.word))
        elif isinstance(a, Sym):
            out.append(Sym(a.symbol, False, True) if a.symmetric else a)
        else:
            raise TypeError(f"not a word atom: {a!r}")
    return _sort_runs(tuple(out))


def canon_diag(word: Iterable) -> tuple:
    """Canonical atoms equal to Diag(word): diagonal end factors pulled out."""
    word = canon_word(word)
    lead, trail = [], []
    lo, hi = 0, len(word)
    while lo < hi and isinstance(word[lo], Diag):
        lead.append(word[lo])
        lo += 1
    while hi > lo and isinstance(word[hi - 1], Diag):
        trail.append(word[hi - 1])
        hi -= 1
    core = word[lo:hi]
    if not core:
        return _sort_runs(tuple(lead + trail))
    core = min(core, canon_word(transpose(core)), key=word_key)
    return _sort_runs(tuple(lead) + (Diag(core),) + tuple(reversed(trail)))


def _rotations(word: tuple):
    for i in range(len(word)):
        yield word[i:] + word[:i]


def _plain_trace(word: tuple) -> tuple:
    """Smallest rotation / reflection of a trace word with no top-level Diag."""
    cands = []
    for w in (word, canon_word(transpose(word))):
        cands.extend(_rotations(w))
    return min(cands, key=word_key)


def _rootings(word: tuple) -> list[tuple]:
    """All-Diag multisets tr(Diag(U_1)..Diag(U_k)) rooted at each top-level Diag run."""
    out = []
    n = len(word)
    for i in range(n):
        if isinstance(word[i], Diag) and not isinstance(word[i - 1], Diag):
            w = word[i:] + word[:i]
            j = 0
            while j < n and isinstance(w[j], Diag):
                j += 1
            run, rest = w[:j], w[j:]
            state = run + (canon_diag(rest) if rest else ())
            out.append(tuple(sorted(state, key=atom_key)))
    return out


def canon_trace(word: Iterable) -> tuple:
    """Canonical word W with tr(W) equal to tr(word) (see the module rules)."""
    word = canon_word(word)
    if not word:
        return ()
    if not any(isinstance(a, Diag) for a in word):
        return _plain_trace(word)
    if all(isinstance(a, Diag) for a in word):
        if len(word) == 1:
            return canon_trace(word[0].word)
        start = [tuple(sorted(word, key=atom_key))]
    else:
        start = _rootings(word)
    # Close the set of rootings under "unwrap one petal, re-root at any hub".
    seen = set(start)
    todo = list(start)
    while todo:
        state = todo.pop()
        for j, atom in enumerate(state):
            others = state[:j] + state[j + 1:]
            for new in _rootings(others + atom.word):
                if new not in seen:
                    seen.add(new)
                    todo.append(new)
    best = min(seen, key=word_key)
    if len(best) == 1:
        return canon_trace(best[0].word)
    # Display form: the last petal unwrapped, tr(Diag(U_1) .. Diag(U_{k-1}) U_k).
    return best[:-1] + best[-1].word


def render_word(word: tuple, name=lambda a: a.name, transpose_mark="^T",
                diag=("Diag(", ")"), sep=" ", identity="I", power=None) -> str:
    """Text of a word with pluggable symbol names (used by the printers).

    With ``power(base, k)`` given, k equal adjacent untransposed symbols print as a power.
    """
    if not word:
        return identity
    parts = []
    i = 0
    while i < len(word):
        a = word[i]
        if isinstance(a, Sym):
            k = 1
            if power is not None and not a.transposed:
                while i + k < len(word) and word[i + k] == a:
                    k += 1
            base = name(a) + (transpose_mark if a.transposed else "")
            parts.append(power(base, k) if k > 1 else base)
            i += k
        else:
            parts.append(diag[0] + render_word(a.word, name, transpose_mark, diag, sep, identity,
                                               power) + diag[1])
            i += 1
    return sep.join(parts)
