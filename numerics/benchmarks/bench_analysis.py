"""Conservation laws and kernel generation: ring path vs expression path.

Run from the repository root:

    python -m numerics.benchmarks.bench_analysis [--repeats 3] [--old-repeats 1]

Two models (issue 17):

* the separate key/query/value linear attention at d = 2 on in-context
  regression (symbolic N, isotropic tasks y = w^T x): prediction
  V mean(z z^T) K^T Q z_q with K, Q (d+1) x (d+1), V 1 x (d+1) and
  z = (x, w^T x), z_q = (x_q, 0): 21 parameters, 18 of them active (Q's last
  column meets the zero of z_q);
* the full linear transformer at d = 2, ``symicl.models.build("linear-transformer",
  dim=2)`` (32 parameters).

For each it times, in one process, the derivation once (not part of either
path) and then

* ``conservation_laws(model)`` (degree 2, with the GD step changes), new
  path (linear system, null space and certificates in the coefficient ring,
  DomainMatrix fraction-free elimination) and old path
  (``SYMICL_ANALYSIS_PATH=old``: expression-level rref, ``factor`` on every
  entry, ``simplify`` on each certificate); the laws' JSON must be identical;
* kernel generation (``kernels(model, "numpy")`` without the per-model
  memo, each run into a new empty ``SYMICL_CACHE``: key, Jacobian, cse,
  printing, writing, importing), new path (key hashed from the ring's terms,
  expressions built directly in the generated names, sums printed in
  argument order) and old path (generator 1: key from ``str()`` of loss and
  flow, renaming by ``xreplace``, sorted printing); loss, flow and Jacobian
  of both modules must agree at a random point to 1e-9 relative.

New path: median of ``--repeats``; old path: median of ``--old-repeats``
(the old conservation path takes about a minute on the attention).

Then ``fixed_points`` of the three-layer linear network 2-2-2-2
(``tests/user_models/models.py:three_layer``, 12 parameters): new path (lex
Groebner bases by FLINT, membership by top reduction, branches from the short
generating sets, repeated ideals decomposed once) against the old path
(``SYMICL_GB_BACKEND=sympy``) under a time budget ``--fp-old-budget`` (the old
path does not finish its first basis; the ratio is then a lower bound); the
same run on the width-1 network (2-1-1-2, 5 parameters), where both finish
and must report the same points.  Then ``fixed_points(..., orbits=True)``
(rank strata of the blocks a general linear group acts on, each solved on
its gauge slice and carried back along the orbits) on 2-1-1-2 and 2-2-2-2
against the plain FLINT path (the previous path; on 2-2-2-2 it does not
finish within the budget), checked by the Newton landing and by the
Baldi-Hornik characterisation of the end-to-end map W = C B A (a projection
of the teacher onto a subset of its left singular vectors), without the
stability classification.  ``--skip-fp`` / ``--only-fp`` select.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import sympy as sp

PATH_ENV = "SYMICL_ANALYSIS_PATH"


def separate_kqv(d: int = 2):
    """Linear attention with separate K, Q, V at dimension ``d`` (see the module doc)."""
    from symicl.context import Context
    from symicl.expectation import Distribution
    from symicl.gaussian import Gaussian
    from symicl.model import Model
    from symicl.symbols import matrix, vector

    u, xq, w = vector("u", d), vector("x", d), vector("w", d)
    context = Context(Gaussian(list(u), name="u"))
    z = sp.Matrix(list(u) + [sum(wi * ui for wi, ui in zip(w, u))])
    zq = sp.Matrix(list(xq) + [0])
    K, Q, V = matrix("K", d + 1, d + 1), matrix("Q", d + 1, d + 1), matrix("V", 1, d + 1)
    prediction = V * context.mean(z * z.T) * K.T * Q * zq
    data = Distribution(Gaussian(list(w), name="w"), Gaussian(list(xq), name="x"), context)
    target = sp.Matrix([sum(wi * xi for wi, xi in zip(w, xq))])
    return Model(f"separate-kqv-d{d}", {"K": K, "Q": Q, "V": V}, data,
                 prediction=prediction, target=target)


def transformer(d: int = 2):
    import symicl.models
    return symicl.models.build("linear-transformer", dim=d)


def _with_path(path: str, fn):
    old = os.environ.get(PATH_ENV)
    if path == "old":
        os.environ[PATH_ENV] = "old"
    else:
        os.environ.pop(PATH_ENV, None)
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(PATH_ENV, None)
        else:
            os.environ[PATH_ENV] = old


def time_laws(model, path: str, repeats: int):
    from symicl.analysis.conservation import conservation_laws
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = _with_path(path, lambda: conservation_laws(model))
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def time_kernels(model, path: str, repeats: int, folders: list):
    kmod = sys.modules["symicl.codegen.kernels"]
    times, k = [], None
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="symicl-bench-analysis-")
        folders.append(folder)
        os.environ["SYMICL_CACHE"] = folder
        t = time.perf_counter()
        k = _with_path(path, lambda: kmod._kernels(model, "numpy"))
        times.append(time.perf_counter() - t)
    return statistics.median(times), k


def same_kernels(a, b, seed: int = 0) -> float:
    """The largest relative difference of loss, flow and Jacobian at a random point."""
    assert a.parameters == b.parameters and a.constants == b.constants
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=len(a.parameters))
    c = rng.uniform(1.5, 3.0, size=len(a.constants))
    worst = 0.0
    for f in ("loss", "flow", "jacobian"):
        x, y = np.asarray(getattr(a, f)(theta, c)), np.asarray(getattr(b, f)(theta, c))
        worst = max(worst, float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(y))))))
    return worst


def three_layer(width: int = 2):
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "user_models"))
    from models import three_layer as build
    return build(width=width)


def time_fixed_points(model, backend: str, budget: float, orbits: bool = False,
                      classify: bool = True):
    """(seconds, result or None if over the budget) of fixed_points on ``backend``
    (``orbits``: by rank strata and gauge slices)."""
    import importlib
    fp = importlib.import_module("symicl.analysis.fixed_points")
    saved = fp._GB_BACKEND
    fp._GB_BACKEND = backend
    t = time.perf_counter()
    try:
        res = fp.fixed_points(model, max_variables=12, time_budget=budget, orbits=orbits,
                              classify=classify)
    except fp.FixedPointBudgetError:
        res = None
    finally:
        fp._GB_BACKEND = saved
    return time.perf_counter() - t, res


def _loss_on(pt, model, loss) -> float:
    """The loss on the family: at free parameters 1, else at the first of 40 signed
    rational samples where the point is real and finite."""
    import random
    rng = random.Random(0)
    subs = [{}] + [{f: sp.Rational(rng.choice((-1, 1)) * rng.randint(1, 9), rng.randint(1, 5))
                    for f in pt.free} for _ in range(40)]
    for sub in subs:
        try:
            num = pt.numeric(sub)
            val = loss([float(num[p]) for p in model.parameters])
        except (TypeError, ZeroDivisionError, ValueError):
            continue
        if np.isfinite(val):
            return val
    return float("nan")


def _plain_worker(width: int, queue) -> None:
    t = time.perf_counter()
    time_fixed_points(three_layer(width), "flint", 0, classify=False)
    queue.put(time.perf_counter() - t)


def time_plain_killed(width: int, budget: float):
    """(seconds, finished) of the plain FLINT path in a child process killed after
    ``budget`` seconds (a FLINT Groebner basis does not return to Python for the
    time-budget signal)."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_plain_worker, args=(width, queue))
    t = time.perf_counter()
    proc.start()
    proc.join(budget)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return time.perf_counter() - t, False
    return queue.get(), True


