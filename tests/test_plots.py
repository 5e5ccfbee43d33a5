"""Plots are readable: labels, titles, labelled colour bars, ticks on matrices, legible numbers.

symicl.plotting's helpers on their own, then every plot symicl and the studies
write, rendered on tiny synthetic data and checked with check_labels.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from symicl.plotting import (  # noqa: E402
    PALETTE,
    annotate_heatmap,
    check_labels,
    contrast_ratio,
    label_colorbar,
    matrix_plot,
    text_colour,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture()
def saved(monkeypatch):
    """The figures saved while a test runs, in order."""
    figures = []
    real_savefig = matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    return figures


# -- the helpers ------------------------------------------------------------

def test_text_colour_contrasts_with_the_cell():
    viridis = matplotlib.colormaps["viridis"]
    assert text_colour(viridis(1.0)) == "black"          # yellow top of viridis
    assert text_colour(viridis(0.0)) == "white"          # dark purple bottom
    assert text_colour("white") == "black" and text_colour("black") == "white"
    for x in np.linspace(0, 1, 21):                      # readable everywhere on the map
        assert contrast_ratio(text_colour(viridis(x)), viridis(x)[:3]) >= 4.5


def test_palette_is_distinct_and_valid():
    rgb = [np.array(to_rgb(c)) for c in PALETTE]
    assert len(set(PALETTE)) == len(PALETTE) >= 7
    assert min(np.abs(a - b).sum() for a, b in itertools.combinations(rgb, 2)) > 0.3


def test_annotate_heatmap_picks_black_on_light_and_white_on_dark():
    fig, ax = plt.subplots()
    values = np.array([[0.0, 1.0], [0.2, np.nan]])
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1)
    texts = annotate_heatmap(ax, values, image)
    colours = {t.get_text(): t.get_color() for t in texts}
    assert colours == {"0": "white", "1": "black", "0.2": "white", "n/a": "black"}
    with pytest.raises(ValueError, match="shape"):
        annotate_heatmap(ax, np.zeros((3, 3)), image)


def test_check_labels_names_what_is_missing():
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], [0, 1])                               # no title, no labels
    image = b.imshow(np.array([[0.0, 1.0]]), cmap="viridis")
    b.set(title="matrix", xlabel="column", ylabel="row", xticks=[], yticks=[])
    b.text(1, 0, "9.9", color="white", ha="center")      # white on yellow
    fig.colorbar(image, ax=b)                            # no label
    problems = "\n".join(check_labels(fig))
    for words in ("axes 1: no title", "axes 1: no x-axis label", "axes 1: no y-axis label",
                  "without column tick labels", "without row tick labels",
                  "text '9.9' has contrast", "colour bar 3: no label"):
        assert words in problems
    assert len(check_labels(fig)) == 7


def test_a_complete_figure_has_no_problems():
    fig, (a, b) = plt.subplots(1, 2, layout="constrained")
    a.plot([0, 1], [1, 0], label="x")
    a.set(title="line", xlabel="t", ylabel="y")
    image = matrix_plot(b, [[1.0, -0.5], [-0.5, 2.0]], title="a matrix", row_labels=["r1", "r2"],
                        col_labels=["c1", "c2"], xlabel="column", ylabel="row")
    cbar = label_colorbar(image, "entry")
    assert cbar.ax.get_ylabel() == "entry"
    assert check_labels(fig) == []
    assert [t.get_text() for t in b.get_xticklabels()] == ["c1", "c2"]
    assert len(b.texts) == 4                             # annotated, legibly
    with pytest.raises(ValueError, match="label"):
        label_colorbar(image, "")
    with pytest.raises(ValueError, match="2 row and 2 column labels for a 2 x 3"):
        matrix_plot(b, np.zeros((2, 3)), title="t", row_labels=["a", "b"], col_labels=["a", "b"])


# -- the sweep heat map ---------------------------------------------------------

def _sweep_table():
    pd = pytest.importorskip("pandas")
    rows = []
    for N, a, seed in itertools.product([4, 8, 16], [1.0, 2.0, 8.0], [0, 1]):
        rows.append({"model": "linear-transformer", "status": "ok", "N": N, "anisotropy": a,
                     "seed": seed, "gain_z_exact": 1.0 + 0.1 * seed + np.log(a),
                     "gain_z_per_mode": 1.0 + 40 * np.log(a) / N})
    rows.append({"model": "linear-transformer", "status": "error", "N": 4, "anisotropy": 1.0,
                 "seed": 2, "gain_z_exact": np.nan, "gain_z_per_mode": np.nan})
    return pd.DataFrame(rows)


def test_sweep_heatmap_is_labelled_and_legible(tmp_path, saved):
    from symicl.sweep import plots

    figures = saved
    path = plots.heatmap(_sweep_table(), "N", "anisotropy", ["gain_z_exact", "gain_z_per_mode"],
                         str(tmp_path / "plots" / "heatmap.png"), over=["N", "anisotropy", "seed"])
    assert (tmp_path / "plots" / "heatmap.png").stat().st_size > 0 and path.endswith(".png")
    (fig,) = figures
    assert check_labels(fig) == []
    panels = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    assert len(panels) == 2 and all(len(ax.texts) == 9 for ax in panels)
    assert "|mean gain (SGD) - flow| / SE" in panels[0].get_title().replace("\n", " ")
    assert "mean over seed" in fig._suptitle.get_text()
    (cbar_ax,) = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    assert "gain_z_per_mode" in cbar_ax.get_ylabel()
    # a constant measure still gets a colour scale (no zero-width norm)
    flat = _sweep_table().assign(gain_z_exact=2.0)
    plots.heatmap(flat, "N", "anisotropy", ["gain_z_exact"], str(tmp_path / "flat.png"))
    assert check_labels(figures[-1]) == []


# -- the study plots ------------------------------------------------------------

@pytest.fixture
def study_figures(monkeypatch):
    """Run the studies' plot functions, keeping check_labels of each figure they save."""
    from numerics.studies import plotting as study_plotting

    found = {}
    real_save = study_plotting.save

    def save(fig, path):
        found[str(path)] = check_labels(fig)
        real_save(fig, path)

    monkeypatch.setattr(study_plotting, "save", save)
    return found


