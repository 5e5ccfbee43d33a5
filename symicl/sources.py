"""Non-Gaussian random vectors given by their moments: independent sources and mixtures.

Every random group of a :class:`~symicl.expectation.Distribution` (and the
sample of a :class:`~symicl.context.Context`) has one moment interface:
``.variables``, ``.name``, ``.moment(exponents)`` (the exact E[x^alpha] as a
SymPy expression) and ``.constant_symbols()``.  :class:`~symicl.gaussian.Gaussian`
implements it by Wick's theorem; this module adds

* :class:`Independent`: x_i = sqrt(v_i) e_i with e_1, e_2, ... iid draws of a
  standardised law (mean 0, variance 1) and v_i the variance of coordinate i,
  so E[x^alpha] = prod_i v_i^{alpha_i/2} m_{alpha_i} with m_k the law's k-th
  moment;
* :class:`Mixture`: x = A u with u the variables of independent source groups
  (Gaussian blocks among them), E[x^alpha] from the multinomial expansion of
  prod_i (A u)_i^{alpha_i} and the moments of u.

Standardised laws (:class:`Law`), with their moments m_{2j} (odd moments 0):

* :class:`Uniform` on [-sqrt 3, sqrt 3]: m_{2j} = 3^j / (2j + 1); excess kurtosis -6/5;
* :class:`Rademacher` (+-1): m_{2j} = 1; excess kurtosis -2;
* :class:`Laplace` (scale 1/sqrt 2): m_{2j} = (2j)! / 2^j; excess kurtosis 3;
* :class:`StudentT` with nu > 2 degrees, rescaled to variance 1:
  m_{2j} = (nu - 2)^j prod_{i=1..j} (2i - 1)/(nu - 2i), finite only for 2j < nu
  (a moment of order >= nu is a :class:`~symicl.errors.MomentError`);
* :class:`Kurtosis` (a symbolic excess kurtosis kappa >= -2).  Convention: the
  Gamma scale mixture of Rademacher signs, e = eps sqrt(V), eps = +-1 and
  V ~ Gamma(shape 1/(2 + kappa), scale 2 + kappa) (mean 1, variance 2 + kappa),
  so m_{2j} = prod_{i<j} (1 + i (2 + kappa)): m_4 = 3 + kappa, m_6 = (3 + kappa)(5 + 2 kappa).
  It is a law for every kappa >= -2 (Rademacher at kappa = -2, exactly Gaussian at
  kappa = 0, heavier tails above), and it can be sampled;
* :class:`Cumulants`: any standardised law given by its cumulants c_3, c_4, ...
  (symbols allowed; those not given are 0), moments by the moment-cumulant
  recursion m_n = sum_k C(n-1, k-1) c_k m_{n-k}.  It cannot be sampled.

:func:`inputs` builds the input vector of the built-in models from the
option ``--inputs`` (``gaussian``, ``uniform``, ``rademacher``, ``laplace``,
``kurtosis``), each coordinate with the variance the spectrum gives it.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from .errors import DistributionError, ModelError, MomentError, NotPolynomialError
from .gaussian import _as_exact

__all__ = ["Law", "Uniform", "Rademacher", "Laplace", "StudentT", "Kurtosis", "Cumulants",
           "Independent", "Mixture", "is_group", "inputs", "INPUTS", "kappa_symbol",
           "input_options", "input_constants"]


_exact = _as_exact


def _numeric(expr: sp.Expr, values: Mapping, what: str) -> float:
    """``expr`` at the constants ``values`` (name -> number), as a float."""
    by_name = {s: values[s.name] for s in expr.free_symbols if s.name in values}
    out = sp.sympify(expr).xreplace({k: sp.Float(v) for k, v in by_name.items()})
    if out.free_symbols:
        names = ", ".join(sorted(s.name for s in out.free_symbols))
        raise DistributionError(f"{what} needs values for {names}")
    return float(out)


# -- standardised laws ---------------------------------------------------------------------------
class Law:
    """A standardised law of one coordinate (mean 0, variance 1), given by its moments.

    Subclasses define :meth:`moment` (exact, SymPy) and :meth:`draw`.
    """

    name = "law"

    def moment(self, k: int) -> sp.Expr:
        """E[e^k] (exact)."""
        raise NotImplementedError

    def symbols(self) -> set:
        """Symbols the moments depend on (e.g. kappa)."""
        return set()

    def excess_kurtosis(self) -> sp.Expr:
        """m_4 - 3."""
        return sp.expand(self.moment(4) - 3)

    def draw(self, rng: np.random.Generator, size, values: Mapping = ()) -> np.ndarray:
        """Standardised draws of shape ``size``; ``values`` gives numbers to the law's symbols."""
        raise DistributionError(f"the {self.name} law cannot be sampled")

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class Uniform(Law):
    """Uniform on [-sqrt 3, sqrt 3]: m_{2j} = 3^j / (2j + 1)."""

    name = "uniform"

    def moment(self, k):
        return sp.Integer(0) if k % 2 else sp.Rational(3 ** (k // 2), k + 1)

    def draw(self, rng, size, values=()):
        return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size)


class Rademacher(Law):
    """+-1 with probability 1/2: m_{2j} = 1."""

    name = "rademacher"

    def moment(self, k):
        return sp.Integer(0) if k % 2 else sp.Integer(1)

    def draw(self, rng, size, values=()):
        return 2.0 * rng.integers(0, 2, size).astype(float) - 1.0


class Laplace(Law):
    """Laplace of scale 1/sqrt 2: m_{2j} = (2j)! / 2^j."""

    name = "laplace"

    def moment(self, k):
        return sp.Integer(0) if k % 2 else sp.Rational(math.factorial(k), 2 ** (k // 2))

    def draw(self, rng, size, values=()):
        return rng.laplace(0.0, 1.0 / math.sqrt(2.0), size)


class StudentT(Law):
    """Student's t with ``nu`` > 2 degrees of freedom, rescaled to variance 1.

    m_{2j} = (nu - 2)^j prod_{i=1..j} (2i - 1) / (nu - 2i), which exists for 2j < nu only.
    """

    def __init__(self, nu):
        nu = _exact(nu, "the degrees of freedom of Student's t")
        if not nu.is_number:
            raise DistributionError(f"Student's t needs numeric degrees of freedom, got {nu}")
        if not nu > 2:
            raise MomentError(f"Student's t with nu = {nu} degrees of freedom has no finite "
                              f"variance (needs nu > 2)")
        self.nu = nu
        self.name = f"student-t(nu={nu})"

    def moment(self, k):
        if k >= self.nu:
            raise MomentError(f"E[x^{k}] does not exist for Student's t with nu = {self.nu} "
                              f"degrees of freedom (moments of order < {self.nu} only)")
        if k % 2:
            return sp.Integer(0)
        nu, out = self.nu, sp.Integer(1)
        for i in range(1, k // 2 + 1):
            out *= (nu - 2) * (2 * i - 1) / (nu - 2 * i)
        return sp.nsimplify(out)

    def draw(self, rng, size, values=()):
        nu = float(self.nu)
        return rng.standard_t(nu, size) * math.sqrt((nu - 2.0) / nu)


def kappa_symbol(name: str = "kappa") -> sp.Symbol:
    """The symbolic excess kurtosis (real)."""
    return sp.Symbol(name, real=True)


class Kurtosis(Law):
    """Excess kurtosis ``kappa`` (symbolic by default), higher moments by the Gamma-mixture
    convention: e = eps sqrt(V), V ~ Gamma(1/(2 + kappa), 2 + kappa), so
    m_{2j} = prod_{i<j} (1 + i (2 + kappa))."""

    def __init__(self, kappa=None):
        kappa = kappa_symbol() if kappa is None else _exact(kappa, "the excess kurtosis")
        if kappa.is_number and kappa < -2:
            raise DistributionError(f"excess kurtosis must be >= -2 (every law has m_4 >= m_2^2),"
                                    f" got {kappa}")
        self.kappa = kappa
        self.name = f"kurtosis(kappa={kappa})"

    def moment(self, k):
        if k % 2:
            return sp.Integer(0)
        out = sp.Integer(1)
        for i in range(k // 2):
            out *= 1 + i * (2 + self.kappa)
        return sp.expand(out)

    def symbols(self):
        return set(self.kappa.free_symbols)

    def draw(self, rng, size, values=()):
        kappa = _numeric(self.kappa, dict(values), "the excess kurtosis")
        if kappa < -2:
            raise DistributionError(f"excess kurtosis must be >= -2, got {kappa:g}")
        signs = 2.0 * rng.integers(0, 2, size).astype(float) - 1.0
        if kappa == -2:
            return signs
        theta = 2.0 + kappa
        return signs * np.sqrt(rng.gamma(1.0 / theta, theta, size))


class Cumulants(Law):
    """A standardised law given by its cumulants {order: value} of orders >= 3 (others 0).

    Moments by m_n = sum_{k=1..n} C(n-1, k-1) c_k m_{n-k}, m_0 = 1, c_1 = 0, c_2 = 1.
    """

    def __init__(self, cumulants: Mapping[int, object]):
        out = {}
        for k, v in dict(cumulants).items():
            if not isinstance(k, int) or k < 3:
                raise DistributionError(f"cumulant orders start at 3 (mean 0, variance 1 "
                                        f"fixed), got {k!r}")
            out[k] = _exact(v, f"cumulant {k}")
        self.cumulants = {k: out[k] for k in sorted(out)}
        self.name = "cumulants(" + ", ".join(f"{k}: {v}" for k, v in self.cumulants.items()) + ")"
        self._moments = [sp.Integer(1)]

    def _c(self, k):
        return {1: sp.Integer(0), 2: sp.Integer(1)}.get(k, self.cumulants.get(k, sp.Integer(0)))

    def moment(self, k):
        while len(self._moments) <= k:
            n = len(self._moments)
            self._moments.append(sp.expand(sum(sp.binomial(n - 1, j - 1) * self._c(j) *
                                               self._moments[n - j] for j in range(1, n + 1))))
        return self._moments[k]

    def symbols(self):
        return set().union(*(v.free_symbols for v in self.cumulants.values()))


# -- random groups -------------------------------------------------------------------------------
def is_group(obj) -> bool:
    """True for an object with the moment interface (variables, moment, constant_symbols)."""
    return all(hasattr(obj, a) for a in ("variables", "moment", "constant_symbols"))


def _variables(variables, what: str) -> list[sp.Symbol]:
    variables = list(variables)
    if not variables:
        raise DistributionError(f"{what} needs at least one variable")
    for v in variables:
        if not isinstance(v, sp.Symbol):
            raise DistributionError(f"{what}: variable {v!r} is not a SymPy Symbol")
    if len(set(variables)) != len(variables):
        raise DistributionError(f"{what}: variables must be distinct")
    return variables


class Independent:
    """x_i = sqrt(v_i) e_i, e_i iid of a standardised :class:`Law`, v_i the variances.

    ``variances``: None (all 1), a number or expression (all equal) or a
    sequence; each entry >= 0 (symbols declared positive).  A law with
    non-zero odd moments needs numeric variances that are perfect squares
    of rationals or symbolic ones written as squares (``s**2``), so that
    every moment stays a polynomial.
    """

    def __init__(self, variables: Sequence[sp.Symbol], law: Law, variances=None,
                 name: str | None = None):
        self.variables = _variables(variables, "an independent source vector")
        if not isinstance(law, Law):
            raise DistributionError(f"{law!r} is not a symicl.sources.Law")
        self.law = law
        self.name = name or self.variables[0].name.rsplit("_", 1)[0]
        n = len(self.variables)
        if variances is None:
            variances = [1] * n
        elif not isinstance(variances, (list, tuple, np.ndarray, sp.MatrixBase)):
            variances = [variances] * n
        variances = list(variances)
        if len(variances) != n:
            raise DistributionError(f"{self.name}: {len(variances)} variances for {n} variables")
        self.variances = [_exact(v, f"variance {i + 1} of {self.name}")
                          for i, v in enumerate(variances)]
        for i, v in enumerate(self.variances):
            if v.is_negative:
                raise DistributionError(f"variance {i + 1} of {self.name} is {v} < 0")
            if v.is_nonnegative is not True:
                raise DistributionError(
                    f"variance {i + 1} of {self.name} is {v}, not known to be >= 0; declare its "
                    f"symbols positive, e.g. sympy.Symbol('s', positive=True)")
        self._roots: dict[int, sp.Expr] = {}

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        return f"Independent({self.name}, {self.law!r}, n={len(self)})"

    def constant_symbols(self) -> set:
        out = set(self.law.symbols())
        for v in self.variances:
            out |= v.free_symbols
        return out

    def entries(self) -> list[sp.Expr]:
        """The variances (the engine gives non-polynomial ones a placeholder)."""
        return list(self.variances)

    def standard_deviation(self, i: int) -> sp.Expr:
        """sqrt(v_i), needed for odd moments; must be polynomial in the variance's symbols."""
        hit = self._roots.get(i)
        if hit is None:
            hit = sp.sqrt(self.variances[i])
            if not hit.is_polynomial(*hit.free_symbols) or hit.has(sp.Pow) and any(
                    not (p.exp.is_Integer) for p in hit.atoms(sp.Pow)):
                raise NotPolynomialError(
                    f"the {self.law.name} law has odd moments, and the standard deviation "
                    f"sqrt({self.variances[i]}) of {self.variables[i]} is not polynomial; write "
                    f"the variance as a square")
            self._roots[i] = hit
        return hit

    def coordinate_moment(self, i: int, k: int) -> sp.Expr:
        """E[x_i^k] = m_k v_i^{k/2}."""
        if k == 0:
            return sp.Integer(1)
        m = self.law.moment(k)
        if m == 0:
            return sp.Integer(0)
        if k % 2:
            return m * self.standard_deviation(i) ** k
        return m * self.variances[i] ** (k // 2)

    def moment(self, exponents: Sequence[int]) -> sp.Expr:
        """E[prod_i x_i^{alpha_i}] = prod_i m_{alpha_i} v_i^{alpha_i / 2}."""
        out = sp.Integer(1)
        for i, k in enumerate(exponents):
            if k:
                out = out * self.coordinate_moment(i, int(k))
                if out == 0:
                    return out
        return out

    def draw(self, rng: np.random.Generator, lead: tuple, values: Mapping = ()) -> np.ndarray:
        """Draws of shape lead + (n,) at numeric constants ``values`` (name -> number)."""
        values = dict(values)
        sd = np.array([math.sqrt(_numeric(v, values, f"the variance of {self.name}"))
                       for v in self.variances])
        return self.law.draw(rng, tuple(lead) + (len(self),), values) * sd


class Mixture:
    """x = A u: ``variables`` x, a matrix ``A`` (numbers or expressions) and the independent
    source groups whose variables make u (in order; Gaussian blocks allowed)."""

    def __init__(self, variables: Sequence[sp.Symbol], A, sources: Sequence,
                 name: str | None = None):
        self.variables = _variables(variables, "a mixture")
        self.name = name or self.variables[0].name.rsplit("_", 1)[0]
        sources = list(sources)
        if not sources or not all(is_group(s) for s in sources):
            raise DistributionError(f"mixture {self.name}: sources must be random groups "
                                    f"(Gaussian, Independent, Mixture)")
        self.sources = sources
        self.u = [v for s in sources for v in s.variables]
        if len(set(self.u)) != len(self.u):
            raise DistributionError(f"mixture {self.name}: sources share variables")
        if set(self.u) & set(self.variables):
            raise DistributionError(f"mixture {self.name}: x and u must be distinct symbols")
        try:
            A = sp.Matrix(A)
        except (sp.SympifyError, TypeError, ValueError):
            raise DistributionError(f"mixture {self.name}: A is not a matrix") from None
        if A.shape != (len(self.variables), len(self.u)):
            raise DistributionError(f"mixture {self.name}: A is {A.shape[0]}x{A.shape[1]}, "
                                    f"expected {len(self.variables)}x{len(self.u)}")
        self.A = A.applyfunc(lambda e: _exact(e, f"an entry of A in mixture {self.name}"))
        bad = set().union(*(e.free_symbols for e in self.A)) & set(self.u)
        if bad:
            raise DistributionError(f"mixture {self.name}: A depends on its sources")
        self._memo: dict[tuple, sp.Expr] = {}

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        return f"Mixture({self.name}, n={len(self)}, sources={len(self.sources)})"

    def constant_symbols(self) -> set:
        out = set().union(*(e.free_symbols for e in self.A))
        for s in self.sources:
            out |= s.constant_symbols()
        return out

    def moment(self, exponents: Sequence[int]) -> sp.Expr:
        """E[prod_i (A u)_i^{alpha_i}], expanded over u and factorised over the sources."""
        key = tuple(int(e) for e in exponents)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        gens = self.u
        poly = sp.Poly(sp.Integer(1), *gens)
        for i, k in enumerate(key):
            if k:
                row = sp.Poly(sum((self.A[i, j] * u for j, u in enumerate(gens)), sp.Integer(0)),
                              *gens)
                poly = poly * row ** k
        cuts, start = [], 0
        for s in self.sources:
            cuts.append((s, start, start + len(s.variables)))
            start += len(s.variables)
        total = sp.Integer(0)
        for monom, coeff in poly.terms():
            value = sp.Integer(1)
            for s, lo, hi in cuts:
                sub = monom[lo:hi]
                if any(sub):
                    value = value * s.moment(sub)
                    if value == 0:
                        break
            if value != 0:
                total += coeff * value
        total = sp.expand(total)
        self._memo[key] = total
        return total

    def draw(self, rng: np.random.Generator, lead: tuple, values: Mapping = ()) -> np.ndarray:
        """Draws of x = A u, shape lead + (n,), at numeric constants ``values``."""
        values = dict(values)
        u = np.concatenate([s.draw(rng, lead, values) for s in self.sources], axis=-1)
        A = np.array([[_numeric(e, values, f"A of mixture {self.name}") for e in row]
                      for row in self.A.tolist()], dtype=float)
        return u @ A.T


# -- the built-in models' inputs -----------------------------------------------------------------
INPUTS = ("gaussian", "uniform", "rademacher", "laplace", "kurtosis")
_LAWS: dict[str, Callable[[], Law]] = {"uniform": Uniform, "rademacher": Rademacher,
                                       "laplace": Laplace, "kurtosis": Kurtosis}


def inputs(kind: str, variables: Sequence[sp.Symbol], variances=None, name: str | None = None):
    """The input vector of a built-in model: coordinate i of variance ``variances[i]``.

    ``gaussian``: N(0, diag(v)); ``uniform``: on [-sqrt(3 v_i), sqrt(3 v_i)];
    ``rademacher``: +-sqrt(v_i); ``laplace``: variance v_i; ``kurtosis``: the
    :class:`Kurtosis` law with the symbolic excess kurtosis ``kappa``.
    """
    if kind == "gaussian":
        from .gaussian import Gaussian

        return Gaussian(variables, variances, name=name)
    if kind not in _LAWS:
        raise ModelError(f"unknown inputs {kind!r}; choose one of {', '.join(INPUTS)}")
    return Independent(variables, _LAWS[kind](), variances, name=name)


KAPPA_DEFAULT = 1.0


def input_options():
    """The ``inputs`` and ``kappa`` options of the built-in models."""
    from .spec import Option

    return (Option("inputs", "str", "gaussian", "input law, each coordinate with the variance "
                   "the spectrum gives it: gaussian; uniform (on [-sqrt(3 s), sqrt(3 s)]); "
                   "rademacher (+-sqrt(s)); laplace; kurtosis (symbolic excess kurtosis kappa, "
                   "Gamma scale mixture of signs)", choices=INPUTS),
            Option("kappa", "float", None, f"excess kurtosis of --inputs kurtosis in verify and "
                   f"sweep (default {KAPPA_DEFAULT:g})", low=-2.0, role="numeric"))


def input_constants(options: Mapping) -> dict:
    """{"kappa": value} for ``--inputs kurtosis`` or ``--task-law kurtosis`` (verify and
    sweep), else {}."""
    kappa = options.get("kappa")
    if "kurtosis" not in (options.get("inputs", "gaussian"), options.get("task_law")):
        if kappa is not None:
            raise ModelError("--kappa belongs to --inputs kurtosis (or --task-law kurtosis)")
        return {}
    return {"kappa": KAPPA_DEFAULT if kappa is None else float(kappa)}
