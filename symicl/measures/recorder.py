"""A framework-agnostic recorder of weight-matrix trajectories.

Give it named 2-D weight matrices at each training step (NumPy arrays, or
anything with ``.detach().cpu().numpy()`` such as a torch tensor: torch is
never imported here), plus optional scalar series (losses, accuracies).  It
stores them compactly (float32 by default, preallocated with geometric
growth, ``save``/``load`` to a single ``.npz``) and computes every measure in
:mod:`symicl.measures` per name over the trajectory.

Bad input raises :class:`RecorderError` (a ValueError) naming the problem,
the step and the matrix name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._arrays import MeasureError
from .spectral import singular_values, spectral_entropy
from .subspace import subspace_distance
from .temporal import autocorrelation_curvature, curvature, frobenius_norm, window_starts

__all__ = ["Recorder", "RecorderError"]

_FORMAT = "symicl.measures.Recorder/1"


class RecorderError(MeasureError):
    """Bad input to a :class:`Recorder` (shape change, NaN, unknown name, ...)."""


def _to_numpy(value, step, name) -> np.ndarray:
    """Duck-typed conversion: torch-like tensors via .detach().cpu().numpy()."""
    x = value
    try:
        if hasattr(x, "detach"):
            x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
            x = x.numpy()
        a = np.asarray(x)
    except (TypeError, RuntimeError) as exc:  # e.g. bfloat16 tensors have no NumPy dtype
        raise RecorderError(
            f"step {step}, matrix {name!r}: cannot convert {type(value).__name__} to a NumPy array "
            f"({exc}); convert it to float32 first"
        ) from exc
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise RecorderError(f"step {step}, matrix {name!r}: expected real numbers, got dtype {a.dtype}")
    return a


class Recorder:
    """Trajectories of named weight matrices, and their measures.

    >>> rec = Recorder()
    >>> rec.record(0, {"L0.H0.QK": W0})          # doctest: +SKIP
    >>> rec.log(0, loss=2.3)                      # doctest: +SKIP
    >>> rec.measures("L0.H0.QK")["effective_rank"]  # doctest: +SKIP

    The first :meth:`record` call fixes the set of names and each matrix's
    shape; later calls must give the same names with the same shapes.
    Steps must increase strictly.
    """

    def __init__(self, dtype="float32", initial_capacity: int = 64):
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise RecorderError(f"dtype must be float32 or float64, got {dt}")
        if not isinstance(initial_capacity, (int, np.integer)) or initial_capacity < 1:
            raise RecorderError(f"initial_capacity must be a positive integer, got {initial_capacity!r}")
        self.dtype = dt
        self._capacity = int(initial_capacity)
        self._n = 0
        self._steps = np.empty(self._capacity, dtype=np.int64)
        self._data: dict[str, np.ndarray] = {}
        self._scalars: dict[str, tuple[list[int], list[float]]] = {}

    # ------------------------------------------------------------------ input
    def record(self, step: int, weights: Mapping) -> None:
        """Store the matrices ``weights`` (name -> 2-D array) at ``step``."""
        step = self._check_step(step, self._steps[self._n - 1] if self._n else None, "record")
        if not isinstance(weights, Mapping) or len(weights) == 0:
            raise RecorderError(f"step {step}: weights must be a non-empty mapping name -> matrix")
        arrays = {}
        for name, value in weights.items():
            if not isinstance(name, str) or not name:
                raise RecorderError(f"step {step}: matrix names must be non-empty strings, got {name!r}")
            a = _to_numpy(value, step, name)
            if a.ndim != 2:
                raise RecorderError(f"step {step}, matrix {name!r}: expected a 2-D matrix, got shape {a.shape}")
            if a.size == 0:
                raise RecorderError(f"step {step}, matrix {name!r}: empty matrix of shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise RecorderError(f"step {step}, matrix {name!r}: contains NaN or inf")
            arrays[name] = a
        if self._data:
            unknown = sorted(set(arrays) - set(self._data))
            missing = sorted(set(self._data) - set(arrays))
            if unknown:
                raise RecorderError(f"step {step}: unknown matrix name(s) {unknown}; recorded names are {self.names}")
            if missing:
                raise RecorderError(f"step {step}: missing matrix name(s) {missing}")
            for name, a in arrays.items():
                if a.shape != self._data[name].shape[1:]:
                    raise RecorderError(
                        f"step {step}, matrix {name!r}: shape changed from {self._data[name].shape[1:]} to {a.shape}"
                    )
        else:
            self._data = {name: np.empty((self._capacity,) + a.shape, dtype=self.dtype) for name, a in arrays.items()}
        if self._n == self._capacity:
            self._grow()
        for name, a in arrays.items():
            self._data[name][self._n] = a
        self._steps[self._n] = step
        self._n += 1

    def log(self, step: int, **values: float) -> None:
        """Append scalars (e.g. ``loss=...``, ``test_acc=...``) at ``step``.

        Each scalar name has its own series; its steps must increase strictly.
        """
        if not values:
            raise RecorderError(f"step {step}: log() needs at least one name=value")
        checked = {}
        for name, v in values.items():
            series = self._scalars.get(name)
            s = self._check_step(step, series[0][-1] if series else None, f"scalar {name!r}")
            try:
                f = float(v.item() if hasattr(v, "item") else v)
            except (TypeError, ValueError) as exc:
                raise RecorderError(f"step {step}, scalar {name!r}: not a number ({v!r})") from exc
            if not np.isfinite(f):
                raise RecorderError(f"step {step}, scalar {name!r}: value is {f}")
            checked[name] = (s, f)
        for name, (s, f) in checked.items():
            steps, vals = self._scalars.setdefault(name, ([], []))
            steps.append(s)
            vals.append(f)

    @staticmethod
    def _check_step(step, last, what) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise RecorderError(f"{what}: step must be an integer, got {step!r}")
        step = int(step)
        if last is not None and step <= last:
            raise RecorderError(f"{what}: step {step} is not after the previous step {int(last)}")
        return step

    def _grow(self) -> None:
        self._capacity *= 2
        steps = np.empty(self._capacity, dtype=np.int64)
        steps[: self._n] = self._steps[: self._n]
        self._steps = steps
        for name, a in self._data.items():
            b = np.empty((self._capacity,) + a.shape[1:], dtype=self.dtype)
            b[: self._n] = a[: self._n]
            self._data[name] = b

    # ----------------------------------------------------------------- output
    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> list[str]:
        """Matrix names, in the order first recorded."""
        return list(self._data)

    @property
    def scalar_names(self) -> list[str]:
        return list(self._scalars)

    @property
    def steps(self) -> np.ndarray:
        """Steps at which matrices were recorded, shape (T,)."""
        return self._steps[: self._n].copy()

    def _require(self, name: str) -> None:
        if self._n == 0:
            raise RecorderError("empty trajectory: no matrices have been recorded")
        if name not in self._data:
            raise RecorderError(f"unknown matrix name {name!r}; recorded names are {self.names}")

    def trajectory(self, name: str) -> np.ndarray:
        """The stacked matrices of ``name``, shape (T, m, n) (a read-only view)."""
        self._require(name)
        v = self._data[name][: self._n]
        v.flags.writeable = False
        return v

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a logged scalar series."""
        if name not in self._scalars:
            raise RecorderError(f"unknown scalar name {name!r}; logged scalars are {self.scalar_names}")
        steps, vals = self._scalars[name]
        return np.asarray(steps, dtype=np.int64), np.asarray(vals, dtype=np.float64)

    def measures(self, name: str, ks=(1, 2), rtol: float | None = None, rank: int | None = None,
                 side: str = "row") -> dict[str, np.ndarray]:
        """Every matrix measure of ``name`` along the trajectory.

        Returns arrays of length T (``steps``, ``effective_rank``,
        ``marginalized_effective_rank_k{k}`` for k in ``ks``,
        ``subspace_distance`` to the last recorded matrix, ``frobenius_norm``)
        and length T-2 (``norm_curvature`` in training steps, at
        ``curvature_steps``).  ``rtol``/``rank``/``side`` go to
        :func:`subspace_distance`.
        """
        M = self.trajectory(name)
        sv = singular_values(M)                      # one SVD serves every k
        out = {"steps": self.steps, "effective_rank": np.exp(spectral_entropy(sv, 0))}
        for k in ks:
            if not isinstance(k, (int, np.integer)) or k < 0:
                raise RecorderError(f"ks must hold non-negative integers, got {k!r}")
            out[f"marginalized_effective_rank_k{k}"] = np.exp(spectral_entropy(sv, int(k)))
        try:
            out["subspace_distance"] = subspace_distance(M, M[-1], rtol=rtol, rank=rank, side=side)
        except MeasureError as exc:
            raise RecorderError(f"matrix {name!r}: {exc}") from exc
        out["frobenius_norm"] = frobenius_norm(M)
        if self._n >= 3:
            out["norm_curvature"] = curvature(out["frobenius_norm"], self.steps.astype(np.float64))
            out["curvature_steps"] = self.steps[1:-1]
        return out

    def all_measures(self, **kwargs) -> dict[str, dict[str, np.ndarray]]:
        """:meth:`measures` for every recorded name."""
        if self._n == 0:
            raise RecorderError("empty trajectory: no matrices have been recorded")
        return {name: self.measures(name, **kwargs) for name in self.names}

    def autocorrelation_curvature(self, name: str = "loss", window: int = 200, fit_lags: int = 1):
        """Loss-autocorrelation curvature of scalar ``name`` over sliding windows.

        Returns ``(centre_steps, kappa)``; the window starting at logged point s
        covers points s..s+window-1+fit_lags and is placed at its centre step.
        """
        steps, vals = self.scalar(name)
        if len(vals) < window + fit_lags:
            raise RecorderError(
                f"scalar {name!r}: {len(vals)} points, fewer than window + fit_lags = {window + fit_lags}"
            )
        kappa = autocorrelation_curvature(vals, window, fit_lags)
        s = window_starts(len(vals), window, fit_lags)
        centre = steps[s + (window - 1) // 2]
        return centre, kappa

    # -------------------------------------------------------------- save/load
    def save(self, path, compressed: bool = True) -> Path:
        """Write everything to one ``.npz`` file; returns its path."""
        path = Path(path)
        meta = {"format": _FORMAT, "dtype": self.dtype.name, "names": self.names, "scalars": self.scalar_names}
        arrays = {"meta": np.array(json.dumps(meta)), "steps": self.steps}
        for i, name in enumerate(self.names):
            arrays[f"w{i}"] = self._data[name][: self._n]
        for i, name in enumerate(self.scalar_names):
            s, v = self.scalar(name)
            arrays[f"s{i}_steps"], arrays[f"s{i}_values"] = s, v
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path) -> "Recorder":
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            try:
                meta = json.loads(str(z["meta"]))
            except KeyError as exc:
                raise RecorderError(f"{path}: not a saved Recorder (no 'meta' entry)") from exc
            if meta.get("format") != _FORMAT:
                raise RecorderError(f"{path}: unknown format {meta.get('format')!r}, expected {_FORMAT!r}")
            steps = z["steps"]
            rec = cls(dtype=meta["dtype"], initial_capacity=max(1, len(steps)))
            rec._n = len(steps)
            rec._steps[: rec._n] = steps
            rec._data = {name: z[f"w{i}"].astype(rec.dtype) for i, name in enumerate(meta["names"])}
            for i, name in enumerate(meta["scalars"]):
                rec._scalars[name] = (z[f"s{i}_steps"].tolist(), z[f"s{i}_values"].tolist())
        return rec
