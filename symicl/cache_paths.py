"""Where symicl caches things: the user's cache folder, never the installed package.

    $SYMICL_CACHE            generated kernel modules (default ~/.cache/symicl/kernels)
    $SYMICL_CACHE/numba      Numba's on-disk cache   (default ~/.cache/symicl/numba)

Numba's ``cache=True`` writes its index and object files (``.nbi``, ``.nbc``)
beside the source file by default, that is into ``site-packages/symicl`` for
an installed symicl; ``pip uninstall`` leaves them there, and the leftover
``symicl`` folder then shadows a later install.  :func:`configure_numba`
points Numba at the user cache instead, unless the user has set
``NUMBA_CACHE_DIR`` themselves.  ``symicl/__init__.py`` calls it on import,
before anything in symicl imports Numba.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["configure_numba", "kernel_dir", "numba_dir"]

_SET_BY_US: str | None = None  # the NUMBA_CACHE_DIR value symicl chose, if it chose one


def kernel_dir() -> Path:
    """``$SYMICL_CACHE`` if set, else ``~/.cache/symicl/kernels``."""
    root = os.environ.get("SYMICL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "symicl" / "kernels"


def numba_dir() -> Path:
    """``$SYMICL_CACHE/numba`` if ``SYMICL_CACHE`` is set, else ``~/.cache/symicl/numba``."""
    root = os.environ.get("SYMICL_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "symicl") / "numba"


def configure_numba() -> str:
    """Point Numba's on-disk cache at :func:`numba_dir` unless the user chose a folder.

    Sets ``NUMBA_CACHE_DIR`` (inherited by worker and child processes) and, if
    Numba is already imported, its ``config.CACHE_DIR``.  Returns the folder
    in use.
    """
    global _SET_BY_US
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current and current != _SET_BY_US:
        return current  # the user's choice
    folder = str(numba_dir())
    os.environ["NUMBA_CACHE_DIR"] = _SET_BY_US = folder
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = folder
    return folder
