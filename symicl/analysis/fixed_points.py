"""All fixed points of a derived flow, by a complete polynomial-system method.

The fixed points of  d theta/dt = F(theta) = -grad L(theta)  are the real
zeros of the polynomial system F_1 = ... = F_n = 0.  They are found without
any local search:

1. *Decomposition.*  A Groebner basis G (lex order) of the system is computed
   with FLINT's Buchberger over QQ (numeric constants; the reduced basis is
   unique, so it is the one ``sympy.groebner`` gives, in a fraction of the
   time; ``SYMICL_GB_BACKEND=sympy`` selects SymPy's) and with ``sympy.groebner``
   over the rational functions of symbolic constants.  If an element of G factors, g = f_1 f_2 ..., the
   zero set splits into the zero sets of G + {f_k}, each decomposed again
   (the factorising Buchberger algorithm).  A factor that is a sum of even
   monomials with coefficients of one sign (e.g. 64 q_1^2 + 7 q_2^2) has the
   same *real* zeros as its monomials, and is replaced by them (or dropped if
   it has a constant term).  What is left are components V(G) with G
   irreducible factor by factor.

2. *Dimension.*  The dimension of a component is the size of a largest set U
   of parameters such that no leading monomial of G involves only U; U are
   the free parameters of the family (positive dimension) — parameters the
   flow does not involve at all (inert ones) are free in every component.

3. *Families* (U non-empty, or symbolic constants): triangular
   back-substitution in the lex basis with the U last, each bound parameter
   solved from the basis element of lowest degree in it.  Where the leading
   coefficient c of that element vanishes the solution is not covered, so
   G + {c} is decomposed too (a triangular decomposition: nothing is lost).

4. *Isolated points with numeric constants*: a separating linear form
   t = sum k_i theta_i gives the shape  theta_i = g_i(t),  phi(t) = 0  for each
   irreducible factor phi of the eliminant; the real points are the real roots
   of phi, isolated exactly (``Poly.real_roots``), and each coordinate is
   written as a radical (degree <= 2) or a ``CRootOf`` of its own minimal
   polynomial.  Exactness check: F(g(t)) = 0 mod phi(t).

Components contained in others (radical membership, Rabinowitsch trick) are
dropped.  Every reported point or family is checked by substitution into the
flow: exactly (symbolic cancellation, or the remainder mod phi), and
numerically to 1e-12 at 30 digits at sample points of families.

With symbolic constants (N, s_a, ...) the coefficients live in the field of
rational functions of the constants: results hold for *generic* constants
(factors free of the parameters are taken to be non-zero).  Constants named in
``square_roots`` are written c = r^2 first, so that points involving sqrt(c)
become rational in r; r is put back as sqrt(c) in the results.

Limits: at most ``max_variables`` active parameters (default 10) and a wall
clock ``time_budget`` (seconds, enforced with SIGALRM in the main thread);
beyond either, :class:`FixedPointBudgetError` is raised instead of a hang.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import sympy as sp

from ..errors import ModelError, SymiclError
from ..model import Model
from ..symbols import natural_key

__all__ = [
    "FixedPoint",
    "FixedPointBudgetError",
    "FixedPoints",
    "fixed_points",
    "learned_map",
]

_TOL = 1e-12
_DIGITS = 30

#: Groebner backend over QQ: "flint" (FLINT's Buchberger in C) or "sympy" (the
#: reference path; ``SYMICL_GB_BACKEND=sympy`` selects it, e.g. for benchmarks).
_GB_BACKEND = os.environ.get("SYMICL_GB_BACKEND", "flint")
_TRACE = bool(os.environ.get("SYMICL_FP_TRACE"))


class FixedPointBudgetError(SymiclError):
    """The polynomial system is too large, or took longer than the time budget."""


@dataclass(frozen=True)
class FixedPoint:
    """One real fixed point, or one family of them.

    ``values`` maps every parameter to its value: a number, an algebraic
    number, or an expression in the free parameters ``free`` (a family;
    a free parameter maps to itself).  ``equations`` are the polynomial
    equations that define the component (its Groebner basis).  ``inert``
    lists the free parameters the flow does not involve at all.
    ``stability`` is filled in by :func:`fixed_points` (``classify=True``).
    ``condition``: the stratum the family was found in (``orbits=True``), e.g.
    ``("det(B) = 0", "det(A) != 0")``; its free parameters named ``<name>_s`` are
    slice coordinates (see :mod:`symicl.analysis.orbit_strata`), and its
    ``equations`` hold on the family together with the condition.
    """

    values: dict
    free: tuple = ()
    inert: tuple = ()
    equations: tuple = ()
    verified: str = ""
    residual: float = 0.0
    stability: object = None
    condition: tuple = ()

    @property
    def dimension(self) -> int:
        """Dimension of the family (0 for an isolated point)."""
        return len(self.free)

    @property
    def is_family(self) -> bool:
        return bool(self.free)

    def to_dict(self) -> dict:
        """Parameter name -> canonical expression string (JSON-ready)."""
        return {str(p): sp.sstr(v, order="lex") for p, v in
                sorted(self.values.items(), key=lambda kv: natural_key(kv[0]))}

    def describe(self) -> dict:
        """Everything about the point as JSON-ready strings."""
        out = {"values": self.to_dict(), "dimension": self.dimension,
               "free": [str(p) for p in self.free], "inert": [str(p) for p in self.inert],
               "equations": [sp.sstr(e, order="lex") for e in self.equations],
               "verified": self.verified}
        if self.condition:
            out["condition"] = list(self.condition)
        if self.stability is not None:
            out["stability"] = self.stability.to_dict()
        return out

    def numeric(self, free_values: Mapping | None = None, digits: int = 15) -> dict:
        """Numeric values (floats), the free parameters set from ``free_values`` (default 1)."""
        sub = {p: sp.sympify((free_values or {}).get(p, (free_values or {}).get(str(p), 1)))
               for p in self.free}
        return {p: float(sp.N(sp.sympify(v).xreplace(sub), digits)) for p, v in self.values.items()}


@dataclass(frozen=True)
class FixedPoints:
    """All real fixed points of a model's flow (points and families).

    ``constants`` are the values substituted for the model's constants;
    ``dropped`` records components left out and why (no real points),
    so that nothing is missed silently.
    """

    model: str
    parameters: tuple
    points: list
    constants: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    seconds: float = 0.0

    def __iter__(self):
        return iter(self.points)

    def __len__(self):
        return len(self.points)

    def by_kind(self, kind: str) -> list:
        """The points whose stability kind is ``kind`` (stable, saddle, ...)."""
        return [p for p in self.points if p.stability is not None and p.stability.kind == kind]

    def stable(self) -> list:
        return self.by_kind("stable")

    def to_dict(self) -> list:
        """The ``fixed_points`` list of the derivation JSON: name -> expression string maps."""
        return [p.to_dict() for p in self.points]

    def describe(self) -> dict:
        return {"model": self.model, "constants": {str(k): str(v) for k, v in
                                                    sorted(self.constants.items(),
                                                           key=lambda kv: natural_key(kv[0]))},
                "fixed_points": [p.describe() for p in self.points],
                "dropped": list(self.dropped)}


# ---------------------------------------------------------------------------
# time budget


@contextmanager
def _budget(seconds):
    """Raise FixedPointBudgetError after ``seconds`` (main thread only, SIGALRM)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _alarm(signum, frame):
        raise FixedPointBudgetError(
            f"fixed-point computation exceeded its time budget of {seconds:g} s; "
            "fix more constants numerically, use a reduction, or raise time_budget")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------
