"""The machine line every benchmark prints first."""

from __future__ import annotations

import importlib
import os
import platform


def machine(*packages: str) -> str:
    """Platform, core count, load average at start, and the versions of ``packages``."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = ", ".join(f"{name} {importlib.import_module(name).__version__}" for name in packages)
    return (f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
            f"os.cpu_count() = {os.cpu_count()}, load average {load:.2f} (1 min) at start\n"
            f"python {platform.python_version()}, {versions}")
