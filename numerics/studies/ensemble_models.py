"""Transformers with a leading seed axis: S independent models trained in one pass.

Every parameter has shape (S, ...); each seed's slice is initialised from its
own generator, and because the loss is a sum of per-seed losses and AdamW is
elementwise, training the stack is the same as training S models separately.
Conventions follow TransformerLens / Nanda et al.: W_Q, W_K, W_V in
(d_model, d_head), W_O in (d_head, d_model), so QK = W_Q W_K^T and
OV = W_V W_O are d_model x d_model matrices of rank <= d_head.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _normal(S, shape, std, seeds, device):
    """Stack of S tensors, seed i's drawn from torch.Generator(seed=seeds[i]) on the CPU."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        out.append(torch.randn(*shape, generator=g) * std)
    return nn.Parameter(torch.stack(out).to(device))


class SeedStream:
    """Distinct deterministic generator seeds for successive parameter tensors."""

    def __init__(self, seeds, salt: int):
        self.seeds, self.k = list(seeds), salt * 1000

    def next(self):
        self.k += 1
        return [1_000_003 * s + self.k for s in self.seeds]


class Attention(nn.Module):
    """Causal multi-head softmax attention, per seed; returns the residual update."""

    def __init__(self, S, d_model, n_heads, d_head, stream, device):
        super().__init__()
        std = 1.0 / math.sqrt(d_model)
        self.W_Q = _normal(S, (n_heads, d_model, d_head), std, stream.next(), device)
        self.W_K = _normal(S, (n_heads, d_model, d_head), std, stream.next(), device)
        self.W_V = _normal(S, (n_heads, d_model, d_head), std, stream.next(), device)
        self.W_O = _normal(S, (n_heads, d_head, d_model), std, stream.next(), device)
        self.d_head = d_head

    def forward(self, x):  # x: (S, B, T, d)
        q = torch.einsum("sbtd,shde->sbhte", x, self.W_Q)
        k = torch.einsum("sbtd,shde->sbhte", x, self.W_K)
        v = torch.einsum("sbtd,shde->sbhte", x, self.W_V)
        T = x.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        attn = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
        z = attn @ v                                              # (S, B, H, T, e)
        return torch.einsum("sbhte,shed->sbtd", z, self.W_O)

    @torch.no_grad()
    def circuits(self):
        """QK = W_Q W_K^T and OV = W_V W_O per seed and head, float64 on the CPU: (S, H, d, d)."""
        Wq, Wk, Wv, Wo = (w.detach().to("cpu", torch.float64) for w in (self.W_Q, self.W_K, self.W_V, self.W_O))
        return Wq @ Wk.transpose(-1, -2), Wv @ Wo


class AttnOnlyTransformer(nn.Module):
    """Attention-only transformer (no MLP, no LayerNorm) with a linear or token input."""

    def __init__(self, S, seeds, n_layers, d_model, n_heads, d_head, n_ctx, d_in=None, vocab=None,
                 d_out=1, device="cpu"):
        super().__init__()
        stream = SeedStream(seeds, salt=1)
        std = 1.0 / math.sqrt(d_model)
        if (d_in is None) == (vocab is None):
            raise ValueError("give exactly one of d_in (vector tokens) or vocab (discrete tokens)")
        self.embed = _normal(S, (d_in if d_in else vocab, d_model), std if vocab else 1.0 / math.sqrt(d_in),
                             stream.next(), device)
        self.discrete = vocab is not None
        self.pos = _normal(S, (n_ctx, d_model), std, stream.next(), device)
        self.layers = nn.ModuleList(Attention(S, d_model, n_heads, d_head, stream, device) for _ in range(n_layers))
        self.unembed = _normal(S, (d_model, d_out), std, stream.next(), device)

    def forward(self, tokens):
        """tokens: (S, B, T) int or (S, B, T, d_in) float -> (S, B, d_out) at the last position."""
        if self.discrete:
            x = self.embed[torch.arange(tokens.shape[0], device=tokens.device)[:, None, None], tokens]
        else:
            x = torch.einsum("sbti,sid->sbtd", tokens, self.embed)
        x = x + self.pos[:, None, : x.shape[2]]
        for layer in self.layers:
            x = x + layer(x)
        return torch.einsum("sbd,sdo->sbo", x[:, :, -1], self.unembed)


class GrokTransformer(nn.Module):
    """Nanda et al.'s one-layer modular-addition transformer, per seed.

    Embedding W_E (p+1, d), learned positions (3, d), attention, ReLU MLP
    (d -> d_mlp -> d, biases start at 0), untied unembedding (d, p); no
    LayerNorm.  Init N(0,1)/sqrt(d_model) except W_U ~ N(0,1)/sqrt(d_vocab).
    """

    def __init__(self, S, seeds, p, d_model, n_heads, d_head, d_mlp, n_layers=1, device="cpu"):
        super().__init__()
        stream = SeedStream(seeds, salt=2)
        std = 1.0 / math.sqrt(d_model)
        self.W_E = _normal(S, (p + 1, d_model), std, stream.next(), device)
        self.W_pos = _normal(S, (3, d_model), std, stream.next(), device)
        self.attn = nn.ModuleList(Attention(S, d_model, n_heads, d_head, stream, device) for _ in range(n_layers))
        self.W_in = nn.ParameterList(_normal(S, (d_model, d_mlp), std, stream.next(), device) for _ in range(n_layers))
        self.b_in = nn.ParameterList(nn.Parameter(torch.zeros(S, d_mlp, device=device)) for _ in range(n_layers))
        self.W_out = nn.ParameterList(_normal(S, (d_mlp, d_model), std, stream.next(), device) for _ in range(n_layers))
        self.b_out = nn.ParameterList(nn.Parameter(torch.zeros(S, d_model, device=device)) for _ in range(n_layers))
        self.W_U = _normal(S, (d_model, p), 1.0 / math.sqrt(p + 1), stream.next(), device)

    def forward(self, tokens):  # tokens: (S, B, 3) -> logits (S, B, p)
        seed_idx = torch.arange(tokens.shape[0], device=tokens.device)[:, None, None]
        x = self.W_E[seed_idx, tokens] + self.W_pos[:, None]
        last = len(self.attn) - 1
        for l, attn in enumerate(self.attn):
            x = x + attn(x)
            if l == last:   # only the final position feeds the logits: skip the MLP elsewhere (exact)
                x = x[:, :, -1:]
            h = torch.relu(torch.einsum("sbtd,sdm->sbtm", x, self.W_in[l]) + self.b_in[l][:, None, None])
            x = x + torch.einsum("sbtm,smd->sbtd", h, self.W_out[l]) + self.b_out[l][:, None, None]
        return torch.einsum("sbd,sdp->sbp", x[:, :, -1], self.W_U)
