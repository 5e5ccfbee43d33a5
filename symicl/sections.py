"""The analysis sections of a committed derivation, each as data, LaTeX and Markdown.

Every function here takes a derived :class:`~symicl.model.Model` and returns a
:class:`Section`: a key of ``derivation.json`` with its JSON-ready value, the
LaTeX ``align`` blocks of ``equations.tex`` and the Markdown lines of
``README.md``.  Everything shown is computed by :mod:`symicl.analysis` from
the model; nothing is typed from the literature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping

import sympy as sp

from .analysis.closed_forms import logistic_mode
from .analysis.conservation import conservation_laws
from .analysis.fixed_points import FixedPoints, fixed_points, learned_map
from .analysis.symmetries import Symmetry, lie_algebra, noether, symmetries
from .analysis.timescales import timescales
from .export.names import latex
from .model import Model
from .models import per_mode_model
from .symbols import natural_key

__all__ = [
    "Section",
    "conserved",
    "fixed_point_section",
    "logistic_section",
    "per_mode_difference",
    "symmetry_section",
    "census_section",
    "timescale_section",
]


@dataclass
class Section:
    """One part of a derivation: JSON entries, LaTeX blocks and Markdown lines."""

    data: dict = field(default_factory=dict)
    tex: list = field(default_factory=list)
    md: list = field(default_factory=list)


def _s(e) -> str:
    return sp.sstr(sp.sympify(e), order="lex")


def _by_name(constants: Mapping) -> list[tuple[str, object]]:
    """(name, value) pairs in natural order of the names."""
    return sorted(((str(k), v) for k, v in constants.items()),
                  key=lambda kv: natural_key(sp.Symbol(kv[0])))


def _constants_text(constants: Mapping) -> str:
    return ", ".join(f"{k} = {v}" for k, v in _by_name(constants))


def _align(comment: str, lines: list[str]) -> str:
    return f"% {comment}\n\\begin{{align}}\n" + " \\\\\n".join(lines) + "\n\\end{align}"


# -- conservation laws ---------------------------------------------------------------------------

def conserved(model: Model) -> Section:
    """Quadratic laws h with grad h . F = 0 identically, and their per-step change under GD."""
    laws = conservation_laws(model)
    syms = model.parameters + model.constants
    sec = Section({"conserved": [str(h) for h in laws.expressions()],
                   "inert": [p.name for p in laws.inert]})
    sec.tex.append("% conserved quantities (grad h . F = 0 identically)")
    sec.md += ["## Conserved quantities", "",
               "Found by solving grad h . F = 0 identically for all quadratic h "
               "(each with its certificate); under gradient descent with step eta each "
               "changes per step by exactly eta^2 times the quadratic form of the gradient "
               "g = dL/dtheta shown.", ""]
    for law in laws.laws:
        sec.tex.append(f"\\begin{{align}}\nh &= {latex(law.expression, syms)}\n\\end{{align}}")
        sec.md.append(f"- $h = {latex(law.expression, syms)}$; per step of gradient descent: "
                      f"$\\Delta h = \\eta^2 ({latex(law.step_change.get(2, 0))})$")
    if laws.inert:
        sec.md += ["", "Inert parameters (zero gradient, trivially conserved): "
                   + ", ".join(f"`{p.name}`" for p in laws.inert) + "."]
    sec.md.append("")
    return sec


# -- symmetries ----------------------------------------------------------------------------------

def _field_tex(sym: Symmetry, syms) -> str:
    return ", \\; ".join(f"\\delta {latex(p, syms)} = {latex(e, syms)}"
                          for p, e in zip(sym.parameters, sym.field) if e != 0)


def _symmetry_summary(model: Model) -> dict:
    """Generators, algebra and Noether pairs of one model, JSON-ready."""
    found = symmetries(model)
    alg = lie_algebra(found)
    pairs = noether(model, found)
    return {"algebra": alg.to_dict(),
            "generators": [s.description for s in found],
            "noether": [p.to_dict() for p in pairs]}


def symmetry_section(model: Model, variants: tuple = ()) -> Section:
    """The linear symmetries A of L (grad L . A theta = 0, certified), the Lie algebra they
    span, and the Noether pairing of its symmetric part with the conserved quadratics;
    ``variants``: (label, model) pairs whose algebras are tabulated too (other spectra,
    tasks).  The generators themselves are the contract's ``symmetries`` key."""
    syms = model.parameters + model.constants
    found = symmetries(model)
    alg = lie_algebra(found)
    pairs = noether(model, found)
    sec = Section({"symmetry_algebra": alg.to_dict(),
                   "noether": [p.to_dict() for p in pairs]})
    sec.md += ["## Symmetries", "",
               "Every linear vector field A theta with grad L . A theta = 0 identically "
               "(a linear system in the entries of A over the rational functions of the "
               "constants; each generator certified by exact expansion), in a canonical "
               "echelon basis; inert parameters, which any field may move, are left out. "
               "Under gradient flow d/dt (theta^T S theta) = -2 (S theta) . grad L, so a "
               "quadratic form is conserved exactly when its symmetric matrix S is a "
               "symmetry: the conserved quadratics are the symmetric part of the algebra. "
               "Antisymmetric generators (rotations) conserve nothing under gradient flow; "
               "every generator gives a zero mode A theta* of the Hessian at each critical "
               "point theta*.", ""]
    if not found:
        sec.md += ["No continuous linear symmetry.", ""]
        sec.tex.append("% no continuous linear symmetry")
    for k, sym in enumerate(found, start=1):
        sec.md.append(f"{k}. {sym.description}: $ {_field_tex(sym, syms)} $")
    if found:
        sec.tex.append(_align("generators of the linear symmetries (delta theta = A theta)", [
            f"&A_{{{k}}}: && {_field_tex(sym, syms)}" for k, sym in enumerate(found, start=1)]))
        sec.md += ["", f"Lie algebra: {alg.name}; dimension {alg.dimension}, centre of "
                   f"dimension {alg.center_dimension}, [g, g] of dimension "
                   f"{alg.derived_dimension}; symmetric part {alg.symmetric_dimension}, "
                   f"antisymmetric part {alg.antisymmetric_dimension}."]
        if alg.structure:
            gens = [sp.Symbol(f"A_{m + 1}") for m in range(alg.dimension)]
            sec.md += ["", "Brackets (non-zero, in the basis above): " + "; ".join(
                f"$[A_{{{i + 1}}}, A_{{{j + 1}}}] = "
                f"{sp.latex(sum(c * g for c, g in zip(cs, gens)), order='lex')}$"
                for (i, j), cs in sorted(alg.structure.items()))]
        sec.md.append("")
    if pairs:
        sec.md += ["Noether pairs (conserved quadratic = symmetric generator, its coordinates "
                   "in the basis above):", ""]
        for pair in pairs:
            coords = ", ".join(latex(c) for c in pair.coordinates)
            sec.md.append(f"- $h = {latex(pair.law, syms)}$ <-> $({coords})$")
        sec.md.append("")
    if variants:
        rows = []
        data = {}
        for label, other in variants:
            summary = _symmetry_summary(other)
            data[label] = summary
            a = summary["algebra"]
            rows.append(f"| {label} | {a['dimension']} | {a['name']} | "
                        f"{'; '.join(summary['generators']) or '-'} | "
                        f"{len(summary['noether'])} |")
        sec.data["symmetry_variants"] = data
        sec.md += ["The same search for other spectra and tasks of this model (an isotropic "
                   "spectrum s_a = s; scalar tasks y = w^T x):", "",
                   "| variant | dim | algebra | generators | conserved quadratics |",
                   "|---|---|---|---|---|", *rows, ""]
    return sec


