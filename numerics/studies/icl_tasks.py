"""In-context tasks, sampled as (S, B, ...) batches, one independent stream per seed.

(a) In-context linear regression (Garg et al. layout): per sequence w ~ N(0, I/D);
    x_i ~ N(0, I_D); y_i = w.x_i + noise.  Tokens interleave x_1, y_1, ..., x_N,
    y_N, x_q as vectors in R^{D+1} (x tokens [x, 0], y tokens [0, y]); the target
    is y_q (noise-free).  The best predictor that ignores the context outputs
    E[y_q | x_q] = 0, so the context-free baseline loss is E[y_q^2], measured
    on the same evaluation batch.
(b) In-context classification (induction style): N distinct items from K item
    tokens, each given a label from L label tokens by a per-sequence random map;
    tokens a_1, l_1, ..., a_N, l_N, q with q one of the a_i; the target is q's
    label.  Labels carry no information across sequences, so the best
    context-free predictor is uniform: baseline cross-entropy ln L.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class LinearRegressionTask:
    kind = "regression"

    def __init__(self, D: int, N: int, noise: float = 0.0):
        self.D, self.N, self.noise = D, N, noise
        self.n_ctx = 2 * N + 1
        self.d_in, self.vocab, self.d_out = D + 1, None, 1

    def sample(self, S, B, gen, device):
        D, N = self.D, self.N
        kw = dict(generator=gen, device=device)
        w = torch.randn(S, B, D, **kw) / math.sqrt(D)
        x = torch.randn(S, B, N + 1, D, **kw)
        y = torch.einsum("sbnd,sbd->sbn", x, w)
        y_ctx = y[..., :N] + self.noise * torch.randn(S, B, N, **kw)
        tok = torch.zeros(S, B, 2 * N + 1, D + 1, device=device)
        tok[:, :, 0::2, :D] = x
        tok[:, :, 1::2, D] = y_ctx
        return tok, y[..., N]

    def loss(self, out, target):  # per-seed mean squared error, (S,)
        return ((out[..., 0] - target) ** 2).mean(dim=1)

    def baseline(self, target):  # context-free predictor 0: E[y_q^2], (S,)
        return (target ** 2).mean(dim=1)

    def accuracy(self, out, target):
        return None


class InContextClassificationTask:
    kind = "classification"

    def __init__(self, K: int, L: int, N: int):
        if N > K:
            raise ValueError("need N <= K distinct items per sequence")
        self.K, self.L, self.N = K, L, N
        self.n_ctx = 2 * N + 1
        self.d_in, self.vocab, self.d_out = None, K + L, L

    def sample(self, S, B, gen, device):
        K, L, N = self.K, self.L, self.N
        kw = dict(generator=gen, device=device)
        items = torch.rand(S, B, K, **kw).argsort(dim=-1)[..., :N]      # distinct items
        labels = torch.randint(0, L, (S, B, N), **kw)                   # per-sequence map
        qi = torch.randint(0, N, (S, B), **kw)
        tok = torch.empty(S, B, 2 * N + 1, dtype=torch.long, device=device)
        tok[:, :, 0:2 * N:2] = items
        tok[:, :, 1:2 * N:2] = K + labels
        tok[:, :, -1] = items.gather(-1, qi[..., None])[..., 0]
        target = labels.gather(-1, qi[..., None])[..., 0]
        return tok, target

    def loss(self, out, target):
        S, B, L = out.shape
        return F.cross_entropy(out.reshape(S * B, L), target.reshape(-1), reduction="none").reshape(S, B).mean(1)

    def baseline(self, target):
        return torch.full((target.shape[0],), math.log(self.L), device=target.device)

    def accuracy(self, out, target):
        return (out.argmax(-1) == target).float().mean(dim=1)


def make_task(cfg: dict):
    if cfg["name"] == "regression":
        return LinearRegressionTask(cfg["D"], cfg["N"], cfg.get("noise", 0.0))
    if cfg["name"] == "classification":
        return InContextClassificationTask(cfg["K"], cfg["L"], cfg["N"])
    raise ValueError(f"unknown task {cfg['name']!r}")
