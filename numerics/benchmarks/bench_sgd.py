"""Monte Carlo SGD throughput: symicl's ``TransformerSGD`` against plain PyTorch.

Run from the repository root:

    python -m numerics.benchmarks.bench_sgd [--repeats 5] [--min-time 0.3]

The model and batch are the same on both sides: d = 4, N = 32, B = 256,
f(Z) = Z + W^P (Z Z^T / N) W^Q Z with the query inside the sum, aligned
diagonal Gaussian tasks fresh per prompt, x ~ N(0, diag(s)),
s = (1, 0.75, 0.5, 0.25), loss (1/2)|yhat - y_q|^2 averaged over the batch
and plain SGD (eta = 0.01).  A step is counted whole: sampling, forward,
gradient and update.  Throughput is prompts per second = seeds x B / (median
seconds per step); each configuration runs a calibrated number of steps
(>= --min-time s) after a warm-up, --repeats times.

* symicl: ``TransformerSGD.run`` (what users call; it also checks for
  divergence each step), and the bare loop ``minibatch_gradient`` + update,
  with 1 seed and 8 seeds vectorised (8 x 256 prompts a step).
* PyTorch: the straightforward implementation (full f(Z) for every token,
  autograd backward, in-place SGD update), float64 (the headline) and
  float32, with ``torch.set_num_threads(os.cpu_count())`` as asked and with
  1 thread (on a shared machine the faster of the two is the fair baseline;
  the ratio against both is printed).  A second PyTorch row computes only
  the query column of f(Z) (a stronger baseline than the brief's; shown for
  honesty, not used for the goal).  Before timing, the PyTorch gradient is
  checked against symicl's ``prompt_gradients`` on the same prompts.

Then it profiles where a symicl step spends its time, and times three
PROTOTYPES (not library code; exactness is checked here, see the output):

* P1, ``M`` by batched matmul (``swapaxes(z) @ z``) instead of
  ``np.einsum('...ni,...nj->...ij')``: the same numbers up to rounding;
* P2, the Wishart sampler: the model needs only Sigma_hat = (1/N) sum x x^T
  over the N context tokens, x_q and Lambda, since
  M = [[Sigma_hat + x_q x_q^T / N, Sigma_hat Lambda],
       [Lambda Sigma_hat, Lambda Sigma_hat Lambda]];
  N Sigma_hat ~ Wishart_d(N, diag(s)) is drawn by the Bartlett decomposition
  (A lower triangular, A_ii = sqrt(chi^2_{N-i+1}), A_ij ~ N(0,1) below the
  diagonal, N Sigma_hat = L A A^T L, L = diag(sqrt s)): exact in
  distribution for N >= d, d(d+3)/2 + 2d draws a prompt instead of (N+1)d + d;
  checked by comparing mean gradients with the token sampler (z-scores);
* P3, a fused Numba kernel over prompts (one loop, no temporaries) on the
  Wishart draws of P2, checked to agree with P2 on the same draws to rounding.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

D_IN, N_CTX, BATCH, ETA = 4, 32, 256, 0.01
SPECTRUM = np.array([1.0, 0.75, 0.5, 0.25])
SEEDS_MANY = 8


def machine() -> str:
    import numba
    import torch
    load = os.getloadavg()
    return (f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
            f"os.cpu_count() = {os.cpu_count()}, load average {load[0]:.2f} (1 min) at start\n"
            f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
            f"numba {numba.__version__}")


def _calibrate(run_steps, min_time: float) -> int:
    run_steps(2)                                   # warm-up (and Numba compilation)
    n = 1
    while True:
        t = time.perf_counter()
        run_steps(n)
        el = time.perf_counter() - t
        if el >= min_time or n >= 1 << 16:
            return n
        n = max(n * 2, int(n * min_time / max(el, 1e-9)) + 1)


def measure(configs: dict, min_time: float, repeats: int) -> dict:
    """Median seconds per step of each config, timed round-robin (drift hits all alike).

    ``configs`` maps a label to ``run_steps`` or to ``(setup, run_steps)``; ``setup()``
    (untimed) runs before each timed repeat, e.g. to set torch's thread count.
    """
    items = {k: (v if isinstance(v, tuple) else (lambda: None, v)) for k, v in configs.items()}
    counts = {}
    for k, (setup, run) in items.items():
        setup()
        counts[k] = _calibrate(run, min_time)
    times = {k: [] for k in items}
    for _ in range(repeats):
        for k, (setup, run) in items.items():
            setup()
            t = time.perf_counter()
            run(counts[k])
            times[k].append((time.perf_counter() - t) / counts[k])
    return {k: statistics.median(v) for k, v in times.items()}


def w_init(seed: int = 0):
    D = 2 * D_IN
    rng = np.random.default_rng(seed)
    return 0.1 * rng.standard_normal((D, D)), 0.1 * rng.standard_normal((D, D))


# -- symicl -------------------------------------------------------------------------------

def symicl_runners(sim, seeds: int):
    WP0, WQ0 = w_init()
    state = {"WP": np.broadcast_to(WP0, (seeds,) + WP0.shape).copy(),
             "WQ": np.broadcast_to(WQ0, (seeds,) + WQ0.shape).copy(),
             "rng": np.random.default_rng(1)}

    def loop(n):
        WP, WQ, rng = state["WP"], state["WQ"], state["rng"]
        for _ in range(n):
            _, gP, gQ = sim.minibatch_gradient(WP, WQ, rng)
            WP -= sim.eta * gP
            WQ -= sim.eta * gQ

    def run(n):
        sim.run(WP0, WQ0, steps=n, seeds=seeds, seed=2, record_every=n)

    return loop, run


# -- PyTorch ---------------------------------------------------------------------------------

def torch_forward_loss(torch, WP, WQ, x, lam, query_only: bool = False):
    """Mean loss of the straightforward model; x (B, N+1, d), lam (B, 1, d)."""
    d, N = D_IN, N_CTX
    y = x * lam
    Z = torch.cat([x, y], dim=-1).transpose(1, 2).clone()     # (B, D, N+1)
    yq = Z[:, d:, N].clone()
    Z[:, d:, N] = 0.0                                           # the query's label slot
    M = Z @ Z.transpose(1, 2) / N                               # query inside the sum
    if query_only:
        yhat = (WP[d:, :] @ M @ WQ @ Z[:, :, N:])[..., 0]
    else:
        f = Z + WP @ M @ WQ @ Z                                 # f(Z) for every token
        yhat = f[:, d:, N]
    return 0.5 * ((yhat - yq) ** 2).sum(-1).mean()


def torch_runner(torch, dtype, query_only=False):
    WP0, WQ0 = w_init()
    WP = torch.tensor(WP0, dtype=dtype, requires_grad=True)
    WQ = torch.tensor(WQ0, dtype=dtype, requires_grad=True)
    sq = torch.tensor(np.sqrt(SPECTRUM), dtype=dtype)
    gen = torch.Generator().manual_seed(1)

    def steps(n):
        for _ in range(n):
            x = torch.randn(BATCH, N_CTX + 1, D_IN, generator=gen, dtype=dtype) * sq
            lam = torch.randn(BATCH, 1, D_IN, generator=gen, dtype=dtype)
            loss = torch_forward_loss(torch, WP, WQ, x, lam, query_only)
            gP, gQ = torch.autograd.grad(loss, (WP, WQ))
            with torch.no_grad():
                WP.sub_(ETA * gP)
                WQ.sub_(ETA * gQ)
    return steps


def check_torch_same_model(torch, sim) -> float:
    """Max relative difference of PyTorch's and symicl's minibatch gradients, same prompts."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((BATCH, N_CTX + 1, D_IN)) * np.sqrt(SPECTRUM)
    lam = rng.standard_normal((BATCH, D_IN))
    WP0, WQ0 = w_init(3)
    # symicl's side from the same tokens (replicating TransformerSGD.sample's assembly)
    z = np.concatenate([x, x * lam[:, None, :]], axis=-1)
    yq = z[:, N_CTX, D_IN:].copy()
    z[:, N_CTX, D_IN:] = 0.0
    M = np.einsum("...ni,...nj->...ij", z, z) / N_CTX
    _, gP, gQ = sim.prompt_gradients(WP0, WQ0, M, z[:, N_CTX], yq)
    WP = torch.tensor(WP0, requires_grad=True)
    WQ = torch.tensor(WQ0, requires_grad=True)
    loss = torch_forward_loss(torch, WP, WQ, torch.tensor(x), torch.tensor(lam[:, None, :]))
    tP, tQ = torch.autograd.grad(loss, (WP, WQ))
    err = max(np.max(np.abs(tP.numpy() - gP.mean(0))), np.max(np.abs(tQ.numpy() - gQ.mean(0))))
    return err / max(np.max(np.abs(gP.mean(0))), np.max(np.abs(gQ.mean(0))))


