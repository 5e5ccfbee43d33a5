"""Shared pieces of the SGD simulators: results, divergence, progress."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import SymiclError

__all__ = ["SGDRun", "DivergenceError", "Progress", "check_finite", "Simulator", "Guard",
           "ThetaRun", "run_sgd"]


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


class Simulator(Protocol):
    """What SGD needs of a model: stochastic gradients on fresh data.

    ``parameters`` orders theta as the model's parameters;
    ``minibatch(theta (S, P), rng)`` gives the mean loss (S,) and mean
    gradient (S, P) over one fresh batch per row; ``examples(theta (P,), n,
    rng)`` the per-example loss (n,) and gradients (n, P).
    """

    parameters: tuple[str, ...]
    batch: int

    def minibatch(self, theta: np.ndarray, rng: np.random.Generator): ...

    def examples(self, theta: np.ndarray, n: int, rng: np.random.Generator): ...


@dataclass
class Guard:
    """Divergence bounds of an SGD run: |theta_i| <= weights and |loss| <= loss.

    A run that leaves them, or holds a non-finite number, raises
    :class:`DivergenceError` naming the step; ``why`` says where the bounds
    come from.
    """

    weights: float = 1e6
    loss: float = 1e12
    why: str = "fixed bounds"


@dataclass
class ThetaRun:
    """Recorded SGD of several seeds: ``theta`` (seeds, records, P), ``loss`` (seeds, records).

    ``loss[:, k]`` is the mean minibatch loss over the steps before record k
    (NaN at step 0); ``t = eta * steps``.
    """

    steps: np.ndarray
    t: np.ndarray
    theta: np.ndarray
    loss: np.ndarray
    eta: float
    batch: int
    seed: int


def run_sgd(sim: Simulator, theta0, steps: int, eta: float, seeds: int = 1, seed: int = 0,
            record_every: int = 1, progress: bool = False, guard: Guard | None = None,
            label: str = "sgd") -> ThetaRun:
    """``steps`` SGD steps theta <- theta - eta g from ``theta0`` for ``seeds`` runs."""
    if steps < 1 or record_every < 1 or seeds < 1:
        raise SymiclError(f"need steps >= 1, record_every >= 1 and seeds >= 1; got {steps}, "
                          f"{record_every}, {seeds}")
    if not eta > 0 or not np.isfinite(eta):
        raise SymiclError(f"learning rate must be a positive number, got {eta}")
    guard = guard or Guard()
    theta0 = np.asarray(theta0, dtype=float)
    P = len(sim.parameters)
    theta = np.broadcast_to(theta0, (seeds, P)).copy()
    rng = np.random.default_rng(seed)
    n_rec = steps // record_every + 1
    rec = np.empty((seeds, n_rec, P))
    rec_L = np.full((seeds, n_rec), np.nan)
    rec[:, 0] = theta
    acc = np.zeros(seeds)
    bar = Progress(steps, label, progress)
    for step in range(1, steps + 1):
        loss, g = sim.minibatch(theta, rng)
        theta -= eta * g
        acc += loss
        bad = ~np.isfinite(loss) | (np.abs(loss) > guard.loss) | \
            ~np.all(np.isfinite(theta), axis=1) | (np.max(np.abs(theta), axis=1) > guard.weights)
        if np.any(bad):
            s = int(np.flatnonzero(bad)[0])
            raise DivergenceError(
                f"SGD diverged at step {step} of {steps} (seed index {s}, eta = {eta:g}): "
                f"loss {loss[s]:.3g}, max |theta| {np.max(np.abs(theta[s])):.3g} beyond the "
                f"bounds {guard.loss:.3g} and {guard.weights:.3g} ({guard.why})")
        if step % record_every == 0:
            k = step // record_every
            rec[:, k] = theta
            rec_L[:, k] = acc / record_every
            acc[:] = 0.0
        bar.update(step)
    steps_rec = np.arange(n_rec) * record_every
    return ThetaRun(steps_rec, eta * steps_rec, rec, rec_L, float(eta), sim.batch, seed)
