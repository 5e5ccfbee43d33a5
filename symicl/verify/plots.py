"""Plots of a verification: what is compared, with labels, ticks and colour bars.

* ``readout.png``: the readout (e.g. the gains a_a) along the flow, along
  gradient descent at the same eta, and SGD's seed mean +- 2 SE;
* ``loss.png``: SGD's mean minibatch loss per recording window against
  the expected loss along gradient descent averaged over the same steps
  (like with like), and the flow's loss at the instants;
* ``conserved_drift.png``: SGD's drift of the conserved quantity against
  eta, with the fitted line c eta;
* a spec's own plots (e.g. deep-linear's rich and lazy starts).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot", "rich_vs_lazy"]

from ..plotting import PALETTE, label_colorbar, matrix_plot


def _path(out: str, name: str) -> str:
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, name)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(extra: dict, out: str, spec=None) -> list[str]:
    """Write the verification's plots to ``out``; return their paths."""
    plt = _pyplot()
    s = extra["series"]
    t = np.array(s["t"])
    labels = extra["readout"]["labels"]
    name = extra["readout"]["name"]
    files = []

    flow, gd = np.array(s["readout_flow"]), np.array(s["readout_gd"])
    mean, se = np.array(s["readout_sgd_mean"]), np.array(s["readout_sgd_se"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    shown = range(min(len(labels), len(PALETTE)))
    for a in shown:
        col = PALETTE[a]
        ax.plot(t, flow[:, a], "-", color=col, lw=1.2, label=f"{labels[a]}: flow")
        ax.plot(t, gd[:, a], ":", color=col, lw=1.6, label=f"{labels[a]}: GD, eta = "
                f"{extra['plan']['eta']:g}")
        ax.fill_between(t, mean[:, a] - 2 * se[:, a], mean[:, a] + 2 * se[:, a], color=col,
                        alpha=0.3, label=f"{labels[a]}: SGD mean +- 2 SE")
    if "readout_per_mode_flow" in s:
        pm = np.array(s["readout_per_mode_flow"])
        for a in shown:
            ax.plot(t, pm[:, a], "--", color=PALETTE[a], lw=1, label=f"{labels[a]}: per-mode flow")
    ax.set_xlabel("t = eta x steps")
    ax.set_ylabel(extra["readout"]["description"] or name)
    more = f" (first {len(PALETTE)} of {len(labels)})" if len(labels) > len(PALETTE) else ""
    ax.set_title(f"{name}{more}: SGD seed mean vs gradient descent and the flow", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files.append(_path(out, "readout.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(t, s["loss_flow"], "-", color="k", lw=1, label="flow: L(theta(t))")
    ax.plot(t[1:], s["loss_gd_window"][1:], "o", color=PALETTE[1], ms=3,
            label="GD: L averaged over each window")
    m, e = np.array(s["loss_sgd_window_mean"]), np.array(s["loss_sgd_window_se"])
    ax.errorbar(t[1:], m[1:], yerr=2 * e[1:], fmt="none", ecolor=PALETTE[0], capsize=2,
                label="SGD: mean minibatch loss per window +- 2 SE")
    ax.set_xlabel("t = eta x steps (window ends)")
    ax.set_ylabel("loss")
    ax.set_title("loss: SGD windows vs gradient descent over the same steps", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(_path(out, "loss.png"))
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    if "drift" in s:
        d = s["drift"]
        fig, ax = plt.subplots(figsize=(5.5, 4))
        eta = np.array(d["eta"])
        ax.errorbar(eta, d["mean"], yerr=2 * np.array(d["se"]), fmt="o", color=PALETTE[0],
                    capsize=3, label="SGD drift, mean +- 2 SE")
        grid = np.linspace(0, eta.max() * 1.05, 50)
        ax.plot(grid, d["slope"] * grid, "-", color=PALETTE[1], label=f"c eta, c = {d['slope']:.3g}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("learning rate eta")
        ax.set_ylabel("drift of h over the run")
        law = (s.get("conserved") or ["h"])[0]
        ax.set_title(f"SGD breaks the conserved h at O(eta)\nh = {law[:60]}"
                     f"{'...' if len(law) > 60 else ''}", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        files.append(_path(out, "conserved_drift.png"))
        fig.savefig(files[-1], dpi=120)
        plt.close(fig)
    if spec is not None and spec.extra_plots is not None:
        files += spec.extra_plots(extra, out)
    return files


def rich_vs_lazy(starts: dict, out: str) -> list[str]:
    """Deep-linear rich and lazy starts: singular values, loss, NTK; RSMs and NTK over time."""
    plt = _pyplot()
    names = [n for n in ("rich", "lazy") if n in starts]
    if not names:
        return []
    files = []
    fig, axes = plt.subplots(3, len(names), figsize=(5 * len(names), 9), squeeze=False)
    for col, name in enumerate(names):
        d = starts[name]
        t = np.array(d["t"])
        sv, m, se = (np.array(d[k]) for k in ("sv", "sv_sgd_mean", "sv_sgd_se"))
        ax = axes[0, col]
        for a in range(sv.shape[1]):
            ax.plot(t, sv[:, a], "-", color=PALETTE[a], label=f"sigma_{a + 1} closed form")
            ax.fill_between(t, m[:, a] - 2 * se[:, a], m[:, a] + 2 * se[:, a], color=PALETTE[a],
                            alpha=0.3, label=f"sigma_{a + 1} SGD mean +- 2 SE")
        ax.set_title(f"{name} (lambda = {d['lambda']:g}): singular values of W2 W1", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylabel("singular value")
        ax.legend(fontsize=6)
        ax = axes[1, col]
        ax.semilogy(t, np.maximum(np.array(d["loss"]), 1e-16), color=PALETTE[0])
        ax.set_title(f"{name}: loss L(t) (closed form)", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylabel("loss")
        ax = axes[2, col]
        K = np.array(d["ntk"])
        n, o = K.shape[1], K.shape[3]
        G = K.transpose(0, 1, 3, 2, 4).reshape(len(t), n * o, n * o)
        ev = np.linalg.eigvalsh(G)[:, ::-1]
        for a in range(min(4, ev.shape[1])):
            ax.plot(t, ev[:, a], color=PALETTE[a], label=f"eigenvalue {a + 1}")
        change = np.linalg.norm(G - G[0], axis=(1, 2)) / np.linalg.norm(G[0])
        ax2 = ax.twinx()
        ax2.plot(t, change, "k--", label="relative change")
        ax2.set_ylabel("||Theta(t) - Theta(0)|| / ||Theta(0)||", fontsize=7)
        ax.set_title(f"{name}: NTK eigenvalues; dashed: relative change", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylabel("NTK eigenvalue")
        ax.legend(fontsize=6, loc="center right")
    fig.tight_layout()
    files.append(_path(out, "rich_vs_lazy.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(3 * len(names), 3, figsize=(10, 9 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        d = starts[name]
        t = np.array(d["t"])
        idx = [0, len(t) // 4, len(t) - 1]
        K = np.array(d["ntk"])
        n, o = K.shape[1], K.shape[3]
        G = K.transpose(0, 1, 3, 2, 4).reshape(len(t), n * o, n * o)
        rows = (("input RSM W1^T W1", np.array(d["rsm_in"]), "in"),
                ("output RSM W2 W2^T", np.array(d["rsm_out"]), "out"),
                ("NTK (input, output)", G, "k"))
        tag_name = {"in": "input unit", "out": "output unit", "k": "(input, output)"}
        for row, (label, M, tag) in enumerate(rows):
            size = M.shape[-1]
            ticks = [f"{tag}{j + 1}" for j in range(size)] if tag != "k" else \
                [f"x{j // o + 1},y{j % o + 1}" for j in range(size)]
            for c, k in enumerate(idx):
                ax = axes[3 * r + row, c]
                image = matrix_plot(ax, M[k], title=f"{name}: {label}, t = {t[k]:.2g}",
                                    row_labels=ticks, col_labels=ticks, xlabel=tag_name[tag],
                                    ylabel=tag_name[tag], symmetric=True, annotate=False)
                label_colorbar(image, "similarity" if tag != "k" else "kernel", ax=ax,
                               fraction=0.046)
    fig.tight_layout()
    files.append(_path(out, "representations.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    return files
