"""Reading the JSON contract back: ``load_json`` gives SymPy objects with symicl's symbols.

Plain ``sympy.sympify(d["loss"])`` is not enough: it reads ``N`` as SymPy's
``N()`` function, and the symbols it makes carry no assumptions, so they are
not the symbols symicl uses (``Symbol("N") != Symbol("N", positive=True,
integer=True)``) and ``.subs`` by symicl's symbols silently does nothing.
``load_json`` builds every name of ``parameters`` and ``constants`` as
:mod:`symicl.symbols` makes it:

* ``N``: the context length, a positive integer;
* ``s_1``, ``s_2``, ...: input eigenvalues, positive;
* every other name (``WP_i_j``, ``p_a``, ``T_i_j``, ...): real;

and parses the expressions with those symbols only.  The text is checked
token by token before it is parsed (names, numbers, arithmetic, brackets):
nothing in it is run as code.
"""

from __future__ import annotations

import io
import json
import os
import re
import tokenize
from pathlib import Path
from typing import Any

import sympy as sp

from .. import symbols
from ..errors import SymiclError

__all__ = ["ContractError", "load_json", "symbol_for"]

_KEYS = ("model", "options", "parameters", "constants", "loss", "flow")
_FUNCTIONS = {"sqrt": sp.sqrt, "Rational": sp.Rational, "Integer": sp.Integer,
              "Float": sp.Float}
_OPERATORS = {"+", "-", "*", "/", "**", "(", ")", ","}


class ContractError(SymiclError):
    """A derivation JSON that does not follow the contract; the message names the problem."""


def symbol_for(name: str) -> sp.Symbol:
    """The symbol symicl uses for ``name`` (see the module docstring)."""
    if name == "N":
        return symbols.context_length()
    if re.fullmatch(r"s_[1-9]\d*", name):
        return sp.Symbol(name, positive=True)
    return sp.Symbol(name, real=True)


def load_json(source: str | os.PathLike | dict) -> dict[str, Any]:
    """The contract of ``symicl derive MODEL --format json`` as SymPy objects.

    ``source`` is the parsed dict, the JSON text, or the path of a JSON file
    (e.g. ``derivations/linear_transformer_aligned/derivation.json``).
    Returns ``{"model": str, "options": dict, "parameters": [Symbol],
    "constants": [Symbol], "loss": Expr, "flow": {Symbol: Expr}}`` with
    symicl's own symbols, so that ``loss.subs(N, 8)`` with ``N`` from
    ``constants`` (or :func:`symicl.symbols.context_length`) works.
    """
    data, where = _read(source)
    if not isinstance(data, dict):
        raise ContractError(f"{where} is not a JSON object")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise ContractError(f"{where} has no {', '.join(missing)} (keys: {', '.join(_KEYS)})")
    names = {}
    for key in ("parameters", "constants"):
        value = data[key]
        if not isinstance(value, list) or not all(
                isinstance(n, str) and n.isidentifier() for n in value):
            raise ContractError(f"{where}: {key} must be a list of symbol names")
        names[key] = [symbol_for(n) for n in value]
    table = {s.name: s for s in names["parameters"] + names["constants"]}
    if len(table) != len(names["parameters"]) + len(names["constants"]):
        raise ContractError(f"{where}: a name is both a parameter and a constant, or repeated")
    if not isinstance(data["flow"], dict):
        raise ContractError(f"{where}: flow must map parameter names to expressions")
    extra = sorted(set(data["flow"]) - {p.name for p in names["parameters"]})
    absent = [p.name for p in names["parameters"] if p.name not in data["flow"]]
    if extra or absent:
        raise ContractError(f"{where}: flow has no entry for {', '.join(absent)}" if absent else
                            f"{where}: flow names {', '.join(extra)}, which are not parameters")
    return {
        "model": data["model"],
        "options": data["options"],
        "parameters": names["parameters"],
        "constants": names["constants"],
        "loss": _parse(data["loss"], table, f"{where}: loss"),
        "flow": {p: _parse(data["flow"][p.name], table, f"{where}: flow of {p.name}")
                 for p in names["parameters"]},
    }


def _read(source) -> tuple[Any, str]:
    if isinstance(source, dict):
        return source, "the derivation"
    if isinstance(source, str) and source.lstrip().startswith("{"):
        where, text = "the derivation JSON", source
    elif isinstance(source, (str, os.PathLike)):
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ContractError(f"cannot read {where}: {exc.strerror}") from None
    else:
        raise ContractError(f"load_json takes a dict, JSON text or a path, got "
                            f"{type(source).__name__}")
    try:
        return json.loads(text), where
    except json.JSONDecodeError as exc:
        raise ContractError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}") \
            from None


def _parse(text: Any, table: dict[str, sp.Symbol], where: str) -> sp.Expr:
    if not isinstance(text, str):
        raise ContractError(f"{where} must be an expression string, got {text!r}")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ContractError(f"{where} is not an expression ({exc})") from None
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.NUMBER):
            continue
        if tok.type == tokenize.NAME and (tok.string in table or tok.string in _FUNCTIONS):
            continue
        if tok.type == tokenize.OP and tok.string in _OPERATORS:
            continue
        if tok.type == tokenize.NAME:
            raise ContractError(f"{where} uses {tok.string}, which is neither a parameter nor "
                                f"a constant of the derivation")
        raise ContractError(f"{where} holds {tok.string!r}, not part of an expression")
    try:
        expr = sp.parse_expr(text, local_dict=dict(table),
                             global_dict={**_FUNCTIONS, "__builtins__": {}}, evaluate=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is one clear error
        raise ContractError(f"{where} is not an expression ({type(exc).__name__}: {exc})") \
            from None
    if not isinstance(expr, sp.Expr):
        raise ContractError(f"{where} is not an expression")
    return expr
