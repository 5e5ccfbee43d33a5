"""How far a model's weights are from the aligned block structure, along a trajectory.

For a model whose specification names the block products that make its
learned map (``learned_map``: the main path first, e.g. ("P22", "Q11") for the
linear transformer, then the null paths, ("P21", "Q21")), the *active* blocks
are the blocks of those products; the *aligned* part of the weights is the
diagonal (entries i = j) of the main path's blocks.  With ||.|| the Frobenius
norm over the active blocks B and diag(B) the entries i = j of a block::

    misalignment  mu    = || theta - aligned part || / || theta ||
                        = sqrt(sum_B ||B||^2 - sum_{B main} ||diag B||^2) / sqrt(sum_B ||B||^2),
    off-diagonal  delta = sqrt(sum_B ||B - diag B||^2) / sqrt(sum_B ||B||^2),
    null share    nu    = sqrt(sum_{B null} ||B||^2) / sqrt(sum_B ||B||^2).

All three lie in [0, 1].  mu = 0 exactly on aligned weights (main-path
blocks diagonal, null blocks zero) and mu = 1 on weights with no aligned
part (e.g. only null blocks); delta = 0 whenever every active block is
diagonal in the input eigenbasis, whichever path carries each mode, so it
separates the basis alignment (delta -> 0) from the choice of path (nu);
nu = 0 on the main path alone, 1 on the null path alone.  Blocks that do not
enter the learned map (the inert P11, P12, Q12, Q22 of the transformer) are
left out: the flow never moves them.

Invariances: each measure is unchanged by theta -> c theta (c != 0), by a
common permutation of the modes (relabelling a <-> b in every block) and by
per-mode sign changes D B D' with D, D' diagonal of +-1; it is 0/0 at
theta = 0, reported as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..model import Model

__all__ = ["Alignment", "alignment", "alignment_blocks"]


@dataclass(frozen=True)
class Alignment:
    """mu, delta, nu (each of the records' leading shape) and the squared norms behind them."""

    misalignment: np.ndarray
    off_diagonal: np.ndarray
    null_share: np.ndarray
    total: np.ndarray             # sum_B ||B||^2 over the active blocks

    def to_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist()
                for k in ("misalignment", "off_diagonal", "null_share", "total")}


def alignment_blocks(model: Model) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(main-path blocks, null-path blocks) of ``model`` present in its build, from its
    specification's ``learned_map``; a ModelError if the model has no main path."""
    from ..models import SPECS

    spec = SPECS.get(model.name)
    pairs = spec.learned_map if spec is not None else ()
    if not pairs:
        raise ModelError(f"model {model.name} names no learned map (ModelSpec.learned_map), "
                         f"so it has no aligned block structure to measure")
    blocks = model.blocks
    main = tuple(b for b in pairs[0] if b in blocks)
    if len(main) != len(pairs[0]):
        raise ModelError(f"model {model.name} lacks the main-path blocks {', '.join(pairs[0])} "
                         f"(blocks: {', '.join(blocks)})")
    null = tuple(b for pair in pairs[1:] for b in pair if b in blocks and b not in main)
    return main, null


def _entries(model: Model, name: str):
    """Parameter index of each entry of block ``name`` (-1 for a constant 0 entry)."""
    index = {p: k for k, p in enumerate(model.parameters)}
    block = model.blocks[name]
    out = np.full(block.shape, -1, dtype=int)
    for i in range(block.shape[0]):
        for j in range(block.shape[1]):
            e = block[i, j]
            if e in index:
                out[i, j] = index[e]
            elif e != 0:
                raise ModelError(f"block {name} entry ({i + 1}, {j + 1}) is {e}, neither a "
                                 f"parameter nor 0; the alignment measure needs plain entries")
    return out


def alignment(model: Model, theta) -> Alignment:
    """The misalignment mu, off-diagonal share delta and null share nu of ``theta``.

    ``theta`` is one parameter vector (P,) or records (..., P) in the order of
    ``model.parameters``; the formulas are in the module docstring.
    """
    theta = np.asarray(theta, dtype=float)
    P = len(model.parameters)
    if theta.shape[-1:] != (P,):
        raise ModelError(f"theta has last axis {theta.shape[-1:]}, expected the model's "
                         f"{P} parameters")
    main, null = alignment_blocks(model)
    lead = theta.shape[:-1]
    total = np.zeros(lead)
    diag_main = np.zeros(lead)
    off = np.zeros(lead)
    null_sq = np.zeros(lead)
    for name in main + null:
        idx = _entries(model, name)
        rows, cols = np.nonzero(idx >= 0)
        values = theta[..., idx[rows, cols]] ** 2
        on_diag = rows == cols
        sq = values.sum(axis=-1)
        total += sq
        off += values[..., ~on_diag].sum(axis=-1)
        if name in main:
            diag_main += values[..., on_diag].sum(axis=-1)
        else:
            null_sq += sq
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.sqrt(np.maximum(total - diag_main, 0.0) / total)
        delta = np.sqrt(off / total)
        nu = np.sqrt(null_sq / total)
    return Alignment(mu, delta, nu, total)

