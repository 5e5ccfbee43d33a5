"""Event detection on measured curves (NumPy only): the stated criteria.

Every criterion is a plain rule on a curve sampled at checkpoint steps, so a
reader can recompute it from the saved curves.
"""

from __future__ import annotations

import numpy as np


def first_crossing(steps, values, threshold: float, above: bool = True):
    """First step where values >= threshold (``above``) or <= threshold; None if never."""
    v = np.asarray(values, dtype=float)
    hit = v >= threshold if above else v <= threshold
    idx = np.flatnonzero(hit)
    return int(np.asarray(steps)[idx[0]]) if idx.size else None


def fall_step(steps, values, fraction: float = 0.5):
    """First step where a curve has fallen to ``fraction`` of its first value."""
    v = np.asarray(values, dtype=float)
    return first_crossing(steps, v, fraction * v[0], above=False)


def dip(steps, values, min_depth: float, skip: int = 1) -> dict:
    """A dip: an interior minimum that recovers.

    The minimum is taken over checkpoints from index ``skip`` on.  depth =
    (min(v_start, v_end) - v_min) / v_start, v_start = values[0], v_end =
    values[-1]; a monotone fall has depth 0.  ``present`` iff depth >= min_depth.
    """
    v = np.asarray(values, dtype=float)
    s = np.asarray(steps)
    i = skip + int(np.argmin(v[skip:]))
    depth = float((min(v[0], v[-1]) - v[i]) / v[0]) if v[0] > 0 else 0.0
    return {"step": int(s[i]), "depth": depth, "present": bool(depth >= min_depth)}


def within_ratio(step, ref, lo: float, hi: float) -> bool:
    """step / ref in [lo, hi] (False when either is None)."""
    if step is None or ref is None or ref <= 0:
        return False
    return lo <= step / ref <= hi


def majority(flags) -> bool:
    flags = list(flags)
    return bool(flags) and sum(bool(f) for f in flags) * 2 > len(flags)
