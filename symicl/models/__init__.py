"""Built-in models, one file each: ``build("linear-transformer", dim=2)``.

Each module of this package declares its model's specification as ``SPEC``
(or several as ``SPECS``); :data:`SPECS` collects them, so adding a built-in
model is adding one file here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from ..errors import ModelError, SymiclError
from ..model import Model
from ..spec import ModelSpec, is_user_reference, load_user_spec
from .deep_linear import deep_linear
from .linear_transformer import linear_transformer, per_mode_model

__all__ = ["BUILTINS", "SPECS", "build", "spec", "deep_linear", "linear_transformer",
           "per_mode_model"]


def _collect() -> dict[str, ModelSpec]:
    found: dict[str, ModelSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        specs = list(getattr(module, "SPECS", ())) + (
            [module.SPEC] if hasattr(module, "SPEC") else [])
        for s in specs:
            if s.name in found:
                raise ModelError(f"two built-in models are named {s.name}")
            found[s.name] = s
    return dict(sorted(found.items()))


SPECS: dict[str, ModelSpec] = _collect()
BUILTINS = {name: s.build for name, s in SPECS.items()}


def spec(name: str) -> ModelSpec:
    """The spec of a built-in model, or of ``PATH.py:FUNCTION`` / ``package.module:FUNCTION``."""
    if name in SPECS:
        return SPECS[name]
    if is_user_reference(name):
        return load_user_spec(name)
    raise SymiclError(f"unknown model {name!r}; built-in models: {', '.join(SPECS)}; or give "
                      "PATH.py:FUNCTION for your own")


def build(name: str, **options) -> Model:
    """The built-in model ``name`` with the given options (checked against its spec)."""
    if name not in SPECS:
        raise ModelError(f"unknown model {name!r}; built-in models: {', '.join(SPECS)}")
    factory = SPECS[name].build
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelError(f"model {name} has no option {', '.join(unknown)}; "
                         f"options: {', '.join(accepted)}")
    return factory(**options)
