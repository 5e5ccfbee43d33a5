"""How symicl's symbols print in LaTeX (``WP_1_2`` -> ``W^{P}_{1,2}``)."""

from __future__ import annotations

import re
from typing import Iterable

import sympy as sp

__all__ = ["latex_names", "latex"]

_MATRIX = re.compile(r"^(WP|WQ|W1|W2|T)_(\d+)_(\d+)$")
_HEADS = {"WP": "W^{P}", "WQ": "W^{Q}", "W1": "W^{(1)}", "W2": "W^{(2)}", "T": "T"}


def latex_names(symbols: Iterable[sp.Symbol]) -> dict[sp.Symbol, str]:
    """LaTeX names for matrix-entry symbols; other symbols keep SymPy's."""
    out = {}
    for s in symbols:
        m = _MATRIX.match(s.name)
        if m:
            out[s] = f"{_HEADS[m.group(1)]}_{{{m.group(2)},{m.group(3)}}}"
    return out


def latex(expr, symbols: Iterable[sp.Symbol] = ()) -> str:
    """``sympy.latex`` with symicl's symbol names."""
    expr = sp.sympify(expr)
    names = latex_names(set(symbols) | expr.free_symbols)
    return sp.latex(expr, symbol_names=names)
