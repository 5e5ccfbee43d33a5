"""Minibatch SGD on the two-layer linear network f(x) = W2 W1 x.

Inputs x ~ N(0, I), labels y = T x (+ optional Gaussian label noise), loss
(1/2)|W2 W1 x - y|^2 averaged over the batch.  With r = W2 W1 x - y:

    dl/dW2 = r (W1 x)^T,   dl/dW1 = W2^T r x^T.
"""

from __future__ import annotations

import numpy as np

from ..errors import SymiclError
from .sgd import Progress, SGDRun, check_finite

__all__ = ["DeepLinearSGD"]


class DeepLinearSGD:
    """SGD on f(x) = W2 W1 x with teacher ``T`` (out x in), vectorised over seeds."""

    def __init__(self, teacher, batch: int = 32, eta: float = 0.01, noise: float = 0.0):
        T = np.asarray(teacher, dtype=float)
        if T.ndim != 2 or not np.all(np.isfinite(T)):
            raise SymiclError("teacher must be a finite out x in matrix")
        if batch < 1 or not eta > 0 or noise < 0:
            raise SymiclError(f"need batch >= 1, eta > 0, noise >= 0; got {batch}, {eta}, {noise}")
        self.T, self.batch, self.eta, self.noise = T, int(batch), float(eta), float(noise)

    def prompt_gradients(self, W1, W2, x):
        """Per-example loss and gradients; W1 (..., h, i), W2 (..., o, h), x (..., i)."""
        h = np.einsum("...ij,...j->...i", W1, x)
        y = np.einsum("oi,...i->...o", self.T, x)
        r = np.einsum("...oh,...h->...o", W2, h) - y
        loss = 0.5 * np.sum(r * r, axis=-1)
        gW2 = r[..., :, None] * h[..., None, :]
        gW1 = np.einsum("...oh,...o->...h", W2, r)[..., :, None] * x[..., None, :]
        return loss, gW1, gW2

    def minibatch_gradient(self, W1, W2, rng):
        S = W1.shape[0]
        x = rng.standard_normal((S, self.batch, self.T.shape[1]))
        loss, g1, g2 = self.prompt_gradients(W1[:, None], W2[:, None], x)
        if self.noise:
            eps = self.noise * rng.standard_normal((S, self.batch, self.T.shape[0]))
            # the label noise adds -eps to r: loss and gradients gain these terms
            r_noise_h = eps[..., :, None] * np.einsum("...ij,...j->...i", W1[:, None], x)[..., None, :]
            loss = loss + 0.5 * np.sum(eps ** 2, axis=-1)
            g2 = g2 - r_noise_h
            g1 = g1 - np.einsum("...oh,...o->...h", W2[:, None], eps)[..., :, None] * x[..., None, :]
            loss = loss - np.sum(eps * (np.einsum("...oh,...h->...o", W2[:, None], np.einsum(
                "...ij,...j->...i", W1[:, None], x)) - np.einsum("oi,...i->...o", self.T, x)), axis=-1)
        return loss.mean(axis=1), g1.mean(axis=1), g2.mean(axis=1)

    def run(self, W10, W20, steps: int, seeds: int = 1, seed: int = 0, record_every: int = 1,
            progress: bool = False, stability_bound: float | None = None) -> SGDRun:
        """``steps`` SGD steps from (W10, W20) for ``seeds`` independent runs."""
        o, i = self.T.shape
        W10, W20 = np.asarray(W10, dtype=float), np.asarray(W20, dtype=float)
        if W10.shape[-1] != i or W20.shape[-2] != o or W10.shape[-2] != W20.shape[-1]:
            raise SymiclError(f"weights of shapes {W10.shape}, {W20.shape} do not fit a teacher "
                              f"of shape {self.T.shape}")
        W1 = np.broadcast_to(W10, (seeds,) + W10.shape[-2:]).copy()
        W2 = np.broadcast_to(W20, (seeds,) + W20.shape[-2:]).copy()
        rng = np.random.default_rng(seed)
        n_rec = steps // record_every + 1
        rec1 = np.empty((seeds, n_rec) + W1.shape[1:])
        rec2 = np.empty((seeds, n_rec) + W2.shape[1:])
        recL = np.full((seeds, n_rec), np.nan)
        rec1[:, 0], rec2[:, 0] = W1, W2
        acc = np.zeros(seeds)
        bar = Progress(steps, "sgd deep-linear", progress)
        for step in range(1, steps + 1):
            loss, g1, g2 = self.minibatch_gradient(W1, W2, rng)
            W1 -= self.eta * g1
            W2 -= self.eta * g2
            acc += loss
            check_finite(step, self.eta, {"W1": W1, "W2": W2}, loss, stability_bound)
            if step % record_every == 0:
                k = step // record_every
                rec1[:, k], rec2[:, k] = W1, W2
                recL[:, k] = acc / record_every
                acc[:] = 0.0
            bar.update(step)
        steps_rec = np.arange(n_rec) * record_every
        return SGDRun(steps_rec, self.eta * steps_rec, {"W1": rec1, "W2": rec2}, recL,
                      self.eta, self.batch, seed)
