"""Basins of the full linear transformer from generic starts, and its alignment phase.

The built-in ``linear-transformer`` with ``reduction="none"`` (all eight blocks
of W^P and W^Q, aligned tasks) is integrated with the exact derived flow
(generated Numba kernels, compiled DOP853) from random starts of several
scales and initialisations, at d = 2 (N = 8, s = (2, 1/2)) and d = 3 (the
default spectrum 2, 1, 1/2).  Each endpoint is refined by Newton's method on
the gradient (the generated Jacobian, least-squares steps across the zero
modes) and classified by

* its loss and Hessian index (negative eigenvalues) and zero modes;
* the learned map: per mode a, the main-path gain (P22 Q11)_aa and the
  null-path gain (P21 Q21)_aa; the mode is carried by the larger ("M" or "N",
  "0" if neither exceeds 1e-6).  The class is ``main`` (every mode on the main
  path: the paper's aligned solution), ``null`` (every mode on the null path)
  or ``mixed``; a critical point with index > 0 is a ``saddle``.

Fractions per class come with Wilson 95% intervals, per (dimension, init,
scale).  The same starts are run on the null-zero reduction (P21 = Q21 = 0),
and SGD (the hand-written Wishart simulator, batch 64) runs from the Gaussian
starts, finished by the exact flow to name its basin; a chi-square test of
homogeneity compares SGD's class counts with the flow's from disjoint starts
of the same law.  The alignment phase is measured with
:func:`symicl.analysis.alignment.alignment` along flow trajectories; its rate
is compared with the growth rates read off the derived flow's Jacobian at the
origin, and the learning order of the modes with the order of those rates.

    python -m numerics.studies.landscape_basins [--quick] [--out DIR]

writes ``summary.json`` (fractions with intervals, the endpoints found, tests), ``runs.json.gz``
(every run's endpoint: class, path pattern, loss, index, zero modes, gains), ``curves.npz``
(the alignment curves) and PNG plots (default numerics/studies/results/landscape_basins/).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from symicl.analysis.alignment import alignment
from symicl.codegen.kernels import kernels
from symicl.models import SPECS, build
from symicl.simulate import integrate
from symicl.spec import MatrixPacking

OUT = Path(__file__).with_name("results") / "landscape_basins"

INITS = ("gaussian", "xavier", "orthogonal")
CLASSES = ("main", "null", "mixed", "saddle", "not converged")

FULL = {
    "name": "full",
    "dims": {2: {"starts": 400, "scales": [1e-3, 1e-1, 1.0], "inits": list(INITS)},
             3: {"starts": 100, "scales": [1e-3, 1e-1, 1.0], "inits": list(INITS)}},
    "N": 8,
    "t_chunk": 400.0, "t_max": 8000.0, "grad_tol": 1e-8,
    # SGD: per scale, eta (smaller where the start's curvature is large) and flow time
    "sgd": {"dim": 2, "seeds": 200, "batch": 64, "seed": 20261203,
            "runs": {"0.001": {"eta": 0.01, "t": 80.0}, "0.1": {"eta": 0.01, "t": 60.0},
                     "1.0": {"eta": 0.002, "t": 20.0}}},
    "alignment": {"dim": 2, "runs": 60, "scales": [1e-3, 1e-1, 1.0], "t_end": 200.0,
                  "points": 241},
}

QUICK = {
    "name": "quick",
    "dims": {2: {"starts": 6, "scales": [1e-3, 1.0], "inits": ["gaussian", "orthogonal"]}},
    "N": 8,
    "t_chunk": 400.0, "t_max": 4000.0, "grad_tol": 1e-8,
    "sgd": {"dim": 2, "seeds": 4, "batch": 32, "seed": 20261203,
            "runs": {"0.001": {"eta": 0.01, "t": 50.0}}},
    "alignment": {"dim": 2, "runs": 4, "scales": [1e-3], "t_end": 150.0, "points": 61},
}


# -- statistics ----------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (95% by default)."""
    if n == 0:
        return (None, None)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def fractions(labels: list[str]) -> dict:
    """Count, fraction and Wilson 95% interval of each class."""
    n = len(labels)
    out = {}
    for c in CLASSES:
        k = sum(lab == c for lab in labels)
        if k or c in ("main", "null", "mixed"):
            out[c] = {"count": k, "fraction": k / n if n else float("nan"),
                      "ci95": list(wilson(k, n))}
    return out


