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
  the N samples are drawn, in chunks that bound the memory;
* a non-Gaussian vector (:mod:`symicl.sources`: independent sources, mixtures)
  is drawn by its own ``draw`` at the numeric constants, and a context whose
  sample is not Gaussian always draws its N tokens (the Wishart shortcut
  holds for Gaussian samples only).

The random numbers come from NumPy's generator in a few calls (one for every
standard normal of the Gaussian groups and Bartlett factors, one per chi
law); every column that is linear in them (x = L z and the entries of L A)
or a sum of products of two such (the Wishart entries S_ij / N) is then
formed in one serial Numba loop over the draws, from sparse tables built
once per sampler.  At a batch of a few hundred prompts this costs far less
than the dozen NumPy calls it replaces.  Token contexts stay in NumPy.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import sympy as sp

from ..errors import DistributionError, SymiclError
from ..expectation import Distribution
from ..gaussian import Gaussian

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


def _assemble_py(Z, G, ptr, src, coef, lin_out, lin_y, at_out, at_ptr, at_a, at_b, at_div,
                 out):
    """Columns linear in the draws and sums of products of two of them, one loop over draws.

    Z (M, nz) standard normals, G (M, ng) gamma draws (chi = sqrt(2 G)).  Linear values
    y_c = sum_{q in ptr[c]:ptr[c+1]} coef[q] v[src[q]], v = (Z row, chi row); then
    out[:, lin_out[t]] = y[lin_y[t]] and out[:, at_out[t]] = sum_q y[at_a[q]] y[at_b[q]] /
    at_div[t], q in at_ptr[t]:at_ptr[t+1].
    """
    M, nz, ng = Z.shape[0], Z.shape[1], G.shape[1]
    y = np.empty(ptr.shape[0] - 1)
    v = np.empty(nz + ng)
    for m in range(M):
        for k in range(nz):
            v[k] = Z[m, k]
        for k in range(ng):
            v[nz + k] = np.sqrt(2.0 * G[m, k])
        for c in range(y.shape[0]):
            acc = 0.0
            for q in range(ptr[c], ptr[c + 1]):
                acc += coef[q] * v[src[q]]
            y[c] = acc
        for t in range(lin_out.shape[0]):
            out[m, lin_out[t]] = y[lin_y[t]]
        for t in range(at_out.shape[0]):
            acc = 0.0
            for q in range(at_ptr[t], at_ptr[t + 1]):
                acc += y[at_a[q]] * y[at_b[q]]
            out[m, at_out[t]] = acc / at_div[t]


_compiled = {}


def _assemble_kernel():
    """The Numba form of :func:`_assemble_py`, compiled (or loaded from Numba's cache) once."""
    if "assemble" not in _compiled:
        import numba
        _compiled["assemble"] = numba.njit(cache=True, fastmath=False)(_assemble_py)
    return _compiled["assemble"]