def _refine(f, jac, x, digits: int = 50, steps: int = 40):
    """Newton with pseudo-inverse steps at ``digits`` digits (singular values below
    1e-25 of the largest dropped): (point, |F| there)."""
    import mpmath as mp
    with mp.workdps(digits):
        x = mp.matrix([mp.mpf(float(v)) for v in x])
        for _ in range(steps):
            r = mp.matrix(f(list(x)))
            if mp.norm(r) < mp.mpf(10) ** (8 - digits):
                break
            U, S, V = mp.svd_r(mp.matrix(jac(list(x))))
            cut = max(S) * mp.mpf(10) ** -25
            for k in range(len(S)):
                if S[k] > cut:
                    c = sum(U[i, k] * r[i] for i in range(len(x))) / S[k]
                    x -= c * V[k, :].T
        return list(x), float(mp.norm(mp.matrix(f(list(x)))))


def newton_landing(model, res, n_starts: int = 200, seed: int = 3):
    """Independent check: damped Newton (least-squares steps) on F = -grad L = 0 from
    ``n_starts`` normal(0, 1.5^2) starts.  A root lands on a family when the family's
    equations vanish there to 1e-6.  Near a non-reduced part of the critical set Newton
    converges only linearly and a double-precision root (|F| < 1e-11) can sit 1e-6 away
    from it, so a root that lands nowhere is refined at 50 digits (:func:`_refine`) and
    then lands where some family's equations hold to 1e-10 relative (|e(x)| over the sum
    of its terms' moduli; at linear convergence the distance is about sqrt|F|, and a
    missing component leaves residuals of order one).

    Returns (converged, landed in double precision, landed after refinement, families
    that are the only landing site of some root: leaving out any of these, the check
    fails)."""
    import mpmath as mp
    params = list(model.parameters)
    flow = model.flow()
    F = sp.Matrix([flow[p] for p in params])
    f = sp.lambdify([params], list(F), "numpy")
    jac = sp.lambdify([params], F.jacobian(params), "numpy")
    comps, exact = [], []
    for pt in res:
        if pt.is_family:
            eqs = [sp.expand(e) for e in pt.equations]
            comps.append(("family", sp.lambdify([params], eqs, "numpy")))
            exact.append((sp.lambdify([params], eqs, "mpmath"), sp.lambdify(
                [params], [sum(abs(t) for t in sp.Add.make_args(e)) for e in eqs], "mpmath")))
        else:
            comps.append(("point", np.array([float(pt.values[p]) for p in params])))
            exact.append(None)
    f_mp = sp.lambdify([params], list(F), "mpmath")
    jac_mp = sp.lambdify([params], F.jacobian(params), "mpmath")
    rng = np.random.default_rng(seed)
    converged = landed = refined = 0
    sole = set()
    for _ in range(n_starts):
        x = rng.normal(scale=1.5, size=len(params))
        for _ in range(200):
            r = np.array(f(x), dtype=float)
            if np.max(np.abs(r)) < 1e-13 or not np.all(np.isfinite(x)):
                break
            x = x + np.linalg.lstsq(np.array(jac(x), dtype=float), -r, rcond=None)[0]
        if not (np.all(np.isfinite(x)) and np.max(np.abs(np.array(f(x), dtype=float))) < 1e-11):
            continue
        converged += 1
        sites = [k for k, (kind, c) in enumerate(comps)
                 if (kind == "point" and np.max(np.abs(c - x)) < 1e-6) or (
                     kind == "family" and np.max(np.abs(np.array(c(x), dtype=float))) < 1e-6)]
        if sites:
            landed += 1
        else:
            xr, _ = _refine(f_mp, jac_mp, x)
            with mp.workdps(50):
                for k, (kind, c) in enumerate(comps):
                    if kind == "point":
                        hit = max(abs(float(a) - b) for a, b in zip(xr, c)) < 1e-10
                    else:
                        num, size = exact[k]
                        hit = all(abs(a) <= mp.mpf("1e-10") * b for a, b in zip(num(xr), size(xr)))
                    if hit:
                        sites.append(k)
            refined += bool(sites)
        if len(sites) == 1:
            sole.add(sites[0])
    return converged, landed, refined, len(sole)


