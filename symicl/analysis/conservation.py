"""Polynomial conservation laws of a derived flow, with certificates.

A polynomial h(theta) is conserved by  d theta/dt = F(theta)  iff

    grad h(theta) . F(theta) = 0   identically in theta (and the constants).

With the ansatz h = sum_m a_m theta^m over the monomials m of one degree
(degree 2: h = theta^T A theta), the identity is linear in the unknown
coefficients a_m: each monomial of theta in grad h . F gives one linear
equation whose coefficients are polynomials in the constants (N, s_a, ...).
The conserved quantities are the null space of that system over the field
of rational functions of the constants.

Parameters with F_i = 0 identically (inert parameters) are conserved
trivially, with any function of them; they are reported apart and left
out of the ansatz.

For gradient descent with step eta, theta' = theta + eta F(theta), the
per-step change h(theta') - h(theta) is a polynomial in eta whose linear
term vanishes for a conserved h; for quadratic h it is exactly
eta^2 F^T A F = eta^2 grad L^T A grad L.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from itertools import combinations_with_replacement

import numpy as np
import sympy as sp
from sympy.polys.fields import FracElement
from sympy.polys.matrices import DomainMatrix

from ..algebra import FlintRing
from ..model import Model

__all__ = ["ConservationLaw", "Conservation", "conservation_laws", "discrete_step_change"]

SAMPLED_TERMS = 20_000   # expected-loss terms beyond which the ansatz system is sampled


@dataclass(frozen=True)
class ConservationLaw:
    """A conserved quantity h(theta) with its certificate grad h . F == 0."""

    expression: sp.Expr
    certificate: str
    step_change: dict[int, sp.Expr] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"expression": str(self.expression), "certificate": self.certificate,
                "gd_step_change": {f"eta^{k}": str(v) for k, v in sorted(self.step_change.items())}}


@dataclass(frozen=True)
class Conservation:
    """All conservation laws of one ansatz degree, and the inert parameters."""

    laws: list[ConservationLaw]
    inert: list[sp.Symbol]
    degree: int

    def expressions(self) -> list[sp.Expr]:
        return [law.expression for law in self.laws]


class _FlowRing:
    """The model's flow as sparse polynomials, split into parameter and constant parts."""

    def __init__(self, model: Model, params):
        engine = model._engine
        self.ring = engine.coefficients
        self.to_expr = engine.to_expr
        self.flow = {p: -g for p, g in model._gradient.items()}
        index = self.ring.index
        self.p_idx = [index[p] for p in params]
        self.c_idx = [i for i in range(len(self.ring.gens)) if i not in set(self.p_idx)]
        self.params = params

    def directional(self, combo) -> dict:
        """grad(theta^combo) . F as {theta-exponents: {constant-exponents: coeff}}."""
        return self.split(self.directional_poly(combo))

    def directional_poly(self, combo):
        """grad(theta^combo) . F as a polynomial of the coefficient ring."""
        gens = self.ring.ring.gens
        total = self.ring.zero
        for k in sorted(set(combo)):
            rest = list(combo)
            rest.remove(k)
            term = self.ring.one * combo.count(k)
            for r in rest:
                term = term * gens[self.p_idx[r]]
            total = total + term * self.flow[self.params[k]]
        return total

    def split(self, total) -> dict:
        """A ring polynomial as {theta-exponents: {constant-exponents: coeff}}."""
        out: dict = {}
        for monom, coeff in total.terms():
            key = tuple(monom[i] for i in self.p_idx)
            inner = out.setdefault(key, {})
            const = tuple(monom[i] for i in self.c_idx)
            inner[const] = inner.get(const, 0) + coeff
        return out

    def lift(self, poly: dict):
        """A {constant-exponents: coeff} polynomial as an element of the full ring."""
        n = len(self.ring.gens)
        full = {}
        for const, coeff in poly.items():
            monom = [0] * n
            for i, e in zip(self.c_idx, const):
                monom[i] = e
            full[tuple(monom)] = coeff
        return self.ring.ring.from_dict(full)

    def constant_expr(self, poly: dict) -> sp.Expr:
        """A {constant-exponents: coeff} polynomial as a SymPy expression."""
        return self.to_expr(self.lift(poly))


