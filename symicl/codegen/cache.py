"""The kernel cache: generated modules keyed by a hash of what they compute.

A module's key is the SHA-256 of the generator version, the back end, the
parameter and constant names and the loss and flow expressions; the file is
written atomically (temporary file, then rename), so two processes that
generate the same kernel at once both end with the same complete file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..cache_paths import kernel_dir
from ..files import write_atomic

__all__ = ["cache_dir", "kernel_key", "load_or_write"]


def cache_dir() -> Path:
    """``$SYMICL_CACHE`` if set, else ``~/.cache/symicl/kernels`` (:mod:`..cache_paths`)."""
    return kernel_dir()


def kernel_key(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def load_or_write(key: str, make_source) -> tuple[ModuleType, Path, bool]:
    """Import the cached module ``key``, generating it with ``make_source()`` if absent.

    Returns (module, path, generated).
    """
    folder = cache_dir()
    path = folder / f"symicl_kernel_{key}.py"
    generated = False
    if not path.exists():
        write_atomic(str(path), make_source())
        generated = True
    name = f"symicl_kernel_{key}"
    if name in sys.modules:
        return sys.modules[name], path, generated
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module, path, generated
