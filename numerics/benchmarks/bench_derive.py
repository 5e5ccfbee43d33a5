"""Phase-by-phase timing of the full transformer's derivation, new path vs old.

Run from the repository root:

    python -m numerics.benchmarks.bench_derive [--dims 2 3 4 5] [--repeats 3] [--old-max-dim 4]

Each measurement is one fresh child process (so peak memory is that run's
own), timing what ``symicl derive linear-transformer --reduction none --dim D
--format json`` does:

* expectation: the loss converted to a polynomial and integrated
  (``engine.expect_polynomial(engine.polynomial(loss))``);
* gradient: dL/dtheta as ring elements (model.py);
* to-expression: the flow and the loss as SymPy expressions;
* printing: ``str`` of each and the JSON text (export code, unchanged).

Paths, measured in the same run:

* new: the flint backend (python-flint fmpq_mpoly, lazy pieces, direct
  canonical expressions);
* old: SymPy's rings with SymPy's pure-Python ground types
  (SYMICL_POLY_BACKEND=sympy, SYMPY_GROUND_TYPES=python), i.e. the path
  before this change as it ran on a machine without python-flint.

The median over ``--repeats`` children is reported for each phase, with the
peak RSS, and the ratio old/new of the derivation (expectation + gradient +
to-expression, what the CLI prints as "derived ... in") and of the total.
Both paths' JSON texts are hashed and must be identical (the table says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import hashlib, json, resource, sys, time
t0 = time.perf_counter()
from symicl.models import build
from symicl.export import to_json
d = int(sys.argv[1])
m = build("linear-transformer", dim=d, reduction="none")
t1 = time.perf_counter()
e = m._engine
m.__dict__["_expected"] = e.expect_polynomial(e.polynomial(m.loss, "loss"))
t2 = time.perf_counter()
m._gradient
t3 = time.perf_counter()
flow = m.flow(); loss = m.expected_loss()
t4 = time.perf_counter()
text = json.dumps({"loss": str(loss), "flow": {p.name: str(v) for p, v in flow.items()}})
t5 = time.perf_counter()
full = to_json(m)
print(json.dumps({"build": t1 - t0, "expectation": t2 - t1, "gradient": t3 - t2,
                  "to_expression": t4 - t3, "printing": t5 - t4,
                  "sha": hashlib.sha256(full.encode()).hexdigest(), "backend": e.backend,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PHASES = ("expectation", "gradient", "to_expression", "printing")
ENV = {"new": {"SYMICL_POLY_BACKEND": "flint"},
       "old": {"SYMICL_POLY_BACKEND": "sympy", "SYMPY_GROUND_TYPES": "python"}}


def measure(path: str, d: int) -> dict:
    env = dict(os.environ, **ENV[path])
    out = subprocess.run([sys.executable, "-c", CHILD, str(d)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from .machine import machine

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-max-dim", type=int, default=4,
                    help="largest d for the old path (d = 5 takes minutes there)")
    args = ap.parse_args(argv)
    print(machine("sympy", "flint"))
    print("full transformer, symicl derive linear-transformer --reduction none --dim D; "
          f"median of {args.repeats} fresh processes per cell; seconds\n")
    head = (f"{'d':>2} {'path':>4} " + " ".join(f"{p:>13}" for p in PHASES)
            + f" {'derive':>8} {'total':>8} {'peak MB':>8}  same JSON")
    print(head)
    print("-" * len(head))
    summary = []
    for d in args.dims:
        rows = {}
        for path in ("old", "new"):
            if path == "old" and d > args.old_max_dim:
                continue
            runs = [measure(path, d) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in PHASES + ("rss_mb",)}
            med["derive"] = statistics.median(
                r["expectation"] + r["gradient"] + r["to_expression"] for r in runs)
            med["total"] = statistics.median(sum(r[k] for k in PHASES) for r in runs)
            med["sha"] = {r["sha"] for r in runs}
            rows[path] = med
        same = ("yes" if rows["new"]["sha"] == rows["old"]["sha"] and len(rows["new"]["sha"]) == 1
                else "NO") if "old" in rows else "(old not run)"
        for path, med in rows.items():
            print(f"{d:>2} {path:>4} " + " ".join(f"{med[p]:>13.3f}" for p in PHASES)
                  + f" {med['derive']:>8.2f} {med['total']:>8.2f} {med['rss_mb']:>8.0f}  "
                  + (same if path == "new" else ""))
        if "old" in rows:
            summary.append(f"d = {d}: derive old/new = {rows['old']['derive'] / rows['new']['derive']:.1f}x, "
                           f"expectation {rows['old']['expectation'] / rows['new']['expectation']:.1f}x, "
                           f"to-expression {rows['old']['to_expression'] / rows['new']['to_expression']:.1f}x, "
                           f"total {rows['old']['total'] / rows['new']['total']:.1f}x, "
                           f"peak {rows['old']['rss_mb']:.0f} -> {rows['new']['rss_mb']:.0f} MB")
        if same == "NO":
            print(f"ERROR: the two paths' JSON differ at d = {d}", file=sys.stderr)
            return 1
    print()
    print("\n".join(summary))
    print("goals: d = 4 derive < 4 s, d = 5 < 60 s, peak < 1 GB (new path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