def _system(fr: _FlowRing, combos, polys=None):
    """Rows: theta-monomials of grad h . F; columns: ansatz coefficients."""
    columns = [fr.directional(c) for c in combos] if polys is None else [fr.split(p) for p in polys]
    rows = sorted({m for col in columns for m in col})
    index = {m: i for i, m in enumerate(rows)}
    entries: list[dict[int, dict]] = [dict() for _ in rows]
    for j, col in enumerate(columns):
        for m, c in col.items():
            entries[index[m]][j] = c
    return entries


def _at_point(poly, point) -> "sp.QQ":
    """A coefficient polynomial (exponent tuple of the constants -> rational) at ``point``."""
    total = sp.QQ(0)
    for exps, coeff in poly.items():
        term = sp.QQ(coeff)
        for x, e in zip(point, exps):
            if e:
                term *= x ** e
        total += term
    return total


def _numeric_support(entries, ncols: int, nconst: int, trials: int = 2) -> set[int]:
    """Columns used by the null space at random rational constants (a screen).

    A column that the null space over the rational functions uses is used at
    a random point with probability one, so the screen loses nothing.
    """
    rng = random.Random(20261124)
    support: set[int] = set()
    for _ in range(trials):
        point = [sp.QQ(rng.randint(3, 97), rng.randint(3, 97)) for _ in range(nconst)]

        rows = {i: {j: v for j, poly in row.items() if (v := _at_point(poly, point)) != 0}
                for i, row in enumerate(entries)}
        rows = {i: r for i, r in rows.items() if r}
        dm = DomainMatrix(rows, (len(entries), ncols), sp.QQ)
        null = dm.nullspace().to_Matrix()
        for i in range(null.rows):
            support |= {j for j in range(ncols) if null[i, j] != 0}
    return support


def _old_path() -> bool:
    """The expression-level path, kept only so the benchmark can compare against it."""
    return os.environ.get("SYMICL_ANALYSIS_PATH", "") == "old"


def conservation_laws(model: Model, degree: int = 2, with_step_change: bool = True) -> Conservation:
    """A basis of the homogeneous degree-``degree`` polynomials conserved by the flow.

    The basis is canonical (reduced row-echelon in the monomial order of the
    parameters), so derivations are reproducible.  Each law carries the
    identity grad h . F == 0, checked exactly, as certificate and, if asked,
    its exact per-step change under gradient descent (:func:`discrete_step_change`).

    The linear system, its null space and the certificates are computed in
    the model's coefficient ring (sparse polynomials, DomainMatrix over the
    field of rational functions of the ring's constants); only the final
    coefficients become SymPy expressions.
    """
    if degree < 1:
        raise ValueError(f"ansatz degree must be at least 1, got {degree}")
    if _old_path() or model._engine._expr_plan is None:
        return _conservation_laws_expr(model, degree, with_step_change)
    if len(model._expected) > SAMPLED_TERMS:
        found = _sampled_laws(model, degree, with_step_change)
        if found is not None:
            return found
    grads = model._gradient
    inert = [p for p in model.parameters if not grads[p]]
    active = [p for p in model.parameters if grads[p]]
    if not active:
        return Conservation([], inert, degree)
    combos = list(combinations_with_replacement(range(len(active)), degree))
    monomials = [sp.Mul(*[active[k] for k in c]) for c in combos]
    fr = _FlowRing(model, active)
    polys = [fr.directional_poly(c) for c in combos]
    entries = _system(fr, combos, polys)
    support = sorted(_numeric_support(entries, len(combos), len(fr.c_idx)))
    laws: list[ConservationLaw] = []
    if not support:
        return Conservation(laws, inert, degree)
    basis = _rational_basis(fr, entries, support, [polys[j] for j in support])
    if basis is None:
        basis = _ring_basis(fr, entries, support)
    for vec in basis:
        if all(not v for v in vec):
            continue
        _certify(fr, [polys[j] for j in support], vec)
        coeffs = [_coefficient_expr(fr, v) for v in vec]
        h = sp.expand(sum(v * monomials[j] for v, j in zip(coeffs, support)))
        cert = f"grad({h}) . F = 0"
        step = discrete_step_change(model, h, _certified=True) if with_step_change else {}
        laws.append(ConservationLaw(h, cert, step))
    return Conservation(laws, inert, degree)


