"""Matrix-level flow evaluation: the minimal product plan vs the previous chain, at d = 256, 1024.

Run from the repository root:

    python -m numerics.benchmarks.bench_matrix_codegen [--dims 256 1024] [--repeats 7] [--threads 1]
        [--clock wall|cpu]

One evaluation of each flow (all blocks), in the same run:

* chain: ``MatrixForm.to_numpy(plan="chain")`` per block (the generator
  before this change: left-to-right products, Diag factors as dense
  matrices, nothing shared between blocks);
* minimal: ``to_numpy()`` per block (products split to reuse, diagonals as
  vectors);
* together: ``MatrixModel.flow_numpy()`` (one function, products shared
  between blocks, intermediates kept between calls, sums added in place);
* no-ws: the same source with every intermediate a new array
  (``to_numpy_many(..., workspace=False)``);
* lean: the hand-written PROTOTYPE from bench_matrix_flow.

"floor" is the minimal-FLOP time: the number of d x d products in the
``together`` source times 2 d^3 FLOPs at the matmul rate (one d x d
product, A @ B) measured in the same process.  All rows and the product
are timed in turn within each repeat (medians), so a change in the
machine's load hits them alike; "(fastest)" is tog/floor from the fastest
repeat of each (on a shared machine a call of several ms is interrupted,
and its d x d passes lose cache to other work, more than one product is,
which inflates the median ratio).  The goal is together <= 1.5 x floor.
BLAS threads are set before NumPy loads (--threads, default 1: on a shared
2-core machine one thread is the stable choice; see bench_matrix_flow).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


CLOCK = time.perf_counter


def round_robin(fns: dict, repeats: int) -> dict:
    """Median time of each function, timed in turn within every repeat (after one
    warm-up each), so that changes in the machine's load hit them alike."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = CLOCK()
            fn()
            times[k].append(CLOCK() - t0)
    return ({k: statistics.median(v) for k, v in times.items()},
            {k: min(v) for k, v in times.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter; cpu: time.thread_time, this thread's CPU "
                         "time (with one BLAS thread: not counting the time other work "
                         "holds the core)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.thread_time
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if "numpy" in sys.modules:
        print("warning: NumPy was loaded before the thread setting", file=sys.stderr)
    import numpy as np

    from symicl.matrix_level import build
    from symicl.matrix_level.forms import to_numpy_many

    from .bench_matrix_flow import lean_deep_linear, lean_transformer
    from .machine import machine

    print(machine("numpy"))
    print(f"BLAS threads {args.threads}; median of {args.repeats}; ms per flow evaluation "
          f"({args.clock} clock)\n")
    mt = build("linear-transformer", reduction="null-zero", tasks="aligned")
    md = build("deep-linear")
    models = [("transformer null-zero", mt, lean_transformer), ("deep-linear", md, lean_deep_linear)]
    head = (f"{'flow':<22} {'d':>5} {'products chain/min/tog':>22} {'chain':>9} {'minimal':>9} "
            f"{'together':>9} {'no-ws':>9} {'lean':>9} {'floor':>9} {'chain/tog':>9} "
            f"{'no-ws/tog':>9} {'tog/floor':>9} {'(fastest)':>9} {'rel err':>8}")
    print(head)
    print("-" * len(head))
    for d in args.dims:
        rng = np.random.default_rng(0)
        A, B = rng.standard_normal((d, d)), rng.standard_normal((d, d))
        rates = []
        for label, mm, lean in models:
            flow = mm.flow()
            chain = {b: f.to_numpy(plan="chain") for b, f in flow.items()}
            minimal = {b: f.to_numpy() for b, f in flow.items()}
            together = mm.flow_numpy()
            fresh = to_numpy_many(flow, "flow", workspace=False)
            if label.startswith("transformer"):
                values = {"P22": 0.1 * rng.standard_normal((d, d)),
                          "Q11": 0.1 * rng.standard_normal((d, d)),
                          "S": np.diag(np.linspace(1.0, 0.5, d)), "N": 32.0}
                lean_args = (values["P22"], values["Q11"], values["S"], 32.0)
            else:
                values = {"T": rng.standard_normal((d, d)), "W1": 0.1 * rng.standard_normal((d, d)),
                          "W2": 0.1 * rng.standard_normal((d, d))}
                lean_args = (values["T"], values["W1"], values["W2"])

            def call(fns):
                return [f(**{k: values[k] for k in f.arguments}) for f in fns.values()]

            def call_together():
                return together(**{k: values[k] for k in together.arguments})

            def call_fresh():
                return fresh(**{k: values[k] for k in fresh.arguments})

            ref = call(chain)
            err = 0.0
            for got in (call_together(), call_fresh()):
                err = max([err] + [np.max(np.abs(r - g)) / np.max(np.abs(r))
                                   for r, g in zip(ref, got)])
            assert err < 1e-12, (label, d, err)
            counts = [sum(f.products for f in chain.values()),
                      sum(f.products for f in minimal.values()), together.products]
            t = round_robin({"matmul": lambda: A @ B, "chain": lambda: call(chain),
                             "minimal": lambda: call(minimal), "together": call_together,
                             "no-ws": call_fresh, "lean": lambda: lean(*lean_args)},
                            args.repeats)
            t, best = t
            t_chain, t_min, t_tog, t_lean = t["chain"], t["minimal"], t["together"], t["lean"]
            rate = 2.0 * d ** 3 / t["matmul"]
            rates.append(rate)
            floor = counts[2] * 2.0 * d ** 3 / rate
            print(f"{label:<22} {d:>5} {'/'.join(map(str, counts)):>22} {t_chain * 1e3:>9.2f} "
                  f"{t_min * 1e3:>9.2f} {t_tog * 1e3:>9.2f} {t['no-ws'] * 1e3:>9.2f} "
                  f"{t_lean * 1e3:>9.2f} {floor * 1e3:>9.2f} {t_chain / t_tog:>9.2f} "
                  f"{t['no-ws'] / t_tog:>9.2f} {t_tog / floor:>9.2f} "
                  f"{best['together'] / (counts[2] * best['matmul']):>9.2f} {err:>8.1e}")
        print(f"{'':<22} {d:>5} matmul rate {' and '.join(f'{r / 1e9:.1f}' for r in rates)} "
              f"GFLOP/s (timed with each model's rows)")
    print("\ngoal: together within 1.5x of floor (tog/floor <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