def homogeneity(a: list[str], b: list[str]) -> dict:
    """Chi-square test of homogeneity of two samples of class labels (classes seen in
    either; Fisher's exact test on the 2x2 table when only two classes occur)."""
    from scipy import stats

    classes = [c for c in CLASSES if c in a or c in b]
    table = np.array([[sum(x == c for x in s) for c in classes] for s in (a, b)])
    out = {"classes": classes, "table": table.tolist()}
    if len(classes) < 2:
        out.update({"test": "none (one class in both samples)", "p_value": 1.0})
    elif len(classes) == 2:
        out.update({"test": "Fisher exact (2x2)",
                    "p_value": float(stats.fisher_exact(table)[1])})
    else:
        chi2, p, dof, _ = stats.chi2_contingency(table)
        out.update({"test": "chi-square homogeneity", "chi2": float(chi2), "dof": int(dof),
                    "p_value": float(p)})
    return out


# -- models and starts ---------------------------------------------------------------------
class Setup:
    """The full and null-zero models at one dimension, their kernels and constants."""

    def __init__(self, dim: int, N: int):
        spec = SPECS["linear-transformer"]
        self.dim, self.D = dim, 2 * dim
        self.options = {"dim": dim, "tasks": "aligned", "N": N}
        self.constants = spec.constants(self.options)
        self.models, self.k, self.pack = {}, {}, {}
        for red in ("none", "null-zero"):
            m = build("linear-transformer", dim=dim, reduction=red)
            self.models[red] = m
            self.k[red] = kernels(m, "numba")
            self.pack[red] = MatrixPacking(m, {"WP": (self.D, self.D), "WQ": (self.D, self.D)})
        self.c = self.k["none"].constants_vector(self.constants)


def start(init: str, scale: float, D: int, rng: np.random.Generator):
    """W^P, W^Q (D x D) of one start.

    gaussian: iid N(0, scale^2) entries; xavier: Glorot normal, N(0, scale^2 2/(fan_in +
    fan_out)) = N(0, scale^2 / D); orthogonal: scale times a Haar orthogonal matrix.
    """
    mats = []
    for _ in range(2):
        G = rng.standard_normal((D, D))
        if init == "gaussian":
            W = scale * G
        elif init == "xavier":
            W = scale * G * math.sqrt(2.0 / (D + D))
        elif init == "orthogonal":
            Qm, R = np.linalg.qr(G)
            W = scale * Qm * np.sign(np.diag(R))
        else:
            raise SystemExit(f"unknown initialisation {init!r}; choose one of {', '.join(INITS)}")
        mats.append(W)
    return {"WP": mats[0], "WQ": mats[1]}


def start_rng(dim: int, init: str, scale_index: int, i: int) -> np.random.Generator:
    """The generator of start i: fixed by (dim, init, scale, i) alone, so any subset of
    runs reproduces its own starts."""
    return np.random.default_rng([dim, INITS.index(init), scale_index, i])


# -- flow, refinement, classification ------------------------------------------------------
def flow_to_rest(setup: Setup, red: str, theta0, cfg: dict):
    """Integrate the exact flow in chunks until |grad L| < grad_tol or t_max."""
    model, k, c = setup.models[red], setup.k[red], setup.c
    theta, t = np.asarray(theta0, dtype=float), 0.0
    while True:
        tr = integrate(model, theta, cfg["t_chunk"], setup.constants, method="numba-dop853",
                       rtol=1e-10, atol=1e-12, max_steps=2_000_000)
        theta, t = tr.theta[-1], t + cfg["t_chunk"]
        g = float(np.linalg.norm(k.flow(theta, c)))
        if g < cfg["grad_tol"] or t >= cfg["t_max"]:
            return theta, t, g


def newton(k, theta, c, tol=1e-13, iters=30):
    """Newton on F(theta) = -grad L = 0 with least-squares steps (the zero modes of the
    symmetries and inert blocks are left alone)."""
    theta = np.array(theta, dtype=float)
    g = np.linalg.norm(k.flow(theta, c))
    for _ in range(iters):
        if g < tol:
            break
        J = k.jacobian(theta, c)
        step = np.linalg.lstsq(J, -k.flow(theta, c), rcond=1e-10)[0]
        trial = theta + step
        gt = np.linalg.norm(k.flow(trial, c))
        if not gt < g:
            break
        theta, g = trial, gt
    return theta, float(g)


