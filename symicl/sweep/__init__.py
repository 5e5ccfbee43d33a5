"""Sweeps: a verification over a grid of parameters and seeds, on Dask, into a store.

    >>> from symicl import sweep
    >>> config = sweep.load_config("numerics/sweeps/finite_n.toml")
    >>> sweep.run(config, "finite-n-sweep", workers=2)
    >>> table = sweep.load("finite-n-sweep")      # a pandas DataFrame

Modules: config (the TOML file), schema (parameters and measures of each
model), points (grid points, ids, seeds), measure (one point's numbers),
store (Parquet records and sweep.json), run (Dask), plots, cli.
"""

from .config import SweepConfig, SweepConfigError, load_config, parse_config
from .points import Point, points
from .run import Summary, run, run_point
from .store import load

__all__ = ["Point", "Summary", "SweepConfig", "SweepConfigError", "load", "load_config",
           "parse_config", "points", "run", "run_point"]
