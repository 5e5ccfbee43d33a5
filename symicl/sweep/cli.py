"""``symicl sweep CONFIG`` and ``symicl sweep-table DIR``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from contextlib import contextmanager

from ..errors import SymiclError

__all__ = ["add_parser", "table_text"]


def add_parser(subparsers) -> None:
    """Register the sweep commands on the ``symicl`` subparsers."""
    s = subparsers.add_parser(
        "sweep", help="run a verification over a grid of parameters and seeds on Dask",
        description="Run every point of the grid in CONFIG (TOML: model, [fixed], [grid], "
                    "measure, [plot]) as a Dask task: a local cluster by default, or an existing "
                    "scheduler. Each point's record is written to DIR/points/<id>.parquet as it "
                    "finishes; rerunning skips the points already stored. Writes "
                    "DIR/sweep.json and a heat map DIR/plots/heatmap.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("config", help="the sweep's TOML file")
    s.add_argument("--out", help="store folder (default: the config's out, else <CONFIG>-sweep)")
    s.add_argument("--workers", type=int, default=None,
                   help="local Dask workers (default: one per CPU; 0: no Dask, this process)")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://host:8786 (its workers must "
                        "see the store folder)")
    s.add_argument("--retry-errors", action="store_true", help="rerun the points stored as errors")
    s.add_argument("--force", action="store_true",
                   help="use a store made by another config or another version of the "
                        "measures anyway: the store follows this config, records of other "
                        "points or versions are moved aside and recomputed as needed")
    s.add_argument("--time-limit", type=float, metavar="SECONDS", default=argparse.SUPPRESS,
                   help="per-point time limit; a point still running then is stored as an "
                        "error (default: the config's time_limit, else 600; 0: none)")
    s.add_argument("--table", action="store_true", help="print the table of results at the end")
    s.add_argument("--no-plots", action="store_true", help="skip the heat map")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.set_defaults(func=cmd_sweep)

    t = subparsers.add_parser("sweep-table", help="print the results of a sweep",
                              description="Print the grid axes, status and measures of each "
                                          "stored point of the sweep in DIR.")
    t.add_argument("dir", help="the sweep's store folder")
    t.add_argument("--csv", action="store_true", help="every column, as CSV")
    t.set_defaults(func=cmd_table)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .config import load_config
    from .run import run

    if args.workers is not None and args.workers < 0:
        raise SymiclError(f"--workers must be >= 0, got {args.workers}")
    config = load_config(args.config)
    stem = os.path.splitext(os.path.basename(args.config))[0]
    out = args.out or config.out or f"{stem}-sweep"
    with _one_line_warnings():
        try:
            run(config, out, workers=args.workers, scheduler=args.scheduler,
                retry_errors=args.retry_errors, progress=not args.quiet, force=args.force,
                time_limit=getattr(args, "time_limit", None))
        except KeyboardInterrupt:
            print(f"\nsymicl sweep: interrupted; finished points are in {out}; run the same "
                  "command again to resume", file=sys.stderr)
            return 130
        if not args.no_plots:
            _plot(config, out)
        if args.table:
            print(table_text(out))
        return _report_errors(out)


@contextmanager
def _one_line_warnings():
    """Show the store's warnings as one line each: ``symicl sweep: warning: ...``."""
    from .store import StoreWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, StoreWarning):
            print(f"symicl sweep: warning: {message}", file=sys.stderr, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", StoreWarning)
        shown, warnings.showwarning = warnings.showwarning, show
        yield


def _report_errors(out: str) -> int:
    """1 (with a message) when any stored point of the sweep is an error, else 0."""
    from .store import load

    frame = load(out)
    failed = int((frame["status"] == "error").sum()) if len(frame) else 0
    if failed:
        print(f"symicl sweep: {failed} of {len(frame)} points failed; their errors are in "
              f"`symicl sweep-table {out}`; --retry-errors reruns them", file=sys.stderr)
        return 1
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    with _one_line_warnings():
        text, shown, total = _table(args.dir, args.csv)
    print(text, end="" if args.csv else "\n")
    if shown < total:
        print(f"symicl sweep-table: {total - shown} of {total} points have no usable record; "
              f"`symicl sweep CONFIG --out {args.dir}` computes them", file=sys.stderr)
    return 0


def table_text(out: str, csv: bool = False) -> str:
    """The stored results: grid axes, status, the sweep's measures (all columns as CSV)."""
    return _table(out, csv)[0]


def _table(out: str, csv: bool) -> tuple[str, int, int]:
    """(the table's text, the points it shows, the points of the sweep)."""
    from .store import load, read_manifest

    manifest, frame = read_manifest(out), load(out)
    shown, total = len(frame), len(manifest["points"])
    if csv:
        return frame.to_csv(index=False), shown, total
    if frame.empty:
        return "(no finished points)", shown, total
    columns = [*manifest["grid"], "status", *manifest["measure"]]
    if (frame["status"] != "ok").any():
        frame = frame.assign(error=frame["error"].fillna("").str.slice(0, 60))
        columns.append("error")
    columns = [c for c in columns if c in frame.columns]   # an old record may lack a measure
    return frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"), shown, total


def _plot(config, out: str) -> None:
    from .plots import heatmap
    from .store import load

    p = config.plot
    try:
        path = heatmap(load(out), p["x"], p["y"], p["measures"],
                       os.path.join(out, "plots", "heatmap.png"), over=list(config.grid))
        print(f"symicl sweep: wrote {path}", file=sys.stderr)
    except SymiclError as exc:
        print(f"symicl sweep: no heat map: {exc}", file=sys.stderr)
