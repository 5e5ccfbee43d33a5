"""Plot helpers: readable annotations, labelled colour bars, colour-blind-safe colours.

Shared by the plots symicl writes (sweep heat maps, study figures, verify
plots), and usable on any matplotlib figure:

- :data:`PALETTE` / :func:`use_palette`: the Okabe-Ito colours, distinguishable
  with the common colour-vision deficiencies; :data:`SEQUENTIAL` and
  :data:`DIVERGING` colour maps (viridis; ColorBrewer RdBu, reversed), both
  colour-blind safe;
- :func:`text_colour` and :func:`annotate_heatmap`: black text on light cells,
  white on dark ones (WCAG relative luminance), so every number is readable;
- :func:`label_colorbar` and :func:`matrix_plot`: colour bars with a label,
  matrices with ticks and row/column labels;
- :func:`check_labels`: what a figure is missing (titles, axis labels,
  colour-bar labels, ticks on matrix plots, readable annotation text), as a
  list of sentences; empty when nothing is missing.

matplotlib is imported lazily: importing this module does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DIVERGING", "PALETTE", "SEQUENTIAL", "annotate_heatmap", "check_labels",
           "contrast_ratio", "label_colorbar", "luminance", "matrix_plot", "text_colour",
           "use_palette"]

#: Okabe & Ito (2008) colour-blind-safe qualitative palette (black dropped,
#: it is kept for reference lines): blue, vermillion, bluish green, orange,
#: reddish purple, sky blue, yellow.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442")
#: Sequential colour map for magnitudes (perceptually uniform, colour-blind safe).
SEQUENTIAL = "viridis"
#: Diverging colour map for signed values centred on 0 (colour-blind safe).
DIVERGING = "RdBu_r"

#: Minimum contrast ratio between annotation text and the cell behind it
#: (WCAG 2 asks 3:1 for large text, 4.5:1 for body text).
MIN_CONTRAST = 3.0


def use_palette(ax=None):
    """Set the colour-blind-safe cycle on ``ax`` (or as matplotlib's default when None)."""
    from cycler import cycler

    if ax is None:
        import matplotlib as mpl

        mpl.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))
        return None
    ax.set_prop_cycle(cycler(color=list(PALETTE)))
    return ax


def luminance(colour) -> float:
    """WCAG relative luminance of a matplotlib colour (0 black, 1 white)."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(colour), dtype=float)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a, b) -> float:
    """WCAG contrast ratio of two colours, from 1 (same) to 21 (black on white)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background) -> str:
    """``"black"`` or ``"white"``, whichever contrasts more with ``background``."""
    return "black" if contrast_ratio(background, "black") >= contrast_ratio(background, "white") \
        else "white"


