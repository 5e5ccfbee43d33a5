"""Integration time of generated flows: compiled DOP853 vs its previous loop and scipy,
vs the flow's own cost and the integrator's own floor.

Run from the repository root:

    python -m numerics.benchmarks.bench_integrate [--repeats 7]

For each flow (the full linear transformer at d = 2 and 3, the deep linear
network 2-2-2), in one run:

* flow: one evaluation of the generated Numba flow, timed inside a Numba
  loop of nfev evaluations, repeated to last about 1 ms (steady, and
  interrupted by other work about as often as the integrations), less the
  same call with no evaluations (the Python call);
* numba-dop853: ``symicl.simulate.integrator.dop853`` on that flow (after a
  first, compiling call whose time is printed apart), with its accepted
  steps, flow evaluations (nfev = 12 per attempted step + 3 per dense
  output step + 2 to start) and dense output steps;
* previous: the same loop before its stage sums were unrolled
  (``_dop853_previous``, a frozen copy), on the same problem;
* floor: what the integrator costs with a flow that costs nothing, for
  the same counts: one call on a zero-length interval (the fixed cost:
  checks, allocations, the compiled call) plus ``integrator._replay`` of
  the run's attempted steps, dense steps and output points with a flow
  that returns at once (minus the replay of none);
* scipy DOP853 and LSODA: ``solve_ivp`` on the same kernel, exactly as
  ``symicl.simulate.integrate`` calls it.

Ratios: numba-dop853 / (nfev x flow) (1 is the floor of the goal), the same
over (nfev x flow + floor) (1: nothing above the flow evaluations and the
method's own arithmetic), previous / numba-dop853 and scipy DOP853 /
numba-dop853.  Both DOP853 runs integrate at rtol 1e-10, atol 1e-12 and
report the solution at 41 times; the largest relative difference of the
compiled and scipy solutions is printed.  The timed rows of one flow run in
turn within each repeat (the flow loop, numba-dop853, the previous loop and
the floor's parts), so changes in the machine's load hit them alike.
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
from symicl.simulate import integrator
from symicl.simulate.integrator import dop853

from . import _dop853_previous as previous

CASES = [
    ("transformer d=2", "linear-transformer", {"dim": 2, "reduction": "none"},
     {"N": 8, "s_1": 2.0, "s_2": 0.5}, 0.3, 10.0),
    ("transformer d=3", "linear-transformer", {"dim": 3, "reduction": "none"},
     {"N": 8, "s_1": 2.0, "s_2": 1.0, "s_3": 0.5}, 0.3, 10.0),
    ("deep linear 2-2-2", "deep-linear", {"n_in": 2, "n_hidden": 2, "n_out": 2},
     {"T_1_1": 3.0, "T_1_2": 0.5, "T_2_1": -0.25, "T_2_2": 1.0}, 0.1, 8.0),
]


@numba.njit(integrator._ARR(integrator._ARR, integrator._ARR, integrator._ARR), cache=True)
def null_flow(theta, c, out):
    """A flow that costs nothing (returns at once)."""
    return out


def round_robin(fns: dict, repeats: int) -> dict:
    """Median time of each function, timed in turn within each repeat."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


@numba.njit
def _pointer_calls(c_addr, jit_addr, c, y, K, n):
    """n calls of a flow through its pointer, into the rows of K (as the loop does)."""
    flow = integrator._as_flow(c_addr, jit_addr)
    for k in range(n):
        flow(y, c, K[k % K.shape[0]])
    return K[0, 0]


def floor_rows(c, theta0, res, t_end, n_out) -> dict:
    """The floor's timed parts, all with the null flow: one call on a zero-length
    interval (the fixed cost), the replay of res's counts and of none, and nfev calls of
    the flow through its pointer and none."""
    ca, ja = integrator._addresses(null_flow)
    attempts = res.steps + res.rejected
    h = t_end / max(res.steps, 1)
    zero = np.zeros(1)
    K = np.zeros((16, theta0.size))
    return {"fixed": lambda: dop853(null_flow, c, theta0, 0.0, t_eval=zero),
            "replay": lambda: integrator._replay(ca, ja, c, theta0, h, attempts, res.dense,
                                                 n_out),
            "none": lambda: integrator._replay(ca, ja, c, theta0, h, 0, 0, 0),
            "calls": lambda: _pointer_calls(ca, ja, c, theta0, K, res.nfev),
            "no calls": lambda: _pointer_calls(ca, ja, c, theta0, K, 0)}


