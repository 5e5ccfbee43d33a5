"""Continuous linear symmetries of the expected loss, with certificates.

A linear vector field v(theta) = A theta (A a P x P matrix over the field of
rational functions of the constants) is a symmetry of L when

    grad L(theta) . A theta = 0   identically in theta and the constants,

i.e. L(exp(t A) theta) = L(theta) for all t.  The identity is linear in the
P^2 entries of A: each monomial of theta in sum_ij a_ij (dL/dtheta_i) theta_j
gives one linear equation, exactly as the conservation-law ansatz of
:mod:`symicl.analysis.conservation` (whose ring machinery is used here: the
same sparse system, numeric support screen, fraction-free null space over the
rational functions of the constants, and exact certificate in the
coefficient ring).  The symmetries form a Lie algebra g (closed under the
commutator [A, B] = AB - BA); :func:`symmetries` returns a canonical basis of
it: the reduced row-echelon basis of the vectorised A (row-major, active rows),
so outputs are reproducible byte for byte.

Inert parameters (dL/dtheta_i = 0 identically) can be moved by any field;
those trivial directions are left out (rows of inert parameters are zero) and
the inert parameters reported apart, as for conservation laws.

Noether for gradient flow.  For d theta/dt = -grad L and symmetric S,

    d/dt (theta^T S theta) = -2 (S theta) . grad L,

so the quadratic form theta^T S theta is conserved iff S itself is a
symmetry.  The conserved quadratic forms are therefore exactly the symmetric
elements of g (:func:`noether`): for GL(hidden) of a deep linear network the
symmetric generators E = E^T give tr(E (W1 W1^T - W2^T W2)), the balance laws.
Antisymmetric generators (rotations) give theta^T A theta = 0: no conserved
quantity under gradient flow, but, like every generator, a zero mode of the
Hessian at each critical point theta*: H(theta*) A theta* = 0 (differentiate
the identity once: H A theta + A^T grad L = 0).

Gauge fixing (:func:`gauge_fix`): where the orbit directions A_k theta span
an r-dimensional space and r coordinates theta_S have a non-singular r x r
minor in them, fixing theta_S to constants gives a slice transversal to the
orbits; there, grad L = 0 iff dL/dtheta_i = 0 for the other coordinates
(because grad L . A_k theta = 0 and the minor is invertible), a square system
in P - r unknowns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sympy as sp
from sympy.polys.matrices import DomainMatrix

from ..errors import ModelError
from ..model import Model
from .conservation import (_certify, _coefficient_expr, _FlowRing, _numeric_support,
                           _rational_basis, _ring_basis, conservation_laws)

__all__ = ["Symmetry", "LieAlgebra", "NoetherPair", "GaugeFixed", "MAX_UNKNOWNS",
           "symmetries", "lie_algebra", "noether", "orbit_directions", "gauge_fix"]

#: Largest number of unknown entries of A (active rows x all columns) solved for.
MAX_UNKNOWNS = 6000


@dataclass(frozen=True)
class Symmetry:
    """One generator A of the symmetry algebra: grad L . A theta == 0 (certified)."""

    matrix: sp.Matrix                  # P x P, in the order of model.parameters
    field: list                        # A theta, one expression per parameter
    description: str
    certificate: str
    parameters: tuple = ()

    @property
    def kind(self) -> str:
        """'scaling' (diagonal), 'symmetric', 'antisymmetric' or 'general'."""
        return _kind(self.matrix)

    def to_dict(self) -> dict:
        """JSON-ready: the matrix as nested lists of strings and the field by parameter
        (its non-zero components)."""
        return {"description": self.description, "kind": self.kind,
                "matrix": [[_s(e) for e in self.matrix.row(i)] for i in range(self.matrix.rows)],
                "field": {p.name: _s(e) for p, e in zip(self.parameters, self.field) if e != 0},
                "certificate": self.certificate}


def _s(e) -> str:
    return sp.sstr(sp.sympify(e), order="lex")


def _kind(A: sp.Matrix) -> str:
    if A.is_diagonal():
        return "scaling"
    if A == A.T:
        return "symmetric"
    if A == -A.T:
        return "antisymmetric"
    return "general"


def _describe(A: sp.Matrix, params) -> str:
    """A short description: the kind and the parameters (with weights for a scaling)."""
    kind = _kind(A)
    moved = [params[i].name for i in range(A.rows) if any(A[i, j] != 0 for j in range(A.cols))
             or any(A[j, i] != 0 for j in range(A.rows))]
    if kind == "scaling":
        groups: dict = {}
        for i in range(A.rows):
            if A[i, i] != 0:
                groups.setdefault(A[i, i], []).append(params[i].name)
        parts = [f"{_s(w)} on {_names(ns)}" for w, ns in
                 sorted(groups.items(), key=lambda kv: (-len(kv[1]), _s(kv[0])))]
        return "scaling: " + "; ".join(parts)
    what = {"symmetric": "symmetric generator", "antisymmetric": "rotation (antisymmetric)",
            "general": "linear generator"}[kind]
    return f"{what} mixing {_names(moved)}"


def _names(names: list[str]) -> str:
    """Names compacted by their matrix prefix: 'WP (8 entries)' when there are many."""
    if len(names) <= 4:
        return ", ".join(names)
    by: dict = {}
    for n in names:
        by.setdefault(n.rsplit("_", 2)[0] if n.count("_") >= 2 else n, []).append(n)
    return ", ".join(f"{k} ({len(v)} entries)" if len(v) > 1 else v[0] for k, v in by.items())


def _active(model: Model) -> tuple[list, list]:
    grads = model._gradient
    return ([p for p in model.parameters if grads[p]], [p for p in model.parameters if not grads[p]])


def symmetries(model: Model, max_unknowns: int | None = None) -> list[Symmetry]:
    """A canonical basis of the linear symmetries A of L: grad L . A theta == 0.

    Unknowns are a_ij for i an active parameter and j any parameter; the
    basis is the reduced row-echelon basis of the null space (row-major in
    the order of ``model.parameters``); each generator is certified exactly
    in the model's coefficient ring before it is returned.  Raises
    :class:`~symicl.errors.ModelError` if the unknowns exceed ``max_unknowns``
    (default :data:`MAX_UNKNOWNS`: the full transformer up to d = 3).
    """
    max_unknowns = MAX_UNKNOWNS if max_unknowns is None else max_unknowns
    params = list(model.parameters)
    active, _ = _active(model)
    n_unknowns = len(active) * len(params)
    if n_unknowns > max_unknowns:
        raise ModelError(f"model {model.name}: {len(active)} active of {len(params)} parameters "
                         f"give {n_unknowns} unknown entries of A, more than the limit "
                         f"{max_unknowns} of the symmetry search")
    if not active:
        return []
    fr = _FlowRing(model, params)
    gens = fr.ring.ring.gens
    pos = {p: k for k, p in enumerate(params)}
    columns = [(pos[p], j) for p in active for j in range(len(params))]
    entries = _shifted_system(fr, columns)
    support = sorted(_numeric_support(entries, len(columns), len(fr.c_idx)))
    if not support:
        return []
    polys = {j: fr.flow[params[columns[j][0]]] * gens[fr.p_idx[columns[j][1]]] for j in support}
    basis = _rational_basis(fr, entries, support, [polys[j] for j in support])
    if basis is None:
        basis = _ring_basis(fr, entries, support)
    out = []
    for vec in basis:
        if all(not v for v in vec):
            continue
        _certify(fr, [polys[j] for j in support], vec)
        A = sp.zeros(len(params), len(params))
        for v, j in zip(vec, support):
            if v:
                A[columns[j]] = _coefficient_expr(fr, v)
        theta = sp.Matrix(params)
        fld = [sp.expand(e) for e in A * theta]
        cert = ("sum_i dL/d theta_i (A theta)_i = 0, checked exactly in the coefficient ring "
                f"({len(support)} entries of A, {sum(1 for v in vec if v)} non-zero)")
        out.append(Symmetry(A, fld, _describe(A, params), cert, tuple(params)))
    return out


def _shifted_system(fr: _FlowRing, columns) -> list:
    """The rows of :func:`~symicl.analysis.conservation._system` for the columns
    F_i theta_j, built from one split of each F_i (column (i, j) is F_i's terms with the
    theta-exponent of j raised by one) instead of P^2 polynomial products."""
    split = {}
    for i, _ in columns:
        if i not in split:
            split[i] = fr.split(fr.flow[fr.params[i]])
    cells: dict = {}
    for col, (i, j) in enumerate(columns):
        for mono, inner in split[i].items():
            key = mono[:j] + (mono[j] + 1,) + mono[j + 1:]
            row = cells.setdefault(key, {})
            row[col] = inner
    return [cells[m] for m in sorted(cells)]


# -- the Lie algebra ------------------------------------------------------------------------------

def _vec(A: sp.Matrix) -> list:
    return [A[i, j] for i in range(A.rows) for j in range(A.cols)]


def _coordinates(basis: list[sp.Matrix], M: sp.Matrix) -> list | None:
    """Coordinates of M in the echelon ``basis`` (read off the pivots), or None if not in span."""
    pivots = []
    for A in basis:
        v = _vec(A)
        pivots.append(next(k for k, x in enumerate(v) if x != 0))
    m = _vec(M)
    coords = [sp.cancel(m[k] / _vec(A)[k]) for A, k in zip(basis, pivots)]
    rest = M - sum((c * A for c, A in zip(coords, basis)), sp.zeros(*M.shape))
    if any(sp.cancel(e) != 0 for e in rest):
        return None
    return coords


def _rank(rows: list[list]) -> int:
    rows = [r for r in rows if any(x != 0 for x in r)]
    if not rows:
        return 0
    syms = sorted(set().union(*[sp.sympify(x).free_symbols for r in rows for x in r]),
                  key=sp.default_sort_key)
    dom = sp.QQ.frac_field(*syms) if syms else sp.QQ
    return DomainMatrix.from_list_sympy(len(rows), len(rows[0]), rows).convert_to(dom).rank()


def _nullspace(rows: list[list], n: int) -> list[list]:
    rows = [r for r in rows if any(x != 0 for x in r)]
    if not rows:
        return [[sp.Integer(int(i == j)) for j in range(n)] for i in range(n)]
    return [list(v) for v in sp.Matrix(rows).nullspace(simplify=True)] if rows else []


@dataclass(frozen=True)
class LieAlgebra:
    """The structure of the symmetry algebra: [A_i, A_j] = sum_k c_ijk A_k."""

    dimension: int
    structure: dict              # (i, j) -> coordinates of [A_i, A_j] (non-zero ones, i < j)
    abelian: bool
    center_dimension: int
    derived_dimension: int       # dim [g, g]
    symmetric_dimension: int     # dim of g intersect symmetric matrices
    antisymmetric_dimension: int
    name: str

    def to_dict(self) -> dict:
        return {"dimension": self.dimension, "abelian": self.abelian,
                "center_dimension": self.center_dimension,
                "derived_dimension": self.derived_dimension,
                "symmetric_dimension": self.symmetric_dimension,
                "antisymmetric_dimension": self.antisymmetric_dimension,
                "name": self.name,
                "brackets": {f"[A{i + 1},A{j + 1}]": [_s(c) for c in cs]
                             for (i, j), cs in sorted(self.structure.items())}}


def lie_algebra(syms: list[Symmetry]) -> LieAlgebra:
    """Dimension, brackets, centre, derived algebra and a name where the dimensions fix it.

    Raises ArithmeticError if a bracket leaves the span (it cannot, for a
    complete basis: [A, B] of two symmetries is a symmetry).
    """
    basis = [s.matrix for s in syms]
    k = len(basis)
    structure = {}
    for i in range(k):
        for j in range(i + 1, k):
            C = basis[i] * basis[j] - basis[j] * basis[i]
            if C.is_zero_matrix:
                continue
            coords = _coordinates(basis, C)
            if coords is None:
                raise ArithmeticError(f"[A{i + 1}, A{j + 1}] is not in the span of the basis")
            structure[(i, j)] = coords

    def bracket(i, j):
        if i == j:
            return [0] * k
        if i < j:
            return structure.get((i, j), [0] * k)
        return [-c for c in structure.get((j, i), [0] * k)]

    # centre: c with sum_i c_i [A_i, A_j] = 0 for all j
    rows = [[bracket(i, j)[m] for i in range(k)] for j in range(k) for m in range(k)]
    center = len(_nullspace(rows, k)) if k else 0
    derived = _rank([list(v) for v in structure.values()])
    sym_rows = [[(basis[c][a, b] - basis[c][b, a]) for c in range(k)]
                for a in range(basis[0].rows) for b in range(a + 1, basis[0].rows)] if k else []
    anti_rows = [[(basis[c][a, b] + basis[c][b, a]) for c in range(k)]
                 for a in range(basis[0].rows) for b in range(a, basis[0].rows)] if k else []
    n_sym = len(_nullspace(sym_rows, k)) if k else 0
    n_anti = len(_nullspace(anti_rows, k)) if k else 0
    abelian = not structure
    if k == 0:
        name = "0 (no continuous linear symmetry)"
    elif abelian:
        diag = all(A.is_diagonal() for A in basis)
        name = f"R^{k} (abelian" + (", scalings)" if diag else ")")
    else:
        name = _guess_name(k, center, derived, n_anti)
    return LieAlgebra(k, structure, abelian, center, derived, n_sym, n_anti, name)


def _guess_name(k: int, center: int, derived: int, n_anti: int) -> str:
    """A name consistent with the dimensions (a guess where they do not fix the algebra)."""
    import math
    n = math.isqrt(k)
    if n * n == k and center == 1 and derived == k - 1:
        return f"gl({n}) by its dimensions (centre 1, [g,g] = sl({n}) of dimension {k - 1})"
    for m in range(2, 5):
        if k == m * m * 2 and center == 2 and derived == k - 2:
            return f"gl({m}) + gl({m}) by its dimensions"
    if center == 0 and derived == k and n_anti == k:
        return f"compact semisimple of dimension {k} (e.g. so(n) with n(n-1)/2 = {k})"
    return f"non-abelian, dimension {k}, centre {center}, [g,g] of dimension {derived}"


# -- Noether ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NoetherPair:
    """A conserved quadratic h = theta^T S theta and its symmetric generator S."""

    law: sp.Expr
    generator: sp.Matrix
    coordinates: list            # S in the basis of :func:`symmetries`

    def to_dict(self) -> dict:
        return {"law": _s(self.law), "coordinates": [_s(c) for c in self.coordinates]}


def noether(model: Model, syms: list[Symmetry] | None = None,
            laws: list[sp.Expr] | None = None) -> list[NoetherPair]:
    """Pair each conserved quadratic law h = theta^T S theta with its symmetric generator S.

    Under gradient flow d/dt h = -2 (S theta) . grad L, so h is conserved iff
    S is a symmetry; each S is located in the span of ``syms`` exactly, and
    the number of laws must equal the dimension of the symmetric part of g
    (both raise ArithmeticError otherwise).
    """
    syms = symmetries(model) if syms is None else syms
    laws = conservation_laws(model, with_step_change=False).expressions() if laws is None \
        else laws
    params = list(model.parameters)
    basis = [s.matrix for s in syms]
    out = []
    for h in laws:
        S = sp.Matrix(len(params), len(params),
                      lambda a, b: sp.diff(h, params[a], params[b]) / 2)
        coords = _coordinates(basis, S) if basis else None
        if coords is None:
            raise ArithmeticError(f"conserved law {h}: its symmetric generator is not a symmetry")
        out.append(NoetherPair(h, S, coords))
    if basis and lie_algebra(syms).symmetric_dimension != len(out):
        raise ArithmeticError(f"{len(out)} conserved quadratic laws but the symmetric part of "
                              f"the symmetry algebra has dimension "
                              f"{lie_algebra(syms).symmetric_dimension}")
    return out


# -- orbits and gauge fixing ---------------------------------------------------------------------------

def orbit_directions(syms: list[Symmetry], point) -> sp.Matrix:
    """The P x k matrix [A_1 theta, ..., A_k theta] at ``point`` ({symbol: value}); its rank
    is the dimension of the orbit through the point (each column a zero mode of the Hessian
    at a critical point)."""
    if not syms:
        return sp.zeros(0, 0)
    cols = [[sp.sympify(e).xreplace(point) for e in s.field] for s in syms]
    return sp.Matrix(cols).T


@dataclass(frozen=True)
class GaugeFixed:
    """The fixed-point problem on a slice theta_S = values transversal to the orbits.

    ``equations``: dL/dtheta_i = 0 for the ``unknowns`` (active, not fixed);
    valid where ``condition`` (the r x r minor of the orbit directions on the
    fixed coordinates, with the gauge substituted) is non-zero: there, its
    solutions are exactly the critical points of L on the slice.  Critical
    points with a smaller orbit, or where the minor vanishes, are not covered.
    """

    fixed: dict
    unknowns: list
    equations: list
    condition: sp.Expr
    orbit_dimension: int
    inert: list

    def lift(self, solution: dict) -> dict:
        """The full parameter point: the solution, the gauge values, inert parameters 0."""
        out = {p: sp.Integer(0) for p in self.inert}
        out.update(self.fixed)
        out.update(solution)
        return out


def gauge_fix(model: Model, syms: list[Symmetry] | None = None, fix=None,
              values=None) -> GaugeFixed:
    """Fix a gauge and return the reduced, square critical-point system.

    ``fix``: parameters (or names) to fix, one per orbit dimension; by default
    chosen greedily in parameter order where they increase the rank of the
    orbit directions at a random rational point.  ``values``: their values
    (default: all 1, else 1, 2, 3, ...: the first that keeps the minor
    generically non-zero).  Raises ModelError for a choice whose minor
    vanishes identically.
    """
    syms = symmetries(model) if syms is None else syms
    params = list(model.parameters)
    active, inert = _active(model)
    by_name = {p.name: p for p in params}
    rng = random.Random(20261203)
    point = {p: sp.Rational(rng.randint(2, 97), rng.randint(2, 97)) * rng.choice((1, -1))
             for p in params}
    V = orbit_directions(syms, point)
    r = V.rank() if syms else 0
    pos = {p: k for k, p in enumerate(params)}
    if fix is None:
        chosen, rows = [], []
        for p in active:
            trial = rows + [list(V.row(pos[p]))]
            if sp.Matrix(trial).rank() > len(rows):
                chosen.append(p)
                rows = trial
            if len(chosen) == r:
                break
    else:
        chosen = [by_name[f] if isinstance(f, str) else f for f in fix]
        unknown = [str(p) for p in chosen if p not in active]
        if unknown:
            raise ModelError(f"cannot fix {', '.join(unknown)}: not an active parameter")
        if len(chosen) != r:
            raise ModelError(f"the orbits have dimension {r}: fix {r} parameters, not "
                             f"{len(chosen)}")
    gens, cols = [], []
    for k in range(len(syms)):      # r generators independent on the fixed coordinates
        trial = cols + [[V[pos[p], k] for p in chosen]]
        if sp.Matrix(trial).rank() > len(cols):
            gens.append(k)
            cols = trial
    W = sp.Matrix([[sp.sympify(syms[k].field[pos[p]]) for k in gens] for p in chosen]) \
        if r else None

    def minor(vals):
        if not r:
            return sp.Integer(1)
        M = W.xreplace(dict(zip(chosen, vals)))
        return sp.factor(M.det(method="berkowitz"))

    if values is None:
        candidates = [[sp.Integer(1)] * len(chosen),
                      [sp.Integer(k + 1) for k in range(len(chosen))]]
    else:
        vals = values if isinstance(values, (list, tuple)) else [values[p if p in values else
                                                                        p.name] for p in chosen]
        candidates = [[sp.sympify(v) for v in vals]]
    for vals in candidates:
        cond = minor(vals)
        if cond != 0:
            break
    else:
        raise ModelError(f"fixing {', '.join(p.name for p in chosen)} to {candidates[-1]} "
                         f"leaves the orbit directions degenerate (zero minor): choose "
                         f"other parameters or values")
    fixed = dict(zip(chosen, vals))
    grad = model.gradient()
    unknowns = [p for p in active if p not in fixed]
    eqs = [sp.expand(grad[p].xreplace(fixed)) for p in unknowns]
    return GaugeFixed(fixed, unknowns, eqs, cond, r, inert)