def _sampled_laws(model: Model, degree: int, with_step_change: bool):
    """The laws of a flow too large to expand the ansatz system, by exact sampling.

    At an integer point c* of the constants and K = (number of ansatz
    monomials m_j) + 8 random integer points theta_k, the rows
    (grad m_j(theta_k) . F(theta_k, c*))_j are evaluated exactly mod a prime
    (:mod:`.modular`); their null space contains the laws at c* (rank mod p
    and at special points can only drop, so nothing is lost), and its reduced
    echelon basis is lifted by rational reconstruction.  Each lifted vector
    must pass the exact certificate sum_j a_j grad m_j . F == 0 in flint with
    the constants symbolic; then the space is the generic one and the basis
    the ring path's.  Returns None (use the ring path) when a vector fails or
    does not lift.
    """
    from . import modular

    ring = model._engine.coefficients
    p_all = [ring.index[p] for p in model.parameters]
    c_idx = [i for i in range(len(ring.gens)) if i not in set(p_all)]
    c_star = [int(sp.prime(5 + k)) for k in range(len(c_idx))]
    mptr, mvar, mexp, coef = modular.loss_table(model._expected, p_all, c_idx, c_star)
    used = set(mvar.tolist())
    inert = [p for k, p in enumerate(model.parameters) if k not in used]
    keep = [k for k in range(len(model.parameters)) if k in used]
    active = [model.parameters[k] for k in keep]
    if not active:
        return Conservation([], inert, degree)
    combos = list(combinations_with_replacement(range(len(active)), degree))
    rng = np.random.default_rng(20261203)
    K = len(combos) + 8
    points = rng.integers(-9, 10, size=(K, len(model.parameters))).astype(np.int64)
    P = modular.PRIME
    grads = modular.gradients(mptr, mvar, mexp, coef, points % P, P)
    F = [(-grads[:, k]) % P for k in keep]
    theta = [points[:, k] % P for k in keep]
    rows = np.zeros((K, len(combos)), np.int64)
    for j, combo in enumerate(combos):
        for k in set(combo):
            rest = list(combo)
            rest.remove(k)
            term = np.full(K, combo.count(k), np.int64)
            for m in rest:
                term = term * theta[m] % P
            rows[:, j] = (rows[:, j] + term * F[k]) % P
    fl = FlintRing(ring.gens)
    basis = []
    for vec in modular.null_rref(fl.flint, rows):
        lifted = [modular.rational(v) if v else (0, 1) for v in vec]
        if any(q is None for q in lifted):
            return None
        basis.append([sp.Rational(a, b) for a, b in lifted])
    if not basis:
        return Conservation([], inert, degree)
    loss = fl.from_sympy_poly(model._expected)
    flows = [-loss.derivative(p_all[k]) for k in keep]
    gens = [fl.vars[p_all[k]] for k in keep]
    monomials = [sp.Mul(*[active[k] for k in c]) for c in combos]
    laws: list[ConservationLaw] = []
    for vec in basis:
        total = fl.zero
        for j, v in enumerate(vec):
            if v:
                q = fl.flint.fmpq(int(v.p), int(v.q))
                for k in set(combos[j]):
                    rest = list(combos[j])
                    rest.remove(k)
                    term = fl.one * (q * combos[j].count(k))
                    for m in rest:
                        term = term * gens[m]
                    total = total + term * flows[k]
        if not total.is_zero():
            return None
        h = sp.expand(sum(v * monomials[j] for j, v in enumerate(vec) if v))
        step = discrete_step_change(model, h, _certified=True) if with_step_change else {}
        laws.append(ConservationLaw(h, f"grad({h}) . F = 0", step))
    return Conservation(laws, inert, degree)


