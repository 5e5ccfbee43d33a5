"""Heat maps of theory-vs-simulation error across a sweep's grid."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import SymiclError

__all__ = ["heatmap"]


def heatmap(table, x: str, y: str, measures: Sequence[str], path: str,
            over: Sequence[str] = ()) -> str:
    """One panel per measure over (x, y), the mean over the other axes; one colour scale.

    ``table`` is :func:`symicl.sweep.load`'s DataFrame; failed points are left
    out; ``over`` names the other grid axes for the title.  Writes a PNG to
    ``path`` and returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    ok = table[table["status"] == "ok"] if "status" in table else table
    for name in (x, y, *measures):
        if name not in ok or ok[name].isna().all():
            raise SymiclError(f"cannot plot: the sweep has no values of {name!r}")
    if ok.empty:
        raise SymiclError("cannot plot: no point of the sweep finished without error")
    grids = [ok.pivot_table(index=y, columns=x, values=m, aggfunc="mean") for m in measures]
    values = np.concatenate([g.to_numpy().ravel() for g in grids])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    norm = LogNorm(lo, hi) if lo > 0 else Normalize(lo, hi)
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids) + 1, 3.8), squeeze=False)
    for ax, m, g in zip(axes[0], measures, grids):
        image = ax.imshow(g.to_numpy(), origin="lower", aspect="auto", norm=norm, cmap="viridis")
        ax.set_xticks(range(g.shape[1]), [f"{v:g}" for v in g.columns])
        ax.set_yticks(range(g.shape[0]), [f"{v:g}" for v in g.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(m, fontsize=9)
        for (i, j), v in np.ndenumerate(g.to_numpy()):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(image, ax=axes[0].tolist())
    others = [c for c in over if c not in (x, y)]
    if others:
        fig.suptitle(f"mean over {', '.join(others)}", fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
