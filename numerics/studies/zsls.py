"""Zhang, Singh, Latham and Saxe (2025), "Training dynamics of in-context learning in linear
attention", reproduced from symicl's derived flows and checked by simulation.

Claims tested (scalar tasks y = w^T x, w ~ N(0, I), inputs x ~ N(0, S)):

(i)  multi-head attention with merged key-query weights learns in **one abrupt drop**: every
     component of the learned map crosses half its final value at (nearly) the same time;
(ii) separate rank-one key and query heads learn the principal components **one at a time,
     in order of eigenvalue**, with a plateau before each, whose length the derived flow
     predicts.

Theory: the exact expected-gradient flow that symicl derives for ``linear-transformer --heads H
--kq merged|separate --tasks isotropic`` (finite N, the query inside Z Z^T / N), integrated
from each seed's start.  Simulation (over seeds, same starts): ZSLS's own protocol,
full-batch gradient descent on a fixed training set of P prompts (inputs centred per
position across prompts, task vectors whitened to zero mean and identity covariance, as
in their data.py), and online SGD on fresh prompts.  The readout is the learned map on
the query in the eigenbasis of S, Gamma = sum_h W^P_h[y, y] S W^Q_h[x, x] (separate:
W^Q_h = k_h q_h^T), since yhat -> w^T Gamma x_q as N grows; component a is learned at the
first time Gamma_aa reaches half its final value, read on a grid of ``--grid`` points
(default 400: times are resolved to t_end / 400, so two components learned within one
grid step tie).

Conventions (symicl's default vs theirs, switchable):

* loss: symicl (1/2)(yhat - y)^2; theirs the mean squared error without 1/2
  (``--loss-scale 2`` multiplies the loss, so times are halved);
* attention: symicl divides Z Z^T by N; their code does not (``--no-normalise``: the
  moment matrix is N times larger, so yhat and its gradients change scale);
* data: symicl draws inputs in the eigenbasis of S (a rotation of the inputs is a
  symmetry of the model and of their isotropic initialisation); their spectrum is
  lambda_a proportional to a = 1..d with trace 1, which is the default here;
* initialisation: theirs (merged: W^P, W^Q iid N(0, init^2), key-query y-column of the
  x-rows and the value's y-row x-part zero; separate: every weight N(0, init^2 / size of
  its layer), the key's y-column and the value's y-row x-part zero; ``--init-style entry``:
  every key and query entry N(0, init^2), the value zero but for its y-y entry, set to init,
  as in another version of their net.py).

Run:  python -m numerics.studies.zsls --quick --out numerics/studies/results/zsls
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from symicl.codegen import kernels
from symicl.models import build
from symicl.spec import MatrixPacking

QUICK = dict(dim=2, heads_merged=2, heads_separate=2, N=19, seeds=3, train=400,
             init_merged=1e-3, init_separate=3e-2, lr=0.2, t_end=None, online_batch=0,
             grid=400)
FULL = dict(dim=4, heads_merged=4, heads_separate=4, N=19, seeds=16, train=8000,
            init_merged=1e-4, init_separate=2e-2, lr=0.05, t_end=None, online_batch=256,
            grid=400)


# -- the model, its derived flow and ZSLS's conventions --------------------------------------

class DerivedFlow:
    """The derived expected loss, flow and Jacobian at numeric constants, through the
    model's kernels (:func:`symicl.codegen.kernels`: printed and compiled, or the
    monomial table for a very large loss such as two layers')."""

    def __init__(self, model, kind="table"):
        self.kernels = kernels(model, kind)
        self.c = self.kernels.constants_vector({})

    def loss(self, theta):
        return float(self.kernels.loss(np.asarray(theta, dtype=float), self.c))

    def flow(self, theta):
        return self.kernels.flow(np.asarray(theta, dtype=float), self.c)

    def jacobian(self, theta):
        return self.kernels.jacobian(np.asarray(theta, dtype=float), self.c)