# -- critical-point census -----------------------------------------------------------------------

def census_section(model: Model, data: dict, source: str) -> Section:
    """A committed numerical census of critical points (``data``, written by the study named
    in it), re-verified here at 50 digits: each stored point's residual |grad L| < 1e-30,
    its loss, its Hessian index and zero modes, and its orbit dimension under the derived
    symmetries recomputed and compared."""
    import mpmath as mp

    from .analysis.critical_points import PrecisionSystem, classify, orbit_dimension

    bound = mp.mpf("1e-30")
    out = {"method": "many-start Newton on grad L and on the gauge-fixed system, refined at "
                     "60 digits, deduplicated modulo the symmetry group (see the study)",
           "study": data["source"], "data": source,
           "verified": "here, at 50 digits: |grad L| < 1e-30 at every stored point; loss, "
                       "Hessian index and zero modes, and the orbit dimension (rank of the "
                       "derived symmetry directions A_k theta) recomputed and equal to the "
                       "stored ones",
           "cases": {}}
    syms = symmetries(model)
    sec = Section({"critical_points": out})
    one_head = "P22*Q11" in data["cases"][next(iter(data["cases"]))]["classes"][0]["learned_map"]
    group = ("scaling with sign, the signed permutations of the tokens and the parameter sign "
             "flips that leave L invariant" if one_head else
             "the continuous symmetries above, the signed permutations of the tokens, the "
             "permutations of the heads and the parameter sign flips that leave L invariant")
    parts = ("the main path P22 Q11, and the null blocks' share of the squared weights "
             "(balanced point)" if one_head else "and, for the least-loss class, the learned "
                                                  "function itself")
    sec.md += ["## Critical points (numerical census)", "",
               "Beyond the exact method, a census by many-start Newton (on grad L and on the "
               f"gauge-fixed system of the symmetries), made by `{data['source']}` and "
               f"committed as `{source}`; each class is one critical point modulo the "
               f"symmetry group ({group}), re-verified when this file is generated: "
               "|grad L| < 1e-30 at 50 digits, and the Hessian's index and zero modes and "
               "the orbit dimension (rank of the symmetry directions A_k theta) recomputed. "
               "Coverage is not complete: the number of classes against the "
               "number of starts is given; index 0 with as many zero modes as the orbit "
               "dimension is a strict minimum modulo the orbit. Learned map: the norms of "
               f"its parts reading S_xx, S_xy and S_yy of the context, {parts}.",
               ""]
    for case, r in data["cases"].items():
        system = PrecisionSystem(model, r["constants"])
        classes = []
        for k, c in enumerate(r["classes"], start=1):
            cl = classify(system, [c["point"][p.name] for p in system.active], dps=50)
            if not cl.residual < bound:
                raise ArithmeticError(f"census {case} class {k}: |grad L| = "
                                      f"{mp.nstr(cl.residual, 3)} is not below 1e-30")
            if (cl.index, cl.zero_modes) != (c["index"], c["zero_modes"]):
                raise ArithmeticError(f"census {case} class {k}: index/zero modes "
                                      f"{cl.index}/{cl.zero_modes} differ from the stored "
                                      f"{c['index']}/{c['zero_modes']}")
            orbit = orbit_dimension(system, syms, [c["point"][p.name] for p in system.active])
            if orbit != c["orbit_dimension"]:
                raise ArithmeticError(f"census {case} class {k}: orbit dimension {orbit} "
                                      f"differs from the stored {c['orbit_dimension']}")
            loss = mp.nstr(cl.loss, 20)
            with mp.workdps(50):
                if abs(cl.loss - mp.mpf(c["loss"])) > mp.mpf("1e-20"):
                    raise ArithmeticError(f"census {case} class {k}: loss {loss} differs "
                                          f"from the stored {c['loss']}")
            classes.append({"loss": loss, "kind": c["kind"], "index": cl.index,
                            "zero_modes": cl.zero_modes,
                            "orbit_dimension": orbit,
                            "residual": "< 1e-30", "hits": c["hits"],
                            "learned_map": c["learned_map"]})
        consts = ", ".join(f"{k} = {v}" for k, v in r["constants"].items())
        out["cases"][case] = {"constants": r["constants"],
                              "starts_per_method": r["starts_per_method"],
                              "scales": r["scales"], "seed": r["seed"],
                              "converged": r["converged"],
                              "discrete_group_order": r["discrete_group_order"],
                              "saturation": r["saturation"], "classes": classes}
        minima = [c for c in classes if c["index"] == 0]
        sat = r["saturation"]
        sec.md += [f"### {case} spectrum: {consts}", "",
                   f"{r['starts_per_method']} starts per method (scales {r['scales']}, seed "
                   f"{r['seed']}); converged: {r['converged']['gradient']} on grad L, "
                   f"{r['converged']['reduced']} on the gauge-fixed system; discrete "
                   f"symmetry group of order {r['discrete_group_order']}. {len(classes)} "
                   f"classes, {len(minima)} with index 0. Classes found against starts "
                   "(either method): " + ", ".join(f"{n}: {c}" for n, c in
                                                    zip(sat["starts"], sat["either"])
                                                    if n in _checkpoints(sat["starts"])) + ".",
                   "", "| loss | kind | index | zero modes / orbit dim | S_xx | S_xy | S_yy "
                   + ("| null share " if one_head else "") + "| hits (grad, reduced) |",
                   "|---|---|---|---|---|---|---|" + ("---|" if one_head else "") + "---|"]
        for c in classes:
            lm = c["learned_map"]
            sec.md.append(f"| {c['loss'][:12]} | {c['kind']} | {c['index']} | "
                          f"{c['zero_modes']} / {c['orbit_dimension']} | {lm['Sxx']} | "
                          f"{lm['Sxy']} | {lm['Syy']} | "
                          + (f"{lm['null_share']} | " if one_head else "")
                          + f"{c['hits']['gradient']}, {c['hits']['reduced']} |")
        best = [c for c in minima if "global" in c["kind"]]
        if len(best) > 1:
            sec.md += ["", f"{len(best)} classes share the lowest loss found; they are distinct "
                       "critical points, not related by any symmetry of L above (their learned "
                       "maps differ as tensors on the context moments), though they reach the "
                       "same loss."]
        if not one_head:
            sec.md += _least_loss_md(model, system, r, out["cases"][case])
        sec.md.append("")
        sec.tex.append(f"% critical-point census, {case} spectrum ({consts}): "
                       f"{len(classes)} classes; losses of the index-0 classes: "
                       + ", ".join(c["loss"][:12] for c in minima))
    return sec