def annotate_heatmap(ax, values, image, fmt: str = "{:.3g}", fontsize: float = 7,
                     missing: str = "n/a") -> list:
    """Write each value of ``values`` (rows x cols, as shown by ``image``) in its cell.

    The text colour follows the cell's colour under ``image``'s colour map and
    norm (black on light cells, white on dark); NaN cells get ``missing`` in
    black (imshow leaves them blank).  Returns the Text objects.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"annotate_heatmap needs a 2-d array, got shape {values.shape}")
    shown = np.asarray(image.get_array())
    if shown.shape[:2] != values.shape:
        raise ValueError(f"values have shape {values.shape} but the image shows {shown.shape[:2]}")
    texts = []
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            colour = text_colour(image.cmap(image.norm(v)))
            label = fmt.format(v)
        else:
            colour, label = "black", missing
        texts.append(ax.text(j, i, label, ha="center", va="center", fontsize=fontsize,
                             color=colour))
    return texts


def label_colorbar(mappable, label: str, ax=None, fig=None, **kwargs):
    """A colour bar for ``mappable`` (an image) with ``label``; returns the Colorbar.

    ``ax``: the axes (or list of axes) to steal room from, as in ``fig.colorbar``.
    """
    if not label:
        raise ValueError("a colour bar needs a label saying what the colours measure")
    fig = fig or mappable.axes.figure
    cbar = fig.colorbar(mappable, ax=ax if ax is not None else mappable.axes, **kwargs)
    cbar.set_label(label)
    return cbar


def matrix_plot(ax, matrix, *, title: str, row_labels: Sequence[str] | None = None,
                col_labels: Sequence[str] | None = None, xlabel: str = "column",
                ylabel: str = "row", cmap: str | None = None, symmetric: bool | None = None,
                annotate: bool | None = None, fmt: str = "{:.2g}", vmax: float | None = None):
    """Show a matrix with ticks, row/column labels, a title and axis labels; returns the image.

    ``symmetric`` (default: the matrix has both signs) uses the diverging map
    centred on 0; ``annotate`` (default: at most 8 x 8) writes each entry with
    a contrast-aware colour.  Add a colour bar with :func:`label_colorbar`.
    """
    M = np.asarray(matrix, dtype=float)
    if M.ndim != 2:
        raise ValueError(f"matrix_plot needs a 2-d array, got shape {M.shape}")
    finite = M[np.isfinite(M)]
    if symmetric is None:
        symmetric = finite.size > 0 and finite.min() < 0 < finite.max()
    if symmetric:
        top = vmax if vmax is not None else (float(np.abs(finite).max()) if finite.size else 1.0)
        top = top or 1.0
        image = ax.imshow(M, cmap=cmap or DIVERGING, vmin=-top, vmax=top)
    else:
        image = ax.imshow(M, cmap=cmap or SEQUENTIAL, vmax=vmax)
    rows = list(row_labels) if row_labels is not None else [str(i + 1) for i in range(M.shape[0])]
    cols = list(col_labels) if col_labels is not None else [str(j + 1) for j in range(M.shape[1])]
    if len(rows) != M.shape[0] or len(cols) != M.shape[1]:
        raise ValueError(f"{len(rows)} row and {len(cols)} column labels for a "
                         f"{M.shape[0]} x {M.shape[1]} matrix")
    ax.set_xticks(range(M.shape[1]), cols)
    ax.set_yticks(range(M.shape[0]), rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if annotate is None:
        annotate = max(M.shape) <= 8
    if annotate:
        annotate_heatmap(ax, M, image, fmt=fmt)
    return image


def _colorbar_of(ax):
    return getattr(ax, "_colorbar", None)


def _axes_name(i: int, ax) -> str:
    title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
    return f"axes {i + 1}" + (f" ({title!r})" if title else "")


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.images or ax.collections or ax.patches)


def _tick_labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def _cell_colour(image, x: float, y: float):
    """The RGBA colour ``image`` draws at data point (x, y), or None outside it."""
    data = np.asarray(image.get_array())
    left, right, bottom, top = image.get_extent()
    rows, cols = data.shape[:2]
    fx = (x - left) / (right - left)
    first, last = (top, bottom) if image.origin == "upper" else (bottom, top)
    fy = (y - first) / (last - first)           # row 0 at `top` (origin upper) or `bottom`
    if not (0 <= fx < 1 and 0 <= fy < 1):
        return None
    i, j = int(fy * rows), int(fx * cols)
    v = data[i, j]
    if np.ma.is_masked(v) or (np.ndim(v) == 0 and not np.isfinite(v)):
        return None
    return image.to_rgba(v) if np.ndim(v) == 0 else tuple(v)


def check_labels(fig) -> list[str]:
    """What ``fig`` is missing, one sentence per problem; empty when it is complete.

    Checked for every visible axes that shows data: a title (the axes' own, a
    twin's at the same place, or the figure's suptitle when the figure has one
    axes), an x- and a y-axis label (a twin's x label counts) (``fig.supxlabel`` / ``supylabel`` count); for every colour bar, a
    label; for every axes showing an image (a matrix plot), tick labels on both
    axes; for every text drawn on an image, a contrast ratio of at least
    :data:`MIN_CONTRAST` with the cell behind it.
    """
    problems: list[str] = []
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    supx = fig._supxlabel.get_text() if getattr(fig, "_supxlabel", None) else ""
    supy = fig._supylabel.get_text() if getattr(fig, "_supylabel", None) else ""
    plots = [ax for ax in fig.axes if _colorbar_of(ax) is None]
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        name = _axes_name(i, ax)
        cbar = _colorbar_of(ax)
        if cbar is not None:
            long_axis = ax.yaxis if cbar.orientation == "vertical" else ax.xaxis
            if not long_axis.get_label_text():
                problems.append(f"colour bar {i + 1}: no label saying what the colours measure")
            continue
        if not _has_data(ax):
            continue
        # a twin (twinx: same place, shared x axis) shows its partner's title and x label
        twins = [o for o in ax.get_shared_x_axes().get_siblings(ax)
                 if o is not ax and o.get_position().bounds == ax.get_position().bounds]
        has_title = any(a.get_title(loc) for a in [ax, *twins]
                        for loc in ("center", "left", "right"))
        if not has_title and not (suptitle and len(plots) == 1):
            problems.append(f"{name}: no title")
        if not any(a.get_xlabel() for a in [ax, *twins]) and not supx:
            problems.append(f"{name}: no x-axis label")
        if not ax.get_ylabel() and not supy:
            problems.append(f"{name}: no y-axis label")
        if ax.images:
            if not _tick_labels(ax.xaxis):
                problems.append(f"{name}: matrix plot without column tick labels")
            if not _tick_labels(ax.yaxis):
                problems.append(f"{name}: matrix plot without row tick labels")
            for text in ax.texts:
                if not text.get_visible() or not text.get_text():
                    continue
                x, y = text.get_position()
                for image in ax.images:
                    cell = _cell_colour(image, x, y)
                    if cell is not None:
                        ratio = contrast_ratio(text.get_color(), cell[:3])
                        if ratio < MIN_CONTRAST:
                            problems.append(f"{name}: text {text.get_text()!r} has contrast "
                                            f"{ratio:.1f}:1 with its cell (< {MIN_CONTRAST:g}:1)")
                        break
    return problems
