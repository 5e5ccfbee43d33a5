"""Band plots over seeds (matplotlib, Agg backend), in symicl.plotting's colour-blind-safe colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from symicl.plotting import PALETTE, check_labels, use_palette  # noqa: E402

from .common import band  # noqa: E402

#: colours of event markers (mean step dashed, seed range shaded): black, then
#: reddish purple, both apart from the first line colours of PALETTE.
EVENT_COLOURS = ("black", PALETTE[4])

__all__ = ["EVENT_COLOURS", "band_plot", "check_labels", "mark_events", "save", "subplots"]


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


def mark_events(ax, steps_by_seed, color=EVENT_COLOURS[0], label=None):
    """Vertical lines: the mean event step (dashed) and its seed range (shaded)."""
    vals = [s for s in steps_by_seed if s is not None]
    if not vals:
        return
    ax.axvline(float(np.mean(vals)), color=color, ls="--", lw=1, label=label)
    if len(vals) > 1:
        ax.axvspan(min(vals), max(vals), color=color, alpha=0.08, lw=0)


def save(fig, path):
    """Lay out, write ``path`` (PNG) and close ``fig``."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def subplots(nrows, ncols, w=3.6, h=2.7):
    """A grid of axes (always 2-d) with the colour-blind-safe colour cycle, laid out to fit."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        use_palette(ax)
    return fig, axes
