"""Markdown of a derivation: short prose and the equations in display maths."""

from __future__ import annotations

from ..model import Model
from .latex import flow_lines, loss_lines

__all__ = ["to_markdown"]


def to_markdown(model: Model) -> str:
    """The expected loss and flow of ``model`` as Markdown."""
    opts = ", ".join(f"{k} = {v}" for k, v in model.options.items()) or "none"
    params = ", ".join(f"`{p.name}`" for p in model.parameters)
    consts = ", ".join(f"`{c.name}`" for c in model.constants) or "none"
    loss = loss_lines(model)
    out = [f"# {model.name}", "",
           f"Options: {opts}.", "",
           f"Parameters: {params}.", "",
           f"Constants: {consts}.", "",
           "## Expected loss", "",
           "The exact expected loss, grouped by powers of 1/N:", "", "$$",
           "\\begin{aligned}",
           " \\\\\n".join(["L &= " + loss[0]] + ["&\\quad + " + line for line in loss[1:]])]
    out += ["\\end{aligned}", "$$", "",
            "## Expected-gradient flow", "",
            "With unit learning rate, d theta/dt = -dL/dtheta:", "", "$$",
            "\\begin{aligned}"]
    out += [" \\\\\n".join(flow_lines(model))]
    out += ["\\end{aligned}", "$$", ""]
    return "\n".join(out)
