"""The sweep store: one Parquet record per point, and sweep.json describing the sweep.

::

    DIR/sweep.json                    model, grid, measures and their version, point ids
    DIR/points/<point id>.parquet     one row: configuration, seed, status, measures
    DIR/bad/, DIR/stale/, DIR/superseded/
                                      records set aside (damaged; of another measures
                                      version; of points no longer in the grid)

Each file is written to a temporary name and renamed into place, so a record
is complete or absent, and writing the same point twice leaves one record.

Every record describes and checks itself: it holds its point id, its model,
every parameter, the version of the measures that computed it and a SHA-256
checksum of all of that and its numbers.  A record is used only if it reads
as Parquet, its id is the one its file is named by, its checksum matches and
its measures version is this symicl's (:data:`MEASURES_VERSION`).  Anything
else is named in one warning (:class:`StoreWarning`), and a run moves it
aside and computes the point again; nothing is dropped without a word.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import SymiclError
from ..files import TMP_PREFIX, TMP_SUFFIX, atomic_path, write_atomic
from .config import SweepConfig
from .points import Point
from .schema import MEASURES_VERSION, measures_of

__all__ = ["FORMAT", "MEASURES_VERSION", "RECORD_FORMAT", "BadRecord", "StoreWarning",
           "SweepStoreError", "check_config", "inspect_record", "load", "make_record",
           "read_manifest", "read_record", "record_path", "remove_leftovers", "set_aside",
           "write_manifest", "write_record"]

FORMAT = "symicl-sweep/1"
RECORD_FORMAT = "symicl-sweep-record/1"
# The version of the measures (symicl.sweep.measure): bump it whenever a change
# there changes the numbers a point gets; stores of another version are refused.

_REQUIRED = ("point", "model", "status", "error", "seconds", "rng_seed")


class SweepStoreError(SymiclError):
    """A sweep store cannot be used as asked; the message says why and how to proceed."""


class BadRecord(SweepStoreError):
    """A stored record that cannot be used: unreadable, not its point's, or stale."""

    def __init__(self, message: str, stale: bool = False):
        super().__init__(message)
        self.stale = stale


class StoreWarning(UserWarning):
    """A record of a sweep store was left out or set aside; the message names it."""


def record_path(out: str | os.PathLike, point_id: str) -> Path:
    return Path(out) / "points" / f"{point_id}.parquet"


def _checksum(record: dict) -> str:
    """SHA-256 of the record's fields but the checksum (canonical JSON, exact floats)."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()


def make_record(point: Point, status: str, measures: dict, error: str | None,
                seconds: float) -> dict:
    """A record: point id, model, every parameter, seed, versions, status, measures, checksum."""
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in point.params.items()}
    from ..models import spec

    values = {m: float(measures.get(m, float("nan"))) for m in measures_of(spec(point.model))}
    record = {"point": point.id, "model": point.model, **params, "rng_seed": point.rng_seed,
              "record_format": RECORD_FORMAT, "measures_version": MEASURES_VERSION,
              "symicl_version": __version__, "status": status, "error": error,
              "seconds": float(seconds), **values}
    record["checksum"] = _checksum(record)
    return record


def write_record(out: str | os.PathLike, record: dict) -> None:
    """Write one point's record atomically (a temporary file, then os.replace)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = record_path(out, record["point"])
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist([record]), tmp)


def inspect_record(out: str | os.PathLike, point_id: str,
                   model: str | None = None) -> tuple[dict | None, BadRecord | None]:
    """(record, None) for a good current record; (None, None) if the point has none.

    Otherwise the problem, as a :class:`BadRecord` naming the file: damaged
    (``stale`` False; no record comes with it) or computed by another version
    of the measures (``stale`` True; the record comes with it).
    """
    import pyarrow.parquet as pq

    path = record_path(out, point_id)
    if not path.exists():
        return None, None

    def bad(why: str, stale: bool = False) -> BadRecord:
        return BadRecord(f"record {path} {why}", stale)

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - any failure to read is a damaged record
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        return None, bad(f"is not a readable Parquet file ({type(exc).__name__}: {first})")
    if len(rows) != 1:
        return None, bad(f"holds {len(rows)} rows, not one")
    record = rows[0]
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        return None, bad(f"has no {', '.join(missing)}")
    if record["point"] != point_id:
        return None, bad(f"holds the record of point {record['point']}, not {point_id} "
                         f"(copied over another point's file?)")
    if model is not None and record["model"] != model:
        return None, bad(f"is a {record['model']} record in a {model} sweep")
    if record["status"] not in ("ok", "error"):
        return None, bad(f"has status {record['status']!r}")
    version = record.get("measures_version")
    if version is not None or "checksum" in record:
        if record.get("checksum") != _checksum(record):
            return None, bad("fails its checksum (its contents changed after it was written)")
    if version != MEASURES_VERSION:
        return record, bad(f"was computed by measures version {_version(version)}, "
                           f"not {MEASURES_VERSION}", stale=True)
    return record, None