def classify(setup: Setup, red: str, theta, grad: float, cfg: dict) -> dict:
    """Refine, then name the critical point: loss, Hessian index and zero modes, the
    per-mode gains on the main and null paths, the alignment measures, the class."""
    k, c, d = setup.k[red], setup.c, setup.dim
    converged = grad < cfg["grad_tol"]
    theta, g = newton(k, theta, c)
    H = -k.jacobian(theta, c)
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    cut = 1e-7 * max(1.0, float(np.max(np.abs(ev))))
    index, zero = int(np.sum(ev < -cut)), int(np.sum(np.abs(ev) <= cut))
    W = setup.pack[red].unpack(theta)
    P, Q = W["WP"], W["WQ"]
    main = np.diag(P[d:, d:] @ Q[:d, :d])
    null = np.diag(P[d:, :d] @ Q[d:, :d])
    paths = "".join("0" if max(abs(m), abs(n)) < 1e-6 else ("M" if abs(m) >= abs(n) else "N")
                    for m, n in zip(main, null))
    if not converged:
        label = "not converged"
    elif index > 0:
        label = "saddle"
    elif set(paths) <= {"M"}:
        label = "main"
    elif set(paths) <= {"N"}:
        label = "null"
    else:
        label = "mixed"
    al = alignment(setup.models[red], theta)
    return {"label": label, "paths": paths, "loss": float(k.loss(theta, c)),
            "grad_flow_end": grad, "grad_refined": g, "index": index, "zero_modes": zero,
            "min_positive_eigenvalue": float(np.min(ev[ev > cut])) if np.any(ev > cut) else None,
            "gain_main": main.tolist(), "gain_null": null.tolist(),
            "null_share": float(al.null_share), "off_diagonal": float(al.off_diagonal),
            "misalignment": float(al.misalignment), "theta": theta.tolist()}


# -- basins ----------------------------------------------------------------------------------
def basins(setup: Setup, dcfg: dict, cfg: dict, progress) -> dict:
    d = setup.dim
    out = {"constants": setup.constants, "cells": []}
    for init in dcfg["inits"]:
        for si, scale in enumerate(dcfg["scales"]):
            rows = {"none": [], "null-zero": []}
            for i in range(dcfg["starts"]):
                W0 = start(init, scale, setup.D, start_rng(d, init, si, i))
                for red in rows:
                    theta0 = setup.pack[red].pack(W0)
                    theta, t, g = flow_to_rest(setup, red, theta0, cfg)
                    r = classify(setup, red, theta, g, cfg)
                    r["t_flow"] = t
                    del r["theta"]
                    rows[red].append(r)
                progress(f"d={d} {init} scale {scale:g}: {i + 1}/{dcfg['starts']}")
            cell = {"init": init, "scale": scale, "starts": dcfg["starts"]}
            for red, rs in rows.items():
                labels = [r["label"] for r in rs]
                cell[red] = {"fractions": fractions(labels),
                             "patterns": _counts([r["paths"] for r in rs]),
                             "mode_on_main_path": _mode_paths(rs, d),
                             "not_converged": sum(lab == "not converged" for lab in labels),
                             "runs": rs}
            out["cells"].append(cell)
    _critical_points(out)
    return out


def _mode_paths(rows: list, d: int) -> list:
    """Per mode a: how many endpoints carry it on the main path, with a Wilson interval."""
    out = []
    for a in range(d):
        k = sum(r["paths"][a] == "M" for r in rows)
        out.append({"mode": a + 1, "count": k, "of": len(rows), "ci95": list(wilson(k, len(rows)))})
    return out


def _counts(items) -> dict:
    keys = sorted(set(items))
    return {k: sum(x == k for x in items) for k in keys}


def _critical_points(out: dict) -> None:
    """The distinct endpoints by (class, path pattern, loss to 1e-9): how often each
    occurs, its index and zero modes, and whether its loss is the least found."""
    table = {}
    for cell in out["cells"]:
        for red in ("none", "null-zero"):
            for r in cell[red]["runs"]:
                key = (red, r["label"], r["paths"], round(r["loss"], 9))
                e = table.setdefault(key, {"reduction": red, "label": r["label"],
                                           "paths": r["paths"], "loss": r["loss"],
                                           "index": r["index"], "zero_modes": r["zero_modes"],
                                           "count": 0})
                e["count"] += 1
    found = sorted(table.values(), key=lambda e: (e["reduction"], e["loss"]))
    best = min((e["loss"] for e in found if e["label"] != "not converged"), default=None)
    for e in found:
        e["excess_loss"] = e["loss"] - best if best is not None else None
        e["global"] = best is not None and abs(e["loss"] - best) < 1e-9
    out["critical_points"] = found
    out["least_loss"] = best


