"""Minibatch SGD on the untruncated one-layer linear transformer.

A prompt is Z = [z_1 .. z_N z_q], z_n = (x_n; y_n), z_q = (x_q; 0), with
x ~ N(0, diag(s)) and y = Lambda x (``aligned`` tasks, Lambda diagonal
N(0,1)) or y = w^T x (``isotropic``, w ~ N(0, I)).  The model is

    f(Z) = Z + W^P M W^Q Z,   M = Z Z^T / N   (query inside the sum),

and the prediction is yhat = [W^P M W^Q z_q]_y, with loss (1/2)|yhat - y_q|^2.
The per-prompt gradient, by the chain rule through v = W^Q z_q and u = M v:

    r = yhat - y_q,   dl/dW^P_{y,:} = r u^T,   dl/dW^Q = M (W^P_{y,:})^T r z_q^T,

and every block of W^P and W^Q is trained.  Other conventions of public
linear-attention codes are options: ``scale`` ("N", "N+1" or "1") and
``query_in_moments`` (False masks the query out of M).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SymiclError
from .sgd import Progress, SGDRun, check_finite

__all__ = ["TransformerSGD"]


class TransformerSGD:
    """SGD on the full linear transformer, vectorised over prompts and seeds.

    Parameters
    ----------
    dim, N : input dimension d and context length.
    spectrum : the input eigenvalues s_1..s_d (x ~ N(0, diag(s))).
    tasks : "aligned" or "isotropic".
    task_set : None for a fresh task per prompt, or P for a fixed set of P
        tasks per seed, drawn once, each prompt using one at random.
    batch, eta : prompts per step and learning rate (mean loss over the batch).
    """

    def __init__(self, dim: int, N: int, spectrum: Sequence[float], tasks: str = "aligned",
                 task_set: int | None = None, batch: int = 32, eta: float = 0.01,
                 scale: str = "N", query_in_moments: bool = True):
        if dim < 1 or int(dim) != dim:
            raise SymiclError(f"dimension must be a positive integer, got {dim}")
        if N < 1 or int(N) != N:
            raise SymiclError(f"context length N must be a positive integer, got {N}")
        s = np.asarray(spectrum, dtype=float)
        if s.shape != (dim,) or np.any(s <= 0) or not np.all(np.isfinite(s)):
            raise SymiclError(f"spectrum must hold {dim} positive eigenvalues, got {spectrum}")
        if tasks not in ("aligned", "isotropic"):
            raise SymiclError(f"unknown task distribution {tasks!r}")
        if task_set is not None and task_set < 1:
            raise SymiclError(f"task_set must be a positive number of tasks, got {task_set}")
        if batch < 1 or not eta > 0:
            raise SymiclError(f"batch must be >= 1 and eta > 0, got {batch} and {eta}")
        if scale not in ("N", "N+1", "1"):
            raise SymiclError(f"scale must be 'N', 'N+1' or '1', got {scale!r}")
        self.d, self.N, self.s = int(dim), int(N), s
        self.tasks, self.task_set, self.batch, self.eta = tasks, task_set, int(batch), float(eta)
        self.out = self.d if tasks == "aligned" else 1
        self.D = self.d + self.out
        self.norm = {"N": self.N, "N+1": self.N + 1, "1": 1}[scale]
        self.query_in_moments = query_in_moments

    # -- data -------------------------------------------------------------------
    def draw_tasks(self, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        """Task vectors: the diagonal of Lambda, or w; shape lead + (d,)."""
        return rng.standard_normal(lead + (self.d,))

    def sample(self, rng: np.random.Generator, lead: tuple, task_bank: np.ndarray | None = None):
        """M = Z Z^T / N, z_q and y_q for prompts of shape ``lead``.

        ``task_bank`` (seeds, P, d) holds fixed task sets (lead[0] = seeds).
        """
        d, N = self.d, self.N
        x = rng.standard_normal(lead + (N + 1, d)) * np.sqrt(self.s)
        if task_bank is None:
            task = self.draw_tasks(rng, lead)
        else:
            pick = rng.integers(0, task_bank.shape[1], size=lead)   # lead = (seeds, batch)
            task = task_bank[np.arange(lead[0])[:, None], pick]
        if self.tasks == "aligned":
            y = x * task[..., None, :]                       # y_n = Lambda x_n
        else:
            y = np.einsum("...nd,...d->...n", x, task)[..., None]
        z = np.concatenate([x, y], axis=-1)                  # (..., N+1, D)
        yq = y[..., N, :].copy()
        z[..., N, d:] = 0.0                                   # the query's label slot
        ctx = z if self.query_in_moments else z[..., :N, :]
        M = np.einsum("...ni,...nj->...ij", ctx, ctx) / self.norm
        return M, z[..., N, :], yq

    # -- gradients ----------------------------------------------------------------
    def prompt_gradients(self, WP: np.ndarray, WQ: np.ndarray, M, zq, yq):
        """Per-prompt loss and gradients; WP, WQ (..., D, D) broadcast over prompts.

        Returns (loss (...,), dWP (..., D, D), dWQ (..., D, D)).
        """
        d = self.d
        v = np.einsum("...ij,...j->...i", WQ, zq)
        u = np.einsum("...ij,...j->...i", M, v)
        Py = WP[..., d:, :]
        r = np.einsum("...oj,...j->...o", Py, u) - yq
        loss = 0.5 * np.sum(r * r, axis=-1)
        gWP = np.zeros(np.broadcast_shapes(WP.shape, M.shape))
        gWP[..., d:, :] = r[..., :, None] * u[..., None, :]
        a = np.einsum("...oi,...o->...i", Py, r)
        Ma = np.einsum("...ij,...j->...i", M, a)
        gWQ = Ma[..., :, None] * zq[..., None, :]
        return loss, gWP, gWQ

    def minibatch_gradient(self, WP, WQ, rng, task_bank=None):
        """Mean loss and gradient over one minibatch per seed; WP, WQ (S, D, D)."""
        S = WP.shape[0]
        M, zq, yq = self.sample(rng, (S, self.batch), task_bank)
        loss, gWP, gWQ = self.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq)
        return loss.mean(axis=1), gWP.mean(axis=1), gWQ.mean(axis=1)

    # -- training ---------------------------------------------------------------------
    def run(self, WP0, WQ0, steps: int, seeds: int = 1, seed: int = 0, record_every: int = 1,
            progress: bool = False, stability_bound: float | None = None) -> SGDRun:
        """``steps`` SGD steps from (WP0, WQ0) for ``seeds`` independent runs.

        Initial weights (D, D) are shared by all seeds, or given per seed
        (seeds, D, D).  Records every ``record_every`` steps (step 0 included).
        """
        D = self.D
        WP = np.broadcast_to(np.asarray(WP0, dtype=float), (seeds, D, D)).copy()
        WQ = np.broadcast_to(np.asarray(WQ0, dtype=float), (seeds, D, D)).copy()
        if steps < 0 or record_every < 1:
            raise SymiclError("steps must be >= 0 and record_every >= 1")
        rng = np.random.default_rng(seed)
        bank = None if self.task_set is None else self.draw_tasks(rng, (seeds, self.task_set))
        n_rec = steps // record_every + 1
        rec_P = np.empty((seeds, n_rec, D, D))
        rec_Q = np.empty((seeds, n_rec, D, D))
        rec_L = np.full((seeds, n_rec), np.nan)
        rec_P[:, 0], rec_Q[:, 0] = WP, WQ
        acc = np.zeros(seeds)
        bar = Progress(steps, "sgd linear-transformer", progress)
        for step in range(1, steps + 1):
            loss, gP, gQ = self.minibatch_gradient(WP, WQ, rng, bank)
            WP -= self.eta * gP
            WQ -= self.eta * gQ
            acc += loss
            check_finite(step, self.eta, {"WP": WP, "WQ": WQ}, loss, stability_bound)
            if step % record_every == 0:
                k = step // record_every
                rec_P[:, k], rec_Q[:, k] = WP, WQ
                rec_L[:, k] = acc / record_every
                acc[:] = 0.0
            bar.update(step)
        steps_rec = np.arange(n_rec) * record_every
        return SGDRun(steps_rec, self.eta * steps_rec, {"WP": rec_P, "WQ": rec_Q}, rec_L,
                      self.eta, self.batch, seed)
