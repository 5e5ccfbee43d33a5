"""Grid points: every parameter of a point, its id and its random seed.

A point's id is a SHA-256 of its model and all its parameter values (canonical
JSON), so it names the point's record in the store whatever the grid it came
from; its random seed is drawn from a numpy SeedSequence of the same hash, so
the numbers do not depend on which worker, or how many, ran it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import SweepConfig
from .schema import MEASURES_VERSION, params_of

__all__ = ["Point", "point_digest", "points"]

POINT_FORMAT = "symicl-sweep-point/2"


@dataclass(frozen=True)
class Point:
    """One point of a sweep: ``params`` holds every parameter, ``axes`` the grid's;
    ``constants`` and ``options`` the config's [constants] and [options] tables."""

    id: str
    model: str
    params: dict[str, Any]
    axes: dict[str, Any]
    rng_seed: int
    constants: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def label(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.axes.items())


def point_digest(model: str, params: dict, constants: dict | None = None,
                 options: dict | None = None) -> str:
    """The SHA-256 (hex) of the point's model, parameters and the measures' version."""
    canon = json.dumps({"format": POINT_FORMAT, "measures": MEASURES_VERSION, "model": model,
                        "params": params, "constants": constants or {},
                        "options": options or {}}, sort_keys=True, separators=(",", ":"),
                       default=list)
    return hashlib.sha256(canon.encode()).hexdigest()


def points(config: SweepConfig) -> list[Point]:
    """The grid's points in order (the last axis varies fastest)."""
    base = {name: p.default for name, p in params_of(config.spec()).items()}
    base.update(config.fixed)
    out = []
    for combo in itertools.product(*config.grid.values()):
        axes = dict(zip(config.grid, combo))
        params = {**base, **axes}
        digest = point_digest(config.model, params, config.constants, config.options)
        seed = int(np.random.SeedSequence(int(digest, 16)).generate_state(1, np.uint64)[0]) >> 1
        out.append(Point(digest[:20], config.model, params, axes, seed, dict(config.constants),
                         dict(config.options)))
    return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{x:g}" for x in value)
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
