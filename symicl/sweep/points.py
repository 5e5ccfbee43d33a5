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
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SweepConfig
from .schema import MODELS

__all__ = ["Point", "point_digest", "points", "spectrum"]

POINT_FORMAT = "symicl-sweep-point/1"


@dataclass(frozen=True)
class Point:
    """One point of a sweep: ``params`` holds every parameter, ``axes`` the grid's."""

    id: str
    model: str
    params: dict[str, Any]
    axes: dict[str, Any]
    rng_seed: int

    def label(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.axes.items())


def point_digest(model: str, params: dict) -> str:
    """The SHA-256 (hex) of the point's model and parameters."""
    canon = json.dumps({"format": POINT_FORMAT, "model": model, "params": params},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def points(config: SweepConfig) -> list[Point]:
    """The grid's points in order (the last axis varies fastest)."""
    base = {name: p.default for name, p in MODELS[config.model].items()}
    base.update(config.fixed)
    if "spectrum" in config.fixed or "spectrum" in config.grid:
        base["anisotropy"] = None
    out = []
    for combo in itertools.product(*config.grid.values()):
        axes = dict(zip(config.grid, combo))
        params = {**base, **axes}
        if config.model == "linear-transformer":
            params["spectrum"] = spectrum(params)
        digest = point_digest(config.model, params)
        seed = int(np.random.SeedSequence(int(digest, 16)).generate_state(1, np.uint64)[0]) >> 1
        out.append(Point(digest[:20], config.model, params, axes, seed))
    return out


def spectrum(params: dict) -> tuple[float, ...]:
    """The given spectrum, or s_a = k^(1/2 - a/(d-1)) for anisotropy k (s_1/s_d = k)."""
    if params.get("spectrum") is not None:
        return tuple(params["spectrum"])
    d, k = params["dim"], params["anisotropy"]
    return tuple(float(k ** (0.5 - a / (d - 1))) if d > 1 else 1.0 for a in range(d))


def _show(value: Any) -> str:
    return ",".join(f"{x:g}" for x in value) if isinstance(value, tuple) else f"{value:g}"
