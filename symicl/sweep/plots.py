"""Heat maps of theory-vs-simulation error across a sweep's grid."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import SymiclError

__all__ = ["heatmap"]


def _descriptions(table) -> Mapping[str, str]:
    """What each measure compares, from the models' sweep schema (empty if unknown)."""
    from ..errors import SymiclError
    from ..models import spec
    from .schema import measures_of

    models = table["model"].dropna().unique() if "model" in table else []
    out: dict[str, str] = {}
    for model in models:
        try:
            out.update(measures_of(spec(str(model))))
        except SymiclError:
            continue
    return out


def heatmap(table, x: str, y: str, measures: Sequence[str], path: str,
            over: Sequence[str] = (), descriptions: Mapping[str, str] | None = None) -> str:
    """One panel per measure over (x, y), the mean over the other axes; one colour scale.

    ``table`` is :func:`symicl.sweep.load`'s DataFrame; failed points are left
    out; ``over`` names the other grid axes for the title.  Each panel's title
    says what the measure compares (``descriptions``, by default the sweep
    schema's); every cell carries its value in black or white, whichever
    reads on the cell's colour; the colour bar names the measures and its
    scale.  Writes a PNG to ``path`` and returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    from ..plotting import SEQUENTIAL, annotate_heatmap, label_colorbar

    if not measures:
        raise SymiclError("cannot plot: no measure named")
    ok = table[table["status"] == "ok"] if "status" in table else table
    for name in (x, y, *measures):
        if name not in ok or ok[name].isna().all():
            raise SymiclError(f"cannot plot: the sweep has no values of {name!r}")
    if ok.empty:
        raise SymiclError("cannot plot: no point of the sweep finished without error")
    about = dict(_descriptions(ok)) if descriptions is None else dict(descriptions)
    grids = [ok.pivot_table(index=y, columns=x, values=m, aggfunc="mean") for m in measures]
    values = np.concatenate([g.to_numpy().ravel() for g in grids])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = (lo / 2, hi * 2) if lo > 0 else (lo - 1.0, hi + 1.0)
    log = lo > 0 and hi / lo > 20
    norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
    fig, axes = plt.subplots(1, len(grids), figsize=(4.6 * len(grids) + 1.2, 4.4), squeeze=False,
                             layout="constrained")
    for ax, m, g in zip(axes[0], measures, grids):
        image = ax.imshow(g.to_numpy(), origin="lower", aspect="auto", norm=norm, cmap=SEQUENTIAL)
        ax.set_xticks(range(g.shape[1]), [f"{v:g}" for v in g.columns])
        ax.set_yticks(range(g.shape[0]), [f"{v:g}" for v in g.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        title = m if m not in about else f"{m}:\n" + "\n".join(textwrap.wrap(about[m], 48))
        ax.set_title(title, fontsize=8)
        annotate_heatmap(ax, g.to_numpy(), image, fontsize=7)
    label_colorbar(image, ", ".join(measures) + (" (log scale)" if log else ""),
                   ax=axes[0].tolist())
    others = [c for c in over if c not in (x, y)]
    model = ", ".join(map(str, ok["model"].dropna().unique())) if "model" in ok else "sweep"
    fig.suptitle(f"{model}: {', '.join(measures)} over {x} and {y}"
                 + (f" (mean over {', '.join(others)})" if others else ""), fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
