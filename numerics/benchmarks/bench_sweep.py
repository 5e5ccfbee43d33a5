"""Time ``symicl sweep`` on Dask: speed-up from 1 to 2 workers, per-point overhead.

Run from the repository root:

    python -m numerics.benchmarks.bench_sweep [--points 24] [--repeats 2] [--profile]

The sweep: the d = 2 linear transformer over N in (4, 8, 16, 32) and
``--points / 4`` seeds, 32 SGD runs x 32 prompts x 300 steps per point.
Every measurement runs the same points, each into a fresh store, with the
kernel cache warm (one temporary ``SYMICL_CACHE``) and one BLAS thread
everywhere (as Dask's nanny sets it for its workers):

* loop: ``symicl.sweep.measure.measure`` over the points in this process,
  the models derived beforehand (the baseline: no engine, no store);
* in-process engine: ``run(workers=0)``: the loop plus the store (a Parquet
  record per point, the existence check) and the progress bookkeeping;
* Dask, K = 1 and 2 workers, warm: a LocalCluster started and every worker
  warmed (imports, derivation, Numba) before the clock starts, then
  ``run(scheduler=ADDRESS)`` (``--profile``: with Dask's statistical worker
  profiler on, as a cluster has it by default; ``symicl sweep`` turns it off);
* Dask end to end: ``run(workers=K)``, cluster start and worker warm-up
  included, as ``symicl sweep --workers K`` does it.

Per-point overhead = (engine time - loop time) / points; for the warm
clusters the seconds spent inside the tasks (summed over the records) are
printed too, so the engine's gaps show apart from slower computing.  Medians of
``--repeats``.  Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import logging
import shutil
import statistics
import tempfile
import time

from numerics.benchmarks.machine import machine


def config(points: int):
    from symicl.sweep import parse_config

    return parse_config({"model": "linear-transformer",
                         "fixed": {"dim": 2, "anisotropy": 4.0, "runs": 32, "batch": 32,
                                   "eta": 0.01, "t_end": 3.0},
                         "grid": {"N": [4, 8, 16, 32], "seed": list(range(max(1, points // 4)))}})


def warm(point) -> float:
    """Import, derive and compile for ``point``'s model in this process; seconds taken."""
    start = time.perf_counter()
    import pyarrow.parquet  # noqa: F401 - the store's one-off import

    from symicl.sweep.measure import measure

    measure(point.model, point.params, point.rng_seed)
    return time.perf_counter() - start


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--profile", action="store_true",
                    help="warm clusters with Dask's worker profiler on (symicl turns it off)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="symicl-bench-sweep-")
    os.environ["SYMICL_CACHE"] = os.path.join(root, "kernels")
    try:
        bench(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench(args, root: str) -> None:
    profile = args.profile
    import dask
    from distributed import Client, LocalCluster

    from symicl.sweep import load, points, run
    from symicl.sweep.measure import measure

    print(machine("numpy", "dask", "pyarrow"))
    cfg = config(args.points)
    pts = points(cfg)
    n = len(pts)
    print(f"{n} points: d = 2, N in (4, 8, 16, 32), 32 runs x 32 prompts x 300 SGD steps each\n")
    derive = warm(pts[0])
    stores = iter(range(10 ** 6))

    def store() -> str:
        return os.path.join(root, f"store-{next(stores)}")

    def dask_warm(k: int) -> tuple[float, float, float, float]:
        t0 = time.perf_counter()
        with dask.config.set({"distributed.worker.profile.enabled": profile}), \
                LocalCluster(n_workers=k, threads_per_worker=1, dashboard_address=None,
                             silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            up = time.perf_counter() - t0
            warmup = max(client.run(warm, pts[0]).values())
            out = store()
            wall = timed(lambda: run(cfg, out, scheduler=cluster.scheduler_address,
                                     progress=False))
        return up, warmup, wall, float(load(out)["seconds"].sum())

    rows: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        rows.setdefault("loop", []).append(
            timed(lambda: [measure(p.model, p.params, p.rng_seed) for p in pts]))
        rows.setdefault("in-process engine", []).append(
            timed(lambda: run(cfg, store(), workers=0, progress=False)))
        for k in (1, 2):
            up, warmup, wall, inside = dask_warm(k)
            rows.setdefault(f"Dask {k} worker(s), warm", []).append(wall)
            rows.setdefault(f"  inside the tasks, summed ({k})", []).append(inside)
            rows.setdefault(f"  cluster start ({k})", []).append(up)
            rows.setdefault(f"  worker warm-up ({k})", []).append(warmup)
        for k in (1, 2):
            rows.setdefault(f"Dask {k} worker(s), end to end", []).append(
                timed(lambda k=k: run(cfg, store(), workers=k, progress=False)))
    med = {k: statistics.median(v) for k, v in rows.items()}
    loop = med["loop"]
    print(f"{'':34s} {'seconds':>8s} {'per point':>10s} {'vs loop':>8s}")
    for name, t in med.items():
        if name.startswith("  "):
            print(f"{name:34s} {t:8.2f}")
        else:
            print(f"{name:34s} {t:8.2f} {1000 * t / n:8.0f} ms {t / loop:7.2f}x")
    print(f"\nderiving the models once in this process (first point, warm kernel cache): "
          f"{derive:.2f} s")
    for label, key in (("in-process engine", "in-process engine"),
                       ("Dask, 1 worker, warm", "Dask 1 worker(s), warm")):
        print(f"per-point overhead, {label} vs loop: "
              f"{1000 * (med[key] - loop) / n:+.0f} ms ({100 * (med[key] / loop - 1):+.0f}%)")
    for kind in ("warm", "end to end"):
        ratio = med[f"Dask 1 worker(s), {kind}"] / med[f"Dask 2 worker(s), {kind}"]
        print(f"speed-up 1 -> 2 workers, {kind}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
