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
family's dimension + h^2).

S_0 when a 2 x 2 gauge block X has both a left action (partner Y_L) and a
right one (partner Y_R): det X = 0 is rank X <= 1, split into X = 0 (solved
with X substituted) and four disjoint charts of the rank-one matrices by the
first non-zero row i and column j (:func:`rank_one_lift`): X = g (X_ij E_ij) H
with g, H unit triangular and determined by X, so the chart's critical points
are the images (X, Y_L' g^-1, H^-1 Y_R') of those of the slice X = X_ij E_ij
(X_ij != 0), one to one.  Otherwise (no such block, or h > 2) S_0 is solved
without a gauge.

Every critical point lies in exactly one stratum (or chart): the union of
their solutions is the whole critical set, and the strata are disjoint; a
family of one stratum may lie in the closure of a family of another, and
is reported in both.
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


def rank_one_block(gauges: list[BlockAction], actions: list[BlockAction], blocks: dict):
    """(X, left action, right action) for the first 2 x 2 gauge block that has both a left
    and a right action, or None.  There the stratum det X = 0 is {X = 0} and the four
    rank-one charts of :func:`rank_one_lift` (rank <= 1 is det = 0 only for h = 2)."""
    for g in gauges:
        if blocks[g.X].shape != (2, 2):
            continue
        left = next((a for a in actions if a.X == g.X and a.side == "left"), None)
        right = next((a for a in actions if a.X == g.X and a.side == "right"), None)
        if left is not None and right is not None:
            return g.X, left, right
    return None


def rank_one_lift(X: sp.Matrix, i: int, j: int, b):
    """Chart (i, j) of the rank-one matrices: first non-zero row i, first non-zero column j.

    Every such X is  g (b E_ij) H  with b = X_ij != 0,  g = I + sum_{k>i} (X_kj / b) E_ki
    and  H = I + sum_{k>j} (X_ik / b) E_jk  (both of determinant 1), uniquely: the chart
    coordinates are X_ij and the entries X_kj (k > i), X_ik (k > j); the other entries are
    X_kl = X_kj X_il / b (k > i, l > j) and 0.  Returns (X as a function of the
    coordinates, g, H, the coordinates)."""
    h = X.shape[0]
    g, H = sp.eye(h), sp.eye(h)
    coords = []
    for k in range(i + 1, h):
        g[k, i] = X[k, j] / b
        coords.append(X[k, j])
    for k in range(j + 1, h):
        H[j, k] = X[i, k] / b
        coords.append(X[i, k])
    E = sp.zeros(h, h)
    E[i, j] = b
    return (g * E * H).applyfunc(sp.cancel), g, H, coords