def _least_loss_md(model: Model, system, r: dict, out: dict) -> list:
    """The least-loss class's learned function y_hat (coefficients at 50 digits, shown as
    rationals where one of denominator < 10^6 agrees to 1e-30) and its loss against the
    one-head model's least loss (``one_head_minimum`` of the data, exact); adds both to
    ``out``."""
    import mpmath as mp

    best = r["classes"][0]
    with mp.workdps(50):
        values = {p.name: sp.Float(best["point"][p.name], 50) for p in system.active}
        values.update({p.name: 0 for p in model.parameters if p.name not in values})
        y_hat = learned_map(model, values)["y_hat"][0]
        gens = sorted(y_hat.free_symbols, key=str)
        y_hat = sum((_rational(c) * sp.Mul(*[g ** e for g, e in zip(gens, m)])
                     for m, c in sp.Poly(y_hat, *gens).terms()), sp.Integer(0))
    out["least_loss"] = {"loss": best["loss"], "kind": best["kind"], "y_hat": str(y_hat)}
    md = ["", f"Least loss found: {best['loss'][:16]} ({best['kind']}), where the model "
          f"computes on the query y_hat = ${sp.latex(y_hat)}$ (S = Z Z^T / N the context "
          "statistics with the query inside S_xx; coefficients recovered as rationals at 50 "
          "digits)."]
    ref = r.get("one_head_minimum")
    if ref is not None:
        with mp.workdps(50):
            exact = sp.Rational(ref["loss"])
            gap = system.loss([mp.mpf(best["point"][p.name]) for p in system.active]) \
                - mp.mpf(exact.p) / exact.q
        d = model.options["dim"]
        name = {str(v): v for v in y_hat.free_symbols}
        sxy = [name.get(f"Sxy_{a + 1}", sp.Symbol(f"Sxy_{a + 1}")) for a in range(d)]
        xq = [name.get(f"x_{b + 1}", sp.Symbol(f"x_{b + 1}")) for b in range(d)]
        main = sp.Matrix(d, d, lambda a, b: y_hat.coeff(sxy[a]).coeff(xq[b]))
        same = main == sp.Matrix(ref["P22*Q11"]).applyfunc(sp.Rational) and sp.expand(
            y_hat - sum(main[a, b] * sxy[a] * xq[b] for a in range(d) for b in range(d))) == 0
        gap = "below 1e-40 in absolute value" if abs(gap) < mp.mpf("1e-40") else mp.nstr(gap, 3)
        out["one_head_minimum"] = {**ref, "least_loss_minus_it": gap, "same_function": same}
        md += ["", f"The one-head model's least loss at the same constants (`{ref['model']}`, "
               f"its stable point, exact): {ref['loss']} = {ref['decimal'][:16]}; the least "
               f"loss found here minus it is {gap} (50 digits), and "
               + (f"y_hat is the one-head stable point's function S_xy^T P22 Q11 x_q, P22 Q11 "
                  f"= ${sp.latex(sp.Matrix(ref['P22*Q11']).applyfunc(sp.Rational))}$ (every coefficient "
                  f"within 1e-30 of it)."
                  if same else "y_hat is not the one-head stable point's function.")]
    return md


