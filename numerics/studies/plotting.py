"""Band plots over seeds (matplotlib, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .common import band  # noqa: E402


def band_plot(ax, steps, values, label=None, color=None):
    """Mean line, mean ± standard error (shaded) and min/max (dotted) over seeds (axis 0)."""
    b = band(np.asarray(values, dtype=float))
    line, = ax.plot(steps, b["mean"], label=label, color=color, lw=1.5)
    c = line.get_color()
    if np.all(b["n"] > 1):
        ax.fill_between(steps, b["mean"] - b["se"], b["mean"] + b["se"], color=c, alpha=0.3, lw=0)
        ax.plot(steps, b["min"], color=c, lw=0.5, ls=":")
        ax.plot(steps, b["max"], color=c, lw=0.5, ls=":")
    return line


def mark_events(ax, steps_by_seed, color="k", label=None):
    """Vertical lines: the mean event step (dashed) and its seed range (shaded)."""
    vals = [s for s in steps_by_seed if s is not None]
    if not vals:
        return
    ax.axvline(float(np.mean(vals)), color=color, ls="--", lw=1, label=label)
    if len(vals) > 1:
        ax.axvspan(min(vals), max(vals), color=color, alpha=0.08, lw=0)


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def subplots(nrows, ncols, w=3.6, h=2.7):
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    return fig, axes