def end_to_end_check(model, res, samples: int = 3, seed: int = 0) -> tuple[int, int, int]:
    """Independent check (Baldi-Hornik; Kawaguchi): at a critical point of the whitened
    three-layer network W = C B A equals U_S U_S^T T for a subset S of T's left singular
    vectors.  (families whose samples match exactly one such W, families, subsets seen)."""
    import itertools
    import random
    T = np.array([[2.0, 0.5], [0.0, 1.0]])
    U = np.linalg.svd(T)[0]
    width = model.blocks["B"].shape[0]
    targets = {S: sum((np.outer(U[:, i], U[:, i]) for i in S), np.zeros((2, 2))) @ T
               for k in range(min(width, 2) + 1) for S in itertools.combinations(range(2), k)}
    rng = random.Random(seed)
    good, seen = 0, set()
    for pt in res:
        hits = set()
        for _ in range(samples):
            sub = {f: sp.Rational(rng.choice((-1, 1)) * rng.randint(1, 9), rng.randint(1, 5))
                   for f in pt.free}
            try:
                vals = pt.numeric(sub)
            except (TypeError, ZeroDivisionError, ValueError):
                continue
            M = {k: np.array(v.subs(vals).tolist(), dtype=float) for k, v in model.blocks.items()}
            W = M["C"] @ M["B"] @ M["A"]
            hits |= {S for S, P in targets.items() if np.max(np.abs(W - P)) < 1e-9} or {None}
        if len(hits) == 1 and None not in hits:
            good += 1
            seen |= hits
    return good, len(res), len(seen) if seen == set(targets) else -len(seen), len(targets)