class Setting:
    """One attention variant at numeric constants with ZSLS's conventions switchable."""

    def __init__(self, dim, heads, kq, N, spectrum, loss_scale=1.0, normalise=True):
        self.dim, self.heads, self.kq, self.N = dim, heads, kq, N
        self.s = np.asarray(spectrum, dtype=float)
        self.D = dim + 1
        self.model = build("linear-transformer", dim=dim, heads=heads, kq=kq,
                           tasks="isotropic", N=N, spectrum=list(self.s))
        self.ring = DerivedFlow(self.model)
        self.loss_scale = loss_scale
        self.m_scale = 1.0 if normalise else float(N)     # their moment matrix: N times ours
        one = heads == 1
        names = {}
        for h in range(1, heads + 1):
            for p in ("WP", "WK", "WQ"):
                names[(p, h)] = p if one else f"{p}_1_{h}"
        self.names = names
        shapes = {}
        for h in range(1, heads + 1):
            shapes[names[("WP", h)]] = (self.D, self.D)
            if kq == "merged":
                shapes[names[("WQ", h)]] = (self.D, self.D)
            else:
                shapes[names[("WK", h)]] = (1, self.D)
                shapes[names[("WQ", h)]] = (1, self.D)
        self.pack = MatrixPacking(self.model, shapes)
        # theta_ours = scale * theta: W^P absorbs the moment-matrix factor
        self.scale = np.ones(len(self.model.parameters))
        for k, p in enumerate(self.model.parameters):
            if p.name.startswith("WP"):
                self.scale[k] = self.m_scale

    # the derived flow, in this setting's conventions
    def loss(self, theta):
        return self.loss_scale * self.ring.loss(self.scale * theta)

    def flow(self, theta):
        return self.loss_scale * self.scale * self.ring.flow(self.scale * theta)

    def jacobian(self, theta):
        J = self.ring.jacobian(self.scale * theta)
        return self.loss_scale * self.scale[:, None] * J * self.scale[None, :]

    def integrate(self, theta0, t_end, n=400):
        from scipy.integrate import solve_ivp

        t = np.linspace(0.0, t_end, n + 1)
        sol = solve_ivp(lambda _, th: self.flow(th), (0.0, t_end), theta0, t_eval=t,
                        method="LSODA", rtol=1e-9, atol=1e-13,
                        jac=lambda _, th: self.jacobian(th))
        if not sol.success:
            raise RuntimeError(sol.message)
        return t, sol.y.T

    # weights <-> theta
    def heads_of(self, theta):
        """Per head: p (the y-row of W^P), and W^Q (merged) or (k, q) (separate), batched."""
        W = self.pack.unpack(theta)
        out = []
        for h in range(1, self.heads + 1):
            p = W[self.names[("WP", h)]][..., self.dim, :]
            if self.kq == "merged":
                out.append((p, W[self.names[("WQ", h)]]))
            else:
                out.append((p, W[self.names[("WK", h)]][..., 0, :],
                            W[self.names[("WQ", h)]][..., 0, :]))
        return out

    def gamma(self, theta):
        """Diagonal of the learned map on the query, Gamma_aa (..., d), in their scale."""
        d = self.dim
        total = 0.0
        for hd in self.heads_of(theta):
            p = hd[0][..., d]
            if self.kq == "merged":
                qd = hd[1][..., range(d), range(d)]
            else:
                qd = hd[1][..., :d] * hd[2][..., :d]
            total = total + p[..., None] * self.m_scale * self.s * qd
        return total

    def start(self, init, seed, style="scaled"):
        """ZSLS's initialisation (see the module docstring), from ``seed``.  ``style``
        "entry" for the separate heads: every key and query entry N(0, init^2), the value
        zero but for its y-y entry, init (one version of their net.py); "scaled" (default):
        each weight N(0, init^2 / size of its layer)."""
        rng = np.random.default_rng([seed, 2025])
        D, d, H = self.D, self.dim, self.heads
        mats = {}
        for h in range(1, H + 1):
            if self.kq == "merged":
                WP = init * rng.standard_normal((D, D))
                WQ = init * rng.standard_normal((D, D))
                WQ[:d, d:] = 0.0
                WP[d:, :d] = 0.0
                mats[self.names[("WP", h)]], mats[self.names[("WQ", h)]] = WP, WQ
            elif style == "entry":
                WP = np.zeros((D, D))
                WP[d:, d:] = init
                mats[self.names[("WP", h)]] = WP
                mats[self.names[("WK", h)]] = init * rng.standard_normal((1, D))
                mats[self.names[("WQ", h)]] = init * rng.standard_normal((1, D))
            else:
                WP = init / np.sqrt(H * D * D) * rng.standard_normal((D, D))
                WP[d:, :d] = 0.0
                K = init / np.sqrt(H * D) * rng.standard_normal((1, D))
                K[:, d:] = 0.0
                Q = init / np.sqrt(H * D) * rng.standard_normal((1, D))
                mats[self.names[("WP", h)]] = WP
                mats[self.names[("WK", h)]] = K
                mats[self.names[("WQ", h)]] = Q
        return self.pack.pack(mats)