# -- profile of a symicl step (a replica of TransformerSGD.sample's lines) ---------------------

def profile_symicl(sim, seeds: int, min_time: float, repeats: int) -> dict:
    d, N, D = sim.d, sim.N, sim.D
    rng = np.random.default_rng(7)
    lead = (seeds, sim.batch)
    WP0, WQ0 = w_init()
    WP = np.broadcast_to(WP0, (seeds, D, D)).copy()
    WQ = np.broadcast_to(WQ0, (seeds, D, D)).copy()
    x = rng.standard_normal(lead + (N + 1, d)) * np.sqrt(sim.s)
    task = sim.draw_tasks(rng, lead)
    z = np.concatenate([x, x * task[..., None, :]], axis=-1)
    M, zq, yq = sim.sample(rng, lead)
    loss, gP, gQ = sim.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq)

    def rep(fn):
        return lambda n: [fn() for _ in range(n)]

    def assemble():
        y = x * task[..., None, :]
        zz = np.concatenate([x, y], axis=-1)
        q = y[..., N, :].copy()
        zz[..., N, d:] = 0.0
        return zz, q

    parts = [
        ("draw tokens x (standard_normal * sqrt s)",
         rep(lambda: rng.standard_normal(lead + (N + 1, d)) * np.sqrt(sim.s))),
        ("draw tasks", rep(lambda: sim.draw_tasks(rng, lead))),
        ("assemble z (y = Lambda x, concatenate, mask)", rep(assemble)),
        ("M = einsum('...ni,...nj->...ij') / N",
         rep(lambda: np.einsum("...ni,...nj->...ij", z, z) / sim.norm)),
        ("prompt_gradients (einsums on 8x8)",
         rep(lambda: sim.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq))),
        ("batch means + SGD update",
         rep(lambda: (loss.mean(axis=1), WP - sim.eta * gP.mean(axis=1), WQ - sim.eta * gQ.mean(axis=1)))),
        ("whole sample() (for reference)", rep(lambda: sim.sample(rng, lead))),
        ("whole step: minibatch_gradient + update (reference)",
         rep(lambda: (sim.minibatch_gradient(WP, WQ, rng), WP - sim.eta * gP.mean(axis=1)))),
    ]
    return measure(dict(parts), min_time / 3, repeats)