def bench_fixed_points(old_budget: float, new_budget: float) -> bool:
    """Print the fixed-point rows; False when the paths disagree or the new one fails."""
    ok = True
    head = (f"{'fixed points':<26} {'P':>3} | {'new':>8} {'old':>9} {'ratio':>7} {'same':>4} | "
            "components (dimension, loss, stability)")
    print("\n" + head)
    print("-" * len(head))
    # (label, width, new path uses strata, old path's backend); the strata rows without
    # the stability classification (not part of either path's search; on 2-2-2-2 its
    # exact characteristic polynomials at sample points take over 10 minutes)
    rows = (("three-layer 2-1-1-2", 1, False, "sympy"),
            ("2-1-1-2 strata", 1, True, "flint"),
            ("2-2-2-2 strata", 2, True, "flint"))
    for label, width, orbits, old_backend in rows:
        model = three_layer(width)
        model.flow()
        tn, new = time_fixed_points(model, "flint", new_budget, orbits=orbits,
                                    classify=not orbits)
        if orbits:
            to, finished = time_plain_killed(width, old_budget)
            old = new if finished else None     # the same set, not compared entry by entry
        else:
            to, old = time_fixed_points(model, old_backend, old_budget)
        if new is None:
            print(f"{label:<26} {len(model.parameters):>3} | over {new_budget:g} s (new path)")
            ok = False
            continue
        # the strata report each stratum's families (a family of one may lie in the
        # closure of another's): the same set, not the same list
        same = "-" if old is None or orbits else (
            "yes" if new.to_dict() == old.to_dict() else "NO")
        ratio = f"{to / tn:>6.1f}x" if old is not None else f">{old_budget / tn:>5.1f}x"
        old_s = f"{to:>9.2f}" if old is not None else f">{old_budget:>8g}"
        loss = sp.lambdify([list(model.parameters)], model.expected_loss(), "math")
        comps = []
        for pt in new:
            val = _loss_on(pt, model, loss)
            kind = pt.stability.kind if pt.stability is not None else "-"
            comps.append(f"({pt.dimension}, {val:.4g}, {kind})")
        print(f"{label:<26} {len(model.parameters):>3} | {tn:>8.2f} {old_s} {ratio} {same:>4} | "
              f"{len(new)}: " + " ".join(comps))
        conv, landed, refined, sole = newton_landing(model, new)
        print(f"{'':<26}     Newton from 200 random starts: {conv} converged, {landed} on a "
              f"reported component, {refined} more after refinement at 50 digits; "
              f"{sole} of {len(new)} families the only landing site of some root")
        if same == "NO" or landed + refined < conv:
            ok = False
        if orbits:
            good, n, subsets, admissible = end_to_end_check(model, new)
            print(f"{'':<26}     end-to-end map a projection of T (Baldi-Hornik): {good} of "
                  f"{n} families, {subsets} subsets S of the {admissible} admissible "
                  "(negative: some missing)")
            if good < n or subsets < 0:
                ok = False
    print("\ngoal (issue 17): fixed points of the 2-2-2-2 network complete, < 60 s "
          "(strata rows: old = the plain FLINT path under --fp-old-budget)")
    return ok


