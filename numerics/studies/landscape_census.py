"""Census of the critical points of the full linear transformer at d = 2 (issue 14).

    python -m numerics.studies.landscape_census [--starts 6000] [--out DIR]

The model is ``linear-transformer --dim 2 --reduction none`` (16 active
parameters; the loss is quartic) at N = 8 with an anisotropic spectrum
s = (2, 1/2) and an isotropic one s = (1, 1).

Method (no complete one fits: bertini2 installs here, but a total-degree
homotopy has 3^16 = 43 046 721 paths, and 3^15 on the gauge slice):

1. many-start Levenberg-Marquardt Newton on grad L = 0 (batched NumPy),
   and the same on the symmetry-reduced system of
   :func:`symicl.analysis.symmetries.gauge_fix` (one coordinate fixed along
   the scaling orbits: 15 equations in 15 unknowns), from Gaussian starts
   at scales 0.25, 0.5, 1, 2 (seeded);
2. every converged root moved to the balanced point of its scaling orbit
   (the Noether charge ||W^P||^2 - ||W^Q||^2 = 0), coordinates below 1e-9
   set to 0, and refined with
   pseudo-inverse Newton in mpmath at 60 digits to |grad L| < 1e-45
   (:mod:`symicl.analysis.critical_points`);
3. deduplicated modulo the symmetry group: the continuous scaling group
   (with its sign, (W^P, W^Q) -> (c W^P, W^Q / c), c != 0) and the discrete
   group of signed permutations D = diag(D_x, D_y) of the token
   coordinates with L(D W^P D^T, D W^Q D^T) = L (found by exact check):
   two roots are one class when their loss agrees and their learned maps
   agree after some D (the learned map, symmetrised in the two context
   indices since Z Z^T is symmetric, is what the model predicts on the
   query as a function of the context);
4. each class classified at 50 digits by the Hessian: index, zero modes
   against the orbit dimension, loss, learned map.

Writes ``census.json``, ``loss_vs_index.png`` and ``saturation.png`` under
``--out`` (default numerics/studies/results/landscape_census) and the
classes' refined points for the committed derivation to
``symicl/data/critical_points/linear_transformer_full_d2.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import mpmath as mp
import numpy as np
import sympy as sp

from symicl.analysis.critical_points import PrecisionSystem, classify, refine
from symicl.analysis.symmetries import gauge_fix, orbit_directions, symmetries
from symicl.models import build

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "symicl" / "data" / "critical_points" / "linear_transformer_full_d2.json"
CASES = {"anisotropic": {"N": 8, "s_1": 2, "s_2": "1/2"},
         "isotropic": {"N": 8, "s_1": 1, "s_2": 1}}
SCALES = (0.25, 0.5, 1.0, 2.0)
DIM = 2


def log(msg: str) -> None:
    print(f"[census {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- Newton ------------------------------------------------------------------------------------

def lm_solve(F, J, x0: np.ndarray, iters: int = 400, tol: float = 1e-11):
    """Batched Levenberg-Marquardt for F(x) = 0; returns (x, |F|, converged)."""
    x = x0.copy()
    mu = np.full(len(x), 1e-3)
    r = np.linalg.norm(F(x), axis=-1)
    n = x.shape[1]
    eye = np.eye(n)
    for _ in range(iters):
        live = r >= tol
        if not live.any():
            break
        xi = x[live]
        Fx, Jx = F(xi), J(xi)
        JT = np.swapaxes(Jx, -1, -2)
        A = JT @ Jx + mu[live, None, None] * eye
        with np.errstate(all="ignore"):
            try:
                step = -np.linalg.solve(A, (JT @ Fx[..., None]))[..., 0]
            except np.linalg.LinAlgError:
                step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0]
                                  for a, b in zip(A, JT @ Fx[..., None])])[..., 0]
            xn = xi + step
            rn = np.linalg.norm(F(xn), axis=-1)
        good = np.isfinite(rn) & (rn < r[live])
        idx = np.flatnonzero(live)
        x[idx[good]] = xn[good]
        r[idx[good]] = rn[good]
        mu[idx[good]] = np.maximum(mu[idx[good]] / 3, 1e-15)
        mu[idx[~good]] = np.minimum(mu[idx[~good]] * 4, 1e12)
    return x, r, r < tol


def starts(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    scales = np.array([SCALES[k % len(SCALES)] for k in range(n)])
    return rng.standard_normal((n, dim)) * scales[:, None]


# -- the group and the invariants ---------------------------------------------------------------

def discrete_group(model, system: PrecisionSystem) -> list[np.ndarray]:
    """Signed permutations D = diag(D_x, D_y) of the tokens under which L is invariant, as
    permutation-with-sign actions on the active parameters (checked exactly)."""
    active = system.active
    pos = {p.name: k for k, p in enumerate(active)}
    size = 2 * DIM
    perms = [np.array(p) for p in itertools.permutations(range(DIM))]
    out = []
    for px, py in itertools.product(perms, perms):
        for sx, sy in itertools.product(itertools.product((1, -1), repeat=DIM), repeat=2):
            D = np.zeros((size, size))
            for i in range(DIM):
                D[px[i], i] = sx[i]
                D[DIM + py[i], DIM + i] = sy[i]
            # theta' = D W D^T on each matrix; as a map on the active entries
            action = np.zeros((len(active), len(active)))
            ok = True
            for name in ("WP", "WQ"):
                for i in range(size):
                    for j in range(size):
                        src = f"{name}_{i + 1}_{j + 1}"
                        if src not in pos:
                            continue
                        i2 = int(np.flatnonzero(D[:, i])[0])
                        j2 = int(np.flatnonzero(D[:, j])[0])
                        dst = f"{name}_{i2 + 1}_{j2 + 1}"
                        if dst not in pos:
                            ok = False
                            break
                        action[pos[dst], pos[src]] = D[i2, i] * D[j2, j]
            if not ok:
                continue
            T = sp.Matrix(action.astype(int).tolist())
            new = T * sp.Matrix(active)
            moved = system.loss_expr.xreplace(dict(zip(active, new)))
            if sp.expand(moved - system.loss_expr) == 0:
                out.append(action)
    return out


def learned_tensor(active, x: np.ndarray) -> np.ndarray:
    """K[a, k, l, b] = WP[y_a, k] WQ[l, x_b], symmetrised in (k, l): the learned map."""
    size = 2 * DIM
    WP = np.zeros((size, size))
    WQ = np.zeros((size, size))
    for p, v in zip(active, x):
        name, i, j = p.name.split("_")
        (WP if name == "WP" else WQ)[int(i) - 1, int(j) - 1] = float(v)
    K = np.einsum("ak,lb->aklb", WP[DIM:, :], WQ[:, :DIM])
    return (K + K.transpose(0, 2, 1, 3)) / 2


def balance(active, x) -> list:
    """The point of the scaling orbit with ||W^P|| = ||W^Q|| (Noether charge 0)."""
    wp = [k for k, p in enumerate(active) if p.name.startswith("WP")]
    wq = [k for k, p in enumerate(active) if p.name.startswith("WQ")]
    a = sum(float(x[k]) ** 2 for k in wp) ** 0.5
    b = sum(float(x[k]) ** 2 for k in wq) ** 0.5
    if a == 0 or b == 0:
        return list(x)
    c = (b / a) ** 0.5
    return [x[k] * c if k in wp else x[k] / c for k in range(len(x))]


# -- one case -------------------------------------------------------------------------------------

def census(case: str, constants: dict, n_starts: int, seed: int) -> dict:
    model = build("linear-transformer", dim=DIM)
    t0 = time.perf_counter()
    system = PrecisionSystem(model, constants)
    active = system.active
    f, g, h = system.numpy()
    group = discrete_group(model, system)
    log(f"{case}: discrete group of order {len(group)} ({time.perf_counter() - t0:.1f} s)")
    syms = symmetries(model)
    gf = gauge_fix(model, syms)
    consts = system.constants
    red_eqs = [sp.expand(e.xreplace(consts)) for e in gf.equations]
    red_jac = [[sp.diff(e, u) for u in gf.unknowns] for e in red_eqs]
    Fr = sp.lambdify(gf.unknowns, red_eqs, "numpy")
    Jr = sp.lambdify(gf.unknowns, red_jac, "numpy")
    m = len(gf.unknowns)

    def F_red(x):
        out = Fr(*[x[:, k] for k in range(m)])
        return np.stack([np.broadcast_to(np.asarray(o, float), (len(x),)) for o in out], -1)

    def J_red(x):
        out = Jr(*[x[:, k] for k in range(m)])
        return np.stack([np.stack([np.broadcast_to(np.asarray(o, float), (len(x),))
                                   for o in row], -1) for row in out], -2)

    rng = np.random.default_rng(seed)
    raw = []          # (method, start index, point in active order)
    for method in ("gradient", "reduced"):
        t = time.perf_counter()
        if method == "gradient":
            x0 = starts(rng, n_starts, len(active))
            x, r, ok = lm_solve(g, h, x0)
            pts = x
        else:
            x0 = starts(rng, n_starts, m)
            x, r, ok = lm_solve(F_red, J_red, x0)
            full = np.zeros((n_starts, len(active)))
            index = {p: k for k, p in enumerate(active)}
            for p, v in gf.fixed.items():
                full[:, index[p]] = float(v)
            for k, u in enumerate(gf.unknowns):
                full[:, index[u]] = x[:, k]
            pts = full
            ok &= np.linalg.norm(g(full), axis=-1) < 1e-9
        for k in np.flatnonzero(ok):
            raw.append((method, int(k), pts[k]))
        log(f"{case}: {method}: {int(ok.sum())}/{n_starts} starts converged "
            f"({time.perf_counter() - t:.1f} s)")

    # group by float invariants, refine one per group, then merge refined classes
    def key(x):
        K = learned_tensor(active, x)
        best = None
        for T in group:
            Kt = learned_tensor(active, T @ np.asarray(x, float))
            cand = tuple(np.round(Kt.ravel(), 5) + 0.0)
            best = cand if best is None or cand < best else best
        return (round(float(f(np.asarray(x, float))), 7),) + (best if best else
                                                              tuple(np.round(K.ravel(), 5)))

    groups: dict = {}
    for method, k, x in raw:
        groups.setdefault(key(x), []).append((method, k, x))
    log(f"{case}: {len(raw)} roots in {len(groups)} float groups; refining at 60 digits")
    classes = []
    for members in groups.values():
        method, k, x = members[0]
        try:
            snapped = [0.0 if abs(v) < 1e-9 else v for v in balance(active, x)]
            pt = refine(system, snapped, dps=60)
        except ArithmeticError as exc:
            log(f"{case}: a root of {method} start {k} did not refine: {exc}")
            continue
        with mp.workdps(60):
            loss = system.loss(pt)
        Kref = learned_tensor(active, [float(v) for v in pt])
        merged = False
        for c in classes:
            if abs(c["_loss"] - loss) < mp.mpf(10) ** -30 and any(
                    np.allclose(learned_tensor(active, T @ np.array([float(v) for v in pt])),
                                c["_K"], atol=1e-9) for T in group):
                c["_members"] += members
                merged = True
                break
        if not merged:
            classes.append({"_loss": loss, "_K": Kref, "_point": pt, "_members": list(members)})
    log(f"{case}: {len(classes)} classes modulo the group; classifying at 50 digits")

    out_classes = []
    for c in classes:
        cl = classify(system, [mp.nstr(v, 60) for v in c["_point"]], dps=50)
        with mp.workdps(50):
            orbit = int(np.linalg.matrix_rank(np.array(
                [[float(e) for e in col] for col in (orbit_directions(syms, dict(zip(
                    active, c["_point"]))).T.tolist())], dtype=float).T)) if syms else 0
        members = c["_members"]
        firsts = {meth: min((k for mm, k, _ in members if mm == meth), default=None)
                  for meth in ("gradient", "reduced")}
        out_classes.append({
            "loss": mp.nstr(cl.loss, 25),
            "index": cl.index, "zero_modes": cl.zero_modes, "orbit_dimension": orbit,
            "residual": mp.nstr(cl.residual, 3),
            "eigenvalues": [mp.nstr(e, 8) for e in cl.eigenvalues],
            "hits": {meth: sum(1 for mm, _, _ in members if mm == meth)
                     for meth in ("gradient", "reduced")},
            "first_start": firsts,
            "learned_map": _learned_summary(c["_K"], active, c["_point"]),
            "point": {p.name: mp.nstr(v, 55, strip_zeros=False) for p, v in zip(active,
                                                                                 c["_point"])},
        })
    out_classes.sort(key=lambda c: (mp.mpf(c["loss"]), c["index"]))
    _label(out_classes)
    saturation = _saturation(out_classes, n_starts)
    return {"constants": {k: str(v) for k, v in constants.items()},
            "discrete_group_order": len(group),
            "continuous_symmetries": [s.description for s in syms],
            "gauge": {p.name: str(v) for p, v in gf.fixed.items()},
            "starts_per_method": n_starts, "scales": list(SCALES), "seed": seed,
            "converged": {meth: sum(1 for mm, _, _ in raw if mm == meth)
                          for meth in ("gradient", "reduced")},
            "classes": out_classes, "saturation": saturation}


def _learned_summary(K: np.ndarray, active, x) -> dict:
    """The learned map y_hat = sum K[a,k,l,b] M[k,l] x_q[b] by the block of the context
    moments M it reads: S_xx (through P21 . Q11), S_xy (P21 . Q21 and the main path
    P22 . Q11) and S_yy (P22 . Q21), as Frobenius norms; the main path P22 Q11 as a matrix;
    and the null blocks' share of the squared weights at the balanced point."""
    d = DIM
    out = {"Sxx": f"{np.linalg.norm(K[:, :d, :d, :]):.6f}",
           "Sxy": f"{np.linalg.norm(K[:, :d, d:, :]) * 2 ** 0.5:.6f}",
           "Syy": f"{np.linalg.norm(K[:, d:, d:, :]):.6f}"}
    vals = {p.name: float(v) for p, v in zip(active, x)}
    P22 = np.array([[vals[f"WP_{d + i + 1}_{d + j + 1}"] for j in range(d)] for i in range(d)])
    Q11 = np.array([[vals[f"WQ_{i + 1}_{j + 1}"] for j in range(d)] for i in range(d)])
    out["P22*Q11"] = [[f"{v:.6f}" for v in row] for row in (P22 @ Q11) + 0.0]
    null = sum(v ** 2 for k, v in vals.items()
               if (k.startswith("WP") and int(k.split("_")[2]) <= d)
               or (k.startswith("WQ") and int(k.split("_")[1]) > d))
    total = sum(v ** 2 for v in vals.values())
    out["null_share"] = f"{null / total:.6f}" if total else "0"
    return out


