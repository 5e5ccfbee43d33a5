"""Prior knowledge in two-layer linear networks: rich, lazy, large and transfer starts.

Runs each start on one teacher in closed form (the lambda-Riccati solution of
symicl.analysis), reports the loss trajectory, the time to a loss threshold, how
exponential the decay is, and the final representational similarity matrices,
and measures closed form against the integrated flow at 50 x 20 x 30.  Writes
PNG plots and summary.json to --out (default numerics/studies/results/deep_linear_prior).

    .venv/bin/python -m numerics.studies.deep_linear_prior [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from symicl.analysis.prior_knowledge import (
    balanced_weights,
    compare_starts,
    standard_starts,
    teacher,
)
from symicl.analysis.representations import closed_form, flow_path

OUT = Path(__file__).with_name("results") / "deep_linear_prior"



def agreement_at_scale(seed: int = 7) -> dict:
    """Closed form vs scipy flow at 50 x 20 x 30 (rank-15 teacher), relative max differences."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    V, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    T = U @ np.diag(np.concatenate([np.linspace(3, 0.5, 15), np.zeros(15)])) @ V[:, :30].T
    times = [0.5, 2.0, 6.0, 12.0]
    rows = {}
    for lam, scale in ((0.0, 1e-2), (4.0, 1e-2), (-1.0, 0.3)):
        W1, W2 = balanced_weights(50, 20, 30, lam, scale, seed=3)
        t0 = time.perf_counter()
        cf = closed_form(T, W1, W2, times)
        t1 = time.perf_counter()
        fl = flow_path(T, W1, W2, times)
        t2 = time.perf_counter()
        rel = {q: float((np.abs(getattr(cf, q) - getattr(fl, q)).max(axis=(1, 2)) /
                         np.abs(getattr(fl, q)).max(axis=(1, 2))).max())
               for q in ("network", "rsm_in", "rsm_out")}
        rows[f"lambda={lam:g}"] = {**rel, "closed_form_s": t1 - t0, "flow_s": t2 - t1,
                                   "loss_end": float(cf.loss[-1])}
    return rows


def plots(res: dict, T, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symicl.plotting import PALETTE, label_colorbar, matrix_plot

    from .plotting import save

    paths = res["paths"]
    files = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for colour, (name, p) in zip(PALETTE, paths.items()):
        axes[0].semilogy(p.t, np.maximum(p.loss, 1e-16), color=colour, label=name)
        sv = p.singular_values()
        axes[1].plot(p.t, sv, color=colour)
        axes[1].plot([], [], color=colour, label=name)
    axes[0].axhline(res["threshold"], color="k", lw=0.5, ls=":", label="threshold")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("loss (closed form)")
    axes[0].set_title("expected loss from each start (closed form)")
    axes[0].legend()
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("singular values of W2 W1")
    axes[1].set_title("network singular values by start (colour)")
    axes[1].set_xlim(0, 12)
    axes[1].legend(fontsize=8)
    files.append(str(out / "loss_and_singular_values.png"))
    save(fig, files[-1])
    U, S, Vt = np.linalg.svd(T, full_matrices=False)
    refs = [(("(T^T T)^1/2", Vt.T @ np.diag(S) @ Vt), ("(T T^T)^1/2", U @ np.diag(S) @ U.T)),
            (("T^T T", T.T @ T), ("T T^T", T @ T.T))]
    ncols = len(paths) + len(refs)
    fig, axes = plt.subplots(2, ncols, figsize=(3.2 * ncols + 1, 6.4), layout="constrained",
                             squeeze=False)
    inputs = [f"x{i + 1}" for i in range(T.shape[1])]
    outputs = [f"y{i + 1}" for i in range(T.shape[0])]
    sides = (("input", inputs), ("output", outputs))
    images = []
    columns = [[(f"{name}: final {label}", M) for label, M in (("W1^T W1", p.rsm_in[-1]),
                                                                ("W2 W2^T", p.rsm_out[-1]))]
               for name, p in paths.items()]
    columns += [[(f"task: {label}", M) for label, M in ref] for ref in refs]
    for c, column in enumerate(columns):
        for r, ((title, M), (side, units)) in enumerate(zip(column, sides)):
            images.append(matrix_plot(axes[r, c], M / np.linalg.norm(M), title=title,
                                      row_labels=units, col_labels=units, xlabel=side,
                                      ylabel=side, symmetric=True, vmax=1.0, annotate=False))
            axes[r, c].title.set_fontsize(8)
    label_colorbar(images[-1], "entry / Frobenius norm of the matrix", ax=axes.ravel().tolist())
    fig.suptitle("final representational similarity matrices of each start vs the task's "
                 "structures (top: inputs, bottom: outputs)", fontsize=9)
    files.append(str(out / "final_rsms.png"))
    save(fig, files[-1])
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--no-scale", action="store_true", help="skip the 50 x 20 x 30 agreement")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # in = 5, hidden = out = 4 (lambda > 0 needs hidden <= out), rank-3 teachers
    T, T1 = teacher(4, 5, [3, 2, 1], 1), teacher(4, 5, [3, 2, 1], 2)
    starts = standard_starts(T, 4, previous=T1, lazy_lambda=20.0, large=3.0, small=1e-3)
    res = compare_starts(T, starts, np.linspace(0, 30, 1501), threshold=1e-3)
    summary = {"teacher_singular_values": [3, 2, 1, 0], "sizes": {"in": 5, "hidden": 4, "out": 4},
               "threshold": res["threshold"],
               "starts": {k: {q: v for q, v in row.items() if not q.endswith("_final")
                              or q.startswith(("loss", "network"))}
                          for k, row in res["starts"].items()}}
    if not args.no_scale:
        summary["agreement_50x20x30"] = agreement_at_scale()
    files = plots(res, T, out)
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    for k, row in summary["starts"].items():
        print(f"{k:9s} t(L<={res['threshold']:g}) = {row['time_to_threshold']:.3g}  "
              f"rate {row['rate']:.3g}  log-deviation {row['max_log_deviation']:.3g}  "
              f"plateau {row['plateau_fraction']:.3g}  RSM_in vs rich {row.get('rsm_in_vs_rich', 0):.3g}  "
              f"vs sqrt(T^T T) {row['rsm_in_vs_sqrt(T^T T)']:.3g}  vs T^T T {row['rsm_in_vs_T^T T']:.3g}")
    print(json.dumps(summary.get("agreement_50x20x30", {}), indent=1))
    print(f"wrote {', '.join(files)}, {out / 'summary.json'} ({summary['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
