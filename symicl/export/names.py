"""How symicl's symbols print in LaTeX (``WP_1_2`` -> ``W^{P}_{1,2}``).

Matrix entries ``PREFIX_i_j`` print with the LaTeX head that the model
specifications declare for PREFIX (``latex_heads``); other symbols keep
SymPy's names.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Iterable

import sympy as sp

__all__ = ["latex_names", "latex"]

_ENTRY = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_(\d+)_(\d+)$")


@cache
def _heads() -> dict[str, str]:
    from ..models import SPECS

    heads: dict[str, str] = {}
    for spec in SPECS.values():
        heads.update(spec.latex_heads)
    return heads


def latex_names(symbols: Iterable[sp.Symbol]) -> dict[sp.Symbol, str]:
    """LaTeX names for matrix-entry symbols with a declared head; others keep SymPy's."""
    heads = _heads()
    out = {}
    for s in symbols:
        m = _ENTRY.match(s.name)
        if m and m.group(1) in heads:
            out[s] = f"{heads[m.group(1)]}_{{{m.group(2)},{m.group(3)}}}"
    return out


def latex(expr, symbols: Iterable[sp.Symbol] = ()) -> str:
    """``sympy.latex`` with symicl's symbol names."""
    expr = sp.sympify(expr)
    names = latex_names(set(symbols) | expr.free_symbols)
    return sp.latex(expr, symbol_names=names)