# -- SGD ---------------------------------------------------------------------------------------
def sgd(setup: Setup, dcfg: dict, cfg: dict, flow_cells: list, progress) -> dict:
    """SGD from the Gaussian starts 0..seeds-1 of each scale, finished by the exact flow."""
    scfg = cfg["sgd"]
    spec = SPECS["linear-transformer"]
    model = setup.models["none"]
    sim = spec.simulator(model, setup.options, setup.constants, scfg["batch"])
    out = {"batch": scfg["batch"], "seeds": scfg["seeds"], "scales": {}}
    for si, scale in enumerate(dcfg["scales"]):
        run = scfg["runs"].get(repr(float(scale)))
        if run is None:
            continue
        S, eta = scfg["seeds"], run["eta"]
        steps = int(round(run["t"] / eta))
        theta = np.stack([setup.pack["none"].pack(
            start("gaussian", scale, setup.D, start_rng(setup.dim, "gaussian", si, i)))
            for i in range(S)])
        rng = np.random.default_rng([scfg["seed"], si])
        alive = np.ones(S, dtype=bool)
        t0 = time.perf_counter()
        for step in range(steps):
            _, g = sim.minibatch(theta, rng)
            theta[alive] -= eta * g[alive]
            bad = ~np.all(np.isfinite(theta), axis=1) | (np.max(np.abs(theta), axis=1) > 1e3)
            alive &= ~bad
            theta[~alive] = np.nan_to_num(theta[~alive])
            if step % 500 == 0:
                progress(f"SGD scale {scale:g}: step {step}/{steps}")
        sgd_s = time.perf_counter() - t0
        rows = []
        for i in range(S):
            if not alive[i]:
                rows.append({"label": "diverged"})
                continue
            th, t, gn = flow_to_rest(setup, "none", theta[i], cfg)
            r = classify(setup, "none", th, gn, cfg)
            del r["theta"]
            rows.append(r)
        labels = [r["label"] for r in rows]
        cell = next(c for c in flow_cells if c["init"] == "gaussian" and c["scale"] == scale)
        flow_runs = cell["none"]["runs"]
        paired = [f["label"] for f in flow_runs[:S]]
        disjoint = [f["label"] for f in flow_runs[S:]]
        agree = sum(a == b for a, b in zip(labels, paired))
        out["scales"][repr(float(scale))] = {
            "eta": eta, "t": run["t"], "steps": steps, "sgd_seconds": sgd_s,
            "diverged": int(np.sum(~alive)),
            "fractions": fractions([x for x in labels if x != "diverged"]),
            "patterns": _counts([r.get("paths", "-") for r in rows]),
            "same_class_as_flow_from_same_start": {"count": agree, "of": S,
                                                   "ci95": list(wilson(agree, S))},
            "vs_flow_disjoint_starts": (homogeneity(labels, disjoint) if disjoint else None),
            "vs_flow_same_starts": homogeneity(labels, paired),
            "runs": rows}
    return out


# -- alignment phase ---------------------------------------------------------------------------
def growth_rates(setup: Setup) -> dict:
    """Growth rates at the origin, read off the generated Jacobian of the derived flow: its
    positive eigenvalues, each with its eigenspace and the mode a whose main-path pair
    (P22_aa, Q11_aa) it contains."""
    k, d = setup.k["none"], setup.dim
    P = len(k.parameters)
    J = k.jacobian(np.zeros(P), setup.c)
    ev, vec = np.linalg.eigh(0.5 * (J + J.T))
    names = list(k.parameters)
    rates = []
    for value in sorted(set(np.round(ev[ev > 1e-9], 9)), reverse=True):
        basis = vec[:, np.abs(ev - value) < 1e-7]
        weight = [float(np.sum(basis[[names.index(f"WP_{d + a + 1}_{d + a + 1}"),
                                      names.index(f"WQ_{a + 1}_{a + 1}")]] ** 2))
                  for a in range(d)]
        rates.append({"rate": float(value), "multiplicity": basis.shape[1],
                      "mode": int(np.argmax(weight)) + 1, "basis": basis})
    return rates


def _pair(names, d, a, path):
    """Indices of mode a's pair on a path: (P22_aa, Q11_aa) main, (P21_aa, Q21_aa) null."""
    if path == "M":
        return [names.index(f"WP_{d + a}_{d + a}"), names.index(f"WQ_{a}_{a}")]
    return [names.index(f"WP_{d + a}_{a}"), names.index(f"WQ_{d + a}_{a}")]


def saddle_rates(setup: Setup, cfg: dict) -> list:
    """Growth rates at the saddles where only mode 1 is learned (on the main or the null
    path): the positive eigenvalues of the generated Jacobian there, each named by the
    (mode, path) pair its eigenvector lies on.  Mode 2 escapes these saddles, not the
    origin, so its rate here sets its learning time and can favour one path."""
    k, d, c = setup.k["none"], setup.dim, setup.c
    names = list(k.parameters)
    out = []
    for path in ("M", "N"):
        theta0 = np.zeros(len(names))
        theta0[_pair(names, d, 1, path)] = 0.3
        theta, _, g = flow_to_rest(setup, "none", theta0, cfg)
        theta, g = newton(k, theta, c)
        J = k.jacobian(theta, c)
        ev, V = np.linalg.eigh(0.5 * (J + J.T))
        rates = []
        for i in np.flatnonzero(ev > 1e-9):
            v = V[:, i]
            weight = {(a, p): float(np.sum(v[_pair(names, d, a, p)] ** 2))
                      for a in range(1, d + 1) for p in ("M", "N")}
            (a, p), w = max(weight.items(), key=lambda kv: kv[1])
            rates.append({"rate": float(ev[i]), "mode": a, "path": p, "weight": w})
        out.append({"mode_1_path": path, "loss": float(k.loss(theta, c)), "grad": g,
                    "rates": sorted(rates, key=lambda r: -r["rate"])})
    return out


