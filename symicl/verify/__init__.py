"""Verification: derived flows against real SGD, with stated error bars, for any model spec.

``verify(spec, options, plan, constants)`` runs the shared steps
(:mod:`symicl.verify.steps`) and returns (checks, extra); the CLI turns it
into a table, report.json and plots (:mod:`symicl.verify.plots`).  The
statistical design is in :mod:`symicl.verify.run`.
"""

from .checks import Check
from .run import DESIGN, verify
from .steps import MIN_SEEDS, MIN_STEPS, Experiment, Plan, UsageError

__all__ = ["Check", "DESIGN", "Experiment", "MIN_SEEDS", "MIN_STEPS", "Plan", "UsageError",
           "verify"]
