"""Export of derived equations: the JSON contract, LaTeX and Markdown.

Every writer is deterministic: the same model gives byte-identical text.
"""

from .contract import derivation, to_json
from .latex import to_latex
from .markdown import to_markdown

__all__ = ["derivation", "to_json", "to_latex", "to_markdown"]
