"""Draws from a model's data law, at numeric constants.

For a :class:`~symicl.expectation.Distribution` every random symbol of the
per-example loss gets a column:

* a Gaussian vector x ~ N(0, C): x = L z, z ~ N(0, I), L L^T = C (from the
  eigen-decomposition, so semi-definite C works);
* a context of N iid samples u_n ~ N(0, C) enters through its empirical
  means mean(u^alpha) = (1/N) sum_n u_n^alpha.  When every mean the model
  uses is of degree 2 and N >= dim u, the sum S = sum_n u_n u_n^T is drawn
  exactly as Wishart_dim(N, C) by the Bartlett decomposition (S = L A A^T L^T,
  A lower triangular, A_ii ~ chi(N - i), N(0, 1) below the diagonal); else
  the N samples are drawn, in chunks that bound the memory.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import sympy as sp

from ..errors import DistributionError, SymiclError
from ..expectation import Distribution

__all__ = ["DataSampler"]

_CHUNK = 2 ** 22          # numbers drawn at once for token contexts


def _numeric(expr_matrix: sp.Matrix, constants: Mapping[sp.Symbol, float], what: str) -> np.ndarray:
    sub = expr_matrix.xreplace({k: sp.Float(v) for k, v in constants.items()})
    free = sorted({s.name for e in sub for s in e.free_symbols})
    if free:
        raise SymiclError(f"the covariance of {what} needs values for {', '.join(free)}")
    out = np.array(sub.tolist(), dtype=float)
    if not np.all(np.isfinite(out)):
        raise DistributionError(f"the covariance of {what} is not finite at these constants")
    return out


def _factor(C: np.ndarray, what: str) -> np.ndarray:
    """L with L L^T = C, for symmetric positive semi-definite C."""
    if not np.allclose(C, C.T, rtol=1e-12, atol=1e-14):
        raise DistributionError(f"the covariance of {what} is not symmetric")
    w, V = np.linalg.eigh(C)
    if w.min(initial=0.0) < -1e-10 * max(1.0, float(np.abs(w).max(initial=0.0))):
        raise DistributionError(f"the covariance of {what} is not positive semi-definite "
                                f"(eigenvalue {w.min():.3g})")
    return V * np.sqrt(np.clip(w, 0.0, None))


class DataSampler:
    """Columns of the random symbols ``randoms`` of a distribution, drawn at numeric constants.

    ``constants`` maps constant names to numbers (context lengths included).
    ``draw(rng, lead)`` returns an array lead + (len(randoms),).
    """

    def __init__(self, distribution: Distribution, randoms, constants: Mapping[str, float]):
        self.randoms = list(randoms)
        col = {r: k for k, r in enumerate(self.randoms)}
        by_name = {}
        for s in distribution.constant_symbols():
            if s.name in constants:
                by_name[s] = constants[s.name]
        self._gaussians = []
        for g in distribution.gaussians:
            cols = [col.get(v) for v in g.variables]
            if all(c is None for c in cols):
                continue
            L = _factor(_numeric(g.covariance, by_name, g.name), g.name)
            self._gaussians.append((np.array([-1 if c is None else c for c in cols]), L))
        self._contexts = []
        for ctx in distribution.contexts:
            atoms = [(col[a], mono) for a, mono in ctx.atoms.items() if a in col]
            if not atoms:
                continue
            N = sp.sympify(sp.sympify(ctx.N).xreplace(by_name))
            if not N.is_number:
                raise SymiclError(f"the context length {ctx.N} needs a numeric value")
            N = float(N)
            if N != int(N) or N < 1:
                raise DistributionError(f"context length N must be a positive integer, got {N:g}")
            L = _factor(_numeric(ctx.sample.covariance, by_name, ctx.sample.name), ctx.sample.name)
            n = L.shape[0]
            wishart = all(sum(m) == 2 for _, m in atoms) and int(N) >= n
            self._contexts.append((int(N), L, atoms, wishart))
        missing = [r for r in self.randoms if not self._covers(col[r])]
        if missing:
            raise SymiclError(f"no random group draws {', '.join(str(m) for m in missing)}")

    def _covers(self, k: int) -> bool:
        return any(k in cols for cols, _ in self._gaussians) or any(
            k == c for _, _, atoms, _ in self._contexts for c, _ in atoms)

    def draw(self, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        """One draw of every random symbol for each index of ``lead``."""
        out = np.empty(tuple(lead) + (len(self.randoms),))
        for cols, L in self._gaussians:
            x = rng.standard_normal(tuple(lead) + (L.shape[1],)) @ L.T
            keep = cols >= 0
            out[..., cols[keep]] = x[..., keep]
        for N, L, atoms, wishart in self._contexts:
            S = self._wishart(rng, lead, N, L) if wishart else None
            if S is not None:
                for c, mono in atoms:
                    i, j = [k for k, e in enumerate(mono) for _ in range(e)]
                    out[..., c] = S[..., i, j] / N
            else:
                self._tokens(rng, lead, N, L, atoms, out)
        return out

    @staticmethod
    def _wishart(rng, lead, N, L):
        n = L.shape[0]
        A = np.zeros(tuple(lead) + (n, n))
        idx = np.arange(n)
        A[..., idx, idx] = np.sqrt(2.0 * rng.standard_gamma((N - idx) / 2.0, size=tuple(lead) + (n,)))
        low = np.tril_indices(n, -1)
        A[..., low[0], low[1]] = rng.standard_normal(tuple(lead) + (len(low[0]),))
        LA = L @ A
        return LA @ np.swapaxes(LA, -1, -2)

    @staticmethod
    def _tokens(rng, lead, N, L, atoms, out):
        n = L.shape[0]
        size = int(np.prod(lead, dtype=np.int64)) * n
        sums = np.zeros(tuple(lead) + (len(atoms),))
        step = max(1, _CHUNK // max(size, 1))
        done = 0
        while done < N:
            m = min(step, N - done)
            u = rng.standard_normal(tuple(lead) + (m, n)) @ L.T
            for k, (_, mono) in enumerate(atoms):
                term = np.ones(u.shape[:-1])
                for i, e in enumerate(mono):
                    if e:
                        term = term * u[..., i] ** e
                sums[..., k] += term.sum(axis=-1)
            done += m
        for k, (c, _) in enumerate(atoms):
            out[..., c] = sums[..., k] / N
