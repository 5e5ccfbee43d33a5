"""Verification: derived flows against real SGD, with stated error bars, for any model spec.

``verify(spec, options, plan, constants)`` runs the shared steps
(:mod:`symicl.verify.steps`) and returns (checks, extra); the CLI turns it
into a table, report.json and plots (:mod:`symicl.verify.plots`).  The
statistical design is in :mod:`symicl.verify.run`; the plan and its checks in
:mod:`symicl.verify.plan` (light: importing it loads no numerics).
"""

from importlib import import_module

__all__ = ["Check", "DESIGN", "Experiment", "MIN_SEEDS", "MIN_STEPS", "Plan", "UsageError",
           "verify"]

_WHERE = {"Check": "checks", "DESIGN": "run", "verify": "run", "Experiment": "steps",
          "MIN_SEEDS": "plan", "MIN_STEPS": "plan", "Plan": "plan", "UsageError": "plan"}


def __getattr__(name):
    """The package's names, imported on first use (the numerics only when needed)."""
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