def _rational(c) -> sp.Expr:
    """``c`` (a 50-digit float) as a rational of denominator < 10^6 when one agrees to 1e-30,
    else rounded to 12 significant digits."""
    from fractions import Fraction

    f = Fraction(str(sp.Float(c, 50))).limit_denominator(10 ** 6)
    q = sp.Rational(f.numerator, f.denominator)
    if abs(sp.Float(c, 50) - q) < sp.Float("1e-30", 50):
        return q
    return sp.Float(c, 12)


def _checkpoints(starts: list) -> set:
    """About six of the saturation curve's abscissae (the first, the last, in between)."""
    step = max(1, len(starts) // 5)
    return set(starts[::step]) | {starts[-1]}


def per_mode_difference(model: Model) -> Section:
    """L_vector - L_scalar(a_a = p_a q_a) for the aligned reduction with diagonal tasks.

    The scalar-task model's exact loss is the per-mode form; the difference is
    what the per-mode approximation leaves out for the vector model.
    """
    per_mode = per_mode_model(model.options["dim"]).expected_loss()
    diff = sp.factor(sp.expand(model.expected_loss() - per_mode))
    syms = model.parameters + model.constants
    body = latex(diff, syms)
    return Section(
        {"per_mode_difference": str(diff)},
        ["% exact loss minus the per-mode (scalar-task) form\n"
         f"\\begin{{align}}\nL - L_{{\\mathrm{{per\\,mode}}}} &= {body}\n\\end{{align}}"],
        ["## Where the per-mode approximation differs", "",
         "The per-mode form of the loss is the exact loss of the same reduction "
         "with scalar tasks y = w^T x (derived by symicl, gains a_a = p_a q_a). "
         "For the vector model with diagonal tasks the exact loss differs by a "
         "term of order 1/N that couples the modes; it vanishes for an isotropic "
         "spectrum with equal modes and as N -> infinity:", "",
         f"$$L - L_{{\\mathrm{{per\\,mode}}}} = {body}$$", ""])


# -- fixed points --------------------------------------------------------------------------------

def _point_tex(point, syms) -> str:
    return ", \\; ".join(f"{latex(p, syms)} = {latex(v, syms)}" for p, v in
                         sorted(point.values.items(), key=lambda kv: natural_key(kv[0]))
                         if v != 0 and p not in point.free)


def _kind(point) -> str:
    return point.stability.describe() if point.stability is not None else "not classified"


def _points_md(res: FixedPoints, syms) -> list[str]:
    out = []
    for k, pt in enumerate(res, start=1):
        body = _point_tex(pt, syms) or "\\text{all parameters } 0"
        free = (f"; free: {', '.join(f'`{f}`' for f in pt.free)}" if pt.free else "")
        out.append(f"{k}. $ {body} $ — {_kind(pt)}{free}.")
    return out


def _short_kind(point) -> str:
    st = point.stability
    if st is None:
        return "not classified"
    return f"saddle, {st.n_unstable} unstable" if st.kind == "saddle" else st.kind


def _points_tex(res: FixedPoints, syms, comment: str) -> str:
    lines = []
    for k, pt in enumerate(res, start=1):
        body = _point_tex(pt, syms) or "\\text{all parameters } 0"
        lines.append(f"&\\text{{({k}) {_short_kind(pt)}}}: && {body}")
    return _align(comment, lines)


def _learned(model: Model, res: FixedPoints) -> dict:
    """The learned maps of the stable points (name -> matrix)."""
    return {i: learned_map(model, pt.values) for i, pt in enumerate(res, start=1)
            if pt.stability is not None and pt.stability.kind == "stable"}


def _gains(model: Model, res: FixedPoints) -> list | None:
    """Diagonal gains a_a = p_a q_a of an aligned reduction at its first stable point
    (unclassified points: the first point with every gain non-zero)."""
    from .models import SPECS

    spec = SPECS.get(model.name)
    pairs = spec.gain_pairs(model) if spec is not None and spec.gain_pairs else None
    if not pairs:
        return None
    if any(pt.stability is not None for pt in res):
        chosen = res.stable()
    else:
        chosen = [pt for pt in res if all(pt.values[p] != 0 and pt.values[q] != 0
                                          for p, q in pairs)]
    if not chosen:
        return None
    v = chosen[0].values
    return [sp.factor(sp.simplify(v[p] * v[q])) for p, q in pairs]


def fixed_point_section(model: Model, symbolic: Mapping | None, example: FixedPoints | None,
                        skip: str | None = None) -> Section:
    """All real fixed points: symbolically (``symbolic`` = fixed_points options) and/or
    at numeric constants (``example``, found by
    :func:`~symicl.analysis.fixed_points.fixed_points`), classified by the Jacobian's eigenvalues, with
    the learned predictor of each stable point; for the aligned reduction with
    diagonal tasks, the stable gains against those of the per-mode model."""
    syms = model.parameters + model.constants
    sec = Section({"fixed_points": {}})
    data = sec.data["fixed_points"]
    sec.md += ["## Fixed points", "",
               "Every real zero of the flow, by a factorising Groebner decomposition (no local "
               "search), each verified by substitution and classified by the eigenvalues of "
               "the derived Jacobian. Parameters not shown are 0; a family's free "
               "parameters take any real value where the expressions are finite.", ""]
    if skip:
        data["not_computed"] = skip
        sec.md += [f"Not computed: {skip}.", ""]
        sec.tex.append(f"% fixed points not computed: {skip}")
        return sec
    aligned_vector = (model.options.get("reduction") == "aligned"
                      and model.options.get("tasks") == "aligned")
    if symbolic is not None:
        res = fixed_points(model, **symbolic)
        data["symbolic"] = [pt.describe() for pt in res]
        sec.md += ["For symbolic constants (generic values):", ""] + _points_md(res, syms) + [""]
        sec.tex.append(_points_tex(res, syms, "fixed points, symbolic constants"))
        gains = _gains(model, res)
        if gains is not None:
            data["stable_gains"] = [_s(g) for g in gains]
            body = ", \\quad ".join(f"a_{{{a}}} = {latex(g, syms)}"
                                    for a, g in enumerate(gains, start=1))
            sec.md += ["Learned gains a_a (the predictor p2 q1 = diag(a)) where every mode is "
                       "learned (the stable point):", "",
                       f"$$ {body} $$", ""]
            sec.tex.append(_align("learned gains at the stable point", [body.replace(
                " = ", " &= ", 1)]))
    if example is not None:
        res = example
        text = _constants_text(res.constants)
        data["example"] = {"constants": {k: _s(v) for k, v in _by_name(res.constants)},
                           "points": [pt.describe() for pt in res]}
        sec.md += [f"At {text}:", ""] + _points_md(res, syms) + [""]
        sec.tex.append(_points_tex(res, syms, f"fixed points at {text}"))
        learned = _learned(model, res)
        if learned:
            data["example"]["learned"] = {str(i): {k: [[_s(x) for x in row] for row in v.tolist()]
                                                   for k, v in maps.items()}
                                          for i, maps in learned.items()}
            for i, maps in learned.items():
                body = ", \\quad ".join(f"{k.replace('*', ' ')} = {latex(v)}"
                                        for k, v in maps.items())
                sec.md += [f"Learned predictor at stable point {i}: $ {body} $", ""]
        if aligned_vector:
            sec = _compare_per_mode(model, res, sec)
    return sec


def _compare_per_mode(model: Model, res: FixedPoints, sec: Section) -> Section:
    exact = _gains(model, res)
    pm_model = per_mode_model(model.options["dim"])
    per_mode = _gains(pm_model, fixed_points(pm_model, {str(k): v for k, v in
                                                          res.constants.items()}))
    if exact is None or per_mode is None:
        return sec
    sec.data["fixed_points"]["example"]["per_mode_gains"] = [_s(g) for g in per_mode]
    rows = [f"| {a} | ${latex(e)}$ = {float(e):.4f} | ${latex(p)}$ = {float(p):.4f} | "
            f"{float(e - p):+.4f} |" for a, (e, p) in enumerate(zip(exact, per_mode), start=1)]
    sec.md += ["The per-mode (paper's) flow, derived by symicl as the scalar-task model, "
               "has its own stable point; its gains differ from the exact coupled flow's at "
               "finite N with an anisotropic spectrum:", "",
               "| mode | exact a_a | per-mode a_a | difference |", "|---|---|---|---|", *rows, ""]
    sec.tex.append(_align("stable gains: exact flow vs the per-mode flow", [
        f"a_{{{a}}}^{{\\mathrm{{exact}}}} &= {latex(e)}, \\quad "
        f"a_{{{a}}}^{{\\mathrm{{per\\,mode}}}} = {latex(p)}"
        for a, (e, p) in enumerate(zip(exact, per_mode), start=1)]))
    return sec


# -- timescales ----------------------------------------------------------------------------------

_FLOAT = re.compile(r"-?\d+\.\d{7,}")


def _short(e):
    """Floating-point numbers to 6 significant digits (for reading; JSON keeps all)."""
    return e.xreplace({f: sp.Float(f, 6) for f in sp.sympify(e).atoms(sp.Float)})


def _rates_md(ts, syms, what: str) -> list[str]:
    rates = ts.growth if what == "growth" else ts.relaxation
    return [f"- {_FLOAT.sub(lambda m: f'{float(m.group()):.6g}', label)}: "
            f"${latex(_short(r), syms)}$" for label, r in sorted(rates.items())]


def timescale_section(model: Model, symbolic: bool, example: FixedPoints | None,
                      relaxation: bool = True) -> Section:
    """Growth rates at the origin (symbolic and/or at the constants of the fixed
    points ``example``), escape times, learning order and, with ``relaxation``,
    relaxation rates at the first stable point (escape to its size; else to size 1)."""
    syms = model.parameters + model.constants
    sec = Section({"timescales": {}})
    data = sec.data["timescales"]
    sec.md += ["## Timescales and staged learning", "",
               "Linearising the flow at the origin (a small initialisation) gives a growth "
               "rate r per mode (eigenspace of the Jacobian; the parameters it involves name "
               "it); from a start of scale eps a mode escapes at t = (1/r) log(c/eps), c its "
               "size at the stable point, so modes are learned in the order of decreasing r. "
               "At the stable point the negative eigenvalues give relaxation rates.", ""]
    if symbolic:
        ts = timescales(model, scale=1)
        data["symbolic_growth_rates"] = {k: _s(v) for k, v in sorted(ts.growth.items())}
        sec.md += ["Growth rates at the origin, symbolic constants:", ""]
        sec.md += _rates_md(ts, syms, "growth") + [""]
        labels = sorted(ts.growth)
        sec.tex.append(_align("growth rates at the origin: " + "; ".join(
            f"r_{k} {label}" for k, label in enumerate(labels, start=1)), [
            f"r_{{{k}}} &= {latex(ts.growth[label], syms)}"
            for k, label in enumerate(labels, start=1)]))
    if example is not None:
        stable = example.stable() if relaxation else []
        constants = {str(k): v for k, v in example.constants.items()}
        ts = timescales(model, constants, stable_point=stable[0] if stable else None,
                        scale="learned" if stable else 1)
        text = _constants_text(constants)
        data["example"] = {"constants": {k: _s(v) for k, v in _by_name(constants)},
                           **ts.to_dict()}
        sec.md += [f"At {text}: growth rates", ""] + _rates_md(ts, syms, "growth") + [""]
        if ts.order:
            sec.md += ["Learned in the order: " + " -> ".join(ts.order) + ".", ""]
        sec.md += [f"Escape times from scale eps (to {'the stable point' if stable else 'size 1'}):",
                   ""]
        sec.md += [f"- {k}: $t = {latex(v, syms)}$" for k, v in sorted(ts.escape.items())] + [""]
        if ts.relaxation:
            sec.md += ["Relaxation rates at the stable point:", ""]
            sec.md += _rates_md(ts, syms, "relaxation") + [""]
        labels = ts.order or sorted(ts.growth)
        sec.tex.append(_align(f"timescales at {text}, in the order learned: " + "; ".join(
            f"r_{k} {label}" for k, label in enumerate(labels, start=1)), [
            f"r_{{{k}}} &= {latex(ts.growth[label], syms)}, \\quad "
            f"t_{{\\mathrm{{esc}}}} = {latex(ts.escape[label], syms)}"
            for k, label in enumerate(labels, start=1)]))
    return sec


# -- closed forms --------------------------------------------------------------------------------

def logistic_section(model: Model, modes: list) -> Section:
    """Logistic solutions of decoupled modes on their balanced sets.

    ``modes``: (p, q, options) with options passed to
    :func:`~symicl.analysis.closed_forms.logistic_mode` (restrict, constants).
    """
    syms = model.parameters + model.constants
    sec = Section({"closed_forms": []})
    sec.md += ["## Closed forms: logistic modes", "",
               "On an invariant subset where a mode (p, q) decouples, the flow conserves "
               "p^2 - c q^2; on the balanced set p = sqrt(c) q the gain a = p q obeys a "
               "Bernoulli equation da/dt = r a (1 - a/a_inf), solved by sympy.dsolve and "
               "verified by substitution:", ""]
    names = {x.name: x for x in syms}
    names.setdefault("s", sp.Symbol("s", positive=True))
    for p, q, options in modes:
        options = {key: {k: sp.sympify(v, locals=names) for k, v in value.items()}
                   for key, value in options.items()}
        mode = logistic_mode(model, p, q, **options)
        where = ", ".join(f"{k} = {v}" for k, v in {**{str(k): v for k, v in mode.restrict.items()},
                                                     **{str(k): v for k, v in mode.constants.items()}
                                                     }.items())
        entry = {"mode": [str(mode.p), str(mode.q)], "where": where, **mode.summary()}
        sec.data["closed_forms"].append(entry)
        head = f"mode ({mode.p}, {mode.q})" + (f", on {where}" if where else "")
        sec.md += [f"- {head}: balance c = ${latex(mode.balance, syms)}$, "
                   f"$\\dot a = {latex(mode.ode.subs(mode.gain, sp.Symbol('a')), syms)}$, ",
                   f"  $$a(t) = {latex(mode.solution, syms)}$$"]
        sec.tex.append(_align(f"logistic {head}", [
            f"\\dot a &= {latex(mode.ode.subs(mode.gain, sp.Symbol('a')), syms)} \\\\",
            f"a(t) &= {latex(mode.solution, syms)}"]).replace("\\\\ \\\\", "\\\\"))
    sec.md.append("")
    return sec
