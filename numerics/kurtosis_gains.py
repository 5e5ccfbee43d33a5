"""SGD on non-Gaussian data against the stable gains derived with kappa symbolic.

Run from the repository root (on demand; not a test):

    python -m numerics.kurtosis_gains [--seeds 32] [--t-end 40] [--eta 0.01]

The aligned d = 2 linear transformer (diagonal Gaussian tasks) is derived once
with the symbolic excess kurtosis kappa (``--inputs kurtosis``); its fixed point
with both modes learned gives the stable gains a_a(kappa, N, s) (a family in
p_2 along which the gains are constant).  For Rademacher (kappa = -2), uniform
(-6/5), Gaussian (0) and Laplace (3) inputs at N = 8, s = (2, 1/2), the SGD
generated from each model's definition (tokens and query drawn from that law)
runs from the small balanced start p = q = 0.1 to t = t_end.

Estimator: per seed, the gains averaged over the last quarter of the run
(records every 1/100 of the run); their mean over the seeds, SE = std / sqrt(seeds).
SGD's stationary mean carries a noise bias of order eta / B, removed as in
``symicl verify`` by a second run at batch 4B: m = (4 m_4B - m_B) / 3, SE
combined.  Reported: z of m against the gains at the data's kappa (the claim:
|z| <= 5), and against the Gaussian (kappa = 0) gains (the power of the test).
Exit status 1 if a claim fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import sympy as sp

from symicl.analysis.fixed_points import fixed_points
from symicl.models import build
from symicl.simulate.generated import GeneratedSGD

LAWS = (("rademacher", -2.0), ("uniform", -1.2), ("gaussian", 0.0), ("laplace", 3.0))
N, S1, S2 = 8, 2.0, 0.5


def derived_gains():
    """kappa -> (a_1, a_2) from the fixed point of the kappa-symbolic aligned model."""
    model = build("linear-transformer", dim=2, reduction="aligned", inputs="kurtosis")
    res = fixed_points(model, square_roots=["s_1", "s_2"], classify=False)
    point = [pt for pt in res if all(v != 0 for v in pt.values.values())][-1]
    names = {c.name: c for c in model.constants}
    gains = [sp.simplify(point.values[model.symbol(f"p_{a}")] *
                         point.values[model.symbol(f"q_{a}")]) for a in (1, 2)]
    print("derived gains:", *(f"a_{a} = {g}" for a, g in enumerate(gains, 1)), sep="\n  ")

    def at(kappa):
        subs = {names["N"]: N, names["s_1"]: sp.nsimplify(S1), names["s_2"]: sp.nsimplify(S2),
                names["kappa"]: sp.nsimplify(kappa)}
        return np.array([float(g.subs(subs)) for g in gains])
    return at


def sgd_gains(inputs: str, batch: int, args) -> np.ndarray:
    """Per seed, the gains p_a q_a averaged over the last quarter of the run (seeds, 2)."""
    model = build("linear-transformer", dim=2, reduction="aligned", inputs=inputs)
    sim = GeneratedSGD(model, {"N": N, "s_1": S1, "s_2": S2}, batch=batch)
    steps = int(round(args.t_end / args.eta))
    theta = np.full((args.seeds, 4), 0.1)           # p_1, p_2, q_1, q_2
    rng = np.random.default_rng([args.seed, batch])
    every, tail = max(1, steps // 100), []
    for k in range(1, steps + 1):
        _, g = sim.minibatch(theta, rng)
        theta = theta - args.eta * g
        if k % every == 0 and k > 3 * steps // 4:
            tail.append(theta[:, :2] * theta[:, 2:])
        if not np.all(np.isfinite(theta)):
            raise RuntimeError(f"SGD diverged at step {k} ({inputs}, batch {batch})")
    return np.mean(tail, axis=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--t-end", type=float, default=40.0)
    ap.add_argument("--eta", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    at = derived_gains()
    ok = True
    print(f"\nN = {N}, s = ({S1:g}, {S2:g}), eta = {args.eta:g}, batch {args.batch} and "
          f"{4 * args.batch}, {args.seeds} seeds, t_end = {args.t_end:g}")
    print(f"{'inputs':11s} {'kappa':>6s} {'mode':>4s} {'derived':>9s} {'SGD (B->inf)':>13s} "
          f"{'SE':>9s} {'z':>7s} {'gaussian':>9s} {'z vs gauss':>10s}")
    for inputs, kappa in LAWS:
        t0 = time.perf_counter()
        m_b, m_4b = sgd_gains(inputs, args.batch, args), sgd_gains(inputs, 4 * args.batch, args)
        mean = (4 * m_4b.mean(axis=0) - m_b.mean(axis=0)) / 3
        se = np.sqrt(16 * m_4b.var(axis=0, ddof=1) + m_b.var(axis=0, ddof=1)) / 3 / \
            np.sqrt(args.seeds)
        exact, gauss = at(kappa), at(0.0)
        for a in range(2):
            z = (mean[a] - exact[a]) / se[a]
            zg = (mean[a] - gauss[a]) / se[a]
            ok &= abs(z) <= 5
            print(f"{inputs:11s} {kappa:6.2f} {a + 1:4d} {exact[a]:9.5f} {mean[a]:13.5f} "
                  f"{se[a]:9.2e} {z:7.2f} {gauss[a]:9.5f} {zg:10.1f}")
        print(f"{'':11s} ({time.perf_counter() - t0:.1f} s)")
    print("\nclaim |z| <= 5 against the derived gains:", "holds" if ok else "FAILS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
