"""Running a sweep: each unfinished point as one Dask task, records written by the task.

A point is idempotent: its task returns the stored record if there is one, and
otherwise computes, writes and returns it, so a task that Dask reruns after
its worker died leaves the same single record.  A point that raises is stored
with status "error" and its message; points already stored are not rerun.

Before any point runs, the store is checked (:func:`symicl.sweep.store.check_config`):
a store made by another config or another version of the measures is refused
unless ``force``; temporary files of an interrupted writer are removed; every
stored record is validated, and a damaged one is named, moved to DIR/bad/ and
computed again.

Time limit.  Each point's measurement runs in a child process (one per
thread that runs points, kept for the next point so that the models it
derived stay memoised), and a point still running after ``time_limit``
seconds has its child killed and is stored as the error "exceeded the time
limit of N s".  A child process rather than a signal: Dask runs tasks in
worker threads, where ``signal.alarm`` cannot be used, and an alarm cannot
interrupt compiled code (a Numba kernel, a BLAS call, SciPy's integrator in
C); killing a process stops anything, and works alike with ``workers=0``,
in Dask worker processes (daemonic ones included: ``subprocess`` is allowed
there, ``multiprocessing`` children are not) and in threads.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import SymiclError
from .config import DEFAULT_TIME_LIMIT, SweepConfig
from .points import Point, points
from .store import (BadRecord, StoreWarning, SweepStoreError, check_config, inspect_record,
                    make_record, read_record, remove_leftovers, set_aside, write_manifest,
                    write_record)

__all__ = ["DEFAULT_TIME_LIMIT", "Summary", "resolve_time_limit", "run", "run_point"]




@dataclass
class Summary:
    """Counts of one run: points in the grid, reused from the store, computed now, failed now."""

    total: int
    reused: int
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0


def resolve_time_limit(config: SweepConfig, time_limit: float | None = None) -> float:
    """The per-point limit in seconds: ``time_limit`` if given, else the config's
    ``time_limit``, else :data:`DEFAULT_TIME_LIMIT`.  0 or inf: no limit (the
    points then run in the calling process)."""
    limit = time_limit if time_limit is not None else getattr(config, "time_limit", None)
    limit = DEFAULT_TIME_LIMIT if limit is None else float(limit)
    if math.isnan(limit) or limit < 0:
        from ..errors import SymiclError

        raise SymiclError(f"time_limit must be a number of seconds >= 0, got {limit}")
    return limit


def run_point(point: Point, out: str, force: bool = False,
              time_limit: float = DEFAULT_TIME_LIMIT) -> dict:
    """Compute and store one point (unless stored already, or ``force``); return its record.

    The measurement runs under ``time_limit`` seconds (0 or inf: no limit, in
    this process); past it the point is stored as an error.
    """
    if not force:
        try:
            stored = read_record(out, point.id)
        except BadRecord as problem:
            if problem.stale:
                _move(out, point.id, "stale")
            else:
                _set_aside_warn(out, point.id, problem)
            stored = None
        if stored is not None:
            return stored
    values, status, error, seconds = _measure(point, time_limit)
    record = make_record(point, status, values, error, seconds)
    write_record(out, record)
    return record


def run(config: SweepConfig, out: str, workers: int | None = None, scheduler: str | None = None,
        processes: bool = True, retry_errors: bool = False, progress: bool = True,
        on_result: Callable[[dict], None] | None = None, force: bool = False,
        time_limit: float | None = None) -> Summary:
    """Run the points of ``config`` not yet in the store ``out``.

    ``workers``: size of the local Dask cluster (default: one per CPU; 0 runs
    the points in this process without Dask).  ``scheduler``: the address of
    an existing Dask scheduler instead (its workers must see ``out``).
    ``on_result`` is called with each new record, in the order they finish.
    ``force``: take over a store made by another config or another version of
    the measures (refused otherwise).  ``time_limit``: seconds per point (see
    :func:`resolve_time_limit`).
    """
    start = time.perf_counter()
    limit = resolve_time_limit(config, time_limit)
    pts = points(config)
    say = _Say(progress)
    try:
        os.makedirs(out, exist_ok=True)
        leftovers = remove_leftovers(out)
        if leftovers:
            say(f"removed {leftovers} unfinished temporary file{'s' * (leftovers != 1)} "
                "(.symicl-*.tmp) of an interrupted run")
        for note in check_config(out, config, pts, force):
            say(note)
        write_manifest(out, config, pts, limit)
        redo, stale = {}, 0
        for p in pts:
            redo[p.id], was_stale = _redo(p, out, retry_errors, config.model)
            stale += was_stale
    except OSError as exc:  # before any point runs: an unusable folder is one clear error
        where = exc.filename or out
        raise SweepStoreError(f"cannot write the sweep store {out} ({where}: "
                              f"{exc.strerror or exc})") from None
    if stale:
        say(f"{stale} record{'s' * (stale != 1)} of another measures version moved to "
            f"{os.path.join(out, 'stale')}; recomputing")
    todo = [(p, redo[p.id]) for p in pts if redo[p.id] is not None]
    summary = Summary(total=len(pts), reused=len(pts) - len(todo))
    say(f"{len(pts)} points, {summary.reused} in the store, {len(todo)} to run")
    if scheduler is None and workers == 0:
        results = ((p, lambda p=p, f=f: run_point(p, out, f, limit)) for p, f in todo)
        _collect(results, out, summary, say, on_result)
    elif todo:
        with _client(workers, scheduler, processes) as (client, where):
            say(f"running on {where}")
            futures = {client.submit(run_point, p, out, f, limit, key=f"symicl-point-{p.id}"): p
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


def _redo(point: Point, out: str, retry_errors: bool, model: str) -> tuple[bool | None, bool]:
    """(None if the point is done, else whether a stored record must be overwritten; stale?).

    A damaged record is named in a warning and moved to DIR/bad/; one of
    another measures version is moved to DIR/stale/; both points are redone.
    """
    record, problem = inspect_record(out, point.id, model)
    if problem is not None:
        if problem.stale:
            _move(out, point.id, "stale")
            return False, True
        _set_aside_warn(out, point.id, problem)
        return False, False
    if record is None:
        return False, False
    if retry_errors and record["status"] == "error":
        return True, False
    return None, False


def _move(out: str, point_id: str, folder: str):
    """set_aside, or None when another process set the record aside first."""
    try:
        return set_aside(out, point_id, folder)
    except FileNotFoundError:
        return None


def _set_aside_warn(out: str, point_id: str, problem: BadRecord) -> None:
    where = _move(out, point_id, "bad")
    if where is None:
        return
    warnings.warn(f"{problem}; moved to {where}, the point is computed again", StoreWarning,
                  stacklevel=3)


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


SCHEDULER_TIMEOUT = 10.0   # seconds to reach an existing scheduler


@contextmanager
def _client(workers: int | None, scheduler: str | None, processes: bool):
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$", scheduler):
            raise SymiclError(f"--scheduler {scheduler!r} is not a scheduler address such as "
                              "tcp://host:8786")
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SymiclError(f"no Dask scheduler answers at {scheduler} within "
                              f"{SCHEDULER_TIMEOUT:g} s ({type(exc).__name__})") from None
        with client:
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


# -- measuring under a time limit ---------------------------------------------------

def _measure(point: Point, time_limit: float) -> tuple[dict, str, str | None, float]:
    """(measures, status, error, seconds) of one point, under ``time_limit`` seconds."""
    if not time_limit or math.isinf(time_limit):
        return _measure_here(point.model, point.params, point.rng_seed, point.constants,
                             point.options)
    return _child().measure(point, time_limit)


def _measure_here(model: str, params: dict, rng_seed: int, constants: dict | None = None,
                  options: dict | None = None) -> tuple[dict, str, str | None, float]:
    from .measure import measure  # numerics: imported where points run, not by the CLI

    start = time.perf_counter()
    try:
        values, status, error = measure(model, params, rng_seed, constants, options), "ok", None
    except Exception as exc:  # noqa: BLE001 - recorded: one point does not stop the sweep
        values, status, error = {}, "error", f"{type(exc).__name__}: {exc}"
    return values, status, error, time.perf_counter() - start


_local = threading.local()
_all_children: weakref.WeakSet = weakref.WeakSet()
_ENV_KEYS = ("SYMICL_CACHE", "NUMBA_CACHE_DIR", "PYTHONHASHSEED")
_STARTUP_LIMIT = 300.0  # seconds for a child to import symicl and numerics


def _child() -> _Child:
    """This thread's measuring process (started, or restarted, as needed)."""
    child = getattr(_local, "child", None)
    env = tuple(os.environ.get(k) for k in _ENV_KEYS)
    if child is None or not child.alive() or child.env != env:
        if child is not None:
            child.close()
        child = _local.child = _Child(env)
    return child