# -- simulation: their full-batch GD on a fixed whitened training set, and online SGD --------

def prompts(setting: Setting, n, rng, whiten=True):
    """Moment matrices M (n, D, D) (their scale) and queries z_q, targets y_q."""
    d, N = setting.dim, setting.N
    x = rng.standard_normal((n, N + 1, d)) * np.sqrt(setting.s)
    w = rng.standard_normal((n, d))
    if whiten:                                   # their data.py: centre x, whiten w
        x = x - x.mean(axis=0, keepdims=True)
        w = w - w.mean(axis=0)
        C = np.cov(w.T).reshape(d, d)
        vals, vecs = np.linalg.eigh(C)
        w = w @ (vecs @ np.diag(vals ** -0.5) @ vecs.T).T
    y = np.einsum("nkd,nd->nk", x, w)
    Z = np.concatenate([x, y[..., None]], axis=2)
    target = y[:, -1].copy()
    Z[:, -1, d] = 0.0
    M = np.einsum("nki,nkj->nij", Z, Z) / N * setting.m_scale
    return M, Z[:, -1, :], target


def batch_gradient(setting: Setting, theta, M, zq, y):
    """Loss and gradient (their loss scale) of the forward pass on a batch, by hand."""
    d = setting.dim
    heads = setting.heads_of(theta)
    yhat = 0.0
    parts = []
    for hd in heads:
        p = hd[0]
        Mp = np.einsum("nij,i->nj", M, p)                    # p^T M (n, D)
        if setting.kq == "merged":
            Qz = zq @ hd[1].T                                # W^Q z_q (n, D)
            yhat = yhat + np.einsum("nj,nj->n", Mp, Qz)
            parts.append((Mp, Qz))
        else:
            k, q = hd[1], hd[2]
            a, b = Mp @ k, zq @ q
            yhat = yhat + a * b
            parts.append((Mp, a, b))
    r = yhat - y
    scale = setting.loss_scale / len(y)
    loss = 0.5 * setting.loss_scale * float(np.mean(r ** 2))
    grads = {}
    for h, (hd, part) in enumerate(zip(heads, parts), start=1):
        gP = np.zeros((setting.D, setting.D))
        if setting.kq == "merged":
            Mp, Qz = part
            gP[d] = scale * np.einsum("n,nij,nj->i", r, M, Qz)
            grads[setting.names[("WQ", h)]] = scale * np.einsum("n,nj,nk->jk", r, Mp, zq)
        else:
            Mp, a, b = part
            k, q = hd[1], hd[2]
            gP[d] = scale * np.einsum("n,nij,j,n->i", r, M, k, b)
            grads[setting.names[("WK", h)]] = (scale * np.einsum("n,nj,n->j", r, Mp, b))[None]
            grads[setting.names[("WQ", h)]] = (scale * np.einsum("n,n,nj->j", r, a, zq))[None]
        grads[setting.names[("WP", h)]] = gP
    return loss, setting.pack.pack(grads)


def gradient_descent(setting, theta0, data, lr, steps, every):
    """Their protocol: full-batch GD on a fixed training set; theta every ``every`` steps."""
    theta = theta0.copy()
    path = [theta.copy()]
    for j in range(1, steps + 1):
        _, g = batch_gradient(setting, theta, *data)
        theta -= lr * g
        if j % every == 0:
            path.append(theta.copy())
    return np.array(path)


def online_sgd(setting, theta0, batch, lr, steps, every, rng):
    theta = theta0.copy()
    path = [theta.copy()]
    for j in range(1, steps + 1):
        _, g = batch_gradient(setting, theta, *prompts(setting, batch, rng, whiten=False))
        theta -= lr * g
        if j % every == 0:
            path.append(theta.copy())
    return np.array(path)


# -- events ------------------------------------------------------------------------------------

def learn_times(t, gamma):
    """Per component a: the first t where Gamma_aa reaches half its final value (NaN if never)."""
    out = []
    for a in range(gamma.shape[1]):
        g = gamma[:, a]
        hit = np.nonzero(g >= 0.5 * g[-1])[0] if g[-1] > 0 else []
        out.append(float(t[hit[0]]) if len(hit) else float("nan"))
    return np.array(out)