class _Tables:
    """Sparse tables of :func:`_assemble_py`, filled while the sampler is built."""

    def __init__(self):
        self.terms: list[list[tuple[int, float]]] = []      # per linear value: (source, coef)
        self.lin: list[tuple[int, int]] = []                # (out column, linear value)
        self.atoms: list[tuple[int, list[tuple[int, int]], float]] = []   # (col, pairs, div)

    def value(self, terms) -> int:
        self.terms.append([(int(k), float(c)) for k, c in terms if c != 0.0])
        return len(self.terms) - 1

    def arrays(self):
        i64 = np.int64
        ptr = np.cumsum([0] + [len(t) for t in self.terms]).astype(i64)
        src = np.array([k for t in self.terms for k, _ in t], dtype=i64)
        coef = np.array([c for t in self.terms for _, c in t], dtype=float)
        lin_out = np.array([c for c, _ in self.lin], dtype=i64)
        lin_y = np.array([y for _, y in self.lin], dtype=i64)
        at_out = np.array([c for c, _, _ in self.atoms], dtype=i64)
        at_ptr = np.cumsum([0] + [len(p) for _, p, _ in self.atoms]).astype(i64)
        at_a = np.array([a for _, p, _ in self.atoms for a, _ in p], dtype=i64)
        at_b = np.array([b for _, p, _ in self.atoms for _, b in p], dtype=i64)
        at_div = np.array([d for _, _, d in self.atoms], dtype=float)
        return ptr, src, coef, lin_out, lin_y, at_out, at_ptr, at_a, at_b, at_div


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
        tab = _Tables()
        n_z, half_df = 0, []                # standard normals, and the chi laws (as gamma shapes)
        covered = np.zeros(len(self.randoms), bool)
        for g in distribution.gaussians:
            cols = [col.get(v) for v in g.variables]
            if all(c is None for c in cols):
                continue
            L = _factor(_numeric(g.covariance, by_name, g.name), g.name)
            for i, c in enumerate(cols):     # x_i = sum_l L_il z_l, the used entries only
                if c is not None:
                    tab.lin.append((c, tab.value((n_z + l, L[i, l]) for l in range(L.shape[1]))))
                    covered[c] = True
            n_z += L.shape[1]
        self._vectors = []                   # non-Gaussian vectors: (group, [(column, index)])
        for g in distribution.vectors:
            if isinstance(g, Gaussian):
                continue
            used = [(col[v], i) for i, v in enumerate(g.variables) if v in col]
            if used:
                self._vectors.append((g, used))
                covered[[c for c, _ in used]] = True
        self._constants = dict(constants)
        self._tokens_contexts = []
        self._source_contexts = []           # non-Gaussian samples: (N, sample, atoms)
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
            N = int(N)
            if not isinstance(ctx.sample, Gaussian):
                covered[[c for c, _ in atoms]] = True
                self._source_contexts.append((N, ctx.sample, atoms))
                continue
            L = _factor(_numeric(ctx.sample.covariance, by_name, ctx.sample.name),
                        ctx.sample.name)
            n = L.shape[0]
            covered[[c for c, _ in atoms]] = True
            if not (all(sum(m) == 2 for _, m in atoms) and N >= n):
                self._tokens_contexts.append((N, L, atoms))
                continue
            # Bartlett: A_kk = chi(N - k) (source -1 - index into the chi laws), A_lk ~ N(0, 1)
            # for l > k; (L A)_ik = sum_{l >= k} L_il A_lk, formed for the rows the atoms use
            A = {}
            for k in range(n):
                A[k, k] = -1 - len(half_df)
                half_df.append((N - k) / 2.0)
                for l in range(k + 1, n):
                    A[l, k] = n_z
                    n_z += 1
            rows = sorted({i for _, m in atoms for i, e in enumerate(m) if e})
            LA = {(i, k): tab.value((A[l, k], L[i, l]) for l in range(k, n))
                  for i in rows for k in range(n)}
            for c, m in atoms:               # S_ij / N = sum_k (L A)_ik (L A)_jk / N
                i, j = [k for k, e in enumerate(m) for _ in range(e)]
                pairs = [(LA[i, k], LA[j, k]) for k in range(n)
                         if tab.terms[LA[i, k]] and tab.terms[LA[j, k]]]
                tab.atoms.append((c, pairs, float(N)))
        missing = [r for r, ok in zip(self.randoms, covered) if not ok]
        if missing:
            raise SymiclError(f"no random group draws {', '.join(str(m) for m in missing)}")
        for t in tab.terms:                  # chi sources come after the normals
            t[:] = [(k if k >= 0 else n_z - 1 - k, c) for k, c in t]
        self._n_z, self._half_df, self._tables = n_z, np.array(half_df), tab.arrays()

    def draw(self, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        """One draw of every random symbol for each index of ``lead``."""
        lead = tuple(lead)
        M = int(np.prod(lead, dtype=np.int64))
        Z = rng.standard_normal((M, self._n_z))
        G = np.empty((M, len(self._half_df)))
        for k, h in enumerate(self._half_df):      # one call per law: faster than an array shape
            G[:, k] = rng.standard_gamma(h, size=M)
        out = np.empty((M, len(self.randoms)))
        _assemble_kernel()(Z, G, *self._tables, out)
        out = out.reshape(lead + (len(self.randoms),))
        for N, L, atoms in self._tokens_contexts:
            self._tokens(lead, N, L.shape[0],
                         lambda shape, L=L: rng.standard_normal(shape + (L.shape[0],)) @ L.T,
                         atoms, out)
        for g, used in self._vectors:
            x = g.draw(rng, lead, self._constants)
            for c, i in used:
                out[..., c] = x[..., i]
        for N, sample, atoms in self._source_contexts:
            self._tokens(lead, N, len(sample.variables),
                         lambda shape, g=sample: g.draw(rng, shape, self._constants), atoms, out)
        return out

    @staticmethod
    def _tokens(lead, N, n, draw, atoms, out):
        """Empirical means over N tokens; ``draw(shape)`` gives tokens of shape shape + (n,)."""
        size = int(np.prod(lead, dtype=np.int64)) * n
        sums = np.zeros(tuple(lead) + (len(atoms),))
        step = max(1, _CHUNK // max(size, 1))
        done = 0
        while done < N:
            m = min(step, N - done)
            u = draw(tuple(lead) + (m,))
            for k, (_, mono) in enumerate(atoms):
                term = np.ones(u.shape[:-1])
                for i, e in enumerate(mono):
                    if e:
                        term = term * u[..., i] ** e
                sums[..., k] += term.sum(axis=-1)
            done += m
        for k, (c, _) in enumerate(atoms):
            out[..., c] = sums[..., k] / N