def read_record(out: str | os.PathLike, point_id: str) -> dict | None:
    """The stored record of a point, None if it has none; :class:`BadRecord` if unusable."""
    record, problem = inspect_record(out, point_id)
    if problem is not None:
        raise problem
    return record


def set_aside(out: str | os.PathLike, point_id: str, folder: str) -> Path:
    """Move a point's record to ``DIR/<folder>/`` (never over an earlier one); return where."""
    src = record_path(out, point_id)
    dest_dir = Path(out) / folder
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, n = dest_dir / src.name, 1
    while dest.exists():
        dest, n = dest_dir / f"{point_id}.{n}.parquet", n + 1
    os.replace(src, dest)
    return dest


def remove_leftovers(out: str | os.PathLike) -> int:
    """Delete temporary files (``.symicl-*.tmp``) that an interrupted writer left; count them.

    Call it only when no other run writes to the same store.
    """
    count = 0
    for folder in (Path(out), Path(out) / "points"):
        if folder.is_dir():
            for f in folder.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
                try:
                    f.unlink()
                    count += 1
                except FileNotFoundError:
                    pass
    return count


# -- the manifest ------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def _described(config: SweepConfig) -> dict:
    """What in sweep.json must equal the config for the store to be this sweep's."""
    return _jsonable({"model": config.model, "fixed": config.fixed,
                      "grid": {k: list(v) for k, v in config.grid.items()},
                      "measure": list(config.measure), "plot": config.plot})


def write_manifest(out: str | os.PathLike, config: SweepConfig, pts: list[Point],
                   time_limit: float | None = None) -> None:
    """sweep.json: what the sweep is, so the store describes itself."""
    data = {"format": FORMAT, "symicl_version": __version__,
            "measures_version": MEASURES_VERSION, **_described(config),
            "time_limit": time_limit,
            "measures": measures_of(config.spec()),
            "points": [p.id for p in pts], "config": config.text}
    write_atomic(Path(out) / "sweep.json", json.dumps(data, indent=2, default=list) + "\n")


