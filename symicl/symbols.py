"""Canonical SymPy symbols shared by every room of symicl.

One place decides names and assumptions, so that a symbol built by the
component-wise engine and one built by the matrix-level engine compare
equal.  Names follow the JSON contract of ``symicl derive``:

* context length ``N`` (positive integer);
* input eigenvalues ``s_1 .. s_d`` (positive);
* matrix entries ``<PREFIX>_<i>_<j>`` with 1-based row ``i`` and column ``j``
  (``WP_i_j``, ``WQ_i_j``, ``W1_i_j``, ``W2_i_j``, ``T_i_j``), all real;
* aligned-mode strengths ``p_a``, ``q_a`` (real).
"""

from __future__ import annotations

import re

import sympy as sp

__all__ = [
    "natural_key",
    "context_length",
    "spectrum",
    "entry",
    "matrix",
    "vector",
]


def natural_key(symbol: sp.Symbol) -> tuple:
    """Sort key that orders ``s_2`` before ``s_10`` (digits compared as numbers)."""
    parts = re.split(r"(\d+)", symbol.name)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def context_length() -> sp.Symbol:
    """The symbolic context length ``N`` (a positive integer)."""
    return sp.Symbol("N", positive=True, integer=True)


def spectrum(d: int, name: str = "s") -> list[sp.Symbol]:
    """Input eigenvalues ``s_1`` to ``s_d`` (positive reals)."""
    return [sp.Symbol(f"{name}_{a}", positive=True) for a in range(1, d + 1)]


def entry(prefix: str, i: int, j: int) -> sp.Symbol:
    """The real symbol ``<prefix>_<i>_<j>`` (1-based indices)."""
    return sp.Symbol(f"{prefix}_{i}_{j}", real=True)


def matrix(prefix: str, rows: int, cols: int, row0: int = 0, col0: int = 0) -> sp.Matrix:
    """A ``rows x cols`` matrix of real entry symbols.

    Entry ``(r, c)`` is named ``<prefix>_<row0 + r + 1>_<col0 + c + 1>``, so a
    block of a larger matrix keeps the indices of the whole matrix.
    """
    return sp.Matrix(rows, cols, lambda r, c: entry(prefix, row0 + r + 1, col0 + c + 1))


def vector(name: str, d: int) -> list[sp.Symbol]:
    """Real symbols ``<name>_1`` to ``<name>_d``."""
    return [sp.Symbol(f"{name}_{a}", real=True) for a in range(1, d + 1)]