def _rational_basis(fr: _FlowRing, entries, support, polys):
    """The null space at one rational point of the constants, if it holds for all of them.

    Elimination over QQ at a fixed point c* of the constants (N, s_a, ...) is
    far cheaper than over their rational functions.  The nullity at c* is at
    least the generic one (rank can only drop at special points), so when every
    vector of the basis at c* passes the exact certificate with the constants
    symbolic, the two spaces are equal and so are their reduced row-echelon
    bases.  Returns None (use the ring) when there are no constants or a vector
    fails: generators that depend on the constants, or a special point.
    """
    if not fr.c_idx:
        return None
    point = [sp.QQ(int(sp.prime(26 + k)), 7 + 2 * k) for k in range(len(fr.c_idx))]

    where = {j: k for k, j in enumerate(support)}
    data = {}
    for i, row in enumerate(entries):
        r = {where[j]: _at_point(poly, point) for j, poly in row.items() if j in where}
        r = {k: v for k, v in r.items() if v}
        if r:
            data[i] = r
    if data:
        dm = DomainMatrix(data, (len(entries), len(support)), sp.QQ)
        null = dm.nullspace()
        if null.shape[0] == 0:
            return []
        basis = null.rref()[0].to_list()
    else:
        basis = DomainMatrix.eye(len(support), sp.QQ).to_list()
    for vec in basis:
        try:
            _certify(fr, polys, vec)
        except ArithmeticError:
            return None
    return basis


def _ring_basis(fr: _FlowRing, entries, support):
    """The reduced row-echelon null-space basis on the ``support`` columns, over the
    field of rational functions of the ring's constant generators (or QQ)."""
    cgens = [fr.ring.gens[i] for i in fr.c_idx]
    where = {j: k for k, j in enumerate(support)}
    rows = [row for row in entries if any(j in row for j in support)]
    if cgens:
        dom = sp.QQ[tuple(cgens)]
        def conv(poly):
            return dom.ring.from_dict(poly)
        field = dom.get_field()
    else:
        dom = field = sp.QQ
        def conv(poly):
            return sum(poly.values(), sp.QQ(0))
    if rows:
        data = {}
        for i, row in enumerate(rows):
            r = {where[j]: conv(poly) for j, poly in row.items() if j in where}
            r = {k: v for k, v in r.items() if v}
            if r:
                data[i] = r
        dm = DomainMatrix(data, (len(rows), len(support)), dom)
        # Fraction-free elimination in the polynomial ring (no gcds of
        # rational functions on the way), then the small null basis in the field.
        null = dm.nullspace(divide_last=False).convert_to(field)
    else:
        null = DomainMatrix.eye(len(support), field)
    if null.shape[0] == 0:
        return []
    basis = null.rref()[0].to_list()
    return basis


def _coefficient_expr(fr: _FlowRing, v) -> sp.Expr:
    """A null-space entry as the factored SymPy expression of the expression path."""
    if not v:
        return sp.Integer(0)
    if not isinstance(v, FracElement):
        return sp.Rational(int(v.numerator), int(v.denominator))
    num, den = v.numer, v.denom
    if num.is_ground and den.is_ground:
        q = sp.QQ(num.LC) / sp.QQ(den.LC) if num else sp.QQ(0)
        return sp.Rational(int(q.numerator), int(q.denominator))
    return sp.factor(fr.constant_expr(dict(num.items())) / fr.constant_expr(dict(den.items())))