# the polynomial system


class _System:
    """The flow as polynomials in the active parameters over QQ or QQ(constants)."""

    def __init__(self, flow: dict, params: list, consts: list, assumptions_of: dict,
                 extra=(), flow_params=None):
        self.params = params
        self.consts = consts
        self.flow = flow
        eqs = []
        for p in (params if flow_params is None else flow_params):
            num = sp.numer(sp.together(sp.expand(flow[p])))
            if num != 0:
                eqs.append(sp.expand(num))
        eqs.extend(e for e in extra if e != 0 and e not in eqs)
        self.active = [p for p in params if any(e.has(p) for e in eqs)]
        self.inert = [p for p in params if p not in self.active]
        self.domain = sp.QQ if not consts else sp.QQ.frac_field(*consts)
        self.eqs = eqs
        self.assumptions_of = assumptions_of
        self.saturate = False

    def gb(self, polys, gens=None):
        gens = gens or self.active
        polys = [p for p in polys if p != 0]
        if not polys:
            return []
        if self.domain == sp.QQ and _GB_BACKEND == "flint":
            return _groebner(polys, gens, self.domain, primitive=True)
        G = _groebner(polys, gens, self.domain)
        return [sp.expand(sp.numer(sp.together(g))) for g in G]

    # -- signs under the constants' assumptions -------------------------------
    def sign(self, expr) -> int | None:
        expr = sp.factor(sp.sympify(expr))
        if expr.is_positive:
            return 1
        if expr.is_negative:
            return -1
        return None

    # -- real-zero preserving factorisation -----------------------------------
    def branches(self, g):
        """Alternatives (lists of polynomials) whose real zeros cover those of g.

        ``None`` when g is irreducible and not definite (no split)."""
        if self.domain == sp.QQ and _GB_BACKEND == "flint" and self.active:
            # FLINT's factoriser first: an irreducible g does not split (it may be
            # definite); SymPy's factor_list only for the reducible ones
            P = _to_flint(g, self.active)
            _, fac = P.factor()
            if len(fac) == 1 and int(fac[0][1]) == 1:
                alt = self._definite(g)
                return None if alt is None else [] if alt == "none" else [alt]
        _, factors = sp.factor_list(g)
        factors = [f for f, _ in factors if f.has(*self.active)]
        out = []
        for f in factors:
            alt = self._definite(f)
            if alt == "none":
                continue
            out.append(alt if alt is not None else [f])
        if len(out) == 1 and len(factors) == 1 and out[0] == [g]:
            return None
        return out

    def _definite(self, f):
        """For f = sum c_m theta^(2m) with all c_m of one sign: its monomials' radicals."""
        poly = sp.Poly(f, *self.active)
        terms = poly.terms()
        if not all(all(e % 2 == 0 for e in m) for m, _ in terms):
            return None
        signs = {self.sign(c) for _, c in terms}
        if len(signs) != 1 or None in signs:
            return None
        if any(all(e == 0 for e in m) for m, _ in terms):
            return "none"
        return [sp.Mul(*[v for v, e in zip(self.active, m) if e]) for m, _ in terms]