def _label(classes: list) -> None:
    minima = [c for c in classes if c["index"] == 0]
    best = min((mp.mpf(c["loss"]) for c in minima), default=None)
    for c in classes:
        extra = c["zero_modes"] - c["orbit_dimension"]
        if c["index"] > 0:
            c["kind"] = f"saddle (index {c['index']})"
        elif extra > 0:
            c["kind"] = "index 0, degenerate"
        else:
            c["kind"] = "minimum"
        if extra > 0:
            c["kind"] += f", {extra} zero modes beyond the orbit (a flat family)"
        if c["index"] == 0:
            glob = abs(mp.mpf(c["loss"]) - best) < mp.mpf(10) ** -20
            c["kind"] += ", global (lowest found)" if glob else ", spurious (higher loss)"


def _saturation(classes: list, n: int) -> dict:
    """Distinct classes found among the first k starts of each method (and both together)."""
    first = {meth: sorted(c["first_start"][meth] for c in classes
                          if c["first_start"][meth] is not None)
             for meth in ("gradient", "reduced")}
    both = sorted(min(v for v in c["first_start"].values() if v is not None) for c in classes)
    ks = sorted({int(round(v)) for v in np.geomspace(1, n, 25)})
    return {"starts": ks,
            **{meth: [sum(1 for f in first[meth] if f < k) for k in ks] for meth in first},
            "either": [sum(1 for f in both if f < k) for k in ks]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m numerics.studies.landscape_census",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--starts", type=int, default=6000, help="starts per method and case")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--out", default=str(ROOT / "numerics" / "studies" / "results" /
                                          "landscape_census"))
    ap.add_argument("--no-data", action="store_true",
                    help="do not rewrite the committed derivation's data file")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {"model": "linear-transformer", "options": {"dim": DIM, "reduction": "none"},
              "method": __doc__.split("Method")[1].split("Writes")[0].strip(),
              "cases": {}}
    for k, (case, constants) in enumerate(CASES.items()):
        result["cases"][case] = census(case, constants, args.starts, args.seed + k)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "census.json").write_text(json.dumps(result, indent=2) + "\n")
    _plots(result, out)
    if not args.no_data:
        data = {"model": result["model"], "options": result["options"],
                "source": "numerics/studies/landscape_census.py",
                "cases": {case: {key: r[key] for key in
                                 ("constants", "starts_per_method", "scales", "seed",
                                  "converged", "discrete_group_order", "saturation")}
                          | {"classes": [{k: c[k] for k in ("point", "index", "zero_modes",
                                                            "orbit_dimension", "kind", "loss",
                                                            "hits", "learned_map")}
                                         for c in r["classes"]]}
                          for case, r in result["cases"].items()}}
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(json.dumps(data, indent=1) + "\n")
    log(f"done in {result['seconds']} s: {out}")
    return 0


