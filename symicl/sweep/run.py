"""Running a sweep: each unfinished point as one Dask task, records written by the task.

A point is idempotent: its task returns the stored record if there is one, and
otherwise computes, writes and returns it, so a task that Dask reruns after
its worker died leaves the same single record.  A point that raises is stored
with status "error" and its message; points already stored are not rerun.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from .config import SweepConfig
from .points import Point, points
from .store import make_record, read_record, record_path, write_manifest, write_record

__all__ = ["Summary", "run", "run_point"]


@dataclass
class Summary:
    """Counts of one run: points in the grid, reused from the store, computed now, failed now."""

    total: int
    reused: int
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0


def run_point(point: Point, out: str, force: bool = False) -> dict:
    """Compute and store one point (unless stored already, or ``force``); return its record."""
    from .measure import measure  # numerics: imported where points run, not by the CLI

    if not force:
        stored = read_record(out, point.id)
        if stored is not None:
            return stored
    start = time.perf_counter()
    try:
        values, status, error = measure(point.model, point.params, point.rng_seed,
                                        point.constants, point.options), "ok", None
    except Exception as exc:  # noqa: BLE001 - recorded: one point does not stop the sweep
        values, status, error = {}, "error", f"{type(exc).__name__}: {exc}"
    record = make_record(point, status, values, error, time.perf_counter() - start)
    write_record(out, record)
    return record


def run(config: SweepConfig, out: str, workers: int | None = None, scheduler: str | None = None,
        processes: bool = True, retry_errors: bool = False, progress: bool = True,
        on_result: Callable[[dict], None] | None = None) -> Summary:
    """Run the points of ``config`` not yet in the store ``out``.

    ``workers``: size of the local Dask cluster (default: one per CPU; 0 runs
    the points in this process without Dask).  ``scheduler``: the address of
    an existing Dask scheduler instead (its workers must see ``out``).
    ``on_result`` is called with each new record, in the order they finish.
    """
    start = time.perf_counter()
    pts = points(config)
    os.makedirs(out, exist_ok=True)
    write_manifest(out, config, pts)
    redo = {p.id: _redo(p, out, retry_errors) for p in pts}
    todo = [(p, redo[p.id]) for p in pts if redo[p.id] is not None]
    summary = Summary(total=len(pts), reused=len(pts) - len(todo))
    say = _Say(progress)
    say(f"{len(pts)} points, {summary.reused} in the store, {len(todo)} to run")
    if scheduler is None and workers == 0:
        results = ((p, lambda p=p, f=f: run_point(p, out, f)) for p, f in todo)
        _collect(results, out, summary, say, on_result)
    elif todo:
        with _client(workers, scheduler, processes) as (client, where):
            say(f"running on {where}")
            futures = {client.submit(run_point, p, out, f, key=f"symicl-point-{p.id}"): p
                       for p, f in todo}
            try:
                from distributed import as_completed

                results = ((futures[fut], fut.result) for fut in as_completed(futures))
                _collect(results, out, summary, say, on_result)
            except BaseException:
                client.cancel(list(futures))
                raise
    summary.seconds = time.perf_counter() - start
    say(f"done: {summary.computed} computed ({summary.failed} failed), {summary.reused} reused, "
        f"{summary.seconds:.1f} s; store {out}")
    return summary


def _redo(point: Point, out: str, retry_errors: bool) -> bool | None:
    """None if the point is done, else whether its stored record must be overwritten."""
    if not record_path(out, point.id).exists():
        return False
    if retry_errors and read_record(out, point.id)["status"] == "error":
        return True
    return None


def _collect(results, out, summary: Summary, say, on_result) -> None:
    """Take each (point, result getter); an engine failure becomes the point's error record."""
    for point, get in results:
        try:
            record = get()
        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: it kept killing workers
            record = make_record(point, "error", {}, f"{type(exc).__name__}: {exc}", 0.0)
            write_record(out, record)
        summary.computed += 1
        summary.failed += record["status"] != "ok"
        outcome = "ok" if record["status"] == "ok" else f"ERROR {record['error']}"
        say(f"[{summary.reused + summary.computed}/{summary.total}] {point.label()}: {outcome} "
            f"({record['seconds']:.2f} s)")
        if on_result is not None:
            on_result(record)


@contextmanager
def _client(workers: int | None, scheduler: str | None, processes: bool):
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client, f"the scheduler at {scheduler}"
        return
    import dask

    n = workers or os.cpu_count() or 1
    # the workers' statistical profiler costs these Python-heavy points ~10%
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client, f"a local Dask cluster of {n} worker{'s' * (n != 1)}"


class _Say:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"symicl sweep: {msg}", file=sys.stderr, flush=True)