def _bands(rng, seeds, n, *shape):
    return rng.random((seeds, *shape, n)) if shape else rng.random((seeds, n))


def test_icl_emergence_plots_are_labelled(tmp_path, study_figures):
    from numerics.studies.icl_emergence import plot_task

    rng, S, T = np.random.default_rng(0), 2, 6
    results = {}
    for L in (1, 2):
        cur = {"steps": np.arange(T) * 100, "score": _bands(rng, S, T),
               "accuracy": _bands(rng, S, T),
               "qk_erank_k1_per_layer": _bands(rng, S, T, L),     # (seeds, layers, steps)
               "qk_sd_per_layer": _bands(rng, S, T, L), "qk_erank_k0": _bands(rng, S, T),
               "ov_erank_k0": _bands(rng, S, T), "autocorr_steps": np.arange(3) * 100 + 50,
               "autocorr_curvature": _bands(rng, S, 3)}
        results[L] = (cur, [{"icl_emergence_step": 200}, {"icl_emergence_step": None}])
    path = tmp_path / "icl_classification.png"
    plot_task("classification", results, path)
    assert path.stat().st_size > 0
    assert study_figures == {str(path): []}


def test_grokking_plot_is_labelled(tmp_path, study_figures):
    from numerics.studies.grokking import plot

    rng, S, T = np.random.default_rng(1), 3, 8
    names = ("train_acc", "test_acc", "ov_sd", "qk_sd", "mlp_in_sd", "ov_erank_k1",
             "qk_erank_k1", "ov_erank_k0", "param_norm")
    cur = {"steps": np.arange(T) * 250, **{k: _bands(rng, S, T) for k in names},
           "param_norm_curvature": _bands(rng, S, T - 2), "autocorr_steps": np.arange(4) * 250,
           "autocorr_curvature": _bands(rng, S, 4)}
    per_seed = [{"grokking_step": 1000 + 250 * s, "ov_stabilisation_step": 1250} for s in range(S)]
    path = tmp_path / "grokking.png"
    plot(cur, per_seed, path)
    assert study_figures == {str(path): []}


def test_deep_linear_prior_plots_are_labelled(tmp_path, study_figures):
    from numerics.studies.deep_linear_prior import plots
    from symicl.analysis.prior_knowledge import balanced_weights, teacher
    from symicl.analysis.representations import closed_form

    T = teacher(3, 4, [2, 1])
    times = np.linspace(0, 6, 13)
    paths = {"rich": closed_form(T, *balanced_weights(4, 3, 3, 0.0, 1e-2), times),
             "lazy": closed_form(T, *balanced_weights(4, 3, 3, 5.0, 1e-2, seed=1), times)}
    files = plots({"paths": paths, "threshold": 1e-3}, T, tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in files] == ["loss_and_singular_values.png",
                                                      "final_rsms.png"]
    assert study_figures == {f: [] for f in files}


# -- the verification plots -------------------------------------------------------

def test_verify_plots_are_labelled(tmp_path, saved):
    """readout, loss and drift plots and deep-linear's rich/lazy figures, on synthetic series."""
    from symicl.verify.plots import plot, rich_vs_lazy

    kept = saved
    t = np.linspace(0, 1, 6)
    r = np.stack([t, t ** 2], axis=1)
    series = {"t": t.tolist(), "readout_flow": r.tolist(), "readout_gd": r.tolist(),
              "readout_sgd_mean": r.tolist(), "readout_sgd_se": (0.01 + 0 * r).tolist(),
              "loss_flow": (1 - t).tolist(), "loss_gd_window": (1 - t).tolist(),
              "loss_sgd_window_mean": (1 - t).tolist(), "loss_sgd_window_se": (0 * t + .01).tolist(),
              "drift": {"eta": [0.01, 0.04], "mean": [0.01, 0.04], "se": [0.001, 0.002],
                        "slope": 1.0}, "conserved": ["p**2 - q**2"],
              "readout_per_mode_flow": r.tolist()}
    extra = {"series": series, "plan": {"eta": 0.01},
             "readout": {"name": "gain", "labels": ["a_1", "a_2"], "description": "gain"}}
    files = plot(extra, str(tmp_path))
    T, n, o = len(t), 2, 2
    start = {"lambda": 0.0, "t": t.tolist(), "loss": (1 - t).tolist(),
             "sv": r.tolist(), "sv_sgd_mean": r.tolist(), "sv_sgd_se": (0.01 + 0 * r).tolist(),
             "rsm_in": np.tile(np.eye(2), (T, 1, 1)).tolist(),
             "rsm_out": np.tile(np.eye(2), (T, 1, 1)).tolist(),
             "ntk": np.tile(np.eye(n * o).reshape(n, o, n, o).transpose(0, 2, 1, 3),
                            (T, 1, 1, 1, 1)).tolist()}
    files += rich_vs_lazy({"rich": start, "lazy": {**start, "lambda": 4.0}}, str(tmp_path))
    assert len(files) == len(kept) == 5
    for fig, name in zip(kept, files):
        assert check_labels(fig) == [], name
