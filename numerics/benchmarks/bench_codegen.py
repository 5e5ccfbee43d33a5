"""Time symicl's generated flow kernels against ``sympy.lambdify``.

Run from the repository root:

    python -m numerics.benchmarks.bench_codegen [--repeats 7] [--ivp-repeats 3]

For three derived models (the full linear transformer at d = 1 and d = 2,
and the aligned reduction at d = 3) it measures:

1. One evaluation of the vector field F(theta) = -grad L, median of
   ``--repeats`` timed loops after a warm-up, for

   * ``sympy.lambdify`` of the same flow expressions, no cse (default
     modules, theta and c passed as NumPy arrays: the baseline of the goal);
   * the same lambdify called with Python floats (``theta.tolist()``, the
     conversion included), and lambdify with ``modules="math"`` on floats:
     the fastest plain lambdify calls we know, so the ratio against the
     baseline cannot be an artefact of a slow calling convention;
   * lambdify with ``cse=True``;
   * the generated NumPy back end (``kernels(m, "numpy").module.flow``);
   * the generated Numba back end, raw (``.module.flow`` with a preallocated
     ``out``) and through the checked wrapper ``Kernels.flow``.

   The goal of the verification issue is Numba >= 20x faster than plain
   lambdify at d = 2; the table prints every ratio.
2. ``scipy.integrate.solve_ivp`` (RK45, rtol 1e-8, atol 1e-10) over
   [0, T_IVP] from a small start (learning happens and the loss plateaus
   inside it), with the Numba flow (as ``symicl.simulate.ode`` calls it)
   and with the baseline lambdify flow; both take the same steps (the
   number of evaluations is printed and checked), the ratio is of wall
   times, median of ``--ivp-repeats``.
3. The one-off costs, each in a fresh child process: deriving the model,
   generating the kernel module (``kernels()``: Jacobian, cse, printing,
   writing, importing) and the first call of each Numba function (its
   compilation), once with ``SYMICL_CACHE`` pointing at a new empty folder
   (cold) and once more with the same folder (warm: the module is read from
   the kernel cache and Numba loads its compiled code from its own cache
   beside it, ``cache=True``).

Nothing is written outside a temporary folder (removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from numerics.benchmarks.machine import machine

CASES = [
    ("full d=1", {"dim": 1}),
    ("full d=2", {"dim": 2}),
    ("aligned d=3", {"dim": 3, "reduction": "aligned"}),
]
T_IVP = 100.0
RTOL, ATOL = 1e-8, 1e-10


def _constants(names) -> dict:
    vals = {"N": 10.0}
    for i, n in enumerate(x for x in names if x != "N"):
        vals[n] = 1.0 / (i + 1)          # s_1 = 1, s_2 = 1/2, s_3 = 1/3
    return vals


def _theta0(P: int) -> np.ndarray:
    return 0.01 * np.random.default_rng(1).standard_normal(P)


def time_call(fn, repeats: int, target: float = 0.02) -> float:
    """Median seconds per call: calibrated loops of >= ``target`` s, after warm-up."""
    fn()
    fn()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        el = time.perf_counter() - t
        if el >= target or n >= 1 << 20:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n)
    return statistics.median(times)




# -- child: one-off generation and compile times ----------------------------------

def child_generation(index: int) -> None:
    t0 = time.perf_counter()
    from symicl.codegen import kernels
    from symicl.models import build
    t_import = time.perf_counter() - t0
    name, opts = CASES[index]
    t = time.perf_counter()
    m = build("linear-transformer", **opts)
    m.expected_loss()
    m.flow()
    t_derive = time.perf_counter() - t
    t = time.perf_counter()
    k = kernels(m, "numba")
    t_kernels = time.perf_counter() - t
    theta = _theta0(len(k.parameters))
    c = k.constants_vector(_constants(k.constants))
    firsts = {}
    for fn in ("flow", "jacobian", "loss"):
        t = time.perf_counter()
        getattr(k, fn)(theta, c)
        firsts[fn] = time.perf_counter() - t
    print(json.dumps({"import": t_import, "derive": t_derive, "kernels": t_kernels,
                      "generated": k.generated, **{f"first_{f}": v for f, v in firsts.items()}}))


def generation_table() -> None:
    print("\n== one-off costs (each a fresh process; seconds) ==")
    print("cold: SYMICL_CACHE = a new empty folder; warm: the same folder again.")
    print("kernels() = generate (Jacobian, cse, print) + write + import, or read from the cache;")
    print("first flow/jacobian/loss = the first call of each Numba function (compile, or load "
          "from Numba's cache when warm).")
    print("Warm rows still pay the process's first `import numba` (inside kernels(), when the module "
          "is imported)\nand Numba's start-up on the first compiled call (the 1st flow column).")
    hdr = (f"{'model':<12} {'run':<5} {'derive':>8} {'kernels()':>10} {'generated':>10} "
           f"{'1st flow':>9} {'1st jac':>9} {'1st loss':>9} {'total':>8}")
    print(hdr)
    print("-" * len(hdr))
    root = tempfile.mkdtemp(prefix="symicl-bench-codegen-")
    try:
        for i, (name, _) in enumerate(CASES):
            cache = os.path.join(root, f"case{i}")
            os.makedirs(cache)
            for run in ("cold", "warm"):
                env = dict(os.environ, SYMICL_CACHE=cache)
                res = subprocess.run([sys.executable, "-m", "numerics.benchmarks.bench_codegen",
                                      "--child-generation", str(i)], env=env,
                                     capture_output=True, text=True, check=True)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                total = r["derive"] + r["kernels"] + r["first_flow"] + r["first_jacobian"] + \
                    r["first_loss"]
                print(f"{name:<12} {run:<5} {r['derive']:8.3f} {r['kernels']:10.3f} "
                      f"{str(r['generated']):>10} {r['first_flow']:9.3f} {r['first_jacobian']:9.3f} "
                      f"{r['first_loss']:9.3f} {total:8.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- main: per-evaluation and solve_ivp ------------------------------------------------

def evaluation_tables(repeats: int, ivp_repeats: int) -> dict:
    import sympy as sp
    from scipy.integrate import solve_ivp

    from symicl.codegen import kernels
    from symicl.models import build

    results = {}
    rows_ivp = []
    print("\n== one evaluation of the flow F(theta) (microseconds, median of "
          f"{repeats}; ratio = plain lambdify / row) ==")
    for name, opts in CASES:
        m = build("linear-transformer", **opts)
        F = m.flow()
        P, C = list(m.parameters), list(m.constants)
        exprs = [F[p] for p in P]
        k_nb, k_np = kernels(m, "numba"), kernels(m, "numpy")
        assert tuple(p.name for p in P) == k_nb.parameters and tuple(c.name for c in C) == k_nb.constants
        theta = _theta0(len(P)) * 30.0           # entries of order 0.3: no structural zeros
        c = k_nb.constants_vector(_constants(k_nb.constants))
        out = np.empty_like(theta)

        t = time.perf_counter()
        f_plain = sp.lambdify([P, C], exprs, cse=False)
        t_lamb = time.perf_counter() - t
        t = time.perf_counter()
        f_cse = sp.lambdify([P, C], exprs, cse=True)
        t_lamb_cse = time.perf_counter() - t
        f_math = sp.lambdify([P, C], exprs, modules="math", cse=False)
        cl = c.tolist()

        ref = k_nb.module.flow(theta, c, np.empty_like(theta))
        for label, got in (("lambdify", f_plain(theta, c)), ("lambdify cse", f_cse(theta, c)),
                           ("lambdify math", f_math(theta.tolist(), cl)),
                           ("numpy back end", k_np.module.flow(theta, c, np.empty_like(theta)))):
            err = np.max(np.abs(np.asarray(got, dtype=float) - ref)) / max(1.0, np.max(np.abs(ref)))
            assert err < 1e-11, (name, label, err)

        variants = [
            ("lambdify, no cse (arrays) [baseline]", lambda: f_plain(theta, c)),
            ("lambdify, no cse (floats, tolist)", lambda: f_plain(theta.tolist(), cl)),
            ("lambdify math, no cse (floats)", lambda: f_math(theta.tolist(), cl)),
            ("lambdify, cse=True (arrays)", lambda: f_cse(theta, c)),
            ("generated NumPy back end", lambda: k_np.module.flow(theta, c, out)),
            ("generated Numba, raw module.flow", lambda: k_nb.module.flow(theta, c, out)),
            ("generated Numba, Kernels.flow", lambda: k_nb.flow(theta, c, out)),
        ]
        times = {lab: time_call(fn, repeats) for lab, fn in variants}
        base = times[variants[0][0]]
        best_lamb = min(times[v[0]] for v in variants[:3])
        print(f"\n{name}: {len(P)} parameters, {sum(sp.count_ops(e) for e in exprs)} operations "
              f"in the flow; lambdify took {t_lamb:.2f} s to build ({t_lamb_cse:.2f} s with cse)")
        print(f"  {'variant':<40} {'us/eval':>10} {'ratio':>9}")
        for lab, _ in variants:
            print(f"  {lab:<40} {times[lab] * 1e6:10.2f} {base / times[lab]:8.1f}x")
        nb = times["generated Numba, raw module.flow"]
        print(f"  Numba raw vs fastest plain lambdify variant: {best_lamb / nb:.1f}x; "
              f"vs lambdify cse=True: {times['lambdify, cse=True (arrays)'] / nb:.1f}x")
        results[name] = {"base": base, "numba": nb, "best_lamb": best_lamb,
                         "wrapped": times["generated Numba, Kernels.flow"]}

        # -- solve_ivp: same integrator, two right-hand sides -----------------------
        th0 = _theta0(len(P))
        out_f = np.empty_like(th0)
        rhs_nb = lambda t, y: k_nb.flow(y, c, out_f).copy()       # as symicl.simulate.ode does
        rhs_lb = lambda t, y: np.asarray(f_plain(y, c), dtype=float)
        sols, walls = {}, {"numba": [], "lambdify": []}
        for rhs_name, rhs in (("numba", rhs_nb), ("lambdify", rhs_lb)):
            solve_ivp(rhs, (0.0, 1.0), th0, method="RK45", rtol=RTOL, atol=ATOL)   # warm-up
        for _ in range(ivp_repeats):
            for rhs_name, rhs in (("numba", rhs_nb), ("lambdify", rhs_lb)):
                t = time.perf_counter()
                sol = solve_ivp(rhs, (0.0, T_IVP), th0, method="RK45", rtol=RTOL, atol=ATOL)
                walls[rhs_name].append(time.perf_counter() - t)
                sols[rhs_name] = sol
        assert sols["numba"].success and sols["lambdify"].success
        L0, L1 = k_nb.loss(th0, c), k_nb.loss(sols["numba"].y[:, -1], c)
        dev = np.max(np.abs(sols["numba"].y[:, -1] - sols["lambdify"].y[:, -1]))
        rows_ivp.append((name, sols["numba"].nfev, sols["lambdify"].nfev,
                         statistics.median(walls["numba"]), statistics.median(walls["lambdify"]),
                         nb, base, L0, L1, dev))

    print(f"\n== scipy solve_ivp RK45 over [0, {T_IVP:g}], rtol {RTOL:g}, atol {ATOL:g}, "
          f"theta0 = 0.01 N(0,1) (seconds, median of {ivp_repeats}) ==")
    hdr = (f"{'model':<12} {'nfev nb/lb':>12} {'Numba s':>9} {'lambdify s':>11} {'ratio':>7} "
           f"{'F share nb':>11} {'F share lb':>11} {'loss start->end':>17} {'|dy| end':>9}")
    print(hdr)
    print("-" * len(hdr))
    for name, n_nb, n_lb, w_nb, w_lb, nb, base, L0, L1, dev in rows_ivp:
        print(f"{name:<12} {n_nb:>5}/{n_lb:<6} {w_nb:9.4f} {w_lb:11.4f} {w_lb / w_nb:6.1f}x "
              f"{100 * n_nb * nb / w_nb:10.0f}% {100 * n_lb * base / w_lb:10.0f}% "
              f"{L0:8.4f}->{L1:7.4f} {dev:9.1e}")
        results[name]["ivp"] = w_lb / w_nb
    print("F share = nfev x (one evaluation, from the table above) / wall time: the rest is "
          "solve_ivp's own Python work\n(with the Numba flow, also the wrapper and the copy).")
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--ivp-repeats", type=int, default=3)
    ap.add_argument("--child-generation", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_generation is not None:
        child_generation(args.child_generation)
        return 0
    print("bench_codegen: generated flow kernels vs sympy.lambdify")
    print(machine("numpy", "scipy", "sympy", "numba"))
    t_all = time.perf_counter()
    # The per-evaluation part uses its own temporary kernel cache as well.
    tmp = tempfile.mkdtemp(prefix="symicl-bench-codegen-main-")
    os.environ["SYMICL_CACHE"] = tmp
    try:
        res = evaluation_tables(args.repeats, args.ivp_repeats)
        generation_table()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = res["full d=2"]
    ok = r["base"] / r["numba"] >= 20
    print(f"\ngoal (full transformer d = 2, Numba flow >= 20x plain lambdify per evaluation): "
          f"{r['base'] / r['numba']:.0f}x raw, {r['base'] / r['wrapped']:.0f}x through Kernels.flow, "
          f"{r['best_lamb'] / r['numba']:.0f}x vs the fastest plain lambdify call -> "
          f"{'MET' if ok else 'NOT MET'}")
    print(f"total benchmark time {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
