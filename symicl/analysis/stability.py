"""Stability of fixed points from the derived Jacobian J = dF/dtheta.

For a gradient flow F = -grad L the Jacobian is minus the Hessian of L, a
symmetric matrix: its eigenvalues are real.  Write its characteristic
polynomial chi(lambda) = lambda^k r(lambda) with r(0) != 0.  Then k is the
number of zero eigenvalues and, r being real-rooted, Descartes' rule of signs
is *exact*: the number of positive eigenvalues (unstable directions) is the
number of sign changes of the coefficients of r(lambda), the number of
negative ones that of r(-lambda).  Coefficient signs are decided
symbolically (constants positive as the model declares them, a family's free
parameters real and generic) or, where that fails, at sample points of the
family.

Kinds: ``stable`` (all eigenvalues < 0), ``unstable`` (all > 0), ``saddle``
(both signs; ``n_unstable`` directions), ``degenerate`` (zero eigenvalues
beyond those along the family).  On a family of dimension m, m zero
eigenvalues along it are expected (the family's tangent space, inert
parameters included) and the point is classified by the transverse
eigenvalues, at generic points of the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from ..errors import ModelError
from ..model import Model
from ..symbols import natural_key

__all__ = ["Stability", "classify", "jacobian_at"]


@dataclass(frozen=True)
class Stability:
    """Eigenvalue signs of J at a fixed point (generic point of a family)."""

    kind: str
    n_unstable: int
    n_stable: int
    n_zero: int
    along_family: int
    eigenvalues: tuple      # ((eigenvalue expression, multiplicity), ...) where found
    method: str             # "symbolic" or "sampled at ..." or "undetermined"

    @property
    def transverse_zero(self) -> int:
        """Zero eigenvalues not explained by the family's dimension."""
        return self.n_zero - self.along_family

    def to_dict(self) -> dict:
        return {"kind": self.kind, "unstable_directions": self.n_unstable,
                "stable_directions": self.n_stable, "zero_eigenvalues": self.n_zero,
                "zero_along_family": self.along_family,
                "eigenvalues": [[sp.sstr(e, order="lex"), int(m)] for e, m in self.eigenvalues],
                "method": self.method}

    def describe(self) -> str:
        base = {"saddle": f"saddle with {self.n_unstable} unstable direction(s)"}.get(
            self.kind, self.kind)
        if self.kind == "degenerate":
            base += (f" ({self.transverse_zero} transverse zero eigenvalue(s), "
                     f"{self.n_unstable} unstable, {self.n_stable} stable)")
        if self.along_family:
            base += (f"; {self.along_family} zero eigenvalue(s) along the family, classified "
                     "by the transverse eigenvalues")
        return base


def jacobian_at(model: Model, values, constants=None) -> sp.Matrix:
    """J = dF/dtheta of the model's flow at ``values`` (constants substituted)."""
    J = model.jacobian()
    sub = dict(constants or {})
    vals = {(model.symbol(k) if isinstance(k, str) else k): sp.sympify(v)
            for k, v in values.items()}
    return J.xreplace(sub).xreplace(vals)


def _blocks(J):
    """Index sets of the connected blocks of J's sparsity pattern."""
    n = J.shape[0]
    seen, out = set(), []
    for i in range(n):
        if i in seen:
            continue
        stack, comp = [i], set()
        while stack:
            k = stack.pop()
            if k in comp:
                continue
            comp.add(k)
            stack.extend(j for j in range(n) if j not in comp and (J[k, j] != 0 or J[j, k] != 0))
        seen |= comp
        out.append(sorted(comp))
    return out


def _sign(expr, free):
    expr = sp.factor(sp.sympify(expr))
    if expr == 0:
        return 0
    # generic points: free parameters and real constants not known to be non-zero
    generic = {f: sp.Dummy(f.name, real=True, nonzero=True) for f in expr.free_symbols
               if f in free or (f.is_real and f.is_nonzero is None)}
    expr = expr.xreplace(generic)
    if expr.is_positive:
        return 1
    if expr.is_negative:
        return -1
    return None


def _expand_cancel(expr):
    return sp.cancel(sp.expand(expr))


def _variations(signs):
    s = [x for x in signs if x != 0]
    return sum(1 for a, b in zip(s, s[1:]) if a != b)


def _count(coeffs, free):
    """(n_zero, n_pos, n_neg) of a real-rooted polynomial from its coefficients (high first)."""
    k = 0
    while coeffs and sp.simplify(coeffs[-1]) == 0:
        coeffs = coeffs[:-1]
        k += 1
    signs = [_sign(c, free) for c in coeffs]
    if None in signs:
        return k, None, None
    deg = len(coeffs) - 1
    neg = [s * (-1) ** (deg - i) for i, s in enumerate(signs)]
    return k, _variations(signs), _variations(neg)


def _eigen_list(polys, lam, free):
    """Eigenvalues with multiplicities where sympy finds them in closed form (degree <= 2)."""
    out = {}
    for r in polys:
        for f, m in sp.factor_list(r, lam)[1]:
            fp = sp.Poly(f, lam)
            if fp.degree() <= 2:
                for root, mult in sp.roots(fp).items():
                    root = sp.factor(sp.radsimp(root))
                    out[root] = out.get(root, 0) + mult * m
            else:
                return ()
    return tuple(sorted(out.items(), key=lambda kv: sp.default_sort_key(kv[0])))


