"""Integration time of generated flows: compiled DOP853 vs scipy, vs the flow's own cost.

Run from the repository root:

    python -m numerics.benchmarks.bench_integrate [--repeats 7]

For each flow (the full linear transformer at d = 2 and 3, the deep linear
network 2-2-2), in one run:

* flow: one evaluation of the generated Numba flow, timed inside a Numba
  loop (no Python call overhead), median over repeats;
* numba-dop853: ``symicl.simulate.integrator.dop853`` on that flow (after a
  first, compiling call whose time is printed apart), with its accepted
  steps and flow evaluations (nfev = 12 per attempted step + 3 per dense
  output step + 2 to start);
* scipy DOP853 and LSODA: ``solve_ivp`` on the same kernel, exactly as
  ``symicl.simulate.integrate`` calls it.

Ratios: numba-dop853 time / (nfev x flow time) (the cost above the flow
evaluations themselves; 1 is the floor), and scipy DOP853 / numba-dop853 on
the same problem.  Both integrate at rtol 1e-10, atol 1e-12 and report the
solution at 41 times; their largest relative difference is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
from scipy.integrate import solve_ivp

from symicl.codegen import kernels
from symicl.models import build
from symicl.simulate.integrator import dop853

CASES = [
    ("transformer d=2", "linear-transformer", {"dim": 2, "reduction": "none"},
     {"N": 8, "s_1": 2.0, "s_2": 0.5}, 0.3, 10.0),
    ("transformer d=3", "linear-transformer", {"dim": 3, "reduction": "none"},
     {"N": 8, "s_1": 2.0, "s_2": 1.0, "s_3": 0.5}, 0.3, 10.0),
    ("deep linear 2-2-2", "deep-linear", {"n_in": 2, "n_hidden": 2, "n_out": 2},
     {"T_1_1": 3.0, "T_1_2": 0.5, "T_2_1": -0.25, "T_2_2": 1.0}, 0.1, 8.0),
]


@numba.njit
def _flow_loop(flow, theta, c, out, n):
    acc = 0.0
    for k in range(n):
        theta[0] += 1e-300 * k           # keep the loop from being hoisted
        flow(theta, c, out)
        acc += out[0]
    return acc


def flow_time(flow, theta, c, repeats: int) -> float:
    out = np.empty_like(theta)
    n = 20_000
    _flow_loop(flow, theta.copy(), c, out, 10)
    times = []
    for _ in range(repeats):
        th = theta.copy()
        t0 = time.perf_counter()
        _flow_loop(flow, th, c, out, n)
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def main(argv=None) -> int:
    from .machine import machine

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    print(machine("numpy", "scipy", "numba"))
    print(f"median of {args.repeats} runs; rtol 1e-10, atol 1e-12, 41 output times\n")
    head = (f"{'flow':<18} {'P':>4} {'flow us':>8} {'steps':>6} {'nfev':>6} {'numba ms':>9} "
            f"{'/(nfev*flow)':>12} {'compile s':>9} {'scipy DOP ms':>12} {'scipy/numba':>11} "
            f"{'LSODA ms':>9} {'max rel diff':>12}")
    print(head)
    print("-" * len(head))
    for label, name, options, constants, scale, t_end in CASES:
        model = build(name, **options)
        k = kernels(model, "numba")
        c = k.constants_vector(constants)
        rng = np.random.default_rng(20261203)
        theta0 = rng.normal(scale=scale, size=len(k.parameters))
        t_eval = np.linspace(0.0, t_end, 41)
        tf = flow_time(k.module.flow, theta0, c, args.repeats)
        t0 = time.perf_counter()
        dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
        compile_s = time.perf_counter() - t0
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
            runs.append(time.perf_counter() - t0)
        t_numba = statistics.median(runs)
        out_f = np.empty_like(theta0)
        out_j = np.empty((theta0.size, theta0.size))

        def fun(t, y):
            return k.flow(y, c, out_f).copy()

        def jac(t, y):
            return k.jacobian(y, c, out_j).copy()

        scipy_runs, lsoda_runs = [], []
        for _ in range(max(1, args.repeats // 2)):
            t0 = time.perf_counter()
            ref = solve_ivp(fun, (0.0, t_end), theta0, method="DOP853", t_eval=t_eval,
                            rtol=1e-10, atol=1e-12)
            scipy_runs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            solve_ivp(fun, (0.0, t_end), theta0, method="LSODA", t_eval=t_eval, rtol=1e-10,
                      atol=1e-12, jac=jac)
            lsoda_runs.append(time.perf_counter() - t0)
        t_scipy, t_lsoda = statistics.median(scipy_runs), statistics.median(lsoda_runs)
        diff = np.max(np.abs(res.y - ref.y.T)) / np.max(np.abs(ref.y))
        print(f"{label:<18} {len(k.parameters):>4} {tf * 1e6:>8.3f} {res.steps:>6} {res.nfev:>6} "
              f"{t_numba * 1e3:>9.3f} {t_numba / (res.nfev * tf):>12.2f} {compile_s:>9.2f} "
              f"{t_scipy * 1e3:>12.2f} {t_scipy / t_numba:>11.1f} {t_lsoda * 1e3:>9.2f} "
              f"{diff:>12.1e}")
    print("\ngoal: numba-dop853 within 2x of (flow evaluations x flow time): "
          "the '/(nfev*flow)' column <= 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