def _groebner(polys, gens, domain, primitive=False) -> list:
    """The reduced lex Groebner basis of ``polys`` (expressions in ``gens``), as the
    expressions ``sympy.groebner(...).exprs`` gives: monic, leading monomials descending.

    Over QQ the basis is computed by FLINT (``fmpz_mpoly_vec.buchberger_naive``
    and ``autoreduction`` on the primitive integer polynomials, then made monic);
    the reduced basis of an ideal is unique, so both backends give the same
    expressions.  Over rational functions of symbolic constants, SymPy's.
    """
    if _GB_BACKEND not in ("flint", "sympy"):
        raise ModelError(f"unknown Groebner backend {_GB_BACKEND!r} (SYMICL_GB_BACKEND): "
                         "use 'flint' or 'sympy'")
    polys = [p for p in polys if p != 0]
    if not polys:
        return []
    if domain != sp.QQ or _GB_BACKEND != "flint" or not gens:
        return list(sp.groebner(polys, *gens, order="lex", domain=domain).exprs)
    gb_key, G = _flint_gb(polys, gens)
    key = (gb_key, primitive)
    if key not in _MEMO["expr"]:
        exprs = _from_flint(G, gens, primitive)
        _MEMO["expr"][key] = exprs
        # the basis generates the same ideal and is its own basis: no recomputation
        # when it is passed back (membership tests, further decomposition)
        _MEMO["gb"].setdefault((tuple(exprs), tuple(gens), ()), G)
    return list(_MEMO["expr"][key])


#: Per-call memo of the FLINT path (cleared by :func:`fixed_points`): expressions as
#: FLINT polynomials, and Groebner bases by generators.
_MEMO: dict = {"poly": {}, "gb": {}, "expr": {}, "alt": {}}
#: (basis length, polynomial length, coefficient bits) within which a generating set
#: of a branch is tried before the other one (:func:`_flint_gb`)
_GB_LIMITS = (400, 4000, 4096)


def _flint_ctx(gens):
    import flint

    return flint.fmpz_mpoly_ctx.get(tuple(f"x{k}" for k in range(len(gens))), "lex")


def _to_flint(e, gens):
    key = (e, tuple(gens))
    if key not in _MEMO["poly"]:
        P = sp.Poly(e, *gens, domain=sp.QQ)
        den = math.lcm(*[int(c.q) for c in P.coeffs()])
        _MEMO["poly"][key] = _flint_ctx(gens).from_dict(
            {m: int(c * den) for m, c in P.terms()})
    return _MEMO["poly"][key]


def _flint_gb(polys, gens, extra=()):
    """(key, reduced basis as a list of FLINT polynomials) of polys + extra (FLINT polys)."""
    import flint

    key = (tuple(polys), tuple(gens), tuple(str(e) for e in extra))
    if key not in _MEMO["gb"]:
        ctx = _flint_ctx(gens)
        sets = [[_to_flint(e, gens) for e in polys] + list(extra)]
        other = _MEMO["alt"].get(tuple(polys)) if not extra else None
        if other is not None:
            sets.append([_to_flint(e, gens) for e in other])
        G = None
        if len(sets) > 1:
            # two generating sets of one ideal: whichever finishes within the limits
            for vec in sets:
                G, done = flint.fmpz_mpoly_vec(vec, ctx).buchberger_naive(limits=_GB_LIMITS)
                if done:
                    break
                G = None
        if G is None:
            G = flint.fmpz_mpoly_vec(sets[0], ctx).buchberger_naive()
        G = G.autoreduction()
        _MEMO["gb"][key] = [g for g in G if not g.is_zero()]
    return key, _MEMO["gb"][key]