def _plots(result: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result["cases"]), figsize=(11, 4.2), squeeze=False)
    for ax, (case, r) in zip(axes[0], result["cases"].items()):
        for c in r["classes"]:
            marker = "o" if c["zero_modes"] == c["orbit_dimension"] else "s"
            color = "C2" if c["index"] == 0 else "C0"
            ax.scatter(c["index"], float(c["loss"]), marker=marker, color=color,
                       s=18 + 6 * np.log1p(sum(c["hits"].values())), alpha=0.8)
        ax.set_xlabel("Hessian index (negative eigenvalues)")
        ax.set_ylabel("loss")
        ax.set_title(f"{case}: {len(r['classes'])} classes (s = {r['constants']['s_1']}, "
                     f"{r['constants']['s_2']})", fontsize=9)
    fig.text(0.01, 0.01, "circles: zero modes = orbit dimension; squares: extra zero modes; "
             "green: index 0", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "loss_vs_index.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for case, r in result["cases"].items():
        s = r["saturation"]
        for meth, style in (("gradient", "-"), ("reduced", "--"), ("either", ":")):
            ax.plot(s["starts"], s[meth], style, label=f"{case}, {meth}")
    ax.set_xscale("log")
    ax.set_xlabel("starts")
    ax.set_ylabel("distinct classes found")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "saturation.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