def count_drops(t, loss, floor=0.05):
    """Drops of the loss: local maxima of -dL/d log t above ``floor`` of the largest, merged
    unless the loss flattens into a plateau between two of them (-dL/d log t falls below a
    fifth of the smaller peak)."""
    t, loss = np.asarray(t)[1:], np.asarray(loss)[1:]
    rate = -np.gradient(loss, np.log(t))
    top = rate.max()
    peaks = [i for i in range(1, len(rate) - 1)
             if rate[i] >= rate[i - 1] and rate[i] > rate[i + 1] and rate[i] > floor * top]
    kept = []
    for i in peaks:
        if kept and rate[kept[-1]:i + 1].min() > 0.2 * min(rate[kept[-1]], rate[i]):
            if rate[i] > rate[kept[-1]]:
                kept[-1] = i
            continue
        kept.append(i)
    return len(kept), [float(t[i]) for i in kept]


def drop_width(t, loss):
    """Time from 90% to 10% of the total loss decrease, over the time of the 50% point."""
    L0, L1 = loss[0], loss[-1]
    frac = (loss - L1) / (L0 - L1)
    t90, t50, t10 = (t[np.argmax(frac <= f)] for f in (0.9, 0.5, 0.1))
    return float((t10 - t90) / t50), float(t50)


def _stats(x):
    x = np.asarray(x, dtype=float)
    return {"mean": float(np.nanmean(x)), "median": float(np.nanmedian(x)), "se": float(np.nanstd(x, ddof=1) / np.sqrt(np.sum(
        np.isfinite(x)))) if np.sum(np.isfinite(x)) > 1 else float("nan"),
        "per_seed": [None if not np.isfinite(v) else float(v) for v in x]}


# -- the study ---------------------------------------------------------------------------------

