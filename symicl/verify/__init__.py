"""Verification: derived flows against real SGD, with stated error bars.

``verify(model_name, quick=False, out=DIR, **plan)`` runs the plan of the
model, prints nothing itself, and returns (checks, extra); the CLI turns it
into a table, a JSON report and plots.
"""

from .checks import Check
from .deep_linear import DeepLinearPlan, verify_deep_linear
from .transformer import TransformerPlan, verify_transformer

__all__ = ["Check", "PLANS", "TransformerPlan", "DeepLinearPlan", "verify_transformer",
           "verify_deep_linear"]

PLANS = {
    "linear-transformer": (TransformerPlan, verify_transformer),
    "deep-linear": (DeepLinearPlan, verify_deep_linear),
}
