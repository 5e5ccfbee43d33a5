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


def _columns(cols):
    """A slice when the columns are consecutive (plain, fast indexing), else an index array."""
    cols = np.asarray(cols, dtype=np.int64)
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        return slice(int(cols[0]), int(cols[0]) + len(cols))
    return cols


def _diagonal(C: np.ndarray, keep: np.ndarray):
    """sqrt of the diagonal of C at ``keep`` when C is diagonal (then x = sqrt(c) * z, no
    matrix product), else None."""
    if np.count_nonzero(C - np.diag(np.diag(C))):
        return None
    return np.sqrt(np.diag(C))[keep]


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
        self._gaussians, self._contexts, at = [], [], 0
        for g in distribution.gaussians:
            cols = [col.get(v) for v in g.variables]
            if all(c is None for c in cols):
                continue
            C = _numeric(g.covariance, by_name, g.name)
            L = _factor(C, g.name)
            keep = np.array([c is not None for c in cols])
            used = _columns([c for c in cols if c is not None])
            diag = _diagonal(C, keep)
            if diag is not None:         # independent entries: draw only the used ones
                self._gaussians.append((at, len(diag), used, None, diag))
                at += len(diag)
            else:                        # x[keep] = L[keep] z
                self._gaussians.append((at, L.shape[1], used, L[keep], None))
                at += L.shape[1]
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
            C = _numeric(ctx.sample.covariance, by_name, ctx.sample.name)
            L = _factor(C, ctx.sample.name)
            n = L.shape[0]
            wishart = all(sum(m) == 2 for _, m in atoms) and int(N) >= n
            entry = {"N": int(N), "L": L, "atoms": atoms, "wishart": wishart}
            if wishart:
                up = np.triu_indices(n, 1)               # A^T's upper part: A's lower part
                entry.update(
                    diag=_diagonal(C, np.ones(n, bool)), half_df=(int(N) - np.arange(n)) / 2.0,
                    off_flat=_columns(up[0] * n + up[1]),
                    n_off=len(up[0]), at=at,
                    pairs=[(c,) + tuple(k for k, e in enumerate(m) for _ in range(e))
                           for c, m in atoms])
                at += len(up[0])
            self._contexts.append(entry)
        self._n_normals = at
        covered = np.zeros(len(self.randoms), bool)
        for _, _, cols, _, _ in self._gaussians:
            covered[cols] = True
        for ctx in self._contexts:
            covered[[c for c, _ in ctx["atoms"]]] = True
        missing = [r for r, ok in zip(self.randoms, covered) if not ok]
        if missing:
            raise SymiclError(f"no random group draws {', '.join(str(m) for m in missing)}")

    def draw(self, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        """One draw of every random symbol for each index of ``lead``.

        All standard normals of the Gaussian groups and of the Bartlett factors
        come from one call of the generator, and the columns are written as a
        flat (prompts, R) array (few, large NumPy operations: at a batch of a
        few hundred prompts the cost is in the number of calls, not the work).
        """
        lead = tuple(lead)
        M = int(np.prod(lead, dtype=np.int64))
        out = np.empty((M, len(self.randoms)))
        Z = rng.standard_normal((M, self._n_normals)) if self._n_normals else None
        for at, width, cols, L, diag in self._gaussians:
            z = Z[:, at:at + width]
            out[:, cols] = z * diag if diag is not None else z @ L.T
        for ctx in self._contexts:
            if ctx["wishart"]:
                self._wishart(rng, M, ctx, Z, out)
            else:
                self._tokens(rng, lead, ctx["N"], ctx["L"], ctx["atoms"], out.reshape(lead + (-1,)))
        return out.reshape(lead + (len(self.randoms),))

    @staticmethod
    def _wishart(rng, M, ctx, Z, out):
        """The context means of degree 2 from S ~ Wishart_n(N, L L^T), S = (L A)(L A)^T, A the
        Bartlett factor; only the entries S_ij the model uses are formed."""
        N, L, diag, n = ctx["N"], ctx["L"], ctx["diag"], ctx["L"].shape[0]
        # AT[m, k, l] = A[m, l, k]: upper triangular, chi on the diagonal
        AT = np.zeros((M, n, n))
        flat = AT.reshape(M, n * n)
        for i, h in enumerate(ctx["half_df"]):          # chi_(N - i), one call per scalar law
            flat[:, i * (n + 1)] = np.sqrt(2.0 * rng.standard_gamma(h, size=M))
        if ctx["n_off"]:
            at = ctx["at"]
            flat[:, ctx["off_flat"]] = Z[:, at:at + ctx["n_off"]]
        if diag is not None:
            LAT = AT * diag                          # LAT[m, k, i] = (L A)[m, i, k]
        else:
            LAT = (AT.reshape(M * n, n) @ L.T).reshape(M, n, n)
        for c, i, j in ctx["pairs"]:
            col = LAT[:, :, i] * LAT[:, :, j]
            out[:, c] = col.sum(axis=1) / N if n > 1 else col[:, 0] / N

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
