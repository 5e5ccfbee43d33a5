"""Zero-mean Gaussian vectors and their exact moments (Wick / Isserlis).

For x ~ N(0, C) the moment E[x^alpha] = E[prod_i x_i^{alpha_i}] is the sum,
over all perfect pairings of the |alpha| factors, of the product of the
paired covariances.  It is computed by Stein's recursion

    E[x_i m(x)] = sum_j C_ij E[d m / d x_j],

memoised on the exponent vector, one connected block of C at a time.  A
block of one variable uses the closed form E[x^k] = (k-1)!! c^{k/2}, so a
diagonal covariance never recurses.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from .errors import DistributionError

__all__ = ["Gaussian", "MomentTable", "double_factorial"]


def double_factorial(n: int) -> int:
    """n!! for n >= -1 (with (-1)!! = 0!! = 1)."""
    out = 1
    while n > 1:
        out *= n
        n -= 2
    return out


_NON_FINITE = (sp.nan, sp.oo, -sp.oo, sp.zoo)


def _as_exact(value, where: str = "a covariance entry") -> sp.Expr:
    """A covariance entry (or any constant of a law) as an exact SymPy number or expression."""
    if isinstance(value, (bool, np.bool_)):
        raise DistributionError(f"{where} is {value!r}, not a number")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise DistributionError(f"{where} is {float(value)}, not a finite number")
        return sp.Rational(repr(float(value)))
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    try:
        expr = sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError):
        raise DistributionError(f"{where} is {value!r}, not a number or a SymPy expression") \
            from None
    if not isinstance(expr, sp.Expr):
        raise DistributionError(f"{where} is {value!r}, not a number or a SymPy expression")
    if expr.has(*_NON_FINITE) or expr.is_finite is False:
        raise DistributionError(f"{where} is {expr}, not finite")
    if expr.has(sp.Float):
        expr = sp.nsimplify(expr, rational=True)
    return expr


def _is_flat(c) -> bool:
    if isinstance(c, np.ndarray):
        return c.ndim == 1
    return isinstance(c, (list, tuple)) and not any(
        isinstance(e, (list, tuple, np.ndarray, sp.MatrixBase)) for e in c)


def _covariance_matrix(covariance, n: int, name: str = "x") -> sp.Matrix:
    if covariance is None:
        return sp.eye(n)
    if isinstance(covariance, sp.MatrixBase):
        cov = covariance
    elif _is_flat(covariance):
        entries = list(covariance)
        if len(entries) != n:
            raise DistributionError(
                f"covariance diagonal has {len(entries)} entries for {n} variables")
        cov = sp.diag(*(_as_exact(e, f"covariance of {name}: variance {i + 1}")
                        for i, e in enumerate(entries)))
    else:
        try:
            cov = sp.Matrix(covariance)
        except (sp.SympifyError, TypeError, ValueError) as exc:
            raise DistributionError(f"covariance of {name} is not a matrix of numbers or "
                                    f"expressions ({exc})") from None
    if cov.shape != (n, n):
        raise DistributionError(
            f"covariance has shape {cov.shape[0]}x{cov.shape[1]} but there are {n} variables")
    return sp.Matrix(n, n, lambda i, j: _as_exact(
        cov[i, j], f"covariance of {name}: entry ({i + 1},{j + 1})"))


def _check_covariance(cov: sp.Matrix, names: str) -> None:
    n = cov.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            if sp.simplify(cov[i, j] - cov[j, i]) != 0:
                raise DistributionError(
                    f"covariance of {names} is not symmetric: entry ({i + 1},{j + 1}) is "
                    f"{cov[i, j]} but ({j + 1},{i + 1}) is {cov[j, i]}")
    for i in range(n):
        if cov[i, i].is_negative:
            raise DistributionError(
                f"covariance of {names} is not positive semi-definite: variance {i + 1} is {cov[i, i]}")
        if cov[i, i].is_nonnegative is not True:
            raise DistributionError(
                f"covariance of {names}: variance {i + 1} is {cov[i, i]}, not known to be >= 0; "
                f"declare its symbols positive, e.g. sympy.Symbol('s', positive=True)")
    if all(entry.is_number for entry in cov):
        values = np.array(cov.tolist(), dtype=float)
        eig = np.linalg.eigvalsh(values)
        scale = max(1.0, float(np.max(np.abs(eig))))
        if eig[0] < -1e-12 * scale:
            raise DistributionError(
                f"covariance of {names} is not positive semi-definite: "
                f"smallest eigenvalue {eig[0]:.6g}")


class Gaussian:
    """A zero-mean Gaussian vector x ~ N(0, C) over named SymPy symbols.

    ``covariance`` may be ``None`` (identity), a sequence (the diagonal), or a
    square matrix (SymPy, NumPy or nested lists) with numeric or symbolic
    entries.  A numeric covariance must be symmetric positive semi-definite.
    """

    def __init__(self, variables: Sequence[sp.Symbol], covariance=None, name: str | None = None):
        variables = list(variables)
        if not variables:
            raise DistributionError("a Gaussian vector needs at least one variable")
        for v in variables:
            if not isinstance(v, sp.Symbol):
                raise DistributionError(f"Gaussian variable {v!r} is not a SymPy Symbol")
        if len(set(variables)) != len(variables):
            raise DistributionError("Gaussian variables must be distinct")
        self.variables: list[sp.Symbol] = variables
        self.name = name or variables[0].name.rsplit("_", 1)[0]
        self.covariance: sp.Matrix = _covariance_matrix(covariance, len(variables), self.name)
        _check_covariance(self.covariance, self.name)

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        return f"Gaussian({self.name}, n={len(self)})"

    def constant_symbols(self) -> set:
        """Symbols of the covariance."""
        return set(self.covariance.free_symbols)

    def entries(self) -> list[sp.Expr]:
        """The covariance entries (the engine gives non-polynomial ones a placeholder)."""
        return list(self.covariance)

    def moment(self, exponents: Sequence[int]) -> sp.Expr:
        """E[prod_i x_i^{alpha_i}] as a SymPy expression (Wick; memoised)."""
        table = self.__dict__.get("_table")
        if table is None:
            table = self._table = MomentTable(self, lambda i, j: self.covariance[i, j],
                                              sp.Integer(1), sp.Integer(0))
        return sp.expand(table.moment(tuple(int(e) for e in exponents)))

    def draw(self, rng: np.random.Generator, lead: tuple, values=()) -> np.ndarray:
        """Draws of shape lead + (n,) at numeric constants ``values`` (name -> number)."""
        values = dict(values)
        sub = self.covariance.xreplace({s: sp.Float(values[s.name])
                                        for s in self.covariance.free_symbols
                                        if s.name in values})
        if sub.free_symbols:
            names = ", ".join(sorted(s.name for s in sub.free_symbols))
            raise DistributionError(f"the covariance of {self.name} needs values for {names}")
        w, V = np.linalg.eigh(np.array(sub.tolist(), dtype=float))
        L = V * np.sqrt(np.clip(w, 0.0, None))
        return rng.standard_normal(tuple(lead) + (len(self),)) @ L.T

    def blocks(self) -> list[list[int]]:
        """Index sets of the connected blocks of the covariance (independent parts)."""
        n = len(self)
        seen = [False] * n
        out = []
        for start in range(n):
            if seen[start]:
                continue
            stack, block = [start], []
            seen[start] = True
            while stack:
                i = stack.pop()
                block.append(i)
                for j in range(n):
                    if not seen[j] and self.covariance[i, j] != 0:
                        seen[j] = True
                        stack.append(j)
            out.append(sorted(block))
        return out


class MomentTable:
    """Memoised moments E[x^alpha] of one Gaussian vector in a chosen algebra.

    ``entry(i, j)`` gives the covariance entry C_ij as an element of the
    algebra (e.g. a sparse polynomial); ``one`` and ``zero`` are its units.
    """

    def __init__(self, gaussian: Gaussian, entry: Callable[[int, int], object], one, zero):
        self.gaussian = gaussian
        self.one, self.zero = one, zero
        n = len(gaussian)
        self._c = [[entry(i, j) if gaussian.covariance[i, j] != 0 else None for j in range(n)]
                   for i in range(n)]
        self._blocks = gaussian.blocks()
        self._memo: dict[tuple, object] = {}

    def moment(self, alpha: Sequence[int]):
        """E[prod_i x_i^{alpha_i}]."""
        out = self.one
        for block in self._blocks:
            sub = tuple(alpha[i] for i in block)
            if not any(sub):
                continue
            value = self._block_moment(block, sub)
            if value is self.zero or value == 0:
                return self.zero
            out = out * value
        return out

    def _block_moment(self, block: list[int], alpha: tuple):
        if sum(alpha) % 2:
            return self.zero
        if len(block) == 1:
            k = alpha[0]
            c = self._c[block[0]][block[0]]
            if c is None:  # zero variance: the variable is the constant 0
                return self.zero
            return c ** (k // 2) * double_factorial(k - 1)
        key = (tuple(block), alpha)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        # Stein: E[x_i x^beta] = sum_j C_ij beta_j E[x^(beta - e_j)], i the first present index.
        i = next(k for k, a in enumerate(alpha) if a)
        beta = list(alpha)
        beta[i] -= 1
        total = self.zero
        for k, bk in enumerate(beta):
            c = self._c[block[i]][block[k]]
            if bk == 0 or c is None:
                continue
            gamma = beta.copy()
            gamma[k] -= 1
            sub = self._block_moment(block, tuple(gamma)) if any(gamma) else self.one
            total = total + c * bk * sub
        self._memo[key] = total
        return total
