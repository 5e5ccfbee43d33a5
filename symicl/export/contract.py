"""The machine contract of ``symicl derive --format json``.

One JSON object with keys ``model``, ``options``, ``parameters`` (symbol
names, in order), ``constants`` (symbol names), ``loss`` (an expression
string in those names), ``flow`` (parameter name -> expression string of
d theta / dt = -dL/dtheta), ``blocks`` (block name -> its rows, each a list of
parameter names, "0" for an entry fixed at zero), from which a reader
rebuilds the weight matrices, and ``symmetries``: the generators A of the
linear symmetries of L (grad L . A theta == 0, each certified exactly; see
:mod:`symicl.analysis.symmetries`), each as ``matrix`` (P x P nested lists
of expression strings, parameters in order), ``field`` (parameter name ->
(A theta)_i, its non-zero components) and a ``description``; for a model
beyond the search's size limit ``symmetries`` is null and
``symmetries_skipped`` says why.  :func:`symicl.export.load_json` reads it
back as SymPy objects with symicl's own symbols (plain ``sympy.sympify`` reads
``N`` as SymPy's ``N()`` function and drops the symbols' assumptions).
"""

from __future__ import annotations

import json

from ..model import Model

__all__ = ["blocks", "derivation", "to_json"]


def derivation(model: Model) -> dict:
    """The derivation of ``model`` as a JSON-ready dictionary."""
    return {
        "model": model.name,
        "options": model.options,
        "parameters": [p.name for p in model.parameters],
        "constants": [c.name for c in model.constants],
        "loss": str(model.expected_loss()),
        "flow": {p.name: str(e) for p, e in model.flow().items()},
        "blocks": blocks(model),
        **_symmetries(model),
    }


def blocks(model: Model) -> dict:
    """Block name -> nested list (rows) of entry names: parameter names, "0" for fixed zeros."""
    return {name: [[str(e) for e in row] for row in block.tolist()]
            for name, block in model.blocks.items()}


def _symmetries(model: Model) -> dict:
    """The ``symmetries`` key (or null and ``symmetries_skipped`` beyond the size limit)."""
    from ..analysis.symmetries import symmetries
    from ..errors import ModelError

    try:
        found = symmetries(model)
    except ModelError as exc:
        return {"symmetries": None, "symmetries_skipped": str(exc)}
    return {"symmetries": [s.to_dict() for s in found]}


def to_json(model: Model) -> str:
    """The JSON contract as text (two-space indent, trailing newline)."""
    return json.dumps(derivation(model), indent=2) + "\n"
