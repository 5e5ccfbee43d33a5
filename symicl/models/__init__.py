"""Built-in models, by name: ``build("linear-transformer", dim=2)``."""

from __future__ import annotations

import inspect

from ..errors import ModelError
from ..model import Model
from .deep_linear import deep_linear
from .linear_transformer import linear_transformer, per_mode_model

__all__ = ["BUILTINS", "build", "deep_linear", "linear_transformer", "per_mode_model"]

BUILTINS = {
    "linear-transformer": linear_transformer,
    "linear-transformer-per-mode": per_mode_model,
    "deep-linear": deep_linear,
}


def build(name: str, **options) -> Model:
    """The built-in model ``name`` with the given options."""
    try:
        factory = BUILTINS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; built-in models: {', '.join(BUILTINS)}") from None
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelError(f"model {name} has no option {', '.join(unknown)}; "
                         f"options: {', '.join(accepted)}")
    return factory(**options)
