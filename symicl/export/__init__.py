"""Export of derived equations: the JSON contract (and ``load_json`` to read it back as
SymPy objects), LaTeX and Markdown.

Every writer is deterministic: the same model gives byte-identical text.
"""

from .contract import derivation, to_json
from .latex import to_latex
from .load import ContractError, load_json
from .markdown import to_markdown

__all__ = ["ContractError", "derivation", "load_json", "to_json", "to_latex", "to_markdown"]