def main(argv=None) -> int:
    from .machine import machine

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-repeats", type=int, default=1)
    ap.add_argument("--fp-old-budget", type=float, default=120.0)
    ap.add_argument("--fp-new-budget", type=float, default=600.0)
    ap.add_argument("--skip-fp", action="store_true")
    ap.add_argument("--only-fp", action="store_true")
    args = ap.parse_args(argv)
    if args.only_fp:
        return 0 if bench_fixed_points(args.fp_old_budget, args.fp_new_budget) else 1
    import symicl.codegen  # noqa: F401  (loads symicl.codegen.kernels)

    print(machine("sympy", "flint"))
    print(f"new path: median of {args.repeats}; old path ({PATH_ENV}=old): median of "
          f"{args.old_repeats}; seconds; kernels() into a new empty cache each run\n")
    head = (f"{'model':<26} {'P':>3} {'derive':>7} | {'laws new':>8} {'laws old':>8} {'ratio':>6} "
            f"{'same':>4} | {'kern new':>8} {'kern old':>8} {'ratio':>6} {'max rel diff':>12}")
    print(head)
    print("-" * len(head))
    saved = os.environ.get("SYMICL_CACHE")
    folders: list[str] = []
    failed = False
    try:
        for label, build in (("separate K/Q/V attn d=2", lambda: separate_kqv(2)),
                             ("full transformer d=2", lambda: transformer(2))):
            t = time.perf_counter()
            model = build()
            model.flow()
            t_derive = time.perf_counter() - t
            ln, laws_new = time_laws(model, "new", args.repeats)
            lo, laws_old = time_laws(model, "old", args.old_repeats)
            same = ([x.to_dict() for x in laws_new.laws] == [x.to_dict() for x in laws_old.laws]
                    and laws_new.inert == laws_old.inert)
            kn, k_new = time_kernels(model, "new", args.repeats, folders)
            ko, k_old = time_kernels(model, "old", args.old_repeats, folders)
            diff = same_kernels(k_new, k_old)
            print(f"{label:<26} {len(model.parameters):>3} {t_derive:>7.2f} | {ln:>8.2f} {lo:>8.2f} "
                  f"{lo / ln:>5.1f}x {'yes' if same else 'NO':>4} | {kn:>8.2f} {ko:>8.2f} "
                  f"{ko / kn:>5.1f}x {diff:>12.1e}")
            print(f"{'':<26}     {len(laws_new.laws)} laws, "
                  f"{len(model.parameters) - len(laws_new.inert)} active parameters")
            if not same or diff > 1e-9:
                failed = True
    finally:
        if saved is None:
            os.environ.pop("SYMICL_CACHE", None)
        else:
            os.environ["SYMICL_CACHE"] = saved
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
    print("\ngoals (issue 17, the attention): laws < 5 s, kernels < 3 s")
    if not args.skip_fp and not bench_fixed_points(args.fp_old_budget, args.fp_new_budget):
        failed = True
    if failed:
        print("ERROR: the two paths disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
