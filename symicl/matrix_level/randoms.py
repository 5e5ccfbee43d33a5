"""Random matrix symbols, registered by kind.

Each kind says how the slots of its occurrences in a network are averaged:

* :class:`GaussianVector` x ~ N(0, C) (an n x 1 symbol): Wick pairing of the
  occurrences, each pair (a, b) giving C_ab (or delta_ab for C = I);
* :class:`EmpiricalMoment` Sigma_hat = (1/N) sum_{n<=N} u_n u_n^T, u_n iid
  N(0, C): a sum over set partitions of the occurrences (which samples
  coincide) weighted by (N)_{|pi|} / N^K, and Wick pairing inside each block;
* :class:`DiagonalGaussian` Lambda = diag(lambda), lambda_a iid N(0, 1): each
  occurrence joins its row and column, and each pair of occurrences joins
  their indices (a hub);
* :class:`GaussianMatrix` W with iid N(0, 1) entries: W_ij W_kl -> delta_ik delta_jl.

Distinct random symbols are independent.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import Identity, MatrixSymbol

from .. import symbols
from ..errors import DistributionError

__all__ = ["Random", "GaussianVector", "EmpiricalMoment", "DiagonalGaussian", "GaussianMatrix"]


def _check_symbol(symbol, kind: str) -> MatrixSymbol:
    if not isinstance(symbol, MatrixSymbol):
        raise DistributionError(f"a {kind} must be a SymPy MatrixSymbol, got {symbol!r}")
    return symbol


def _check_covariance(cov, n, kind: str, name: str):
    if cov is None:
        return None
    if isinstance(cov, Identity):
        if sp.simplify(cov.shape[0] - n) != 0:
            raise DistributionError(f"covariance of {name} is {cov.shape[0]}x{cov.shape[0]}, "
                                    f"but {name} has {n} entries")
        return None
    if not isinstance(cov, MatrixSymbol):
        raise DistributionError(f"covariance of {kind} {name} must be a MatrixSymbol or an "
                                f"Identity, got {cov!r}")
    r, c = cov.shape
    if sp.simplify(r - n) != 0 or sp.simplify(c - n) != 0:
        raise DistributionError(f"covariance {cov.name} of {name} is {r}x{c}, but {name} "
                                f"needs {n}x{n}")
    return cov


def _check_context_length(n) -> sp.Expr:
    n = sp.sympify(n)
    if n.is_number and not (n.is_integer and n >= 1):
        raise DistributionError(f"context length N must be an integer of at least 1, got {n}")
    if not n.is_number and (n.is_positive is False or n.is_integer is False):
        raise DistributionError(f"context length N = {n} is not a positive integer")
    return n


class Random:
    """Base class: a random matrix symbol of some kind."""
    kind = "random"

    def __init__(self, symbol: MatrixSymbol):
        self.symbol = _check_symbol(symbol, self.kind)

    @property
    def name(self) -> str:
        return self.symbol.name

    def covariances(self) -> tuple:
        """Constant symmetric matrix symbols this kind introduces."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class GaussianVector(Random):
    """x ~ N(0, C): an n x 1 MatrixSymbol; ``covariance`` a symmetric MatrixSymbol or None (I)."""
    kind = "Gaussian vector"

    def __init__(self, symbol: MatrixSymbol, covariance=None):
        super().__init__(symbol)
        if symbol.shape[1] != 1:
            raise DistributionError(f"Gaussian vector {symbol.name} must be a column "
                                    f"(n x 1), got shape {symbol.shape}")
        self.covariance = _check_covariance(covariance, symbol.shape[0], self.kind, symbol.name)

    def covariances(self) -> tuple:
        return () if self.covariance is None else (self.covariance,)


class EmpiricalMoment(Random):
    """Sigma_hat = (1/N) sum_n u_n u_n^T over N iid u_n ~ N(0, C); N symbolic by default."""
    kind = "empirical second moment"

    def __init__(self, symbol: MatrixSymbol, covariance=None, N=None):
        super().__init__(symbol)
        r, c = symbol.shape
        if sp.simplify(r - c) != 0:
            raise DistributionError(f"empirical moment {symbol.name} must be square, got {r}x{c}")
        self.covariance = _check_covariance(covariance, r, self.kind, symbol.name)
        self.N = _check_context_length(symbols.context_length() if N is None else N)

    def covariances(self) -> tuple:
        return () if self.covariance is None else (self.covariance,)


class DiagonalGaussian(Random):
    """Lambda = diag(lambda_1..lambda_n) with iid N(0, 1) entries (a square MatrixSymbol)."""
    kind = "diagonal Gaussian matrix"

    def __init__(self, symbol: MatrixSymbol):
        super().__init__(symbol)
        r, c = symbol.shape
        if sp.simplify(r - c) != 0:
            raise DistributionError(f"diagonal random matrix {symbol.name} must be square, "
                                    f"got {r}x{c}")


class GaussianMatrix(Random):
    """W with iid N(0, 1) entries."""
    kind = "Gaussian matrix"