def _certify(fr: _FlowRing, polys, vec) -> None:
    """Check sum_j vec_j grad(m_j) . F == 0 exactly in the coefficient ring."""
    if any(isinstance(v, FracElement) for v in vec):
        den = None
        for v in vec:
            if v:
                den = v.denom if den is None else den.lcm(v.denom)
        coeffs = []
        for v in vec:
            if not v:
                coeffs.append(None)
                continue
            q, r = divmod(den, v.denom)
            if r:
                raise ArithmeticError("denominator does not divide the common denominator")
            coeffs.append(fr.lift(dict((v.numer * q).items())))
    else:
        coeffs = [fr.ring.ring(v) if v else None for v in vec]
    total = fr.ring.zero
    for c, poly in zip(coeffs, polys):
        if c is not None:
            total = total + c * poly
    if total:
        raise ArithmeticError(f"candidate law fails its certificate: residual {fr.to_expr(total)}")


def _conservation_laws_expr(model: Model, degree: int = 2,
                            with_step_change: bool = True) -> Conservation:
    """:func:`conservation_laws` with expression-level row reduction, ``factor`` and
    ``simplify`` (the reference path; also used where the coefficient ring has
    placeholders other than 1/N)."""
    flow = model.flow()
    inert = [p for p in model.parameters if flow[p] == 0]
    active = [p for p in model.parameters if flow[p] != 0]
    if not active:
        return Conservation([], inert, degree)
    combos = list(combinations_with_replacement(range(len(active)), degree))
    monomials = [sp.Mul(*[active[k] for k in c]) for c in combos]
    fr = _FlowRing(model, active)
    entries = _system(fr, combos)
    support = sorted(_numeric_support(entries, len(combos), len(fr.c_idx)))
    laws: list[ConservationLaw] = []
    if support:
        sub = [[fr.constant_expr(row[j]) if j in row else sp.Integer(0) for j in support]
               for row in entries if any(j in row for j in support)]
        constants = sorted(set().union(set(), *[e.free_symbols for r in sub for e in r]),
                           key=sp.default_sort_key)
        domain = sp.QQ.frac_field(*constants) if constants else sp.QQ
        if sub:
            dm = DomainMatrix.from_list_sympy(len(sub), len(support), sub).convert_to(domain)
            null = dm.nullspace().to_Matrix()
        else:
            null = sp.eye(len(support))
        basis = null.rref()[0] if null.rows else null
        for i in range(basis.rows):
            vec = [sp.factor(basis[i, k]) for k in range(len(support))]
            if all(v == 0 for v in vec):
                continue
            h = sp.expand(sum(v * monomials[j] for v, j in zip(vec, support)))
            residual = sp.simplify(sp.expand(sum(sp.diff(h, p) * flow[p] for p in active)))
            if residual != 0:
                raise ArithmeticError(f"candidate law {h} fails its certificate: {residual}")
            cert = f"grad({h}) . F = {residual}"
            step = discrete_step_change(model, h) if with_step_change else {}
            laws.append(ConservationLaw(h, cert, step))
    return Conservation(laws, inert, degree)


def gradient_symbol(p: sp.Symbol) -> sp.Symbol:
    """The symbol g_<name> standing for dL/d<name> in compact step laws."""
    return sp.Symbol(f"g_{p.name}", real=True)


def discrete_step_change(model: Model, h: sp.Expr, _certified: bool = False) -> dict[int, sp.Expr]:
    """h(theta - eta grad L) - h(theta) as {k: coefficient of eta^k}, exactly.

    Written with gradient symbols g_theta = dL/dtheta so that it stays short:
    for a quadratic law h = theta^T A theta it is {2: g^T A g}.
    """
    eta = sp.Symbol("eta", positive=True)
    params = [p for p in model.parameters if h.has(p)]
    shifted = h.xreplace({p: p - eta * gradient_symbol(p) for p in params})
    poly = sp.Poly(sp.expand(shifted - h), eta)
    out = {k: sp.factor_terms(c) for (k,), c in poly.terms() if c != 0}
    if 1 in out and _certified:
        del out[1]      # grad h . grad L == 0 was checked exactly in the ring
    if 1 in out:
        g = model.gradient()
        check = sp.expand(out[1].xreplace({gradient_symbol(p): g[p] for p in params}))
        if check != 0:
            raise ArithmeticError(f"{h} has a first-order step change {check}: not conserved")
        del out[1]
    return out
