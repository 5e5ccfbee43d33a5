"""Shared plumbing of the studies: configs, progress lines, seed bands, JSON output."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

CONFIG_DIR = Path(__file__).with_name("configs")


def load_config(study: str, name_or_path: str) -> dict:
    """``quick``/``full`` -> configs/<study>_<name>.json; anything else is a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{study}_{name_or_path}.json"
    if not path.exists():
        raise SystemExit(f"config {name_or_path!r}: no file {path}")
    cfg = json.loads(path.read_text())
    cfg["config_name"] = name_or_path
    return cfg


def parse_args(study: str, description: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m numerics.studies.{study}", description=description)
    ap.add_argument("--config", default="quick", help="quick, full, or a path to a JSON config")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    ap.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    ap.add_argument("--save-trajectories", action="store_true",
                    help="also save each seed's Recorder as .npz (large)")
    if study == "icl_emergence":
        ap.add_argument("--tasks", default=None, help="comma-separated subset of the config's tasks")
        ap.add_argument("--layers", default=None, help="comma-separated subset of the config's depths, e.g. 1,2")
    return ap.parse_args(argv)


class Progress:
    """Prints a line to stderr at most every ``every`` seconds (and when forced)."""

    def __init__(self, label: str, every: float = 10.0):
        self.label, self.every = label, every
        self.t0 = self.last = time.perf_counter()

    def __call__(self, msg: str, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.last = now
            print(f"[{self.label} {now - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def band(values: np.ndarray) -> dict:
    """Mean, standard error, min and max over seeds (axis 0), NaN-aware."""
    v = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(v), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns give NaN bands
        mean = np.nanmean(v, axis=0) if np.any(n) else np.full(v.shape[1:], np.nan)
        sd = np.nanstd(v, axis=0, ddof=1) if np.all(n > 1) else np.full(v.shape[1:], np.nan)
        lo = np.nanmin(v, axis=0) if np.any(n) else mean
        hi = np.nanmax(v, axis=0) if np.any(n) else mean
    return {"mean": mean, "se": sd / np.sqrt(np.maximum(n, 1)), "min": lo, "max": hi, "n": n}


def event_spread(steps) -> dict:
    """Summary of one event's step over seeds (None where it did not happen)."""
    vals = [s for s in steps if s is not None]
    out = {"per_seed": [None if s is None else int(s) for s in steps],
           "n_seeds_with_event": len(vals), "n_seeds": len(steps)}
    if vals:
        a = np.asarray(vals, dtype=float)
        out.update(mean=float(a.mean()), se=float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else None,
                   min=int(a.min()), max=int(a.max()))
    else:
        out.update(mean=None, se=None, min=None, max=None)
    return out


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def write_json(path: Path, obj) -> None:
    """JSON with NaN/inf written as null (strict JSON)."""
    path.write_text(json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n")


def import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover
        raise SystemExit("this study needs PyTorch: pip install torch==2.13.0") from exc
    return torch


def setup_torch(device: str, threads: int | None = None):
    """Deterministic torch on the requested device; returns (torch, device)."""
    torch = import_torch()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if threads:
        torch.set_num_threads(threads)
    return torch, torch.device(device)