def alignment_phase(setup: Setup, cfg: dict, progress) -> dict:
    """mu, delta, nu and the mode gains along the flow from Gaussian starts; the decay
    rate of log(||off-diagonal|| / ||diagonal||) in the linear phase against the largest
    growth rate, and the learning order against the order of the growth rates."""
    acfg, d = cfg["alignment"], setup.dim
    model, k, c = setup.models["none"], setup.k["none"], setup.c
    rates = growth_rates(setup)
    r_by_mode = {r["mode"]: r for r in rates}
    predicted_order = [r["mode"] for r in rates]
    t = np.concatenate([[0.0], np.geomspace(1e-2, acfg["t_end"], acfg["points"] - 1)])
    J0 = k.jacobian(np.zeros(len(k.parameters)), c)
    lam0, V0 = np.linalg.eigh(0.5 * (J0 + J0.T))
    out = {"t": t.tolist(), "growth_rates": [{k2: v for k2, v in r.items() if k2 != "basis"}
                                             for r in rates],
           "predicted_order": predicted_order, "scales": {},
           "saddles_mode_1_learned": saddle_rates(setup, cfg)}
    scales_all = cfg["dims"][d]["scales"]
    for scale in acfg["scales"]:
        si = scales_all.index(scale)
        mu, delta, nu, gains, decay, halves, ratio, order_ok = [], [], [], [], [], [], [], []
        align_t, align_lin = [], []
        for i in range(acfg["runs"]):
            W0 = start("gaussian", scale, setup.D, start_rng(d, "gaussian", si, i))
            theta0 = setup.pack["none"].pack(W0)
            tr = integrate(model, theta0, float(t[-1]), setup.constants, t_eval=t,
                           method="numba-dop853", rtol=1e-10, atol=1e-12, max_steps=2_000_000)
            al = alignment(model, tr.theta)
            mu.append(al.misalignment)
            delta.append(al.off_diagonal)
            nu.append(al.null_share)
            W = setup.pack["none"].unpack(tr.theta)
            P, Q = W["WP"], W["WQ"]
            g = (np.diagonal(P[:, d:, d:] @ Q[:, :d, :d], axis1=1, axis2=2)
                 + np.diagonal(P[:, d:, :d] @ Q[:, d:, :d], axis1=1, axis2=2))
            gains.append(g)
            decay.append(_decay_rate(t, al, tr.loss))
            # the linearised flow at the origin from the same start, theta(t) = e^{J0 t} theta0
            # (up to where e^{r t} stays far below overflow)
            tl = t[t * lam0.max() < 200.0]
            lin = (V0 * np.exp(np.outer(tl, lam0))[:, None, :]) @ (V0.T @ theta0)
            half = al.off_diagonal[0] / 2
            align_t.append(_crossing(t, al.off_diagonal, half))
            align_lin.append(_crossing(tl, alignment(model, lin).off_diagonal, half))
            th = [_half_time(t, g[:, a]) for a in range(d)]
            halves.append(th)
            # the linear prediction: mode a escapes at (1/r_a) log(c_a / eps_a), eps_a and
            # c_a the norms of the start's and the end's projections on its growing eigenspace
            pred = []
            for a in range(1, d + 1):
                B = r_by_mode[a]["basis"]
                eps_a = np.linalg.norm(B.T @ theta0)
                c_a = np.linalg.norm(B.T @ tr.theta[-1])
                pred.append(math.log(c_a / eps_a) / r_by_mode[a]["rate"]
                            if eps_a > 0 and c_a > eps_a else None)
            ratio.append([h / p if (h is not None and p) else None for h, p in zip(th, pred)])
            if all(h is not None for h in th):
                order = [a + 1 for a in np.argsort(th, kind="stable")]
                order_ok.append(order == predicted_order)
            progress(f"alignment scale {scale:g}: {i + 1}/{acfg['runs']}")
        n_ok, n_order = sum(order_ok), len(order_ok)
        dec = [x for x in decay if x is not None]
        out["scales"][repr(float(scale))] = {
            "misalignment": np.array(mu).tolist(), "off_diagonal": np.array(delta).tolist(),
            "null_share": np.array(nu).tolist(),
            "gains": np.array(gains).tolist(),
            "decay_rate_off_diagonal": {"per_run": decay,
                                        "median": float(np.median(dec)) if dec else None,
                                        "largest_growth_rate": rates[0]["rate"]},
            "alignment_time": {
                "definition": "first t with off-diagonal share delta(t) <= delta(0) / 2, on "
                              "the flow and on its linearisation at the origin from the "
                              "same start",
                "flow": align_t, "linearised": align_lin,
                "median_ratio": _median_ratio(align_t, align_lin)},
            "half_times": halves,
            "half_time_over_linear_prediction": ratio,
            "order_as_predicted": {"count": n_ok, "of": n_order,
                                   "ci95": list(wilson(n_ok, n_order))},
        }
    return out