def _from_flint(G, gens, primitive):
    out = []
    for g in G:
        terms = sorted(((tuple(m), int(c)) for m, c in g.to_dict().items()), reverse=True)
        lc = terms[0][1]
        if all(e == 0 for e in terms[0][0]):
            return [sp.Integer(1)]
        if primitive:
            content = math.gcd(*[c for _, c in terms]) * (1 if lc > 0 else -1)
            coeffs = {m: sp.Integer(c // content) for m, c in terms}
        else:
            coeffs = {m: sp.Rational(c, lc) for m, c in terms}
        out.append((terms[0][0], sp.Poly.from_dict(coeffs, *gens, domain=sp.QQ).as_expr()))
    out.sort(key=lambda mg: mg[0], reverse=True)
    return tuple(g for _, g in out)


def _top_reduces_to_zero(f, G) -> bool:
    """f lies in the ideal of the Groebner basis G (FLINT polynomials): reduce the
    leading term by the basis until f = 0 (member) or no leading monomial of G
    divides it (not a member); integer arithmetic, primitive parts."""
    ctx = f.context()
    heads = [(tuple(g.monoms()[0]), int(g.leading_coefficient()), g) for g in G]
    while not f.is_zero():
        m = tuple(f.monoms()[0])
        hit = next((h for h in heads if all(a <= b for a, b in zip(h[0], m))), None)
        if hit is None:
            return False
        lm, lg, g = hit
        lf = int(f.leading_coefficient())
        k = math.lcm(lg, lf)
        mono = ctx.from_dict({tuple(b - a for a, b in zip(lm, m)): k // lg})
        f = f * (k // lf) - mono * g
        if not f.is_zero():
            f = f.primitive()[1]
    return True


def _reduces_to_zero(system, G, f):
    """f lies in the ideal of G."""
    if not G:
        return f == 0
    if system.domain == sp.QQ and _GB_BACKEND == "flint":
        _, base = _flint_gb(G, system.active)
        return _top_reduces_to_zero(_to_flint(f, system.active), base)
    Gb = sp.groebner(G, *system.active, order="lex", domain=system.domain)
    return Gb.reduce(f)[1] == 0


def _saturation(system, polys, h) -> list:
    """Generators of (polys) : h^oo, the polynomials vanishing on V(polys) off V(h):
    eliminate t from polys + [1 - t h] (Rabinowitsch)."""
    t = sp.Dummy("t")
    gens = [t] + list(system.active)
    G = _groebner(list(polys) + [sp.expand(1 - t * h)], gens, system.domain, primitive=True)
    return [g for g in G if not g.has(t)]


def _decompose(system, polys, deadline, depth=0, out=None, seen=None):
    """Components V(G) covering the real zeros of ``polys`` (lists of GB expressions)."""
    if out is None:
        out = []
    if depth > 60:
        raise FixedPointBudgetError("fixed-point decomposition did not terminate (depth > 60)")
    G = system.gb(polys)
    seen = set() if seen is None else seen
    if tuple(G) in seen:    # the same ideal by another path: its leaves are in ``out``
        return out
    seen.add(tuple(G))
    if _TRACE:
        print(f"fixed_points: depth {depth}, basis of {len(G)}, {len(out)} components",
              flush=True)
    if any(g.is_number and g != 0 for g in G):
        return out
    for g in G:
        alts = system.branches(g)
        if alts is None:
            continue
        if all(all(_reduces_to_zero(system, G, f) for f in alt) for alt in alts):
            continue
        for k, alt in enumerate(alts):
            before = [a[0] for a in alts[:k] if len(a) == 1]
            if system.saturate and before:
                # the k-th factor's zeros off those of the earlier ones (they have
                # their own branches): the saturation (G + f_k) : (f_1...f_{k-1})^oo
                part = _saturation(system, list(polys if len(polys) < len(G) else G)
                                   + list(alt), sp.Mul(*before))
            elif system.domain == sp.QQ and _GB_BACKEND == "flint" and len(polys) < len(G):
                # same ideal, from the shorter generating set (FLINT's Buchberger pairs
                # every two generators: a few generators beat a large basis)
                part = list(polys) + list(alt)
                _MEMO["alt"][tuple(part)] = G + list(alt)
            else:
                part = G + list(alt)
            _decompose(system, part, deadline, depth + 1, out, seen)
        return out
    out.append(G)
    return out


def _leading_support(system, G, gens):
    out = []
    for g in G:
        lm = sp.Poly(g, *gens).monoms(order="lex")[0]
        out.append({v for v, e in zip(gens, lm) if e})
    return out


def _independent_sets(system, G):
    """Maximal independent sets of parameters (all of the largest size), preferred first."""
    active = system.active
    supports = _leading_support(system, G, active)
    for size in range(len(active), -1, -1):
        found = [set(U) for U in itertools.combinations(active, size)
                 if not any(s <= set(U) for s in supports)]
        if found:
            return found
    return [set()]


def _dimension(system, G) -> int:
    return len(_independent_sets(system, G)[0]) if G else len(system.active)


def _contained(system, GA, GB) -> bool:
    """V(GA) is a subset of V(GB): every element of GB is in the radical of GA."""
    if _dimension(system, GA) > _dimension(system, GB):
        return False
    t = sp.Dummy("t")
    gens = system.active + [t]
    for b in GB:
        if GA and _reduces_to_zero(system, GA, b):
            continue
        G = _groebner(GA + [1 - t * b], gens, system.domain)
        if not (len(G) == 1 and G[0].is_number):
            return False
    return True


# ---------------------------------------------------------------------------
# solving a component


def _is_zero(expr) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    e = sp.cancel(sp.together(expr))
    if e == 0:
        return True
    e = sp.simplify(sp.radsimp(e))
    return e == 0


def _parametrise(system, G, U, extra):
    """Branches {param: expr in U} of V(G), plus special components appended to ``extra``."""
    bound = [p for p in system.active if p not in U]
    free = [p for p in system.active if p in U]
    gens = bound + free
    GG = system.gb(G, gens)
    branches = [{}]
    for x in reversed(bound):
        later = set(bound[bound.index(x) + 1:]) | set(free)
        pivots = [g for g in GG if g.has(x) and g.free_symbols & set(system.active) <= later | {x}]
        if not pivots:
            return None
        pivot = min(pivots, key=lambda g: (sp.degree(g, x), len(sp.Add.make_args(g))))
        lc = sp.Poly(pivot, x).LC()
        if lc.has(*system.active):
            _, lcf = sp.factor_list(lc)
            for f, _ in lcf:
                if f.has(*system.active) and not _reduces_to_zero(system, GG, f):
                    extra.append(G + [f])
        new = []
        for br in branches:
            eq = sp.expand(pivot.xreplace(br))
            if eq == 0:
                return None
            sols = sp.solve(eq, x, dict=False)
            for v in sols:
                v = sp.sympify(v)
                if v.is_real is False:
                    continue
                nb = {k: sp.sympify(w).xreplace({x: v}) for k, w in br.items()}
                nb[x] = v
                new.append(nb)
        branches = new
    good = []
    for br in branches:
        br = {k: sp.factor(sp.radsimp(sp.cancel(v))) for k, v in br.items()}
        if all(_is_zero(g.xreplace(br)) for g in GG):
            good.append(br)
    return good


def _separating_shape(system, G, attempt):
    """Shape form of a zero-dimensional component: t, [(phi, {x: g(t)})]."""
    t = sp.Dummy("t")
    n = len(system.active)
    rng = [1] + [((attempt + 2) * (i + 3)) % 7 + 1 for i in range(n - 1)]
    form = sum(k * x for k, x in zip(rng, system.active))
    gens = system.active + [t]
    Gt = _groebner(G + [t - form], gens, system.domain)
    h = [g for g in Gt if g.free_symbols <= {t}]
    if not h:
        return None
    h = sp.sqf_part(sp.Poly(h[0], t))
    out = []
    for phi, _ in sp.factor_list(h.as_expr(), t)[1]:
        Gp = _groebner(list(Gt) + [phi], gens, system.domain)
        shape = {}
        for g in Gp:
            P = sp.Poly(g, *gens)
            lm = P.monoms(order="lex")[0]
            if sum(lm[:n]) == 1:
                i = lm.index(1)
                if i < n and sp.Poly(g, system.active[i]).degree() == 1:
                    lc = P.coeffs(order="lex")[0]
                    shape[system.active[i]] = sp.expand(
                        -(g - lc * system.active[i]) / lc)
        if set(shape) != set(system.active):
            return None
        out.append((sp.Poly(phi, t), shape))
    return t, out


def _algebraic(value_of_t, t, phi, root):
    """x = g(root) as a radical (degree <= 2) or a CRootOf of its minimal polynomial."""
    val = sp.expand(value_of_t.xreplace({t: root}))
    if root.is_Rational or not isinstance(root, sp.CRootOf):
        return sp.radsimp(sp.simplify(val))
    y = sp.Dummy("y")
    res = sp.resultant(phi.as_expr(), y - value_of_t, t)
    num = complex(sp.N(value_of_t.xreplace({t: root}), _DIGITS))
    best = None
    for f, _ in sp.factor_list(res, y)[1]:
        fp = sp.Poly(f, y)
        if fp.degree() == 0:
            continue
        if fp.degree() == 1:
            cand = [sp.solve(f, y)[0]]
        elif fp.degree() == 2:
            cand = [r for r in sp.roots(fp).keys()]
        else:
            cand = fp.real_roots()
        for c in cand:
            err = abs(complex(sp.N(c, _DIGITS)) - num)
            if best is None or err < best[0]:
                best = (err, c)
    return best[1]


def _zero_dim_points(system, G):
    """Exact real points of a zero-dimensional component with numeric constants."""
    for attempt in range(8):
        shaped = _separating_shape(system, G, attempt)
        if shaped is not None:
            break
    else:
        raise FixedPointBudgetError("no separating linear form found for a zero-dimensional "
                                    "component (8 tries)")
    t, parts = shaped
    points, complex_only = [], 0
    for phi, shape in parts:
        # exact certificate: every flow component vanishes modulo phi
        for p in system.params:
            num = sp.numer(sp.together(sp.expand(system.flow[p])))
            if num == 0:
                continue
            r = sp.Poly(sp.expand(num.xreplace(shape)), t).rem(phi)
            if not r.is_zero:
                raise ModelError(f"internal check failed: flow component of {p} does not "
                                 "vanish on a computed fixed point")
        if phi.degree() <= 2:
            roots = [r for r in sp.roots(phi).keys() if r.is_real]
        else:
            roots = phi.real_roots()
        if not roots:
            complex_only += phi.degree()
        complex_only += phi.degree() - len(roots) if roots else 0
        for root in sorted(set(roots), key=lambda r: float(r)):
            points.append({x: _algebraic(shape[x], t, phi, root) for x in system.active})
    return points, complex_only


# ---------------------------------------------------------------------------
# the public function


def _residual(flow, params, values, free, samples=3) -> float:
    """max |F(theta)| at the point (free parameters at a few sample values), 30 digits."""
    worst = 0.0
    pts = [{}] if not free else [
        {f: sp.Rational(k + 2 + i, 3 + k) for i, f in enumerate(free)} for k in range(samples)]
    for sub in pts:
        full = {p: sp.sympify(values[p]).xreplace(sub) for p in params}
        for p in params:
            v = sp.N(sp.sympify(flow[p]).xreplace(full), _DIGITS)
            if not v.is_number:
                return float("nan")
            worst = max(worst, abs(complex(v)))
    return worst


def fixed_points(model: Model, constants: Mapping | None = None, *, classify: bool = True,
                 square_roots: Sequence = (), max_variables: int = 10,
                 time_budget: float | None = 120.0, saturate: bool = False,
                 orbits: bool = False) -> FixedPoints:
    """Every real fixed point (isolated or a family) of the model's flow F = -grad L.

    ``constants`` maps constant symbols (or names) to values; constants left
    symbolic are treated as generic (results hold for all but special values),
    positive where the model declares them positive.  ``square_roots`` names
    constants to write as squares (see the module docstring).  Each point is
    verified by substitution; with ``classify`` its stability is computed
    from the Jacobian (:mod:`symicl.analysis.stability`).

    ``saturate``: when a basis element factors as f_1 f_2 ..., decompose the k-th
    branch off the zeros of f_1 ... f_{k-1} (saturation; smaller, disjoint
    branches, same union).

    ``orbits``: split parameter space into strata by the rank of the square blocks that
    a general linear group acts on (derived from the loss), and solve each stratum on
    its gauge slice X = I, carried back along the orbits
    (:mod:`symicl.analysis.orbit_strata`; each stratum with saturation).  The strata are
    disjoint and cover parameter space: every fixed point is in exactly one reported
    stratum's families (``FixedPoint.condition``).

    Raises :class:`FixedPointBudgetError` when more than ``max_variables``
    parameters are active or the time budget (seconds) runs out.
    """
    if not isinstance(model, Model):
        raise ModelError(f"fixed_points needs a symicl Model, got {type(model).__name__}")
    start = time.perf_counter()
    for memo in _MEMO.values():
        memo.clear()
    subs = _constant_values(model, constants)
    roots = {}
    for c in square_roots:
        c = model.symbol(c) if isinstance(c, str) else c
        if c not in model.constants:
            raise ModelError(f"square_roots: {c} is not a constant of model {model.name}")
        if c in subs:
            continue
        roots[c] = sp.Symbol(f"sqrt_{c.name}", positive=True)
    flow0 = model.flow()
    params = list(model.parameters)
    to_square = {c: r ** 2 for c, r in roots.items()}
    flow = {p: sp.expand(sp.sympify(flow0[p]).xreplace(subs).xreplace(to_square)) for p in params}
    consts = sorted({s for e in flow.values() for s in e.free_symbols} - set(params),
                    key=natural_key)
    system = _System(flow, params, consts, {})
    system.saturate = bool(saturate)
    if len(system.active) > max_variables:
        raise FixedPointBudgetError(
            f"{len(system.active)} active parameters exceed max_variables={max_variables}: the "
            "Groebner basis would not finish; fix a reduction or raise max_variables")
    back = {r: sp.sqrt(c) for c, r in roots.items()}
    points, dropped = [], []
    with _budget(time_budget):
        strata = _strata(model, flow, params, consts) if orbits else None
        if strata is None:
            strata = [((), None, system, {})]
        for condition, action, sys_k, fixed in strata:
            if _TRACE:
                print(f"fixed_points: {time.perf_counter() - start:.1f} s, stratum "
                      f"{', '.join(condition)}", flush=True)
            for values, free, comp in _solve(sys_k, dropped):
                if _TRACE:
                    print(f"fixed_points: branch of dimension {len(free)}", flush=True)
                values = {p: sp.sympify(values.get(p, p)) for p in sys_k.params}
                values.update(fixed)
                free_all = set(free) | set(sys_k.inert)
                equations = list(comp if free else [])
                if action is not None and not free:
                    # a point of the slice: its own equations, carried along the orbit
                    equations = [x - values[x] for x in sys_k.active]
                if isinstance(action, tuple):
                    lifted = _lift_rank_one(model, action, values, free_all, equations)
                    if lifted is None:
                        dropped.append(f"{action[0]} = 0 in a rank-one chart (stratum "
                                       f"{action[0]} = 0)")
                        continue
                    values, free_all, equations = lifted
                elif action is not None:
                    values, free_all, equations = _lift(model, action, values, free_all,
                                                        equations)
                free_all = tuple(sorted(free_all, key=lambda p: (
                    params.index(p) if p in params else len(params), natural_key(p))))
                vals = {p: sp.sympify(values[p]).xreplace(back) for p in params}
                verified, resid = _verify(flow0, subs, params, vals, free_all)
                equations = tuple(sorted((sp.factor(sp.sympify(g).xreplace(back)) for g in
                                          equations), key=sp.default_sort_key))
                points.append(FixedPoint(values=vals, free=free_all, inert=tuple(system.inert),
                                         equations=equations, verified=verified,
                                         residual=resid, condition=condition))
    points.sort(key=_point_key)
    if classify:
        from .stability import classify as _classify
        points = [FixedPoint(values=p.values, free=p.free, inert=p.inert, equations=p.equations,
                             verified=p.verified, residual=p.residual, condition=p.condition,
                             stability=_classify(model, p, subs)) for p in points]
    return FixedPoints(model=model.name, parameters=tuple(params), points=points,
                       constants=dict(subs), dropped=dropped,
                       seconds=time.perf_counter() - start)


def _solve(system, dropped) -> list:
    """(values, free, component) of every real branch of V(system.eqs), pruned."""
    if any(e.is_number for e in system.eqs):
        comps = []
    else:
        comps = _decompose(system, system.eqs, None) if system.eqs else [[]]
    comps = _maximal(system, comps)
    found, seen, queue = [], set(), []
    work = list(comps)
    while work or queue:
        if not work:
            work = list(_decompose(system, queue.pop(0), None))
            continue
        G = work.pop(0)
        if _key(G) in seen:
            continue
        seen.add(_key(G))
        found.extend((v, f, G) for v, f in _solve_component(system, G, queue, dropped))
    return _prune(found, system, dropped)


def _strata(model, flow, params, consts):
    """[(condition, action, system, fixed values)] of the strata by the rank of the gauge blocks
    (:mod:`symicl.analysis.orbit_strata`), or None when the model has no block action."""
    from .orbit_strata import block_actions, gauge_blocks, rank_one_block

    order = list(model.blocks)
    actions = block_actions(model)
    gauges = gauge_blocks(actions, order)
    if not gauges:
        return None
    two_sided = rank_one_block(gauges, actions, model.blocks)
    out, singular = [], []
    for a in gauges + ([None] if two_sided is None else []):
        X = model.blocks[a.X] if a is not None else None
        to_slice = dict(zip(X, sp.eye(X.shape[0]))) if X is not None else {}
        fl = {p: sp.expand(e.xreplace(to_slice)) for p, e in flow.items()}
        extra = [sp.expand(model.blocks[n].det()) for n in singular]
        condition = tuple(f"det({n}) = 0" for n in singular)
        if a is not None:
            condition += (f"det({a.X}) != 0",)
        rest = [p for p in params if p not in to_slice]
        sys_k = _System(fl, rest, consts, {}, extra=extra, flow_params=params)
        sys_k.saturate = True
        out.append((condition, a, sys_k, {}))
        if a is not None:
            singular.append(a.X)
    if two_sided is not None:
        # det X = 0 for the 2 x 2 block with a left and a right action: X = 0, or X of
        # rank one in one of four charts, each sliced to X = X_ij E_ij
        name, left, right = two_sided
        X = model.blocks[name]
        extra = [sp.expand(model.blocks[n].det()) for n in singular if n != name]
        base = tuple(f"det({n}) = 0" for n in singular if n != name)
        for chart in [None] + [(i, j) for i in range(2) for j in range(2)]:
            keep = set() if chart is None else {X[chart]}
            to_slice = {x: sp.Integer(0) for x in X if x not in keep}
            fl = {p: sp.expand(e.xreplace(to_slice)) for p, e in flow.items()}
            rest = [p for p in params if p not in to_slice]
            if chart is None:
                condition = base + (f"{name} = 0",)
            else:
                condition = base + (f"rank({name}) = 1, first non-zero row {chart[0] + 1}, "
                                    f"column {chart[1] + 1}",)
            sys_k = _System(fl, rest, consts, {}, extra=extra, flow_params=params)
            sys_k.saturate = True
            out.append((condition, None if chart is None else (name, left, right, chart),
                        sys_k, to_slice if chart is None else {}))
    return out


def _lift_rank_one(model, chart, values, free, equations):
    """The chart's slice solution (X = X_ij E_ij) carried along both actions: X = g X' H,
    left partner Y_L = Y_L' g^-1, right partner Y_R = H^-1 Y_R' (see
    :func:`symicl.analysis.orbit_strata.rank_one_lift`); None where X_ij = 0."""
    from .orbit_strata import rank_one_lift

    name, left, right, (i, j) = chart
    X = model.blocks[name]
    b = sp.sympify(values[X[i, j]])
    if b == 0:
        return None
    renamed = set(model.blocks[left.Y]) | set(model.blocks[right.Y])
    ren = {y: sp.Symbol(f"{y.name}_s", real=True) for y in renamed if y in free}
    values = {p: sp.sympify(v).xreplace(ren) for p, v in values.items()}
    b = b.xreplace(ren)
    Xv, g, H, coords = rank_one_lift(X, i, j, b)
    free = {ren.get(f, f) for f in free} | set(coords)
    YR = model.blocks[right.Y]
    YRv = (H.adjugate() / H.det()) * YR.applyfunc(lambda y: values[y])
    for y, v in zip(YR, YRv):
        values[y] = v
    YL = model.blocks[left.Y]
    YLv = YL.applyfunc(lambda y: values[y]) * (g.adjugate() / g.det())
    for y, v in zip(YL, YLv):
        values[y] = v
    for x, v in zip(X, Xv):
        values[x] = v
    values = {p: sp.factor(sp.cancel(v)) for p, v in values.items()}
    # slice coordinates in terms of the point: Y_R' = H Y_R, Y_L' = Y_L g
    _, gp, Hp, _ = rank_one_lift(X, i, j, X[i, j])
    back = dict(zip(YR, Hp * YR))
    back.update(zip(YL, YL * gp))
    equations = [sp.numer(sp.together(sp.sympify(e).xreplace(back))) for e in equations]
    equations = [sp.expand(e) for e in equations] + [sp.expand(X.det())]
    return values, free, equations


def _lift(model, action, values, free, equations):
    """The slice solution (X = I) carried along the orbits: X free (det X != 0), the
    partner Y = Y' X^-1 (left) or X^-1 Y' (right); slice coordinates of Y that are free
    are renamed ``<name>_s``; equations in the model's parameters (Y' = Y X or X Y)."""
    X, Y = model.blocks[action.X], model.blocks[action.Y]
    ren = {y: sp.Symbol(f"{y.name}_s", real=True) for y in Y if y in free}
    values = {p: sp.sympify(v).xreplace(ren) for p, v in values.items()}
    free = {ren.get(f, f) for f in free} | set(X)
    Yv = action.lift(X, Y.applyfunc(lambda y: values[y]))
    for y, v in zip(Y, Yv):
        values[y] = sp.factor(sp.cancel(v))
    for x in X:
        values[x] = x
    back = dict(zip(Y, action.to_slice(X, Y)))
    equations = [sp.expand(sp.sympify(g).xreplace(back)) for g in equations]
    return values, free, equations


def _constant_values(model, constants) -> dict:
    subs = {}
    for k, v in (constants or {}).items():
        sym = model.symbol(k) if isinstance(k, str) else k
        if sym not in model.constants:
            raise ModelError(f"{k} is not a constant of model {model.name}; constants: "
                             f"{', '.join(map(str, model.constants))}")
        val = sp.nsimplify(v, rational=True) if isinstance(v, float) else sp.sympify(v)
        if not val.is_number:
            raise ModelError(f"constant {k} must be given a number, got {v!r}")
        subs[sym] = val
    return subs


def _same(system, A, B) -> bool:
    return _key(A) == _key(B)


def _key(G):
    """The multiset of a generating set's expressions (structural equality, as srepr)."""
    return frozenset(Counter(G).items())


def _maximal(system, comps):
    """Drop components contained in another one."""
    uniq, keys = [], set()
    for G in comps:
        if _key(G) not in keys:
            keys.add(_key(G))
            uniq.append(G)
    keep = []
    for i, G in enumerate(uniq):
        if any(j != i and _contained(system, G, H) and not (_contained(system, H, G) and j > i)
               for j, H in enumerate(uniq)):
            continue
        keep.append(G)
    return keep


def _solve_component(system, G, queue, dropped):
    """(values, free) branches of one component; special parts pushed onto ``queue``."""
    if not G:
        return [({}, list(system.active))]
    for U in _independent_sets(system, G):
        if not U and not system.consts:
            pts, n_complex = _zero_dim_points(system, G)
            if n_complex:
                dropped.append(f"{n_complex} complex (non-real) isolated point(s)")
            return [(p, []) for p in pts]
        extra = []
        branches = _parametrise(system, G, U, extra)
        if branches is None:
            continue
        queue.extend(extra)
        free = sorted(U, key=system.active.index)
        out = []
        for br in branches:
            if free and not _has_real_sample(br, free):
                dropped.append("family without real sample points: " + ", ".join(
                    f"{k} = {v}" for k, v in sorted(br.items(), key=lambda kv: natural_key(kv[0]))))
                continue
            if not free and any(sp.sympify(v).is_real is False for v in br.values()):
                dropped.append(f"complex point {br}")
                continue
            out.append((br, free))
        return out
    raise FixedPointBudgetError(
        "a component of the fixed-point set could not be parametrised by back-substitution: "
        + "; ".join(map(str, G)))


def _has_real_sample(br, free) -> bool:
    for k in range(6):
        sub = {f: sp.Rational((-1) ** (k + i) * (k + 2 + i), 3) for i, f in enumerate(free)}
        try:
            vals = [complex(sp.N(sp.sympify(v).xreplace(sub).subs(
                {c: 1 for c in sp.sympify(v).free_symbols - set(free)}), 20)) for v in br.values()]
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if all(abs(v.imag) < 1e-12 and math.isfinite(v.real) for v in vals):
            return True
    return False


def _prune(found, system, dropped):
    """Drop duplicates, and pieces lying in the closure of a larger family.

    A piece A lies in family B when the Groebner basis of B's component
    vanishes identically on A's parametrisation: A is then a special chart of
    B (e.g. where B's parametrisation divides by zero); it is recorded in
    ``dropped`` with its host instead of being reported twice."""
    out, keys = [], set()
    for values, free, comp in sorted(found, key=lambda vf: -len(vf[1])):
        key = (tuple(sorted((str(k), sp.srepr(v)) for k, v in values.items())), tuple(map(str, free)))
        if key in keys:
            continue
        host = next((fv for fv, ff, fc in out if len(ff) > len(free) and _inside(
            values, fc, system)), None)
        if host is not None:
            dropped.append("in the closure of the family "
                           + ", ".join(f"{k} = {v}" for k, v in sorted(
                               host.items(), key=lambda kv: natural_key(kv[0])))
                           + ": " + ", ".join(f"{k} = {v}" for k, v in sorted(
                               values.items(), key=lambda kv: natural_key(kv[0]))))
            continue
        keys.add(key)
        out.append((values, free, comp))
    return out


def _inside(values, component, system) -> bool:
    """The piece lies in V(component): every basis element vanishes on it."""
    sub = {p: values.get(p, p) for p in system.active}
    try:
        return all(_is_zero(sp.expand(e.xreplace(sub))) for e in component)
    except (ZeroDivisionError, TypeError):
        return False


def _verify(flow0, subs, params, values, free):
    exact = all(_is_zero(sp.sympify(flow0[p]).xreplace(subs).xreplace(values)) for p in params)
    if exact:
        return "exact", 0.0
    const_free = {s for v in values.values() for s in sp.sympify(v).free_symbols} - set(free)
    if const_free:
        raise ModelError("a fixed point could not be verified symbolically: "
                         + ", ".join(f"{k} = {v}" for k, v in values.items()))
    flow = {p: sp.sympify(flow0[p]).xreplace(subs) for p in params}
    resid = _residual(flow, params, values, free)
    if not resid <= _TOL:
        raise ModelError(f"a computed fixed point fails substitution (|F| = {resid:.3g})")
    return f"numeric (|F| <= {_TOL:g} at {_DIGITS} digits)", resid


def _point_key(p: FixedPoint):
    return (len(p.free), [sp.default_sort_key(p.values[k]) for k in p.values])


def learned_map(model: Model, values: Mapping) -> dict:
    """The function a point of parameter space implements, as named matrices.

    The products of blocks are those the model's specification names
    (``learned_map``): for the linear transformer ``P22*Q11`` (the predictor
    p2 q1 on the main path; per-mode gains a_a = p_a q_a on its diagonal in
    the aligned reduction) and, when the null blocks exist, ``P21*Q21``; for
    deep-linear ``W2*W1``.  Where no such product exists (several attention heads, separate
    key and query) the spec's ``learned_function``: ``y_hat``, the prediction on the query
    through the named context statistics (e.g. Sxy_a, Sxx_a_b, Syy) and x_q.
    """
    from ..models import SPECS

    sub = {sp.Symbol(str(k)) if isinstance(k, str) else k: sp.sympify(v)
           for k, v in values.items()}
    sub = {model.symbol(str(k)): v for k, v in sub.items()}
    b = model.blocks
    out = {}
    spec = SPECS.get(model.name)
    for left, right in (spec.learned_map if spec is not None else ()):
        if left in b and right in b:
            L, R = b[left], b[right]
            if L.shape == (1, 1) and R.shape[0] != 1:   # scalar tasks: p2 is a number
                L = L[0, 0]
            out[f"{left}*{right}"] = (L * R).xreplace(sub).applyfunc(sp.factor)
    function = spec.learned_function(model) if not out and spec is not None \
        and spec.learned_function is not None else None
    if function is not None:
        out["y_hat"] = function.xreplace(sub).applyfunc(sp.expand)
    if not out:
        raise ModelError(f"no learned map is known for model {model.name} "
                         f"(blocks {', '.join(b)})")
    return out
