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

Sampling M.  The prediction depends on the context only through
C = sum_n z_n z_n^T.  With z_n = T x_n, T = [I; Lambda] (aligned) or
[I; w^T] (isotropic), C = T S T^T where S = sum_n x_n x_n^T is
Wishart_d(N, diag s).  ``context_sampler="wishart"`` draws S by the Bartlett
decomposition (S = L A A^T L^T, L = diag(sqrt s), A lower triangular with
A_ii ~ chi(N - i), i = 0..d-1, and N(0, 1) below the diagonal), exact in
distribution for N >= d, with d(d+1)/2 draws a prompt instead of N d;
``"tokens"`` draws the N context tokens and forms Z Z^T by a batched matmul;
``"auto"`` (the default) is wishart when N >= d and tokens otherwise.  The
query token is always drawn explicitly (it enters the prediction and, with
``query_in_moments``, M).  Either way M, z_q and y_q have the same joint law,
so the stochastic gradient is unchanged in distribution (not draw for draw).

Gradients.  ``prompt_gradients`` is the NumPy form above (per prompt);
``minibatch_gradient`` with ``backend="numba"`` (the default) runs the same
chain rule as one fused, serial Numba loop over prompts, and assembles M from
the Wishart draws in another (:mod:`symicl.simulate._kernels`); both equal
the NumPy forms to rounding, on the same random numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SymiclError
from ._kernels import batch_gradient_kernel, wishart_moments_kernel
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
    scale, query_in_moments : M = (context sum [+ z_q z_q^T]) / scale.
    context_sampler : "auto" (default: "wishart" when N >= d, else "tokens"),
        "wishart" (the exact Wishart law of the context sum; needs N >= d) or
        "tokens" (the N context tokens drawn one by one).
    backend : "numba" (default; fused serial kernels for the minibatch gradient
        and the Wishart assembly of M) or "numpy" (``prompt_gradients`` and a
        batch mean, vectorised NumPy assembly).  Same random numbers either way.
    """

    def __init__(self, dim: int, N: int, spectrum: Sequence[float], tasks: str = "aligned",
                 task_set: int | None = None, batch: int = 32, eta: float = 0.01,
                 scale: str = "N", query_in_moments: bool = True,
                 context_sampler: str = "auto", backend: str = "numba"):
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
        if context_sampler not in ("auto", "wishart", "tokens"):
            raise SymiclError(f"context_sampler must be 'auto', 'wishart' or 'tokens', "
                              f"got {context_sampler!r}")
        if context_sampler == "wishart" and N < dim:
            raise SymiclError(f"the Wishart context sampler needs N >= d (got N = {N}, "
                              f"d = {dim}); use 'tokens' or 'auto'")
        if backend not in ("numba", "numpy"):
            raise SymiclError(f"backend must be 'numba' or 'numpy', got {backend!r}")
        self.d, self.N, self.s = int(dim), int(N), s
        self.tasks, self.task_set, self.batch, self.eta = tasks, task_set, int(batch), float(eta)
        self.out = self.d if tasks == "aligned" else 1
        self.D = self.d + self.out
        self.norm = {"N": self.N, "N+1": self.N + 1, "1": 1}[scale]
        self.query_in_moments = query_in_moments
        self.context_sampler = (("wishart" if self.N >= self.d else "tokens")
                                if context_sampler == "auto" else context_sampler)
        self.backend = backend
        self._sq = np.sqrt(s)
        self._chi_df = (self.N - np.arange(self.d)) / 2.0 if self.N >= self.d else None
        self._tril = np.tril_indices(self.d, -1)

    # -- data -------------------------------------------------------------------
    def draw_tasks(self, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        """Task vectors: the diagonal of Lambda, or w; shape lead + (d,)."""
        return rng.standard_normal(lead + (self.d,))

    def _tasks_for(self, rng, lead, task_bank):
        if task_bank is None:
            return self.draw_tasks(rng, lead)
        pick = rng.integers(0, task_bank.shape[1], size=lead)       # lead = (seeds, batch)
        return task_bank[np.arange(lead[0])[:, None], pick]

    def sample(self, rng: np.random.Generator, lead: tuple, task_bank: np.ndarray | None = None):
        """M, z_q and y_q for prompts of shape ``lead`` (M = Z Z^T / scale).

        ``task_bank`` (seeds, P, d) holds fixed task sets (lead[0] = seeds).
        Uses the context sampler chosen at construction.
        """
        if self.context_sampler == "wishart":
            return self._sample_wishart(rng, lead, task_bank)
        return self._sample_tokens(rng, lead, task_bank)

    def _sample_tokens(self, rng, lead, task_bank):
        d, N = self.d, self.N
        x = rng.standard_normal(lead + (N + 1, d)) * self._sq
        task = self._tasks_for(rng, lead, task_bank)
        if self.tasks == "aligned":
            y = x * task[..., None, :]                       # y_n = Lambda x_n
        else:
            y = (x @ task[..., :, None])                     # y_n = w^T x_n, (..., N+1, 1)
        z = np.concatenate([x, y], axis=-1)                  # (..., N+1, D)
        yq = y[..., N, :].copy()
        z[..., N, d:] = 0.0                                   # the query's label slot
        ctx = z if self.query_in_moments else z[..., :N, :]
        M = np.swapaxes(ctx, -1, -2) @ ctx
        M /= self.norm
        return M, z[..., N, :].copy(), yq

    def wishart_draws(self, rng, lead, task_bank=None):
        """The random numbers of the Wishart sampler: tasks, the Bartlett factor
        A of S = sum_n x_n x_n^T (diagonal chi, below it off) and x_q."""
        d = self.d
        task = self._tasks_for(rng, lead, task_bank)
        chi = np.sqrt(2.0 * rng.standard_gamma(self._chi_df, size=lead + (d,)))
        off = rng.standard_normal(lead + (d * (d - 1) // 2,))
        xq = rng.standard_normal(lead + (d,)) * self._sq
        return task, chi, off, xq

    def _sample_wishart(self, rng, lead, task_bank):
        task, chi, off, xq = self.wishart_draws(rng, lead, task_bank)
        if self.backend == "numba":
            return self.wishart_moments_numba(task, chi, off, xq)
        return self.wishart_moments_numpy(task, chi, off, xq)

    def wishart_moments_numpy(self, task, chi, off, xq):
        """M, z_q, y_q from :meth:`wishart_draws` (vectorised NumPy)."""
        d, D = self.d, self.D
        lead = chi.shape[:-1]
        A = np.zeros(lead + (d, d))
        idx = np.arange(d)
        A[..., idx, idx] = chi
        A[..., self._tril[0], self._tril[1]] = off
        LA = A * self._sq[:, None]
        S = LA @ np.swapaxes(LA, -1, -2)                     # ~ Wishart_d(N, diag s)
        M = np.empty(lead + (D, D))
        if self.tasks == "aligned":                          # T = [I; Lambda]
            SL = S * task[..., None, :]
            M[..., :d, d:] = SL
            M[..., d:, :d] = np.swapaxes(SL, -1, -2)
            M[..., d:, d:] = SL * task[..., :, None]
            yq = task * xq
        else:                                                # T = [I; w^T]
            Sw = (S @ task[..., :, None])[..., 0]
            M[..., :d, d] = Sw
            M[..., d, :d] = Sw
            M[..., d, d] = np.sum(Sw * task, axis=-1)
            yq = np.sum(task * xq, axis=-1)[..., None]
        if self.query_in_moments:
            S += xq[..., :, None] * xq[..., None, :]
        M[..., :d, :d] = S
        M /= self.norm
        zq = np.zeros(lead + (D,))
        zq[..., :d] = xq
        return M, zq, yq

    def wishart_moments_numba(self, task, chi, off, xq):
        """The same as :meth:`wishart_moments_numpy`, one Numba loop over prompts."""
        d, D = self.d, self.D
        lead = chi.shape[:-1]
        n = int(np.prod(lead, dtype=int))
        M, zq, yq = np.empty((n, D, D)), np.empty((n, D)), np.empty((n, self.out))
        wishart_moments_kernel()(chi.reshape(n, d), off.reshape(n, -1), xq.reshape(n, d),
                                 np.ascontiguousarray(task).reshape(n, d), self._sq,
                                 self.tasks == "aligned", self.query_in_moments,
                                 float(self.norm), M, zq, yq)
        return M.reshape(lead + (D, D)), zq.reshape(lead + (D,)), yq.reshape(lead + (self.out,))

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
        if self.backend == "numpy":
            loss, gWP, gWQ = self.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq)
            return loss.mean(axis=1), gWP.mean(axis=1), gWQ.mean(axis=1)
        gWP, gWQ, loss = np.empty((S, self.D, self.D)), np.empty((S, self.D, self.D)), np.empty(S)
        batch_gradient_kernel()(np.ascontiguousarray(WP, dtype=float),
                                np.ascontiguousarray(WQ, dtype=float), M, zq, yq, gWP, gWQ, loss)
        return loss, gWP, gWQ

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