def _crossing(t, y, level):
    """First time y(t) falls to ``level`` (linear interpolation); None if it never does."""
    y = np.asarray(y, dtype=float)
    below = np.flatnonzero(y <= level)
    if not below.size:
        return None
    j = below[0]
    if j == 0:
        return float(t[0])
    return float(t[j - 1] + (t[j] - t[j - 1]) * (y[j - 1] - level) / (y[j - 1] - y[j]))


def _median_ratio(a, b):
    r = [x / y for x, y in zip(a, b) if x is not None and y]
    return float(np.median(r)) if r else None


def _half_time(t, a):
    """First time the gain reaches half its final value (linear interpolation)."""
    target = a[-1] / 2
    if a[-1] == 0:
        return None
    above = np.flatnonzero(np.sign(a[-1]) * (a - target) >= 0)
    if not above.size or above[0] == 0:
        return None
    j = above[0]
    return float(t[j - 1] + (t[j] - t[j - 1]) * (target - a[j - 1]) / (a[j] - a[j - 1]))


def _decay_rate(t, al, loss):
    """-d/dt log(||off||/||diag||) fitted over the linear phase: the records after t = 0
    where the loss has fallen by less than 1% of its total fall and 0.05 < delta < 0.95."""
    delta = np.asarray(al.off_diagonal)
    fall = loss[0] - loss[-1]
    if not fall > 0:
        return None
    keep = (t > 0) & (loss[0] - loss < 0.01 * fall) & (delta > 0.05) & (delta < 0.95)
    if np.sum(keep) < 4:
        return None
    y = np.log(delta[keep] / np.sqrt(1 - delta[keep] ** 2))
    slope = np.polyfit(t[keep], y, 1)[0]
    return float(-slope)


def _err(f, lo, hi):
    """Error-bar lengths below and above (clipped at 0 against round-off)."""
    return [np.maximum(f - lo, 0.0), np.maximum(hi - f, 0.0)]