def run_claim(kq, cfg, args, log):
    d = cfg["dim"]
    spectrum = np.arange(d, 0, -1, dtype=float)
    spectrum /= spectrum.sum()                         # their default: lambda_a ~ a, trace 1
    heads = cfg["heads_merged" if kq == "merged" else "heads_separate"]
    t0 = time.perf_counter()
    st = Setting(d, heads, kq, cfg["N"], spectrum, loss_scale=args.loss_scale,
                 normalise=not args.no_normalise)
    log(f"{kq}: derived flow of {len(st.model.parameters)} parameters "
        f"(d = {d}, H = {heads}, N = {cfg['N']}) in {time.perf_counter() - t0:.1f} s")
    init = cfg["init_merged" if kq == "merged" else "init_separate"]
    lr = cfg["lr"]
    # the horizon: long enough for the theory path of seed 0 to learn every component
    style = args.init_style if kq == "separate" else "scaled"
    theta0 = st.start(init, 0, style)
    t_end = t_end0 = cfg["t_end"] or _horizon(st, theta0)
    grid = cfg["grid"]                     # learn times are resolved to t_end / grid
    steps = int(round(t_end / lr))
    every = max(1, steps // grid)
    t_sim = np.arange(steps // every + 1) * every * lr
    rows = {"theory": [], "gd_fixed_set": [], "online_sgd": []}
    widths, drops, losses = [], [], {"theory": [], "gd_fixed_set": []}
    for seed in range(cfg["seeds"]):
        theta0 = st.start(init, seed, style)
        if not cfg["t_end"] and seed:         # every seed's own horizon, at least seed 0's
            t_end = min(max(t_end, _horizon(st, theta0, cap=3 * t_end0)), 3 * t_end0)
            steps = int(round(t_end / lr))
            every = max(1, steps // grid)
            t_sim = np.arange(steps // every + 1) * every * lr
        t, path = st.integrate(theta0, t_end, n=grid)
        g = st.gamma(path)
        rows["theory"].append(learn_times(t, g))
        L = np.array([st.loss(th) for th in path])
        losses["theory"].append(L)
        widths.append(drop_width(t, L))
        drops.append(count_drops(t, L))
        rng = np.random.default_rng([seed, 11])
        data = prompts(st, cfg["train"], rng)
        gd = gradient_descent(st, theta0, data, lr, steps, every)
        rows["gd_fixed_set"].append(learn_times(t_sim, st.gamma(gd)))
        losses["gd_fixed_set"].append(np.array([st.loss(th) for th in gd]))
        if seed == 0:
            curves = {"t": t.tolist(), "t_sim": t_sim.tolist()}
        if cfg["online_batch"]:
            sgd = online_sgd(st, theta0, cfg["online_batch"], lr, steps, every, rng)
            rows["online_sgd"].append(learn_times(t_sim, st.gamma(sgd)))
        log(f"{kq}: seed {seed}: theory {np.round(rows['theory'][-1], 2)}, GD on the fixed "
            f"set {np.round(rows['gd_fixed_set'][-1], 2)}")
    table = []
    for a in range(d):
        row = {"component": a + 1, "eigenvalue": float(spectrum[a])}
        for k, v in rows.items():
            if v:
                row[k] = _stats([r[a] for r in v])
        table.append(row)
    theory = np.array(rows["theory"])
    in_order = [bool(np.all(np.diff(r) > 0)) for r in theory]
    spread = float(np.nanmax((theory.max(axis=1) - theory.min(axis=1)) / theory.mean(axis=1)))
    sim = np.array(rows["gd_fixed_set"])
    ratio = sim / theory
    return {"setting": {"dim": d, "heads": heads, "kq": kq, "N": cfg["N"],
                        "spectrum": spectrum.tolist(), "init": init, "lr": lr,
                        "init_style": style, "grid": grid,
                        "t_end_max": t_end, "train_prompts": cfg["train"],
                        "online_batch": cfg["online_batch"], "seeds": cfg["seeds"],
                        "parameters": len(st.model.parameters)},
            "table": table,
            "theory_in_order_of_eigenvalue": in_order,
            "theory_loss_drops": [n for n, _ in drops],
            "theory_drop_times": [ts for _, ts in drops],
            "gd_over_theory_learn_time": _stats(ratio.ravel()),
            "theory_max_relative_spread_of_learn_times": spread,
            "theory_drop_width_over_t50": _stats([w for w, _ in widths]),
            "curves": {**curves,
                       "theory_loss_seed0": losses["theory"][0].tolist(),
                       "gd_loss_seed0": losses["gd_fixed_set"][0].tolist()}}


def _horizon(st, theta0, cap=float("inf")):
    """Integrate the derived flow until the loss settles; 1.5x that time (at most ``cap``)."""
    t_end = 10.0
    for _ in range(12):
        if t_end > cap:
            return cap
        t, path = st.integrate(theta0, t_end, n=200)
        g = st.gamma(path)
        L = np.array([st.loss(th) for th in path])
        settled = abs(L[-1] - L[-21]) < 1e-4 * L[0] and np.all(g[-1] > 0.25 * g[-1].max())
        if settled:
            return float(1.5 * t[np.argmax((L - L[-1]) <= 0.01 * (L[0] - L[-1]))] + 1.0)
        t_end *= 2
    return t_end


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        c = res["curves"]
        ax.plot(c["t"], c["theory_loss_seed0"], label="derived flow (seed 0 start)")
        ax.plot(c["t_sim"], c["gd_loss_seed0"], "--", label="GD, fixed training set (seed 0)")
        for row in res["table"]:
            m = row["theory"]["mean"]
            ax.axvline(m, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("t = learning rate x steps")
        ax.set_ylabel("loss")
        ax.set_title(f"{name}: d = {res['setting']['dim']}, H = {res['setting']['heads']}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m numerics.studies.zsls", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="d = 2, two heads, 8 seeds (default)")
    ap.add_argument("--full", action="store_true", help="d = 4, four heads, 16 seeds")
    ap.add_argument("--out", default="numerics/studies/results/zsls")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--loss-scale", type=float, default=2.0,
                    help="loss factor: 2 = their MSE without 1/2 (default), 1 = symicl's")
    ap.add_argument("--no-normalise", action="store_true",
                    help="their attention without 1/N (default: symicl's Z Z^T / N)")
    ap.add_argument("--skip-depth", action="store_true", help="skip the two-layer part")
    ap.add_argument("--init-separate", type=float, default=None,
                    help="initial scale of the separate heads (their --init)")
    ap.add_argument("--init-merged", type=float, default=None,
                    help="initial scale of the merged heads (their --init)")
    ap.add_argument("--init-style", choices=("scaled", "entry"), default="scaled",
                    help="separate heads: each weight N(0, init^2 / layer size) (default), or "
                         "every key/query entry N(0, init^2) and the value's y-y entry init")
    ap.add_argument("--train", type=int, default=None, help="training prompts (fixed set)")
    ap.add_argument("--dim", type=int, default=None, help="input dimension d")
    ap.add_argument("--heads", type=int, default=None, help="heads H of both variants")
    ap.add_argument("--N", type=int, default=None, help="context length")
    ap.add_argument("--lr", type=float, default=None, help="their learning rate")
    ap.add_argument("--grid", type=int, default=None,
                    help="points of the time grid on which learn times are read "
                         "(default 400: they are resolved to t_end / 400)")
    ap.add_argument("--only", choices=("merged", "separate"), default=None,
                    help="one variant only")
    args = ap.parse_args(argv)
    cfg = dict(FULL if args.full else QUICK)
    for name in ("dim", "N", "lr", "grid"):
        if getattr(args, name):
            cfg[name] = getattr(args, name)
    if args.heads:
        cfg["heads_merged"] = cfg["heads_separate"] = args.heads
    if args.seeds:
        cfg["seeds"] = args.seeds
    if args.init_separate:
        cfg["init_separate"] = args.init_separate
    if args.init_merged:
        cfg["init_merged"] = args.init_merged
    if args.train:
        cfg["train"] = args.train
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    results = {name: run_claim(name, cfg, args, log) for name in ("merged", "separate")
               if args.only in (None, name)}
    summary = {"config": {**cfg, "loss_scale": args.loss_scale,
                          "normalise": not args.no_normalise}, **results}
    if len(results) == 2:
        summary["claims"] = claims(summary)
    if not args.skip_depth:
        from .zsls_depth import depth_study

        summary["depth"] = depth_study(log, quick=not args.full)
    plot(results, out / "zsls.png")
    text = json.dumps(summary, indent=1)
    (out / "zsls.json").write_text(text + "\n")
    print_table(summary)
    log(f"wrote {out / 'zsls.json'} and {out / 'zsls.png'}")
    return summary


def claims(summary) -> dict:
    m, s = summary["merged"], summary["separate"]
    d = m["setting"]["dim"]
    return {
        "merged_one_drop": {
            "held": all(n == 1 for n in m["theory_loss_drops"]),
            "measure": "drops of the loss on the derived flow per seed (local maxima of "
                       "-dL/dlog t; one abrupt drop: 1)",
            "drops_per_seed": m["theory_loss_drops"],
            "drop_time_per_seed": m["theory_drop_times"],
            "width_10_90_over_t50": m["theory_drop_width_over_t50"]["mean"]},
        "separate_one_component_at_a_time": {
            "held": all(n == d for n in s["theory_loss_drops"]),
            "measure": f"drops of the loss on the derived flow per seed ({d} components: {d})",
            "drops_per_seed": s["theory_loss_drops"]},
        "separate_in_order_of_eigenvalue": {
            "held": all(s["theory_in_order_of_eigenvalue"]),
            "seeds_in_order": f"{sum(s['theory_in_order_of_eigenvalue'])} of "
                              f"{len(s['theory_in_order_of_eigenvalue'])}",
            "measure": "component learn times (Gamma_aa at half its final value) increase "
                       "with decreasing eigenvalue (derived flow, per seed)"},
        "plateaus_predicted_by_the_derived_flow": {
            "merged_gd_over_theory": m["gd_over_theory_learn_time"]["mean"],
            "merged_se": m["gd_over_theory_learn_time"]["se"],
            "separate_gd_over_theory": s["gd_over_theory_learn_time"]["mean"],
            "separate_se": s["gd_over_theory_learn_time"]["se"],
            "merged_median": m["gd_over_theory_learn_time"]["median"],
            "separate_median": s["gd_over_theory_learn_time"]["median"],
            "measure": "learn time of GD on their fixed training set / derived flow, same "
                       "start, mean +- SE over seeds and components"},
    }


def print_table(summary):
    for name in ("merged", "separate"):
        res = summary.get(name)
        if res is None:
            continue
        print(f"\n{name}: {res['setting']}")
        print("component  eigenvalue  theory t (mean +- SE)  GD fixed set t   online SGD t")
        for row in res["table"]:
            def f(k):
                v = row.get(k)
                return f"{v['mean']:8.3f} +- {v['se']:.3f}" if v else "      -       "
            print(f"{row['component']:9d}  {row['eigenvalue']:10.4f}  {f('theory')}  "
                  f"{f('gd_fixed_set')}  {f('online_sgd')}")
    if "claims" in summary:
        print("\nclaims:", json.dumps(summary["claims"], indent=1))


if __name__ == "__main__":
    main()