def classify(model: Model, point, constants=None) -> Stability:
    """Classify a fixed point (a :class:`FixedPoint` or a parameter -> value map)."""
    if isinstance(point, Mapping):
        values, free = dict(point), ()
    else:
        values, free = point.values, tuple(point.free)
    J = jacobian_at(model, values, constants)
    if not J.is_symmetric(simplify=False):
        J = J.applyfunc(sp.cancel)
        if not J.is_symmetric():
            raise ModelError("the Jacobian is not symmetric: the flow is not a gradient flow, "
                             "and the sign count by Descartes' rule does not apply")
    lam = sp.Symbol("lambda_jacobian")
    if not (J.free_symbols - set(free)):
        return _classify_numeric(J, free, lam)
    polys = []
    for idx in _blocks(J):
        sub = J.extract(idx, idx)
        polys.append(sp.factor(sub.charpoly(lam, simplify=_expand_cancel).as_expr()))
    chi = sp.expand(sp.numer(sp.together(sp.Mul(*polys))))
    coeffs = sp.Poly(chi, lam).all_coeffs()
    k, pos, neg = _count(coeffs, free)
    method = "symbolic"
    if pos is None:
        k, pos, neg, method = _sampled(coeffs, free, lam)
    eig = _eigen_list([sp.numer(sp.together(p)) for p in polys], lam, free)
    m = len(free)
    if pos is None:
        kind = "undetermined"
        pos = neg = -1
    elif k > m:
        kind = "degenerate"
    elif pos and neg:
        kind = "saddle"
    elif pos:
        kind = "unstable"
    else:
        kind = "stable"
    return Stability(kind=kind, n_unstable=pos, n_stable=neg, n_zero=k, along_family=m,
                     eigenvalues=eig, method=method)


def _sampled(coeffs, free, lam):
    """Sign counts at sample points of a family (when symbolic signs are undecided)."""
    if not free:
        return 0, None, None, "undetermined (signs of symbolic coefficients unknown)"
    results = set()
    for k in range(4):
        sub = {f: sp.Rational((k + 2 + i), 2 + k) * (-1) ** (k * (i + 1)) for i, f in
               enumerate(sorted(free, key=natural_key))}
        cs = [sp.simplify(sp.sympify(c).xreplace(sub)) for c in coeffs]
        if any(not c.is_number for c in cs):
            return 0, None, None, "undetermined (symbolic constants)"
        z = 0
        while cs and cs[-1] == 0:
            cs = cs[:-1]
            z += 1
        signs = [int(sp.sign(c)) for c in cs]
        deg = len(cs) - 1
        results.add((z, _variations(signs),
                     _variations([s * (-1) ** (deg - i) for i, s in enumerate(signs)])))
    if len(results) != 1:
        return 0, None, None, "varies along the family: " + str(sorted(results))
    z, pos, neg = results.pop()
    return z, pos, neg, "sampled at 4 points of the family"


_SAMPLES = ((sp.Rational(7, 5), sp.Rational(-11, 7), sp.Rational(13, 6), sp.Rational(-5, 3),
             sp.Rational(17, 9), sp.Rational(-19, 8), sp.Rational(9, 4), sp.Rational(-23, 10)),
            (sp.Rational(-3, 4), sp.Rational(8, 3), sp.Rational(-6, 5), sp.Rational(11, 4),
             sp.Rational(-13, 7), sp.Rational(5, 2), sp.Rational(-7, 3), sp.Rational(12, 5)),
            (sp.Rational(5, 7), sp.Rational(9, 5), sp.Rational(-4, 3), sp.Rational(-7, 2),
             sp.Rational(3, 2), sp.Rational(-16, 9), sp.Rational(10, 3), sp.Rational(-2, 5)))


def _exact_counts(J, lam):
    """(n_zero, n_pos, n_neg, charpoly) of a matrix of numbers, exactly (DomainMatrix)."""
    from sympy.polys.matrices import DomainMatrix
    cp = sp.Integer(1)
    for idx in _blocks(J):
        dm = DomainMatrix.from_Matrix(J.extract(idx, idx))
        coeffs = [dm.domain.to_sympy(c) for c in dm.charpoly()]
        cp *= sp.Poly(coeffs, lam).as_expr()
    coeffs = sp.Poly(sp.expand(cp), lam).all_coeffs()
    k = 0
    while coeffs and sp.simplify(coeffs[-1]) == 0:
        coeffs, k = coeffs[:-1], k + 1
    signs = [int(sp.sign(sp.N(c, 50))) for c in coeffs]
    deg = len(coeffs) - 1
    return k, _variations(signs), _variations([x * (-1) ** (deg - i) for i, x in
                                               enumerate(signs)]), cp


def _classify_numeric(J, free, lam):
    """J has numbers only (numeric constants): exact counts, at sample points of a family."""
    free = sorted(free, key=natural_key)
    results, cp = set(), None
    samples = _SAMPLES if free else ((),)
    for row in samples:
        sub = {f: row[i % len(row)] * (1 + i // len(row)) for i, f in enumerate(free)}
        try:
            Jk = J.xreplace(sub).applyfunc(lambda e: sp.radsimp(sp.cancel(e)))
        except ZeroDivisionError:
            continue
        if any(not e.is_finite for e in Jk):
            continue
        k, pos, neg, cp = _exact_counts(Jk, lam)
        results.add((k, pos, neg))
    if len(results) != 1:
        return Stability(kind="undetermined", n_unstable=-1, n_stable=-1, n_zero=0,
                         along_family=len(free), eigenvalues=(),
                         method="varies along the family: " + str(sorted(results)))
    k, pos, neg = results.pop()
    eig = _eigen_list([sp.factor(cp)], lam, free) if not free else ()
    m = len(free)
    kind = ("degenerate" if k > m else "saddle" if pos and neg else
            "unstable" if pos else "stable")
    method = "exact" if not free else f"exact at {len(samples)} sample points of the family"
    return Stability(kind=kind, n_unstable=pos, n_stable=neg, n_zero=k, along_family=m,
                     eigenvalues=eig, method=method)
