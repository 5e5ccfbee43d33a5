"""Non-Gaussian expectations against the Gaussian path on the same polynomials.

Run from the repository root:

    python -m numerics.benchmarks.bench_nongaussian [--repeats 5]

Each case asks the engine for the same expectation twice in one run: once with
Gaussian data (the baseline) and once with each non-Gaussian law of
:mod:`symicl.sources` (the same variances, symbolic where the Gaussian's are).
Cases:

* the exact expected loss of the linear transformer (the whole derivation's
  expectation: full model d = 2 and d = 3, aligned reduction d = 4; a fresh
  model per timing, symbolic N and spectrum), inputs gaussian vs
  uniform / rademacher / laplace / kurtosis (symbolic kappa);
* a polynomial of degree 8 in a 3-vector with symbolic coefficients
  (Gaussian N(0, diag(s)) vs independent sources of variances s);
* products of four context means with N symbolic (a non-Gaussian sample vs
  a Gaussian one).

Times are medians over ``--repeats`` runs (``time.perf_counter``); the ratio
column is non-Gaussian / Gaussian, the goal is <= 3.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import sympy as sp

from symicl.context import Context
from symicl.expectation import Distribution, expectation
from symicl.gaussian import Gaussian
from symicl.models import build
from symicl.sources import Independent, Kurtosis, Laplace, Rademacher, Uniform

LAWS = {"uniform": Uniform, "rademacher": Rademacher, "laplace": Laplace, "kurtosis": Kurtosis}


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _model_case(options: dict, inputs: str):
    def run():
        build("linear-transformer", inputs=inputs, **options).expected_loss()
    return run


def _polynomial(seed: int = 0):
    x = list(sp.symbols("x_1:4", real=True))
    t = list(sp.symbols("t_1:5", real=True))
    rng = np.random.default_rng(seed)
    expr = sp.Integer(0)
    for _ in range(40):
        e = rng.integers(0, 4, 3)
        while e.sum() > 8:
            e = rng.integers(0, 4, 3)
        expr += int(rng.integers(-3, 4)) * t[int(rng.integers(0, 4))] * sp.Mul(
            *[v ** int(k) for v, k in zip(x, e)])
    return x, sp.expand(expr ** 2)


def _poly_case(law: str | None):
    x, expr = _polynomial()
    s = list(sp.symbols("s_1:4", positive=True))
    dist = Gaussian(x, s) if law is None else Independent(x, LAWS[law](), s)
    return lambda: expectation(expr, dist)


def _context_case(law: str | None):
    u = list(sp.symbols("u_1:3", real=True))
    s = list(sp.symbols("s_1:3", positive=True))
    t = sp.Symbol("t", real=True)
    sample = Gaussian(u, s) if law is None else Independent(u, LAWS[law](), s)

    def run():
        ctx = Context(sample)
        m = [ctx.mean(u[0] ** 2), ctx.mean(u[0] * u[1]), ctx.mean(u[1] ** 2)]
        expr = (t * m[0] + m[1]) ** 2 * (m[2] + m[1]) ** 2 + m[0] ** 2 * m[2] ** 2
        return expectation(expr, Distribution(ctx))
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from .machine import machine

    print(machine("sympy", "flint"))
    cases = [
        ("transformer loss, full d = 2", lambda k: _model_case({"dim": 2}, k)),
        ("transformer loss, full d = 3", lambda k: _model_case({"dim": 3}, k)),
        ("transformer loss, aligned d = 4",
         lambda k: _model_case({"dim": 4, "reduction": "aligned"}, k)),
        ("degree-16 polynomial, 3 variables", lambda k: _poly_case(None if k == "gaussian"
                                                                   else k)),
        ("4 context means, N symbolic", lambda k: _context_case(None if k == "gaussian" else k)),
    ]
    print(f"{'case':36s} {'law':11s} {'gaussian s':>11s} {'this law s':>11s} {'ratio':>7s}")
    worst = 0.0
    for name, make in cases:
        make("gaussian")()                      # warm-up (imports, SymPy's caches)
        base = _median(make("gaussian"), args.repeats)
        for law in LAWS:
            make(law)()
            t = _median(make(law), args.repeats)
            worst = max(worst, t / base)
            print(f"{name:36s} {law:11s} {base:11.4f} {t:11.4f} {t / base:7.2f}")
    print(f"\nlargest ratio non-Gaussian / Gaussian: {worst:.2f} (goal <= 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
