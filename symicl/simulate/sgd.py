"""Shared pieces of the SGD simulators: results, divergence, progress."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import SymiclError

__all__ = ["SGDRun", "DivergenceError", "Progress", "check_finite"]


class DivergenceError(SymiclError):
    """SGD diverged: the message names the step and, if known, the stability bound."""


@dataclass
class SGDRun:
    """Recorded SGD trajectories of several independent seeds.

    ``params`` maps a block name to an array (seeds, records, rows, cols);
    ``loss`` is the mean minibatch loss over each recording interval (NaN at step 0),
    shape (seeds, records); ``t = eta * step`` is the flow time.
    """

    steps: np.ndarray
    t: np.ndarray
    params: dict[str, np.ndarray]
    loss: np.ndarray
    eta: float
    batch: int
    seed: int


class Progress:
    """A line on stderr every few seconds for long runs."""

    def __init__(self, total: int, label: str, enabled: bool, every: float = 5.0):
        self.total, self.label, self.enabled, self.every = total, label, enabled, every
        self.start = self.last = time.perf_counter()

    def update(self, step: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= self.every or step == self.total:
            self.last = now
            rate = step / max(now - self.start, 1e-9)
            print(f"{self.label}: step {step}/{self.total} ({100 * step / self.total:.0f}%, "
                  f"{rate:.0f} steps/s)", file=sys.stderr, flush=True)


def check_finite(step: int, eta: float, blocks: dict, losses: np.ndarray,
                 stability_bound: float | None, limit: float = 1e12) -> None:
    """Raise :class:`DivergenceError` once any seed's weights or loss blow up."""
    bad = ~np.isfinite(losses) | (np.abs(losses) > limit)
    for w in blocks.values():
        flat = w.reshape(w.shape[0], -1)
        bad |= ~np.all(np.isfinite(flat), axis=1) | (np.max(np.abs(flat), axis=1) > limit ** 0.5)
    if np.any(bad):
        seeds = np.flatnonzero(bad)
        bound = (f"; the stability bound at the fixed point is eta < 2 / lambda_max(Hessian) = "
                 f"{stability_bound:.6g}" if stability_bound is not None else "")
        raise DivergenceError(
            f"SGD diverged at step {step} (seed index {seeds[0]}) with learning rate "
            f"eta = {eta:g}{bound}")
