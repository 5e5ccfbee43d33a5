"""The verification report: a table on the console, JSON, and plots."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from ..files import write_atomic
from .checks import Check

__all__ = ["table", "write_json"]


def _fmt(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.4g}"


def table(checks: Sequence[Check]) -> str:
    """Rows: quantity, theory, simulation, standard error, z-score, result."""
    head = ("quantity", "theory", "simulation", "SE", "z", "result")
    rows = []
    for c in checks:
        result = "info" if c.kind == "info" else ("pass" if c.passed else "FAIL")
        if c.kind == "z":
            result += f" (|z|<={c.tolerance:.3g}" + (" + bias allowance)" if c.allowance else ")")
        elif c.kind == "bound":
            result += f" (<= {c.tolerance:.0e})"
        rows.append((c.quantity, _fmt(c.theory), _fmt(c.simulation), _fmt(c.se), _fmt(c.z), result))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def write_json(path: str, model: str, checks: Sequence[Check], extra: dict) -> None:
    """report.json: the model, the verdict, every check, the plan, design and series."""
    data = {"model": model, "passed": all(c.passed for c in checks),
            "checks": [c.to_dict() for c in checks], **extra}
    write_atomic(path, json.dumps(data, indent=2, default=float) + "\n")
