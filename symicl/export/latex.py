"""LaTeX of a derivation: ``align`` environments, optionally a whole document."""

from __future__ import annotations

import sympy as sp

from ..model import Model
from .grouping import by_inverse_powers
from .names import latex

__all__ = ["document", "flow_lines", "loss_lines", "to_latex"]


def _n_symbol(model: Model):
    return next((c for c in model.constants if c.name == "N"), None)


def loss_lines(model: Model) -> list[str]:
    """Lines of the expected loss, one per power of 1/N."""
    syms = model.parameters + model.constants
    N = _n_symbol(model)
    lines = []
    for k, coeff in by_inverse_powers(model.expected_loss(), N):
        body = latex(coeff, syms)
        if k == 0:
            lines.append(body)
        else:
            power = "N" if k == 1 else f"N^{{{k}}}"
            lines.append(f"\\frac{{1}}{{{power}}} \\left( {body} \\right)")
    return lines


def flow_lines(model: Model) -> list[str]:
    """One line per parameter: d theta / dt = -dL/dtheta."""
    syms = model.parameters + model.constants
    return [f"\\dot{{{latex(p, syms)}}} &= {latex(e, syms)}" for p, e in model.flow().items()]


def _align(lines: list[str]) -> str:
    return "\\begin{align}\n" + " \\\\\n".join(lines) + "\n\\end{align}\n"


def to_latex(model: Model, standalone: bool = False) -> str:
    """The expected loss and flow of ``model`` as LaTeX ``align`` blocks."""
    loss = loss_lines(model)
    first = [f"L &= {loss[0]}"] + [f"&\\quad + {line}" for line in loss[1:]]
    body = (f"% symicl derivation: {model.name} {sp.sstr(model.options)}\n"
            "% expected loss\n" + _align(first) + "% expected-gradient flow\n" +
            _align(flow_lines(model)))
    return document(body) if standalone else body


def document(body: str) -> str:
    """``body`` (align blocks) as a whole document that pdflatex compiles."""
    return ("\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage[margin=2cm]{geometry}\n"
            "\\allowdisplaybreaks\n\\begin{document}\n" + body + "\\end{document}\n")
