"""Strata of parameter space by the rank of square blocks, and the gauge slice on each.

A *block action* is a general linear group acting on two parameter blocks by
matrix multiplication,

    left:   X -> G X,       Y -> Y G^{-1}      (X is h x h, Y has h columns)
    right:  X -> X G^{-1},  Y -> G Y           (X is h x h, Y has h rows)

for all G in GL(h).  It is found from the model, not assumed: the loss must be
invariant under the whole Lie algebra gl(h) (grad L . delta theta = 0
identically for each generator E_ij, delta X = E X, delta Y = -Y E; the
transpose for the right action), which gives invariance under the identity
component GL+(h), and under one reflection R = diag(-1, 1, ..., 1) (checked
exactly: L(R X, Y R) = L(X, Y)), which gives the other component.

Strata.  With the gauge blocks X_1, ..., X_k (square blocks that have an
action, in a fixed order) parameter space is the disjoint union of

    S_i = {det X_1 = ... = det X_{i-1} = 0, det X_i != 0}   (i = 1..k)
    S_0 = {det X_1 = ... = det X_k = 0}.

Each det X_j = 0 is invariant under every block action (left or right
multiplication by an invertible matrix keeps the rank).  On S_i, g = X_i
(left) or X_i^{-1} (right) maps the point to the slice X_i = I, and since the
loss is invariant, the critical points in S_i are exactly the images

    X_i free with det X_i != 0,   Y = Y' X_i^{-1}  (left)   or  Y = X_i^{-1} Y'  (right)

of the critical points (X_i = I, Y', the rest) of the loss on the slice with
det X_j = 0 for j < i; the map is one to one, so dimensions add (the slice
family's dimension + h^2).  S_0 is solved without a gauge.  Every critical
point lies in exactly one stratum: the union of the strata's solutions is the
whole critical set, with no point counted twice (a family of one stratum may
lie in the closure of a family of another).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..model import Model

__all__ = ["BlockAction", "block_actions", "gauge_blocks"]


@dataclass(frozen=True)
class BlockAction:
    """GL(h) acting on the square block ``X`` and its partner ``Y`` (``side``: left/right)."""

    X: str
    Y: str
    side: str

    def describe(self) -> str:
        if self.side == "left":
            return f"{self.X} -> G {self.X}, {self.Y} -> {self.Y} G^-1"
        return f"{self.X} -> {self.X} G^-1, {self.Y} -> G {self.Y}"

    def lift(self, X: sp.Matrix, Y_slice: sp.Matrix) -> sp.Matrix:
        """Y at the point g . (X = I, Y'): Y' X^-1 (left) or X^-1 Y' (right)."""
        inv = X.adjugate() / X.det()
        return Y_slice * inv if self.side == "left" else inv * Y_slice

    def to_slice(self, X: sp.Matrix, Y: sp.Matrix) -> sp.Matrix:
        """Y' of the slice point for the point (X, Y): Y X (left) or X Y (right)."""
        return Y * X if self.side == "left" else X * Y


def _invariant(loss, grad, X, Y, side) -> bool:
    h = X.shape[0]
    for i in range(h):
        for j in range(h):
            E = sp.zeros(h, h)
            E[i, j] = 1
            dX, dY = (E * X, -Y * E) if side == "left" else (-X * E, E * Y)
            total = sum(grad[p] * d for M, dM in ((X, dX), (Y, dY))
                        for p, d in zip(M, dM) if d != 0)
            if sp.expand(total) != 0:
                return False
    R = sp.eye(h)
    R[0, 0] = -1
    Xr, Yr = (R * X, Y * R) if side == "left" else (X * R, R * Y)
    sub = dict(zip(X, Xr))
    sub.update(zip(Y, Yr))
    return sp.expand(loss.xreplace(sub) - loss) == 0


def block_actions(model: Model, loss=None) -> list[BlockAction]:
    """Every block action (left and right, see the module docstring) the loss is invariant
    under, each certified exactly; ``loss`` defaults to the model's expected loss."""
    loss = model.expected_loss() if loss is None else loss
    params = set(model.parameters)
    blocks = {k: v for k, v in model.blocks.items()
              if all(isinstance(e, sp.Symbol) and e in params for e in v)}
    grad = {p: sp.diff(loss, p) for p in params}
    out = []
    for xn, X in blocks.items():
        if X.shape[0] != X.shape[1]:
            continue
        h = X.shape[0]
        for yn, Y in blocks.items():
            if yn == xn:
                continue
            for side, fits in (("left", Y.shape[1] == h), ("right", Y.shape[0] == h)):
                if fits and _invariant(loss, grad, X, Y, side):
                    out.append(BlockAction(xn, yn, side))
    return out


def gauge_blocks(actions: list[BlockAction], order: list[str]) -> list[BlockAction]:
    """One action per gauge block, the blocks with the most actions first (then model
    order); for each block its first action in (model order of the partner, left first)."""
    by_block: dict[str, list[BlockAction]] = {}
    for a in actions:
        by_block.setdefault(a.X, []).append(a)
    names = sorted(by_block, key=lambda n: (-len(by_block[n]), order.index(n)))
    return [sorted(by_block[n], key=lambda a: (order.index(a.Y), a.side != "left"))[0]
            for n in names]
