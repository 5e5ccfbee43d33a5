"""The errors symicl raises on bad input: one class per kind of problem."""

from __future__ import annotations

__all__ = ["SymiclError", "ModelError", "DistributionError", "MomentError", "NotPolynomialError",
           "StiffnessError",
           "ModelWarning"]


class SymiclError(ValueError):
    """Base class of every error symicl raises for bad input."""


class ModelError(SymiclError):
    """A model definition does not fit together (shapes, names, parameters)."""


class DistributionError(SymiclError):
    """A data distribution is invalid (covariance, context length, variables)."""


class StiffnessError(SymiclError):
    """The explicit integrator ran out of its step or time budget (a stiff flow)."""


class NotPolynomialError(ModelError):
    """An expression that must be polynomial is not; the message names the term."""


class ModelWarning(UserWarning):
    """A model definition that works but is likely not what was meant: a parameter that
    never appears in the loss, or an undeclared symbol in the prediction; the message
    names it."""


class MomentError(DistributionError):
    """A moment the expectation needs does not exist (e.g. Student's t of too few degrees)."""
