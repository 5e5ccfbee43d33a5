"""Closed-form mode solutions derived from a model's flow: the logistic mode.

Given a derived flow  d theta/dt = F(theta)  and two of its parameters
(p, q) forming a *mode*, :func:`logistic_mode` derives, with nothing typed
from the literature:

1. an invariant subset R (``restrict``: other parameters set to expressions
   of the rest, e.g. off-diagonal weights 0 or equal modes q_2 = q_1),
   checked by  d/dt (theta_j - phi_j) = 0  on R from the flow;
2. that the mode decouples: F_p, F_q on R depend on (p, q) only;
3. a rescaling law  h = p^2 - c q^2  with  dh/dt = 2 p F_p - 2 c q F_q = 0
   (c solved from the flow, or given), so the balanced set
   B = {p = sigma sqrt(c) q} is invariant (checked on B from the flow);
4. the gain a = p q:  da/dt = F_p q + p F_q, reduced on B with
   p q = a, p^2 = sigma sqrt(c) a, q^2 = sigma a / sqrt(c); every monomial
   p^i q^j with i - j even reduces, otherwise the flow of a does not close;
   the result must depend on a alone: da/dt = g(a);
5. g(a) = r a + b a^2 is a Bernoulli (logistic) equation
   da/dt = r a (1 - a / a_inf),  a_inf = -r / b,  solved by ``sympy.dsolve``
   with a(0) = a0:

       a(t) = a_inf a0 / (a0 + (a_inf - a0) e^{-r t}),

   timescale tau = 2 / r (the papers' convention tau da/dt = 2 a (1 - a/a_inf)),
   half-way time  a(t_half) = a_inf / 2  and escape time = t_half to leading
   order as a0 -> 0.

The solution is verified by substitution into da/dt = g(a) and a(0) = a0.
The ICL paper's per-mode model is :func:`symicl.models.per_mode_model`,
derived from the scalar-task transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

import mpmath
import sympy as sp

from .. import symbols
from ..errors import ModelError
from ..model import Model

__all__ = ["LogisticMode", "NotBalancedError", "logistic_mode"]


class NotBalancedError(ModelError):
    """A closed form was asked for a start outside the balanced set it needs."""


T = sp.Symbol("t", nonnegative=True)
A0 = sp.Symbol("a0", real=True)
GAIN = sp.Symbol("a", real=True)


def _as_symbol(model: Model, name) -> sp.Symbol:
    return name if isinstance(name, sp.Symbol) else model.symbol(str(name))


@dataclass(frozen=True)
class LogisticMode:
    """The derived logistic law of one mode's gain a = p q on the balanced set.

    Symbols: ``t`` time, ``a0`` the initial gain, ``gain`` a.  ``ode`` is
    g(a) in da/dt = g(a) = rate a (1 - a / a_inf); ``solution`` is a(t);
    ``balance`` is c in the balanced set p = sign sqrt(c) q.  For r > 0 and
    a0 between 0 and the fixed point, a(t) rises to a_inf = fixed_point;
    ``t_half`` solves a(t_half) = a_inf / 2 and ``t_escape`` is its leading
    term as a0 -> 0 (both None when r < 0: the mode decays to 0).
    """

    model: str
    p: sp.Symbol
    q: sp.Symbol
    restrict: dict
    constants: dict
    balance: sp.Expr
    sign: int
    conserved: sp.Expr          # p^2 - c q^2, conserved by the restricted flow
    invariance: sp.Expr         # d/dt (p^2 - c q^2) on the balanced set (0)
    ode: sp.Expr                # g(a)
    rate: sp.Expr               # r
    fixed_point: sp.Expr        # -r/b, the non-zero fixed point of g
    a_inf: sp.Expr              # lim a(t): fixed_point if r > 0, 0 if r < 0
    tau: sp.Expr                # 2 / r
    solution: sp.Expr           # a(t)
    t_half: sp.Expr
    t_escape: sp.Expr
    t: sp.Symbol = T
    a0: sp.Symbol = A0
    gain: sp.Symbol = GAIN
    flow: dict = field(default_factory=dict, repr=False)   # F_p, F_q on R

    def start(self, a0) -> dict[sp.Symbol, sp.Expr]:
        """Balanced (p, q) with p q = a0 (exact SymPy values)."""
        a0 = sp.sympify(a0)
        q0 = sp.sqrt(self.sign * a0 / sp.sqrt(self.balance))
        return {self.p: sp.sqrt(self.balance) * self.sign * q0, self.q: q0}

    def check_start(self, p0, q0, tol: float = 1e-12) -> None:
        """Raise :class:`NotBalancedError` unless p0 = sign sqrt(c) q0 (relative ``tol``)."""
        c = float(self.balance) if self.balance.is_number else None
        if c is None:
            raise ModelError(f"the balance c = {self.balance} is symbolic: give its constants")
        p0, q0 = float(p0), float(q0)
        gap = abs(p0 - self.sign * c ** 0.5 * q0)
        if gap > tol * max(abs(p0), abs(q0), 1e-300):
            raise NotBalancedError(
                f"start {self.p} = {p0:g}, {self.q} = {q0:g} is not balanced "
                f"({self.p} - {'-' if self.sign < 0 else ''}sqrt({self.balance}) {self.q} = "
                f"{p0 - self.sign * c ** 0.5 * q0:.3g}); the logistic closed form holds only "
                f"on {self.p} = {'-' if self.sign < 0 else ''}sqrt({self.balance}) {self.q}: "
                "integrate the flow instead (symicl.analysis.integrate: integrate_ivp or "
                "integrate_taylor on model.flow())")

    def value(self, t, a0, constants: Mapping | None = None, dps: int = 50):
        """a(t) as an mpmath number at ``dps`` digits."""
        subs = {self.t: t, self.a0: a0, **{sp.sympify(k): v for k, v in (constants or {}).items()}}
        expr = self.solution.subs({k: sp.sympify(v) for k, v in subs.items()})
        with mpmath.workdps(dps):
            return mpmath.mpf(sp.N(expr, dps + 10))

    def summary(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in (
            "p", "q", "balance", "conserved", "invariance", "ode", "rate", "fixed_point", "a_inf",
            "tau",
            "solution", "t_half", "t_escape")}


_R, _K = sp.Symbol("r", positive=True), sp.Symbol("K", positive=True)


@lru_cache(maxsize=1)
def _logistic_solution() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """dsolve of da/dt = r a (1 - a/K), a(0) = a0; half-way and escape times.

    Solved once with r, K > 0 symbols (no case split), then specialised.
    """
    fa, C1 = sp.Function("a"), sp.Symbol("C1")
    general = sp.dsolve(sp.Eq(fa(T).diff(T), _R * fa(T) * (1 - fa(T) / _K)), fa(T),
                        hint="Bernoulli").rhs
    const = sp.solve(sp.Eq(general.subs(T, 0), A0), C1, dict=True)[0]
    sol = sp.simplify(general.subs(const))
    half = sp.solve(sp.Eq(sol, _K / 2), T)
    if len(half) != 1:
        raise ModelError(f"internal: half-way time not unique: {half}")
    half = half[0]
    # escape: t_half to leading order as a0 -> 0, t_half = log(X)/r
    lead = sp.log(1 / A0) / _R
    rest = sp.limit(sp.expand_log(half - lead, force=True), A0, 0)
    escape = sp.log(sp.simplify(sp.exp(sp.expand(_R * (lead + rest))))) / _R
    half = sp.log(sp.factor(sp.simplify(sp.exp(sp.expand(_R * half))))) / _R
    return sol, half, escape


def _restricted_flow(model: Model, restrict: Mapping, constants: Mapping):
    flow = model.flow()
    subs = {**constants, **restrict}
    on_r = {k: sp.expand(v.xreplace(constants).xreplace(restrict)) for k, v in flow.items()}
    for theta, phi in restrict.items():
        # d/dt (theta - phi(rest)) on R must vanish
        drift = on_r[theta] - sum(sp.diff(phi, x) * on_r[x] for x in phi.free_symbols if x in on_r)
        drift = sp.simplify(drift.xreplace(subs))
        if drift != 0:
            raise ModelError(f"the restriction {theta} = {phi} is not invariant under the flow of "
                             f"{model.name}: d/dt ({theta} - ({phi})) = {drift} on it")
    return on_r


def _reduce_to_gain(expr: sp.Expr, p, q, p2, q2) -> sp.Expr:
    """Rewrite a polynomial in p, q with p q = a, p^2 = p2(a), q^2 = q2(a)."""
    poly = sp.Poly(expr, p, q)
    out = sp.Integer(0)
    for (i, j), c in poly.terms():
        if (i - j) % 2:
            raise ModelError(f"the flow of the gain {p}*{q} does not close on the balanced set: "
                             f"it holds {p}^{i} {q}^{j}, odd in the mode")
        m = min(i, j)
        out += c * GAIN ** m * (p2 ** ((i - m) // 2) if i > j else q2 ** ((j - m) // 2))
    return sp.expand(out)


def logistic_mode(model: Model, p, q, *, restrict: Mapping | None = None,
                  constants: Mapping | None = None, balance=None, sign: int = 1) -> LogisticMode:
    """Derive the logistic law of the mode (p, q) from ``model.flow()``.

    ``restrict`` maps parameters to expressions of the others (an invariant
    subset, checked); ``constants`` gives values or expressions to constants
    (e.g. an isotropic spectrum s_a -> s); ``balance`` is c in the balanced
    set p = sign sqrt(c) q (found from a conservation law p^2 - c q^2 when
    omitted).  Raises :class:`~symicl.errors.ModelError` when the subset is
    not invariant, the mode does not decouple, the gain's flow does not
    close, or it is not of logistic (Bernoulli) form.
    """
    p, q = _as_symbol(model, p), _as_symbol(model, q)
    restrict = {_as_symbol(model, k): sp.sympify(v) for k, v in (restrict or {}).items()}
    constants = {_as_symbol(model, k) if not isinstance(k, sp.Symbol) else k: sp.sympify(v)
                 for k, v in (constants or {}).items()}
    if sign not in (1, -1):
        raise ModelError(f"sign must be +1 or -1, got {sign!r}")
    for x in (p, q):
        if x not in model.parameters:
            raise ModelError(f"{x} is not a parameter of {model.name}")
        if x in restrict:
            raise ModelError(f"the mode parameter {x} is restricted; restrict the others")
    on_r = _restricted_flow(model, restrict, constants)
    Fp, Fq = on_r[p], on_r[q]
    others = sorted(((Fp.free_symbols | Fq.free_symbols) & set(model.parameters)) - {p, q},
                    key=symbols.natural_key)
    if others:
        raise ModelError(f"the mode ({p}, {q}) of {model.name} does not decouple: its flow depends "
                         f"on {', '.join(o.name for o in others)} (restrict them, or the modes "
                         "are coupled)")

    # 3. the rescaling law p^2 - c q^2 and the balanced set
    c = sp.Dummy("c")
    law = sp.expand(p * Fp - c * q * Fq)
    if balance is None:
        eqs = sp.Poly(law, p, q).coeffs()
        sol = sp.solve(eqs, c, dict=True)
        if not sol or c not in sol[0]:
            raise ModelError(f"no law {p}^2 - c {q}^2 is conserved by the flow of {model.name} on "
                             f"this subset, so no balanced set: give balance=c if one is "
                             f"invariant anyway")
        balance = sp.simplify(sol[0][c])
    balance = sp.sympify(balance)
    if balance.is_positive is False or balance == 0:
        raise ModelError(f"the balance c = {balance} must be positive")
    root = sp.sqrt(balance)
    conserved = p ** 2 - balance * q ** 2
    invariance = sp.simplify((2 * p * Fp - 2 * balance * q * Fq).subs(p, sign * root * q))
    if invariance != 0:
        raise ModelError(f"the balanced set {p} = {'-' if sign < 0 else ''}sqrt({balance}) {q} is "
                         f"not invariant: d/dt ({conserved}) = {invariance} on it")

    # 4. the gain's flow on the balanced set
    g = _reduce_to_gain(sp.expand(Fp * q + p * Fq), p, q, sign * root * GAIN, sign * GAIN / root)
    g = sp.simplify(g)
    stray = g.free_symbols & set(model.parameters)
    if stray:
        raise ModelError(f"the gain's flow depends on {stray}, not on the gain alone")

    # 5. Bernoulli / logistic form and its solution
    poly = sp.Poly(g, GAIN)
    if poly.degree() != 2 or poly.coeff_monomial(1) != 0:
        raise ModelError(f"da/dt = {g} is not of logistic form r a + b a^2")
    rate = sp.factor(poly.coeff_monomial(GAIN))
    b = poly.coeff_monomial(GAIN ** 2)
    if rate == 0:
        raise ModelError(f"da/dt = {g} has no linear term: not logistic")
    fixed = sp.factor(sp.simplify(-rate / b))
    if rate.is_positive:
        a_inf = fixed
    elif rate.is_negative:
        a_inf = sp.Integer(0)
    else:
        a_inf = sp.Piecewise((fixed, rate > 0), (0, True))
    sol, half, escape = _logistic_solution()
    solution = sp.simplify(sol.xreplace({_R: rate, _K: fixed}))
    # verification by substitution into the derived gain flow
    check = sp.simplify(sp.diff(solution, T) - g.subs(GAIN, solution))
    if check != 0 or sp.simplify(solution.subs(T, 0) - A0) != 0:
        raise ModelError(f"internal: dsolve's solution {solution} fails da/dt = {g}")
    if rate.is_negative:
        t_half = t_escape = None
    else:
        t_half = half.xreplace({_R: rate, _K: fixed})
        t_escape = escape.xreplace({_R: rate, _K: fixed})
    return LogisticMode(model.name, p, q, restrict, constants, balance, sign, conserved, invariance,
                        g, rate, fixed, a_inf, sp.simplify(2 / rate), solution, t_half, t_escape,
                        flow={p: Fp, q: Fq})