@numba.njit
def _flow_loop(flow, theta, c, out, n):
    acc = 0.0
    for k in range(n):
        theta[0] += 1e-300 * k           # keep the loop from being hoisted
        flow(theta, c, out)
        acc += out[0]
    return acc


def main(argv=None) -> int:
    from .machine import machine

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    print(machine("numpy", "scipy", "numba"))
    print(f"median of {args.repeats} runs; rtol 1e-10, atol 1e-12, 41 output times\n")
    head = (f"{'flow':<18} {'P':>3} {'flow us':>7} {'steps':>5} {'nfev':>5} {'numba ms':>8} "
            f"{'floor ms':>8} {'/(nfev*flow)':>12} {'/(+floor)':>9} {'prev ms':>8} "
            f"{'prev/new':>8} {'compile s':>9} {'scipy ms':>8} {'scipy/new':>9} {'LSODA ms':>8} "
            f"{'rel diff':>8}")
    print(head)
    print("-" * len(head))
    notes = []
    for label, name, options, constants, scale, t_end in CASES:
        model = build(name, **options)
        k = kernels(model, "numba")
        c = k.constants_vector(constants)
        rng = np.random.default_rng(20261203)
        theta0 = rng.normal(scale=scale, size=len(k.parameters))
        t_eval = np.linspace(0.0, t_end, 41)
        th, out = theta0.copy(), np.empty_like(theta0)
        _flow_loop(k.module.flow, th, c, out, 10)      # the flow compiled (or loaded) first
        t0 = time.perf_counter()
        dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
        compile_s = time.perf_counter() - t0
        previous.dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
        res = dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
        # the flow loop lasts about 1 ms (or one integration's nfev evaluations, if longer):
        # long enough to be steady, short enough to be interrupted about as often
        t0 = time.perf_counter()
        _flow_loop(k.module.flow, th, c, out, res.nfev)
        reps = max(1, round(1e-3 / (time.perf_counter() - t0)))
        rows = {"flow": lambda: _flow_loop(k.module.flow, th, c, out, reps * res.nfev),
                "no flow": lambda: _flow_loop(k.module.flow, th, c, out, 0),
                "new": lambda: dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval),
                "prev": lambda: previous.dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval),
                **floor_rows(c, theta0, res, t_end, t_eval.size - 1)}
        for fn in rows.values():
            fn()
        t = round_robin(rows, 4 * args.repeats)
        t_numba, t_prev, tf = (t["new"], t["prev"],
                                (t["flow"] - t["no flow"]) / (reps * res.nfev))
        fixed = t["fixed"]
        loop = max(t["replay"] - t["none"], 0.0)
        calls = max(t["calls"] - t["no calls"], 0.0)
        old = previous.dop853(k.module.flow, c, theta0, t_end, t_eval=t_eval)
        assert (old.steps, old.nfev) == (res.steps, res.nfev)
        floor = fixed + loop
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
        work = res.nfev * tf
        print(f"{label:<18} {len(k.parameters):>3} {tf * 1e6:>7.3f} {res.steps:>5} {res.nfev:>5} "
              f"{t_numba * 1e3:>8.3f} {floor * 1e3:>8.3f} {t_numba / work:>12.2f} "
              f"{t_numba / (work + floor):>9.2f} {t_prev * 1e3:>8.3f} {t_prev / t_numba:>8.2f} "
              f"{compile_s:>9.2f} {t_scipy * 1e3:>8.2f} {t_scipy / t_numba:>9.1f} "
              f"{t_lsoda * 1e3:>8.2f} {diff:>8.1e}")
        attempts = res.steps + res.rejected
        notes.append(f"{label}: {res.steps} steps + {res.rejected} rejected, {res.dense} dense; "
                     f"floor {floor * 1e6:.1f} us = fixed {fixed * 1e6:.1f} + loop "
                     f"{loop * 1e6:.1f} (of which {res.nfev} pointer calls {calls * 1e6:.1f}, "
                     f"i.e. {calls / res.nfev * 1e9:.0f} ns each; arithmetic "
                     f"{max(loop - calls, 0) / attempts * 1e9:.0f} ns per attempted step vs "
                     f"12 flows {12 * tf * 1e9:.0f} ns); nfev x flow {work * 1e6:.1f} us; "
                     f"best possible /(nfev*flow) = 1 + floor/(nfev x flow) = "
                     f"{1 + floor / work:.2f}")
    print()
    print("\n".join(notes))
    print("\ngoal: numba-dop853 within 2x of (flow evaluations x flow time): "
          "the '/(nfev*flow)' column <= 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