# -- plots -------------------------------------------------------------------------------------
def plots(summary: dict, out: Path) -> list[str]:
    from symicl.plotting import PALETTE

    from .plotting import band_plot, check_labels, save, subplots

    files = []
    dims = sorted(summary["basins"], key=int)
    inits = sorted({c["init"] for dm in dims for c in summary["basins"][dm]["cells"]},
                   key=INITS.index)
    fig, axes = subplots(len(dims), len(inits), w=3.8, h=3.0)
    for r, dm in enumerate(dims):
        cells = summary["basins"][dm]["cells"]
        for col, init in enumerate(inits):
            ax = axes[r, col]
            cs = [c for c in cells if c["init"] == init]
            xs = np.array([c["scale"] for c in cs])
            for j, (cls, colour) in enumerate(zip(("main", "null", "mixed"), PALETTE)):
                f = np.array([c["none"]["fractions"][cls]["fraction"] for c in cs])
                lo = np.array([c["none"]["fractions"][cls]["ci95"][0] for c in cs])
                hi = np.array([c["none"]["fractions"][cls]["ci95"][1] for c in cs])
                shift = xs * 1.12 ** (j - 1)
                ax.errorbar(shift, f, yerr=_err(f, lo, hi), fmt="o-", color=colour, capsize=3,
                            label=f"flow: {cls}")
            sg = summary.get("sgd")
            if sg and int(dm) == sg["dim"] and init == "gaussian":
                for j, (cls, colour) in enumerate(zip(("main", "null", "mixed"), PALETTE)):
                    pts = [(float(s), v["fractions"][cls]) for s, v in sg["scales"].items()]
                    sx = np.array([p[0] for p in pts]) * 1.12 ** (j - 1) * 1.04
                    f = np.array([p[1]["fraction"] for p in pts])
                    lo = np.array([p[1]["ci95"][0] for p in pts])
                    hi = np.array([p[1]["ci95"][1] for p in pts])
                    ax.errorbar(sx, f, yerr=_err(f, lo, hi), fmt="s", mfc="none", color=colour,
                                capsize=2, label=f"SGD: {cls}")
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("initial scale")
            ax.set_ylabel("fraction of starts")
            ax.set_title(f"d = {dm}, {init} init")
            if r == 0 and col == 0:
                ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Where the exact flow ends (Wilson 95% intervals)")
    assert not check_labels(fig), check_labels(fig)
    save(fig, out / "basin_fractions.png")
    files.append("basin_fractions.png")

    al = summary["alignment"]
    t = np.asarray(al["t"])
    keys = (("misalignment", "misalignment mu"), ("off_diagonal", "off-diagonal share delta"),
            ("null_share", "null share nu"))
    fig, axes = subplots(1, 4, w=3.6, h=2.9)
    for colour, (scale, v) in zip(PALETTE, al["scales"].items()):
        for ax, (key, name) in zip(axes[0], keys):
            band_plot(ax, t[1:], np.asarray(v[key])[:, 1:], label=f"scale {float(scale):g}",
                      color=colour)
            ax.set_xscale("log")
            ax.set_xlabel("t (flow time)")
            ax.set_ylabel(name)
            ax.set_title(name)
        g = np.asarray(v["gains"])
        for a in range(g.shape[2]):
            band_plot(axes[0, 3], t[1:], g[:, 1:, a], color=colour,
                      label=f"scale {float(scale):g}, mode {a + 1}")
    axes[0, 3].set_xscale("log")
    axes[0, 3].set_xlabel("t (flow time)")
    axes[0, 3].set_ylabel("gain a_a (main + null path)")
    axes[0, 3].set_title("mode gains")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Alignment phase from Gaussian starts, d = 2 (mean, SE band, min/max dotted)")
    assert not check_labels(fig), check_labels(fig)
    save(fig, out / "alignment.png")
    files.append("alignment.png")

    fig, axes = subplots(1, len(dims), w=4.2, h=3.2)
    for ax, dm in zip(axes[0], dims):
        cps = [e for e in summary["basins"][dm]["critical_points"]
               if e["reduction"] == "none" and e["label"] != "not converged"]
        for colour, cls in zip(PALETTE, ("main", "null", "mixed", "saddle")):
            pts = [e for e in cps if e["label"] == cls]
            if pts:
                ax.scatter([e["index"] for e in pts], [e["loss"] for e in pts],
                           s=[12 + 4 * math.sqrt(e["count"]) for e in pts], color=colour,
                           label=cls, alpha=0.8)
        top = max([e["index"] for e in cps] + [1])
        ax.set_xticks(range(top + 1))
        ax.set_xlim(-0.5, top + 0.5)
        ax.set_xlabel("Hessian index (negative eigenvalues)")
        ax.set_ylabel("loss at the endpoint")
        ax.set_title(f"endpoints reached, d = {dm}")
        ax.legend(fontsize=7)
    save(fig, out / "endpoints_loss_index.png")
    files.append("endpoints_loss_index.png")
    return files


