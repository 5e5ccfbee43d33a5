"""Integrate matrix-level flows at d = 256 with the generated NumPy kernels.

Run from the repository root:

    python -m numerics.benchmarks.bench_matrix_flow [--d 256] [--repeats 3]

Two dimension-free flows from :mod:`symicl.matrix_level`, compiled with
``MatrixModel.flow_numpy()`` (one function for all blocks, products shared;
before the minimal product plan this benchmark used one ``to_numpy()`` per block):

* the null-zero linear transformer with aligned tasks (parameters P22, Q11,
  d x d; S = diag(s), s evenly spaced in [0.5, 1], N = 32; P22, Q11 start at
  0.01 N(0,1)/sqrt(d) entries; t in [0, 40], where the loss falls from its
  start and levels off);
* deep-linear, W1, W2, T all d x d (T = U diag(3..1) V^T, random orthogonal
  U, V; W1, W2 start at 1e-3 N(0,1)/sqrt(d); t in [0, 20], the loss falls
  from ~555 to ~0 in saddle-to-saddle steps).

``scipy.integrate.solve_ivp`` (RK45, rtol 1e-6, atol 1e-9) integrates each;
the table gives the wall time (median of --repeats), the number of flow
evaluations, FLOPs per evaluation, the achieved FLOP rate and its ratio to
the machine's measured matmul rate (``A @ B`` for 256 x 256 and
1024 x 1024 float64, timed in the same process).

FLOP count: every ``@`` in the generated source is one product of two
d x d matrices and counts 2 d^3 (d^3 multiply-adds) -- including products
with ``np.diag(np.diagonal(.))`` matrices, which BLAS multiplies densely
like any other; the O(d^2) work (``np.diag``, ``np.vdot``, scaling, sums,
solve_ivp's own vector work) is not counted.  The script reads the count
from the generated source and classifies each product (with a diagonal
matrix; only the diagonal of the result is used; computed again in the other
block's function).  A hand-written PROTOTYPE of each flow with those
products removed (same formulas, general dense S, checked to agree to
rounding) is timed beside it, to say by how much the waste costs.

BLAS threads: on a machine whose cores are shared with other work, OpenBLAS
with several threads can be many times slower than with one (its threads
wait for each other).  The script first probes ``A @ B`` in child processes
with OPENBLAS_NUM_THREADS = os.cpu_count() and = 1, then runs the
measurement in a child with the faster setting for 256 x 256, and prints
both probes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

RTOL, ATOL = 1e-6, 1e-9
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def matmul_rate(n: int, seconds: float = 0.25, repeats: int = 5) -> float:
    """Median FLOP/s of A @ B, n x n float64, 2 n^3 FLOPs a product."""
    import numpy as np
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    A @ B
    k = 1
    while True:
        t = time.perf_counter()
        for _ in range(k):
            A @ B
        if time.perf_counter() - t >= seconds / 3:
            break
        k *= 2
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(k):
            A @ B
        rates.append(2.0 * n ** 3 * k / (time.perf_counter() - t))
    return statistics.median(rates)


def median_time(fn, repeats: int = 7, target: float = 0.2) -> float:
    fn()
    k = 1
    while True:
        t = time.perf_counter()
        for _ in range(k):
            fn()
        if time.perf_counter() - t >= target / 3:
            break
        k *= 2
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(k):
            fn()
        out.append((time.perf_counter() - t) / k)
    return statistics.median(out)


# -- analysis of the generated source ------------------------------------------------------

def analyse(sources: dict) -> dict:
    """Classify the d x d products of the generated functions (block -> source).

    Each ``_mK = a @ b`` line is resolved to the word it computes (names
    substituted), so the same product in two blocks' functions is recognised.
    """
    out = {"total": 0, "diag_operand": [], "diag_only": [], "repeated": [], "words": {}}
    seen: dict = {}
    for block, src in sources.items():
        defs, words = {}, {}
        lines = [ln.strip() for ln in src.splitlines() if re.match(r"\s+_m\d+ = ", ln)]
        ret = [ln for ln in src.splitlines() if ln.strip().startswith("return")][0]
        for ln in lines:
            var, expr = ln.split(" = ", 1)
            # np.matmul(a, b, out=<workspace>) is the product a @ b
            expr = re.sub(r"^np\.matmul\(([\w.]+), ([\w.]+)(, out=_work\([^()]*\))?\)$",
                          r"\1 @ \2", expr)
            defs[var] = expr
            words[var] = re.sub(r"_m\d+", lambda m: f"({words[m.group(0)]})", expr)
        for var, expr in defs.items():
            if " @ " not in expr:
                continue
            out["total"] += 1
            a, b = (x.strip() for x in expr.split(" @ "))
            word = words[var]
            if any(x in defs and defs[x].startswith("np.diag(") for x in (a, b)):
                out["diag_operand"].append(f"{block}: {var} = {word}")
            users = [v for v, e in defs.items() if re.search(rf"\b{var}\b", e)]
            used_in_return = re.search(rf"\b{var}\b", ret) is not None
            if users and not used_in_return and all(
                    defs[u].startswith(f"np.diag(np.diagonal({var}))") for u in users):
                out["diag_only"].append(f"{block}: {var} = {word}")
            if word in seen and seen[word] != block:
                out["repeated"].append(f"{block}: {var} = {word} (also in {seen[word]})")
            seen.setdefault(word, block)
    return out


# -- PROTOTYPES: the same flows without the wasted products ------------------------------------

def lean_transformer(P22, Q11, S, N):
    """PROTOTYPE: flow of (P22, Q11) with 5 d x d products (general dense S)."""
    import numpy as np
    X = S @ Q11                                   # 1  S Q11
    Y = X @ S                                     # 2  S Q11 S
    Z = Y @ Q11.T                                 # 3  S Q11 S Q11^T
    dZS = np.einsum("ij,ji->i", Z, S)             # diag(S Q11 S Q11^T S), O(d^2)
    trQSQS = np.vdot(Y, Q11)                      # tr(Q11 S Q11^T S) = tr(Y Q11^T)
    sdiag = np.diagonal(S)
    colsq = np.einsum("ij,ij->j", P22, P22)       # diag(P22^T P22)
    fP = np.diag(np.diagonal(Y)) - P22 * ((1 + 1 / N) * dZS + (trQSQS / N) * sdiag)[None, :]
    fQ = (S * np.diagonal(P22)[None, :]) @ S \
        - (1 + 1 / N) * ((S * colsq[None, :]) @ Y) \
        - (np.dot(sdiag, colsq) / N) * Y          # 4, 5
    return fP, fQ


def lean_deep_linear(T, W1, W2):
    """PROTOTYPE: flow of (W1, W2) with the residual factored, 3 d x d products."""
    E = T - W2 @ W1
    return W2.T @ E, E @ W1.T


# -- child: the measurement --------------------------------------------------------------------

def child(d: int, repeats: int) -> None:
    import numpy as np
    import scipy
    from scipy.integrate import solve_ivp

    from symicl.matrix_level import build

    print(f"numpy {np.__version__} (BLAS: "
          f"{np.show_config(mode='dicts')['Build Dependencies']['blas'].get('name', '?')}), "
          f"scipy {scipy.__version__}; BLAS threads in this run: "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    rates = {n: matmul_rate(n) for n in (256, 1024)}
    print(f"measured matmul rate (A @ B float64, median of 5): 256x256 {rates[256] / 1e9:.1f} "
          f"GFLOP/s, 1024x1024 {rates[1024] / 1e9:.1f} GFLOP/s")
    rng = np.random.default_rng(0)

    # the transformer ------------------------------------------------------------------
    mt = build("linear-transformer", reduction="null-zero", tasks="aligned")
    ft = mt.flow_numpy("flow_t")          # both blocks, shared products (minimal plan)
    Lt = mt.expected_loss().to_numpy("loss")
    S = np.diag(np.linspace(1.0, 0.5, d))
    Nc = 32.0
    P0 = 1e-2 * rng.standard_normal((d, d)) / np.sqrt(d)
    Q0 = 1e-2 * rng.standard_normal((d, d)) / np.sqrt(d)
    dd = d * d

    def rhs_t(t, y):
        P, Q = y[:dd].reshape(d, d), y[dd:].reshape(d, d)
        a, b = ft(P22=P, Q11=Q, S=S, N=Nc)
        return np.concatenate([a.ravel(), b.ravel()])

    def rhs_t_lean(t, y):
        a, b = lean_transformer(y[:dd].reshape(d, d), y[dd:].reshape(d, d), S, Nc)
        return np.concatenate([a.ravel(), b.ravel()])

    def loss_t(y):
        return Lt(P22=y[:dd].reshape(d, d), Q11=y[dd:].reshape(d, d), S=S, N=Nc)

    # deep-linear ---------------------------------------------------------------------
    md = build("deep-linear")
    fd = md.flow_numpy("flow_d")
    Ld = md.expected_loss().to_numpy("loss")
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    T = U @ np.diag(np.linspace(3.0, 1.0, d)) @ V.T
    W10 = 1e-3 * rng.standard_normal((d, d)) / np.sqrt(d)
    W20 = 1e-3 * rng.standard_normal((d, d)) / np.sqrt(d)

    def rhs_d(t, y):
        A, B = y[:dd].reshape(d, d), y[dd:].reshape(d, d)
        a, b = fd(T=T, W1=A, W2=B)
        return np.concatenate([a.ravel(), b.ravel()])

    def rhs_d_lean(t, y):
        a, b = lean_deep_linear(T, y[:dd].reshape(d, d), y[dd:].reshape(d, d))
        return np.concatenate([a.ravel(), b.ravel()])

    def loss_d(y):
        return Ld(T=T, W1=y[:dd].reshape(d, d), W2=y[dd:].reshape(d, d))

    cases = [
        ("transformer null-zero aligned (P22, Q11)", {"P22, Q11": ft.source},
         rhs_t, rhs_t_lean, np.concatenate([P0.ravel(), Q0.ravel()]), 40.0, loss_t, 5),
        ("deep-linear (W1, W2, T all d x d)", {"W1, W2": fd.source},
         rhs_d, rhs_d_lean, np.concatenate([W10.ravel(), W20.ravel()]), 20.0, loss_d, 3),
    ]
    rows = []
    for name, sources, rhs, rhs_lean, y0, t_end, loss, lean_products in cases:
        info = analyse(sources)
        flops = 2.0 * d ** 3 * info["total"]
        flops_lean = 2.0 * d ** 3 * lean_products
        y_test = y0 * 300.0 + 0.1 * rng.standard_normal(y0.size)       # not tiny: a real check
        ref, got = rhs(0.0, y_test), rhs_lean(0.0, y_test)
        err = np.max(np.abs(ref - got)) / np.max(np.abs(ref))
        assert err < 1e-10, (name, err)
        t_eval = median_time(lambda: rhs(0.0, y0))
        t_eval_lean = median_time(lambda: rhs_lean(0.0, y0))
        walls, walls_lean = [], []
        sol = sol_lean = None
        for _ in range(repeats):
            t = time.perf_counter()
            sol = solve_ivp(rhs, (0.0, t_end), y0, method="RK45", rtol=RTOL, atol=ATOL)
            walls.append(time.perf_counter() - t)
            t = time.perf_counter()
            sol_lean = solve_ivp(rhs_lean, (0.0, t_end), y0, method="RK45", rtol=RTOL, atol=ATOL)
            walls_lean.append(time.perf_counter() - t)
        assert sol.success and sol_lean.success
        dev = np.max(np.abs(sol.y[:, -1] - sol_lean.y[:, -1])) / np.max(np.abs(sol.y[:, -1]))
        rows.append(dict(name=name, info=info, flops=flops, flops_lean=flops_lean, err=err,
                         t_eval=t_eval, t_eval_lean=t_eval_lean,
                         wall=statistics.median(walls), wall_lean=statistics.median(walls_lean),
                         nfev=sol.nfev, nfev_lean=sol_lean.nfev, t_end=t_end,
                         L0=loss(y0), Lmid=loss(sol.y[:, int(np.argmin(np.abs(sol.t - t_end / 2)))]),
                         L1=loss(sol.y[:, -1]), dev=dev))

    r256 = rates[256]
    print(f"\n== solve_ivp RK45 (rtol {RTOL:g}, atol {ATOL:g}) at d = {d}; wall = median of "
          f"{repeats}; rate = nfev x FLOPs per evaluation / wall ==")
    hdr = (f"{'flow':<44} {'t_end':>5} {'loss start -> end':>19} {'wall s':>8} {'nfev':>5} "
           f"{'GFLOP/eval':>10} {'GFLOP/s':>8} {'/matmul256':>10}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        rate = r["nfev"] * r["flops"] / r["wall"]
        print(f"{r['name']:<44} {r['t_end']:5.0f} {r['L0']:8.3f} -> {r['L1']:8.3f} {r['wall']:8.2f} "
              f"{r['nfev']:5d} {r['flops'] / 1e9:10.3f} {rate / 1e9:8.1f} {rate / r256:9.2f}x")
        lean_rate = r["nfev_lean"] * r["flops_lean"] / r["wall_lean"]
        print(f"{'  PROTOTYPE lean flow, same formulas':<44} {r['t_end']:5.0f} {'':19} "
              f"{r['wall_lean']:8.2f} {r['nfev_lean']:5d} {r['flops_lean'] / 1e9:10.3f} "
              f"{lean_rate / 1e9:8.1f} {lean_rate / r256:9.2f}x")
    print("(loss near t_end/2: " + ", ".join(f"{r['name'].split(' (')[0]} {r['Lmid']:.3f}" for r in rows)
          + ")")

    print("\n== one flow evaluation (median; the FLOP rate of the evaluation alone) ==")
    for r in rows:
        print(f"{r['name']:<44} generated {r['t_eval'] * 1e3:7.2f} ms "
              f"({r['flops'] / r['t_eval'] / 1e9:5.1f} GFLOP/s, {r['flops'] / r['t_eval'] / r256:4.2f}x "
              f"matmul256); lean PROTOTYPE {r['t_eval_lean'] * 1e3:7.2f} ms -> "
              f"{r['t_eval'] / r['t_eval_lean']:.1f}x faster; nfev x eval / wall = "
              f"{100 * r['nfev'] * r['t_eval'] / r['wall']:.0f}%")
    print("(nfev x eval / wall near 100%: the flow is the whole cost, solve_ivp's own O(d^2) work "
          "is small;\n above 100% only by timing noise between the two measurements)")

    print("\n== products in the generated kernels (each 2 d^3 FLOPs) ==")
    for r in rows:
        info = r["info"]
        print(f"{r['name']}: {info['total']} d x d products an evaluation "
              f"({info['total'] * 2} d^3 = {r['flops'] / 1e9:.3f} GFLOP at d = {d}); the PROTOTYPE "
              f"needs {r['flops_lean'] / (2 * d ** 3):.0f} ({r['flops'] / r['flops_lean']:.1f}x fewer FLOPs); "
              f"agreement {r['err']:.1e} (one evaluation), {r['dev']:.1e} (end of the integration)")
        for key, what in (("diag_operand", "a product with a diagonal matrix (O(d^2) as a scaling)"),
                          ("diag_only", "only its diagonal is used (O(d^2) as a row-dot)"),
                          ("repeated", "computed again in the other block's function")):
            for item in info[key]:
                print(f"  - {item}: {what}")
    print("The generated flows are MatrixModel.flow_numpy() (one function for all blocks, the minimal\n"
          "product plan); the previous generator (plan='chain', one function per block) needed 18\n"
          "(transformer) and 6 (deep-linear) products: bench_matrix_codegen times the plans side by side.\n"
          "With S diagonal, as in symicl's eigenbasis convention, products with S are scalings that\n"
          "the generator cannot know of (S is a general symmetric matrix to it).")


def probe(threads: int) -> dict:
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    code = ("import json; from numerics.benchmarks.bench_matrix_flow import matmul_rate as m; "
            "print(json.dumps({n: m(n, 0.2, 3) for n in (256, 1024)}))")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return {int(k): v for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="skip the probe and use this many BLAS threads")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.d, args.repeats)
        return 0
    t_all = time.perf_counter()
    cores = os.cpu_count() or 1
    print("bench_matrix_flow: matrix-level flows integrated with the generated NumPy kernels")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"os.cpu_count() = {cores}, load average {os.getloadavg()[0]:.2f} (1 min) at start; "
          f"python {platform.python_version()}")
    if args.blas_threads is None:
        probes = {k: probe(k) for k in sorted({cores, 1}, reverse=True)}
        for k, p in probes.items():
            print(f"probe, {k} BLAS thread(s): A @ B 256x256 {p[256] / 1e9:.1f} GFLOP/s, "
                  f"1024x1024 {p[1024] / 1e9:.1f} GFLOP/s")
        threads = max(probes, key=lambda k: probes[k][256])
    else:
        threads = args.blas_threads
    print(f"measuring with {threads} BLAS thread(s)")
    sys.stdout.flush()
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    subprocess.run([sys.executable, "-m", "numerics.benchmarks.bench_matrix_flow", "--child",
                    "--d", str(args.d), "--repeats", str(args.repeats)], env=env, check=True)
    print(f"total benchmark time {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