# -- PROTOTYPES ------------------------------------------------------------------------------

def proto_sample_matmul(sim, rng, lead):
    """PROTOTYPE P1: TransformerSGD.sample with M by batched matmul instead of einsum."""
    d, N = sim.d, sim.N
    x = rng.standard_normal(lead + (N + 1, d)) * np.sqrt(sim.s)
    task = sim.draw_tasks(rng, lead)
    y = x * task[..., None, :]
    z = np.concatenate([x, y], axis=-1)
    yq = y[..., N, :].copy()
    z[..., N, d:] = 0.0
    M = np.swapaxes(z, -1, -2) @ z / sim.norm
    return M, z[..., N, :], yq


def wishart_draws(rng, lead, d: int, N: int):
    """PROTOTYPE P2 draws: Bartlett factors of N Sigma_hat ~ W_d(N, I), x_q ~ N(0, I), Lambda."""
    chi = np.sqrt(2.0 * rng.standard_gamma((N - np.arange(d)) / 2.0, size=lead + (d,)))
    off = rng.standard_normal(lead + (d * (d - 1) // 2,))
    g = rng.standard_normal(lead + (d,))
    lam = rng.standard_normal(lead + (d,))
    return chi, off, g, lam


def wishart_M(sim, chi, off, g, lam):
    """PROTOTYPE P2: M, z_q, y_q from the Wishart draws (exact in distribution for N >= d)."""
    d, N = sim.d, sim.N
    assert sim.norm == N and sim.query_in_moments, "prototype: scale 'N', query in M only"
    lead = chi.shape[:-1]
    A = np.zeros(lead + (d, d))
    i, j = np.tril_indices(d, -1)
    A[..., i, j] = off
    A[..., np.arange(d), np.arange(d)] = chi
    sq = np.sqrt(sim.s)
    LA = sq[:, None] * A
    Sh = LA @ np.swapaxes(LA, -1, -2) / N                      # Sigma_hat
    xq = g * sq
    M = np.empty(lead + (2 * d, 2 * d))
    M[..., :d, :d] = Sh + xq[..., :, None] * xq[..., None, :] / sim.norm
    M[..., :d, d:] = Sh * lam[..., None, :]
    M[..., d:, :d] = lam[..., :, None] * Sh
    M[..., d:, d:] = lam[..., :, None] * Sh * lam[..., None, :]
    zq = np.concatenate([xq, np.zeros_like(xq)], axis=-1)
    return M, zq, lam * xq


def make_fused_kernel():
    """PROTOTYPE P3: one Numba loop over seeds and prompts on the Wishart draws."""
    import numba

    @numba.njit(cache=False, fastmath=False)
    def fused(WP, WQ, chi, off, g, lam, sq, N, gP, gQ, loss):
        S, B, d = chi.shape
        D = 2 * d
        A = np.zeros((d, d))
        Sh = np.empty((d, d))
        M = np.empty((D, D))
        xq = np.empty(d)
        v = np.empty(D)
        u = np.empty(D)
        r = np.empty(d)
        a = np.empty(D)
        for s_ in range(S):
            gP[s_] = 0.0
            gQ[s_] = 0.0
            loss[s_] = 0.0
            for b in range(B):
                k = 0
                for i in range(d):
                    A[i, i] = chi[s_, b, i]
                    for j in range(i):
                        A[i, j] = off[s_, b, k]
                        k += 1
                for i in range(d):
                    xq[i] = g[s_, b, i] * sq[i]
                for i in range(d):
                    for j in range(i + 1):
                        acc = 0.0
                        for t in range(j + 1):
                            acc += A[i, t] * A[j, t]
                        acc *= sq[i] * sq[j] / N
                        Sh[i, j] = acc
                        Sh[j, i] = acc
                for i in range(d):
                    li = lam[s_, b, i]
                    for j in range(d):
                        lj = lam[s_, b, j]
                        h = Sh[i, j]
                        M[i, j] = h + xq[i] * xq[j] / N
                        M[i, d + j] = h * lj
                        M[d + i, j] = li * h
                        M[d + i, d + j] = li * h * lj
                for i in range(D):                    # v = WQ z_q (z_q = (x_q, 0))
                    acc = 0.0
                    for j in range(d):
                        acc += WQ[s_, i, j] * xq[j]
                    v[i] = acc
                for i in range(D):                    # u = M v
                    acc = 0.0
                    for j in range(D):
                        acc += M[i, j] * v[j]
                    u[i] = acc
                lsum = 0.0
                for o in range(d):                    # r = WP_y u - y_q
                    acc = 0.0
                    for j in range(D):
                        acc += WP[s_, d + o, j] * u[j]
                    r[o] = acc - lam[s_, b, o] * xq[o]
                    lsum += r[o] * r[o]
                loss[s_] += 0.5 * lsum
                for o in range(d):                    # dWP_y += r u^T
                    for j in range(D):
                        gP[s_, d + o, j] += r[o] * u[j]
                for i in range(D):                    # a = WP_y^T r
                    acc = 0.0
                    for o in range(d):
                        acc += WP[s_, d + o, i] * r[o]
                    a[i] = acc
                for i in range(D):                    # dWQ[:, :d] += (M a) x_q^T
                    acc = 0.0
                    for j in range(D):
                        acc += M[i, j] * a[j]
                    for j in range(d):
                        gQ[s_, i, j] += acc * xq[j]
            inv = 1.0 / B
            for i in range(D):
                for j in range(D):
                    gP[s_, i, j] *= inv
                    gQ[s_, i, j] *= inv
            loss[s_] *= inv

    return fused


def proto_runners(sim, seeds: int):
    d, N, D = sim.d, sim.N, sim.D
    WP0, WQ0 = w_init()
    WP = np.broadcast_to(WP0, (seeds, D, D)).copy()
    WQ = np.broadcast_to(WQ0, (seeds, D, D)).copy()
    rng = np.random.default_rng(11)
    lead = (seeds, sim.batch)
    fused = make_fused_kernel()
    sq = np.sqrt(sim.s)
    gP, gQ, lo = np.empty_like(WP), np.empty_like(WQ), np.empty(seeds)

    def step_from(M, zq, yq):
        _, a, b = sim.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq)
        WP.__isub__(sim.eta * a.mean(axis=1))
        WQ.__isub__(sim.eta * b.mean(axis=1))

    def p1(n):
        for _ in range(n):
            step_from(*proto_sample_matmul(sim, rng, lead))

    def p2(n):
        for _ in range(n):
            step_from(*wishart_M(sim, *wishart_draws(rng, lead, d, N)))

    def p3(n):
        for _ in range(n):
            fused(WP, WQ, *wishart_draws(rng, lead, d, N), sq, float(N), gP, gQ, lo)
            WP.__isub__(sim.eta * gP)
            WQ.__isub__(sim.eta * gQ)

    def p3_draws_only(n):
        for _ in range(n):
            wishart_draws(rng, lead, d, N)

    return {"P1": p1, "P2": p2, "P3": p3, "P3 draws": p3_draws_only}, fused


def check_prototypes(sim, fused, prompts: int) -> dict:
    """Exactness checks of the prototypes."""
    d, N, D = sim.d, sim.N, sim.D
    WP0, WQ0 = w_init(4)
    WP0, WQ0 = 3 * WP0, 3 * WQ0          # larger weights: every gradient entry is non-trivial
    out = {}
    # P1: same random numbers as sample(): identical M up to rounding.
    a = sim.sample(np.random.default_rng(3), (2, 64))
    b = proto_sample_matmul(sim, np.random.default_rng(3), (2, 64))
    out["P1 max |dM| (same draws)"] = max(np.max(np.abs(u - v)) for u, v in zip(a, b))
    # P3 vs P2 on the same Wishart draws.
    draws = wishart_draws(np.random.default_rng(4), (2, sim.batch), d, N)
    M, zq, yq = wishart_M(sim, *draws)
    WP = np.stack([WP0, WQ0]); WQ = np.stack([WQ0, WP0])
    l2, gP2, gQ2 = sim.prompt_gradients(WP[:, None], WQ[:, None], M, zq, yq)
    gP, gQ, lo = np.empty_like(WP), np.empty_like(WQ), np.empty(2)
    fused(WP, WQ, *draws, np.sqrt(sim.s), float(N), gP, gQ, lo)
    out["P3 vs P2 max |dgrad| (same draws)"] = max(np.max(np.abs(gP - gP2.mean(1))),
                                                    np.max(np.abs(gQ - gQ2.mean(1))))
    # P2 in distribution: mean loss and gradient, token sampler vs Wishart sampler.
    chunk = 4096
    reps = max(1, prompts // chunk)

    def moments(sampler, seed):
        rng = np.random.default_rng(seed)
        s1 = s2 = 0.0
        for _ in range(reps):
            M, zq, yq = sampler(rng)
            l, gp, gq = sim.prompt_gradients(WP0, WQ0, M, zq, yq)
            v = np.concatenate([l[:, None], gp[:, d:, :].reshape(chunk, -1),
                                gq[:, :, :d].reshape(chunk, -1)], axis=1)
            s1 = s1 + v.sum(0)
            s2 = s2 + (v * v).sum(0)
        n = reps * chunk
        mean = s1 / n
        return mean, np.sqrt(np.maximum(s2 / n - mean ** 2, 0) / n)

    m_tok, se_tok = moments(lambda r: sim.sample(r, (chunk,)), 21)
    m_wis, se_wis = moments(lambda r: wishart_M(sim, *wishart_draws(r, (chunk,), d, N)), 22)
    z = (m_tok - m_wis) / np.sqrt(se_tok ** 2 + se_wis ** 2)
    out["P2 prompts per sampler"] = reps * chunk
    out["P2 z-scores (loss + 64 gradient entries)"] = z
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed repeat")
    ap.add_argument("--check-prompts", type=int, default=200_000,
                    help="prompts per sampler in the Wishart distribution check")
    args = ap.parse_args()
    import torch

    from symicl.simulate.sgd_transformer import TransformerSGD

    t_all = time.perf_counter()
    cores = os.cpu_count() or 1
    print("bench_sgd: Monte Carlo SGD throughput, symicl TransformerSGD vs PyTorch CPU")
    print(machine())
    print(f"model: d = {D_IN}, N = {N_CTX}, B = {BATCH}, aligned tasks fresh per prompt, "
          f"s = {SPECTRUM.tolist()}, eta = {ETA}; median of {args.repeats} repeats of "
          f">= {args.min_time} s after warm-up")
    sim = TransformerSGD(D_IN, N_CTX, SPECTRUM, "aligned", None, BATCH, ETA)

    err = check_torch_same_model(torch, sim)
    print(f"same model: PyTorch autograd vs symicl prompt_gradients on the same prompts, "
          f"max relative difference {err:.1e}")
    assert err < 1e-10

    # One round-robin measurement of every throughput configuration.
    configs, seeds_of = {}, {}
    for seeds in (1, SEEDS_MANY):
        loop, run = symicl_runners(sim, seeds)
        configs[f"symicl TransformerSGD.run, {seeds} seed(s)"] = run
        configs[f"symicl minibatch_gradient + update, {seeds} seed(s)"] = loop
        seeds_of.update({k: seeds for k in list(configs)[-2:]})

    def threads(n):
        return lambda: torch.set_num_threads(n)

    for n_thr in sorted({cores, 1}, reverse=True):
        for dtype, dname in ((torch.float64, "float64"), (torch.float32, "float32")):
            lab = f"PyTorch full f(Z), {dname}, {n_thr} thread(s)"
            configs[lab] = (threads(n_thr), torch_runner(torch, dtype))
            seeds_of[lab] = 1
    lab = "PyTorch query column only, float64, 1 thread (stronger, not the brief's)"
    configs[lab] = (threads(1), torch_runner(torch, torch.float64, query_only=True))
    seeds_of[lab] = 1
    fused = None
    proto_desc = {"P1": "PROTOTYPE P1 sample with matmul M + prompt_gradients",
                  "P2": "PROTOTYPE P2 Wishart/Bartlett M + prompt_gradients",
                  "P3": "PROTOTYPE P3 Wishart draws + fused Numba kernel",
                  "P3 draws": "PROTOTYPE P3 draws alone (gamma + normals)"}
    for seeds in (1, SEEDS_MANY):
        runners, fused = proto_runners(sim, seeds)
        for name, fn in runners.items():
            lab = f"{proto_desc[name]}, {seeds} seed(s)"
            configs[lab] = fn
            seeds_of[lab] = seeds
    timed = measure(configs, args.min_time, args.repeats)
    torch.set_num_threads(cores)
    torch_rows = {(dn, n): timed[f"PyTorch full f(Z), {dn}, {n} thread(s)"]
                  for dn in ("float64", "float32") for n in sorted({cores, 1})}
    profile = {s: profile_symicl(sim, s, args.min_time, args.repeats) for s in (1, SEEDS_MANY)}
    checks = check_prototypes(sim, fused, args.check_prompts)

    # -- tables ---------------------------------------------------------------------------------
    best_t64 = min(v for (dn, _), v in torch_rows.items() if dn == "float64")
    t64_cores = torch_rows[("float64", cores)]
    print(f"\n== throughput (a step = sample + forward + gradient + update; prompts/s = seeds x "
          f"{BATCH} / step time) ==")
    print(f"torch threads: {cores} (= os.cpu_count()) and 1; ratio columns: prompts/s over "
          f"PyTorch float64 at {cores} thread(s) / at its best thread count")
    hdr = f"{'implementation':<74} {'ms/step':>9} {'prompts/s':>11} {'vs t64@cores':>12} {'vs t64 best':>12}"
    print(hdr)
    print("-" * len(hdr))

    def line(lab, seeds, sec):
        rate = seeds * BATCH / sec
        print(f"{lab:<74} {sec * 1e3:9.3f} {rate:11.0f} {rate / (BATCH / t64_cores):11.2f}x "
              f"{rate / (BATCH / best_t64):11.2f}x")

    for lab, sec in timed.items():
        if "draws alone" not in lab:
            line(lab, seeds_of[lab], sec)

    if cores > 1 and torch_rows[("float64", cores)] > 2 * torch_rows[("float64", 1)]:
        print(f"note: PyTorch with {cores} threads is {torch_rows[('float64', cores)] / torch_rows[('float64', 1)]:.0f}x "
              f"slower than with 1 thread here (load average {os.getloadavg()[0]:.2f}: on a machine "
              f"whose cores are shared,\n      intra-op threads wait for each other); the fair "
              f"baseline is PyTorch at its best thread count.")

    for seeds, parts in profile.items():
        step = parts["whole step: minibatch_gradient + update (reference)"]
        print(f"\n== where a symicl step goes, {seeds} seed(s) x {BATCH} (ms per step, % of the whole "
              f"step; a replica of sample()'s lines, each timed alone, round-robin) ==")
        for lab, sec in parts.items():
            print(f"  {lab:<54} {sec * 1e3:8.3f} {100 * sec / step:6.0f}%")
        sec = timed[f"{proto_desc['P3 draws']}, {seeds} seed(s)"]
        print(f"  {'PROTOTYPE P2/P3 Wishart draws alone (gamma + normals)':<54} {sec * 1e3:8.3f} "
              f"{100 * sec / step:6.0f}%   (from the throughput round)")

    z = checks["P2 z-scores (loss + 64 gradient entries)"]
    print("\n== prototype checks ==")
    print(f"P1: max |M_einsum - M_matmul| on the same draws = {checks['P1 max |dM| (same draws)']:.1e}")
    print(f"P3: max |grad_fused - grad_P2| on the same Wishart draws = "
          f"{checks['P3 vs P2 max |dgrad| (same draws)']:.1e}")
    print(f"P2: token sampler vs Wishart sampler, {checks['P2 prompts per sampler']} prompts each, "
          f"mean loss and 64 gradient entries at a fixed W:\n    z-scores max |z| = "
          f"{np.max(np.abs(z)):.2f}, mean z^2 = {np.mean(z * z):.2f} (expected about 1), "
          f"{int(np.sum(np.abs(z) > 3))} of {z.size} beyond 3")

    sym1 = timed["symicl TransformerSGD.run, 1 seed(s)"]
    r_cores, r_best = t64_cores / sym1, best_t64 / sym1
    print(f"\ngoal (symicl >= 3x PyTorch float64, 1 seed x {BATCH}, whole step): "
          f"{r_cores:.2f}x vs PyTorch at {cores} threads, {r_best:.2f}x vs PyTorch at its best "
          f"thread count -> {'MET' if r_best >= 3 else ('MET only against the ' + str(cores) + '-thread PyTorch' if r_cores >= 3 else 'NOT MET')}")
    p3 = timed[f"{proto_desc['P3']}, 1 seed(s)"]
    p2 = timed[f"{proto_desc['P2']}, 1 seed(s)"]
    print(f"with PROTOTYPE P2 (pure NumPy, 1 seed): {best_t64 / p2:.1f}x PyTorch float64 at its best "
          f"thread count")
    print(f"with PROTOTYPE P3 (1 seed): {best_t64 / p3:.1f}x PyTorch float64 at its best thread "
          f"count; {sym1 / p3:.1f}x the current TransformerSGD.run")
    print(f"load average (1 min) at end {os.getloadavg()[0]:.2f}; total benchmark time "
          f"{time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