def read_manifest(out: str | os.PathLike) -> dict:
    """sweep.json of the store ``out``, checked; :class:`SweepStoreError` naming the file."""
    path = Path(out) / "sweep.json"
    rewrite = (f"`symicl sweep CONFIG --out {out} --force` rewrites it from the sweep's config "
               "(good records are kept)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepStoreError(f"{out} is not a sweep store (no sweep.json)") from None
    except OSError as exc:
        raise SweepStoreError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SweepStoreError(f"{path} is damaged (not UTF-8 text); {rewrite}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "empty" if not text.strip() else f"not valid JSON: {exc.msg} at line {exc.lineno}"
        raise SweepStoreError(f"{path} is damaged ({what}; truncated?); {rewrite}") from None
    if not isinstance(data, dict):
        raise SweepStoreError(f"{path} is damaged (not a JSON object); {rewrite}")
    if data.get("format") != FORMAT:
        raise SweepStoreError(f"{path} has format {data.get('format')!r}, expected {FORMAT!r}")
    shapes = {"model": str, "grid": dict, "fixed": dict, "measure": list, "points": list}
    wrong = [k for k, t in shapes.items() if not isinstance(data.get(k), t)]
    if not wrong and not all(isinstance(p, str) for p in data["points"]):
        wrong = ["points"]
    if wrong:
        raise SweepStoreError(f"{path} is damaged (bad or missing {', '.join(wrong)}); {rewrite}")
    return data


def _diff(old: Any, new: Any, name: str) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [f"{name} {k}: {_short(old.get(k, '(absent)'))} -> {_short(new.get(k, '(absent)'))}"
                for k in sorted(set(old) | set(new)) if old.get(k, ...) != new.get(k, ...)]
    return [f"{name}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _version(v: Any) -> str:
    return "(none)" if v is None else str(v)


def check_config(out: str | os.PathLike, config: SweepConfig, pts: list[Point],
                 force: bool = False) -> list[str]:
    """Check that the store ``out`` may take this sweep; return notes for the user.

    A store made by another config, by another version of the measures, with
    a damaged sweep.json, or holding records but no sweep.json is refused
    (:class:`SweepStoreError`, saying how to proceed) unless ``force``; with
    ``force``, records of points no longer in the grid are moved to
    DIR/superseded/ (records of another measures version are set aside as the
    points run).
    """
    out = Path(out)
    redo = ("`--force` makes the store follow this config (records of points in both are "
            "kept), or give a new --out")
    notes: list[str] = []
    if not (out / "sweep.json").exists():
        records = list((out / "points").glob("*.parquet")) if (out / "points").is_dir() else []
        if records and not force:
            raise SweepStoreError(f"{out} holds {len(records)} records but no sweep.json; {redo}")
        manifest = None
    else:
        try:
            manifest = read_manifest(out)
        except SweepStoreError:
            if not force:
                raise
            notes.append(f"--force: rewriting the damaged {out / 'sweep.json'} from this config")
            manifest = None
    if manifest is not None:
        version = manifest.get("measures_version")
        if version != MEASURES_VERSION:
            if not force:
                raise SweepStoreError(
                    f"store {out} holds measures of version {_version(version)}, this symicl "
                    f"computes version {MEASURES_VERSION}; --force recomputes its points in "
                    f"place (the old records go to {out / 'stale'}), or give a new --out")
            notes.append(f"--force: measures version {_version(version)} -> {MEASURES_VERSION}; "
                         f"its points are recomputed")
        new = _described(config)
        diffs = [d for key in new for d in _diff(manifest.get(key), new[key], key)]
        ids = {p.id for p in pts}
        if not diffs and manifest["points"] != [p.id for p in pts]:
            diffs = ["point ids"]
        if diffs:
            more = f"; and {len(diffs) - 3} more" if len(diffs) > 3 else ""
            shown = "; ".join(diffs[:3]) + more
            if not force:
                raise SweepStoreError(f"store {out} was made by another config ({shown}); {redo}")
            gone = [p for p in manifest["points"] if p not in ids and record_path(out, p).exists()]
            for p in gone:
                set_aside(out, p, "superseded")
            notes.append(f"--force: the store now follows this config ({shown})"
                         + (f"; {len(gone)} records of points not in it moved to "
                            f"{out / 'superseded'}" if gone else ""))
    return notes


def _warn(message: str) -> None:
    warnings.warn(message, StoreWarning, stacklevel=3)


def load(path: str | os.PathLike):
    """The sweep's records as a pandas DataFrame, one row per finished point, in grid order.

    A damaged record, or one of another measures version than the store's,
    is left out with a :class:`StoreWarning` naming it (the next
    ``symicl sweep`` moves it aside and computes the point again).
    """
    import pandas as pd

    manifest = read_manifest(path)
    version = manifest.get("measures_version")
    if version != MEASURES_VERSION:
        _warn(f"store {path} holds measures of version {_version(version)}, this symicl "
              f"computes version {MEASURES_VERSION}; `symicl sweep CONFIG --out {path} --force` "
              "recomputes them")
    rows = []
    for point_id in manifest["points"]:
        record, problem = inspect_record(path, point_id, manifest["model"])
        if problem is not None and not (problem.stale and record is not None
                                        and record.get("measures_version") == version):
            _warn(f"{problem}; left out (the next `symicl sweep` moves it aside and recomputes it)")
            continue
        if record is not None:
            rows.append(record)
    if not rows:
        return pd.DataFrame(columns=["point", "model", "status", "error"])
    return pd.DataFrame.from_records(rows)
