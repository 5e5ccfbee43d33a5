"""The sweep store: one Parquet record per point, and sweep.json describing the sweep.

    DIR/sweep.json                    model, grid, measures, point ids, symicl version
    DIR/points/<point id>.parquet     one row: configuration, seed, status, measures

Each file is written to a temporary name and renamed into place, so a record
is complete or absent, and writing the same point twice leaves one record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import SymiclError
from ..files import write_atomic
from .config import SweepConfig
from .points import Point
from .schema import measures_of

__all__ = ["FORMAT", "load", "make_record", "read_manifest", "read_record", "record_path",
           "write_manifest", "write_record"]

FORMAT = "symicl-sweep/1"


def record_path(out: str | os.PathLike, point_id: str) -> Path:
    return Path(out) / "points" / f"{point_id}.parquet"


def write_record(out: str | os.PathLike, record: dict) -> None:
    """Write one point's record atomically (a temporary file, then os.replace)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = record_path(out, record["point"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".symicl-", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pylist([record]), tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_record(out: str | os.PathLike, point_id: str) -> dict | None:
    """The stored record of a point, or None if it has none."""
    import pyarrow.parquet as pq

    path = record_path(out, point_id)
    return pq.read_table(path).to_pylist()[0] if path.exists() else None


def make_record(point: Point, status: str, measures: dict, error: str | None,
                seconds: float) -> dict:
    """A record: point id, model, every parameter, seed, version, status, measures."""
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in point.params.items()}
    from ..models import spec

    values = {m: float(measures.get(m, float("nan"))) for m in measures_of(spec(point.model))}
    return {"point": point.id, "model": point.model, **params, "rng_seed": point.rng_seed,
            "symicl_version": __version__, "status": status, "error": error,
            "seconds": float(seconds), **values}


def write_manifest(out: str | os.PathLike, config: SweepConfig, pts: list[Point]) -> None:
    """sweep.json: what the sweep is, so the store describes itself."""
    data = {"format": FORMAT, "symicl_version": __version__, "model": config.model,
            "fixed": config.fixed, "grid": {k: list(v) for k, v in config.grid.items()},
            "measure": list(config.measure), "plot": config.plot,
            "measures": measures_of(config.spec()),
            "points": [p.id for p in pts], "config": config.text}
    write_atomic(str(Path(out) / "sweep.json"), json.dumps(data, indent=2, default=list) + "\n")


def read_manifest(out: str | os.PathLike) -> dict:
    path = Path(out) / "sweep.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SymiclError(f"{out} is not a sweep store (no sweep.json)") from None
    if data.get("format") != FORMAT:
        raise SymiclError(f"{path} has format {data.get('format')!r}, expected {FORMAT!r}")
    return data


def load(path: str | os.PathLike):
    """The sweep's records as a pandas DataFrame, one row per finished point, in grid order."""
    import pandas as pd
    import pyarrow.parquet as pq

    manifest = read_manifest(path)
    frames = [pq.read_table(f).to_pandas() for f in
              (record_path(path, p) for p in manifest["points"]) if f.exists()]
    if not frames:
        return pd.DataFrame(columns=["point", "model", "status", "error"])
    return pd.concat(frames, ignore_index=True)
