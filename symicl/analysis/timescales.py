"""Growth and relaxation rates, and the order in which modes are learned.

Linearising the flow at a fixed point theta*, d(delta)/dt = J delta with
J = dF/dtheta(theta*).  J is symmetric (minus the Hessian of the loss), so it
has an orthogonal eigenbasis: along an eigenvector v with eigenvalue lambda a
perturbation evolves as e^{lambda t}.

* At the origin (small initialisation), lambda > 0 are *growth rates* r: the
  modes that escape the saddle.  A mode is the eigenspace of one eigenvalue;
  its ``support`` names the parameters its eigenvectors involve (p_a, q_a for
  mode a of the aligned transformer).
* At the stable point lambda < 0 gives *relaxation rates* -lambda; zero
  eigenvalues lie along the fixed-point family.

Escape time (our definition): starting at distance eps from the origin along
the mode, the linearised solution eps e^{r t} reaches the scale c of the
learned mode at

    t_escape = (1/r) log(c / eps),

with c the norm of the projection of the stable point onto the mode's
eigenspace ("learned", the default when a stable point is found; on a family
the minimum-norm member is used, the balanced one for rescaling families),
or a given number (1 if no stable point is known); t_escape = oo for a mode
the stable point does not learn (c = 0, e.g. a hidden layer too narrow).  It is the leading-order
escape time for small eps; the nonlinear saturation changes it by O(1/r).
Modes are learned in the order of increasing t_escape, i.e. for small eps of
decreasing r.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from ..errors import ModelError
from ..model import Model
from ..symbols import natural_key
from .stability import _blocks, jacobian_at

__all__ = [
    "Linearisation",
    "Mode",
    "Timescales",
    "linearise",
    "representative",
    "timescales",
]


@dataclass(frozen=True)
class Mode:
    """One eigenspace of J: eigenvalue, multiplicity, eigenvectors, parameters involved."""

    eigenvalue: sp.Expr
    multiplicity: int
    support: tuple
    vectors: tuple
    label: str

    def to_dict(self) -> dict:
        return {"mode": self.label, "eigenvalue": sp.sstr(self.eigenvalue, order="lex"),
                "multiplicity": self.multiplicity, "parameters": list(self.support)}


@dataclass(frozen=True)
class Linearisation:
    """The eigen-decomposition of J at one point (modes sorted by eigenvalue, largest first)."""

    point: dict
    modes: list
    parameters: tuple

    def growing(self) -> list:
        return [m for m in self.modes if _sign(m.eigenvalue) == 1]

    def decaying(self) -> list:
        return [m for m in self.modes if _sign(m.eigenvalue) == -1]

    def neutral(self) -> list:
        return [m for m in self.modes if _sign(m.eigenvalue) == 0]

    def to_dict(self) -> dict:
        return {"point": {str(k): sp.sstr(v, order="lex") for k, v in
                          sorted(self.point.items(), key=lambda kv: natural_key(kv[0]))},
                "modes": [m.to_dict() for m in self.modes]}


@dataclass(frozen=True)
class Timescales:
    """Growth rates at the origin, escape times, learning order and relaxation rates."""

    origin: Linearisation
    growth: dict                 # mode label -> growth rate r
    escape: dict                 # mode label -> t_escape expression in eps
    order: list | None           # labels in the order learned (None if not comparable)
    stable: Linearisation | None
    relaxation: dict             # mode label -> relaxation rate at the stable point
    eps: sp.Symbol
    definition: str = field(default=(
        "t_escape = (1/r) log(c/eps): time for the linearised growth eps*exp(r t) along the "
        "mode's eigenspace at the origin to reach c, the norm of the stable point's projection "
        "onto that eigenspace (minimum-norm member of a family); oo where c = 0 (mode not "
        "learned); order = decreasing growth rate r (increasing t_escape for small eps)"))

    def to_dict(self) -> dict:
        """The ``timescales`` entry of the derivation JSON (canonical strings)."""
        s = lambda e: sp.sstr(e, order="lex")
        return {"definition": self.definition, "eps": str(self.eps),
                "growth_rates": {k: s(v) for k, v in sorted(self.growth.items())},
                "escape_times": {k: s(v) for k, v in sorted(self.escape.items())},
                "order": list(self.order) if self.order is not None else None,
                "relaxation_rates": {k: s(v) for k, v in sorted(self.relaxation.items())},
                "origin": self.origin.to_dict(),
                "stable": self.stable.to_dict() if self.stable is not None else None}


def _sign(e):
    e = sp.sympify(e)
    if e == 0:
        return 0
    if e.is_positive:
        return 1
    if e.is_negative:
        return -1
    return None


def _label(support, value, groups):
    if groups:
        for name, members in groups.items():
            if set(support) <= set(map(str, members)):
                return str(name)
    idx = {m.group(1) for m in (re.fullmatch(r"[A-Za-z]+_(\d+)", n) for n in support) if m}
    if len(idx) == 1 and all(re.fullmatch(r"[A-Za-z]+_\d+", n) for n in support):
        return f"mode {idx.pop()}"
    return f"eigenvalue {sp.sstr(value)}"


def linearise(model: Model, point: Mapping, constants: Mapping | None = None, *,
              groups: Mapping | None = None) -> Linearisation:
    """Eigen-decomposition of J = dF/dtheta at ``point`` (a full parameter -> value map).

    ``groups`` optionally names modes: label -> parameter names; by default a
    mode whose parameters share one index a (p_a, q_a) is called "mode a".
    """
    params = list(model.parameters)
    vals = {(model.symbol(k) if isinstance(k, str) else k): sp.sympify(v)
            for k, v in point.items()}
    missing = [p for p in params if p not in vals]
    if missing:
        raise ModelError("linearise needs a value for every parameter; missing "
                         + ", ".join(map(str, missing)))
    J = jacobian_at(model, vals, _constants(model, constants))
    J = J.applyfunc(lambda e: sp.radsimp(sp.cancel(e)))
    found = {}
    for idx in _blocks(J):
        sub = J.extract(idx, idx)
        for value, mult, vecs in _eigenvects(sub):
            value = value if isinstance(value, sp.Float) or value == 0 else sp.factor(sp.radsimp(value))
            full = []
            for v in vecs:
                w = [sp.Integer(0)] * len(params)
                for k, i in enumerate(idx):
                    w[i] = v[k] if isinstance(v[k], sp.Float) else sp.radsimp(sp.simplify(v[k]))
                full.append(tuple(w))
            key = sp.srepr(value)
            if key in found:
                found[key] = (value, found[key][1] + mult, found[key][2] + full)
            else:
                found[key] = (value, mult, full)
    modes = []
    for value, mult, vecs in found.values():
        support = tuple(sorted({params[i].name for v in vecs for i, e in enumerate(v) if e != 0},
                               key=lambda n: natural_key(sp.Symbol(n))))
        modes.append(Mode(eigenvalue=value, multiplicity=mult, support=support,
                          vectors=tuple(vecs), label=_label(support, value, groups)))
    modes = _sorted_modes(modes)
    labels = [m.label for m in modes]
    if len(set(labels)) != len(labels):  # the same parameters carry two eigenvalues
        modes = [Mode(m.eigenvalue, m.multiplicity, m.support, m.vectors,
                      m.label + (" (+)" if _sign(m.eigenvalue) == 1 else
                                 " (-)" if _sign(m.eigenvalue) == -1 else " (0)"))
                 if labels.count(m.label) > 1 else m for m in modes]
    return Linearisation(point=vals, modes=modes, parameters=tuple(params))


def _eigenvects(M):
    """Eigen-decomposition of a symmetric block: exact where the characteristic
    polynomial splits into factors of degree <= 2 (or M is symbolic), else
    numerical at 30 digits (mpmath.eigsy), eigenvalues as Floats."""
    if M.free_symbols or M.shape[0] <= 2:
        return M.eigenvects(simplify=True)
    lam = sp.Dummy("lam")
    from sympy.polys.matrices import DomainMatrix
    dm = DomainMatrix.from_Matrix(M)
    cp = sp.Poly([dm.domain.to_sympy(c) for c in dm.charpoly()], lam)
    if all(sp.Poly(f, lam).degree() <= 2 for f, _ in sp.factor_list(cp.as_expr(), lam)[1]):
        return M.eigenvects(simplify=True)
    import mpmath
    with mpmath.workdps(40):
        E, Q = mpmath.eigsy(mpmath.matrix([[mpmath.mpf(sp.N(e, 45)) for e in row]
                                           for row in M.tolist()]))
        groups = []
        for k in range(M.shape[0]):
            val = sp.Float(E[k], 30)
            val = sp.Integer(0) if abs(val) < 1e-25 else val
            vec = sp.Matrix([sp.Float(Q[i, k], 30) for i in range(M.shape[0])])
            vec = vec.applyfunc(lambda e: 0 if abs(e) < 1e-25 else e)
            for g in groups:
                if abs(g[0] - val) < 1e-20:
                    g[2].append(vec)
                    break
            else:
                groups.append([val, 0, [vec]])
    return [(v, len(vs), vs) for v, _, vs in groups]


def _sorted_modes(modes):
    def key(m):
        v = sp.sympify(m.eigenvalue)
        num = float(sp.re(sp.N(v, 30))) if v.is_number else 0.0
        return (-num, sp.default_sort_key(v))
    return sorted(modes, key=key)


def _constants(model, constants):
    out = {}
    for k, v in (constants or {}).items():
        sym = model.symbol(k) if isinstance(k, str) else k
        out[sym] = sp.nsimplify(v, rational=True) if isinstance(v, float) else sp.sympify(v)
    return out


def representative(point, params) -> dict:
    """A member of a fixed-point family: the minimum-norm one where sympy finds it.

    Inert parameters are set to 0; the remaining free parameters minimise
    ||theta||^2 along the family (for a rescaling family this is the balanced
    member); if that cannot be solved they are set to 1.  Isolated points are
    returned as they are.
    """
    values = dict(point.values)
    free = [f for f in point.free if f not in set(point.inert)]
    sub = {f: sp.Integer(0) for f in point.inert}
    if free:
        norm = sum(sp.sympify(v).xreplace(sub) ** 2 for v in values.values())
        pos = {f: sp.Symbol(f.name, positive=True) for f in free}
        normp = norm.xreplace(pos)
        try:
            sols = sp.solve([sp.diff(normp, pos[f]) for f in free], [pos[f] for f in free],
                            dict=True)
        except (NotImplementedError, ValueError):
            sols = []
        sols = [s for s in sols if all(sp.sympify(v).is_positive is not False for v in s.values())]
        if sols and len(sols[0]) == len(free):
            sub.update({f: sp.factor(sols[0][pos[f]]) for f in free})
        else:
            sub.update({f: sp.Integer(1) for f in free})
    return {p: sp.factor(sp.radsimp(sp.sympify(values[p]).xreplace(sub))) for p in params}


def timescales(model: Model, constants: Mapping | None = None, *,
               eps: sp.Symbol | None = None, scale="learned", stable_point=None,
               groups: Mapping | None = None, **fixed_point_options) -> Timescales:
    """Growth rates at the origin, escape times and learning order, relaxation at the stable point.

    ``stable_point``: a :class:`~symicl.analysis.fixed_points.FixedPoint` or a
    full parameter map; by default the first stable point found by
    :func:`~symicl.analysis.fixed_points.fixed_points` (options passed on).
    ``scale``: "learned" (see the module docstring) or a number/expression c.
    """
    from .fixed_points import FixedPoint, fixed_points

    eps = eps if eps is not None else sp.Symbol("epsilon", positive=True)
    params = list(model.parameters)
    origin = linearise(model, {p: 0 for p in params}, constants, groups=groups)
    stable_map = None
    if stable_point is None and scale == "learned":
        found = fixed_points(model, constants, **fixed_point_options).stable()
        stable_point = found[0] if found else None
    if isinstance(stable_point, FixedPoint):
        stable_map = representative(stable_point, params)
    elif stable_point is not None:
        stable_map = {(model.symbol(k) if isinstance(k, str) else k): sp.sympify(v)
                      for k, v in stable_point.items()}
    stable = linearise(model, stable_map, constants, groups=groups) if stable_map else None
    growth, escape = {}, {}
    for m in origin.modes:
        if _sign(m.eigenvalue) != 1:
            continue
        growth[m.label] = m.eigenvalue
        if scale == "learned":
            c = _projection_norm(m, stable_map, params) if stable_map else sp.Integer(1)
        else:
            c = sp.sympify(scale)
        # a mode the stable point does not learn (projection 0) never escapes
        escape[m.label] = sp.oo if c == 0 else sp.log(c / eps) / m.eigenvalue
    order = None
    if all(sp.sympify(r).is_number for r in growth.values()):
        order = sorted(growth, key=lambda k: (-float(growth[k]), k))
    relaxation = {}
    if stable is not None:
        for m in stable.modes:
            if _sign(m.eigenvalue) == -1:
                relaxation[m.label] = sp.factor(-m.eigenvalue)
    return Timescales(origin=origin, growth=growth, escape=escape, order=order, stable=stable,
                      relaxation=relaxation, eps=eps)


def _projection_norm(mode, point, params):
    """Norm of the projection of ``point`` onto the eigenspace of ``mode``."""
    basis = sp.GramSchmidt([sp.Matrix(v) for v in mode.vectors], orthonormal=True)
    theta = sp.Matrix([point[p] for p in params])
    total = sum((b.dot(theta)) ** 2 for b in basis)
    return sp.factor(sp.radsimp(sp.sqrt(sp.factor(sp.expand(total)))))