class _Child:
    """A Python process that measures points sent to it, one at a time, and can be killed."""

    def __init__(self, env: tuple):
        import symicl

        self.env = env
        self.ready = False
        root = os.path.dirname(os.path.dirname(os.path.abspath(symicl.__file__)))
        environ = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from symicl.sweep.run import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environ, close_fds=True)
        _all_children.add(self)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def measure(self, point: Point, time_limit: float) -> tuple[dict, str, str | None, float]:
        try:
            if not self.ready:
                if self._receive(max(_STARTUP_LIMIT, time_limit)) != "ready":
                    raise _ChildDied
                self.ready = True
            _send(self.proc.stdin, (point.model, point.params, point.rng_seed, point.constants,
                                    point.options))
            return self._receive(time_limit)
        except _TimedOut:
            self.close()
            return {}, "error", f"exceeded the time limit of {time_limit:g} s", float(time_limit)
        except (_ChildDied, BrokenPipeError):
            self.close()
            code = self.proc.returncode
            how = (f"was killed by signal {-code}" if code is not None and code < 0
                   else f"exited with code {code}")
            return {}, "error", f"the point's measuring process {how} (out of memory?)", 0.0
        except BaseException:  # e.g. KeyboardInterrupt: the child is mid-point; stop it
            self.close()
            raise

    def _receive(self, limit: float):
        deadline = time.monotonic() + limit
        fd = self.proc.stdout.fileno()
        head = _read_exactly(fd, 8, deadline)
        (size,) = struct.unpack("<Q", head)
        return pickle.loads(_read_exactly(fd, size, deadline))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit anything may be gone
            pass


class _TimedOut(Exception):
    pass


class _ChildDied(Exception):
    pass


def _read_exactly(fd: int, n: int, deadline: float) -> bytes:
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _TimedOut
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise _TimedOut
        chunk = os.read(fd, n - got)
        if not chunk:
            raise _ChildDied
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


@atexit.register
def _close_children() -> None:
    for child in list(_all_children):
        child.close()


def _serve() -> None:  # pragma: no cover - runs in the child process
    """The child's loop: read (model, params, seed, constants, options), reply (measures, status, error, seconds).

    Replies go to the original stdout; anything else written to stdout (by
    Python or C) goes to stderr.  The child ignores Ctrl-C (its parent decides)
    and exits when its parent dies or closes the pipe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    parent = os.getppid()

    def watch_parent():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    from . import measure  # noqa: F401 - the heavy imports, before saying ready

    _send(replies, "ready")
    while True:
        head = requests.read(8)
        if len(head) < 8:
            return
        (size,) = struct.unpack("<Q", head)
        _send(replies, _measure_here(*pickle.loads(requests.read(size))))