# -- driver ------------------------------------------------------------------------------------
def run(cfg: dict, progress=None) -> dict:
    """Run one configuration; the summary (without plots)."""
    progress = progress or (lambda msg: None)
    summary = {"config": {k: v for k, v in cfg.items()}, "basins": {}}
    setups = {}
    t0 = time.perf_counter()
    for dim, dcfg in cfg["dims"].items():
        setups[dim] = Setup(dim, cfg["N"])
        summary["basins"][str(dim)] = basins(setups[dim], dcfg, cfg, progress)
    summary["seconds_basins"] = time.perf_counter() - t0
    s2 = setups[cfg["sgd"]["dim"]]
    t0 = time.perf_counter()
    summary["sgd"] = {"dim": cfg["sgd"]["dim"], **sgd(
        s2, cfg["dims"][cfg["sgd"]["dim"]], cfg,
        summary["basins"][str(cfg["sgd"]["dim"])]["cells"], progress)}
    summary["seconds_sgd"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary["alignment"] = alignment_phase(setups[cfg["alignment"]["dim"]], cfg, progress)
    summary["seconds_alignment"] = time.perf_counter() - t0
    summary["headline"] = headline(summary)
    return summary


def headline(summary: dict) -> dict:
    """The numbers the README quotes: mixed fraction per dimension over every start from
    scales <= 0.1 (all inits pooled), and whether the null-zero reduction ever ends above
    the least loss."""
    out = {}
    for dm, b in summary["basins"].items():
        small = [r for c in b["cells"] if c["scale"] <= 0.1 for r in c["none"]["runs"]]
        every = [r for c in b["cells"] for r in c["none"]["runs"]]
        nz = [r for c in b["cells"] for r in c["null-zero"]["runs"]]
        best = b["least_loss"]
        k = sum(r["label"] == "mixed" for r in small)
        ka = sum(r["label"] == "mixed" for r in every)
        spurious = [r for r in every if r["label"] != "not converged"
                    and r["loss"] - best > 1e-9]
        out[dm] = {
            "mixed_small_starts": {"count": k, "of": len(small), "fraction": k / len(small),
                                   "ci95": list(wilson(k, len(small)))},
            "mixed_all_starts": {"count": ka, "of": len(every), "fraction": ka / len(every),
                                 "ci95": list(wilson(ka, len(every)))},
            "above_least_loss_all_starts": {"count": len(spurious), "of": len(every),
                                            "ci95": list(wilson(len(spurious), len(every)))},
            "least_loss": best,
            "null_zero_at_least_loss": sum(abs(r["loss"] - best) < 1e-9 for r in nz),
            "null_zero_runs": len(nz),
            "not_converged": sum(r["label"] == "not converged" for r in every + nz),
        }
    sg = summary.get("sgd")
    if sg:
        out["sgd_vs_flow"] = {
            scale: {"p_value_disjoint_starts": (v["vs_flow_disjoint_starts"] or {}).get("p_value"),
                    "same_class_as_flow_from_same_start": v["same_class_as_flow_from_same_start"],
                    "sgd_fractions": {k: v["fractions"][k]["fraction"]
                                      for k in ("main", "null", "mixed")},
                    "diverged": v["diverged"]}
            for scale, v in sg["scales"].items()}
    al = summary.get("alignment")
    if al:
        rows = {}
        for scale, v in al["scales"].items():
            r = np.array([[np.nan if x is None else x for x in row]
                          for row in v["half_time_over_linear_prediction"]], dtype=float)
            ok = np.all(np.isfinite(r), axis=1)
            rows[scale] = {"median_half_time_over_linear_prediction":
                           (np.median(r[ok], axis=0).tolist() if np.any(ok) else None),
                           "order_as_predicted": v["order_as_predicted"],
                           "median_off_diagonal_decay_rate":
                           v["decay_rate_off_diagonal"]["median"],
                           "median_alignment_time_over_linearised":
                           v["alignment_time"]["median_ratio"],
                           "median_alignment_time":
                           _median([x for x in v["alignment_time"]["flow"] if x is not None])}
        out["alignment"] = {"growth_rates_origin": [g["rate"] for g in al["growth_rates"]],
                            "saddles_mode_1_learned": al["saddles_mode_1_learned"],
                            "scales": rows}
    return out


def _curves(summary: dict) -> dict:
    """Move the per-run alignment curves out of the summary (into curves.npz), leaving
    their seed bands (mean, SE, min, max) in it."""
    from .common import band

    curves = {"t": np.asarray(summary["alignment"]["t"])}
    for scale, v in summary["alignment"]["scales"].items():
        for key in ("misalignment", "off_diagonal", "null_share", "gains"):
            arr = np.asarray(v.pop(key), dtype=float)
            curves[f"{key}_scale_{scale}"] = arr
            b = band(arr)
            v[f"{key}_band"] = {k: np.asarray(b[k]).tolist() for k in ("mean", "se", "min", "max")}
    return curves


def _runs(summary: dict) -> dict:
    """Move every run's record out of the summary (into runs.json.gz), keyed by
    "d/init/scale/reduction" for the flow and "sgd/scale" for SGD."""
    runs = {}
    for dm, b in summary["basins"].items():
        for c in b["cells"]:
            for red in ("none", "null-zero"):
                runs[f"{dm}/{c['init']}/{c['scale']!r}/{red}"] = c[red].pop("runs")
    for scale, v in summary.get("sgd", {}).get("scales", {}).items():
        runs[f"sgd/{scale}"] = v.pop("runs")
    return runs


def _median(xs):
    return float(np.median(xs)) if xs else None


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts (seconds)")
    ap.add_argument("--out", default=None, help=f"output folder (default {OUT})")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = Path(args.out) if args.out else OUT
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    last = [t0]

    def progress(msg):
        now = time.perf_counter()
        if now - last[0] > 10:
            last[0] = now
            print(f"[landscape_basins {now - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    summary = run(cfg, progress)
    summary["seconds_total"] = time.perf_counter() - t0
    files = [] if args.no_plots else plots(summary, out)
    summary["plots"] = files
    curves = _curves(summary)
    np.savez_compressed(out / "curves.npz", **curves)
    runs = _runs(summary)
    with gzip.GzipFile(out / "runs.json.gz", "wb", mtime=0) as fh:
        fh.write((json.dumps(runs, default=_json_default, allow_nan=False) + "\n").encode())
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default,
                                                 allow_nan=False) + "\n")
    print(json.dumps(summary["headline"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
