"""The measured false-failure rate of ``symicl verify --quick``: many seeds, every model.

Run from the repository root (on demand; not a test):

    python -m numerics.verify_false_failures [--seeds 20] [--models a,b] [--out FILE]

For every built-in verifiable model, three user-defined models
(tests/user_models/models.py: diagonal_network, three_layer, separate_kqv at
N = 8) and the valid transformer runs that used to fail (isotropic tasks,
equal spectrum, N = 100000) it runs the quick verification at seeds 0 .. seeds-1 in this process,
``symicl.verify.verify(spec, {}, Plan.make(spec, quick=True, seed=k),
constants)``: the same code path as ``symicl verify MODEL --quick --seed K``,
without the subprocess and the plots.  Each seed changes the start, the SGD
noise, the random point of the gradient check and the conservation-law
start.

It prints a table: model, runs, failed runs, the worst |z| / tolerance over
every judged z-row of every run (and which row, at which seed), the worst
value / bound over the bound rows, and the time; and writes a JSON summary
(every run's failing rows and worst rows) to numerics/out/ or --out.
Exit status 1 if any run failed (a failing row or an error), else 0.

The design states a family-wise false-failure rate alpha (1e-3 per run, see
symicl.verify.run.DESIGN), so with a correct theory and simulator the
expected number of failed runs over 5 x 20 runs is about 0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_FILE = os.path.join(ROOT, "tests", "user_models", "models.py")

# name -> (model reference, constants[, options])
USER_MODELS = {
    "diagonal_network": (f"{USER_FILE}:diagonal_network", {}),
    "three_layer": (f"{USER_FILE}:three_layer", {}),
    "separate_kqv": (f"{USER_FILE}:separate_kqv", {"N": 8}),
}
# the verification issue's reproductions of valid runs that used to fail
REPRODUCTIONS = {
    "transformer-isotropic": ("linear-transformer", {}, {"tasks": "isotropic"}),
    "transformer-equal-spectrum": ("linear-transformer", {}, {"spectrum": (1.0, 1.0)}),
    "transformer-N-100000": ("linear-transformer", {}, {"N": 100000}),
}


def models_available() -> dict[str, tuple[str, dict]]:
    from symicl.models import SPECS

    out: dict = {name: (name, {}) for name, s in SPECS.items() if s.verifiable}
    out.update(USER_MODELS)
    out.update(REPRODUCTIONS)
    return out


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def one_run(spec, constants: dict, seed: int, options: dict | None = None) -> dict:
    """One quick verification at ``seed``: failing rows, worst z-row and bound row."""
    from symicl.verify import Plan, verify

    start = time.perf_counter()
    try:
        plan = Plan.make(spec, quick=True, seed=seed)
        checks, _ = verify(spec, dict(options or {}), plan, dict(constants))
    except Exception as exc:  # noqa: BLE001 - an error is a failed run, reported
        return {"seed": seed, "passed": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "seconds": time.perf_counter() - start}
    failed = [c.to_dict() for c in checks if not c.passed]
    zrows = [c for c in checks if c.kind == "z"]
    bounds = [c for c in checks if c.kind == "bound"]
    worst_z = max(zrows, key=lambda c: abs(c.z) / c.tolerance, default=None)
    worst_b = max(bounds, key=lambda c: _ratio(c.simulation, c.tolerance), default=None)
    return {
        "seed": seed, "passed": not failed, "failed": failed, "alpha": plan.alpha,
        "z_rows": len(zrows),
        "worst_z": None if worst_z is None else {
            "quantity": worst_z.quantity, "z": _finite(worst_z.z),
            "tolerance": worst_z.tolerance, "ratio": abs(worst_z.z) / worst_z.tolerance,
            "theory": worst_z.theory, "simulation": worst_z.simulation, "se": worst_z.se},
        "worst_bound": None if worst_b is None else {
            "quantity": worst_b.quantity, "value": _finite(worst_b.simulation),
            "bound": worst_b.tolerance, "ratio": _ratio(worst_b.simulation, worst_b.tolerance)},
        "z_ratios": {c.quantity: abs(c.z) / c.tolerance for c in zrows},
        "seconds": time.perf_counter() - start,
    }


def _g(x) -> str:
    return "-" if x is None else f"{x:.6g}"


def _row_text(c: dict) -> str:
    """A failing row (a Check.to_dict(); non-finite numbers are None) in one line."""
    if c["kind"] == "bound":
        return f"{c['quantity']}: {_g(c['simulation'])} > bound {_g(c['tolerance'])}"
    return (f"{c['quantity']}: theory {_g(c['theory'])}, simulation {_g(c['simulation'])}, "
            f"SE {_g(c['se'])}, z {_g(c['z'])}, tolerance {_g(c['tolerance'])}")


def _ratio(value, bound):
    if bound > 0:
        return value / bound if math.isfinite(value) else math.inf
    return 0.0 if value <= 0 else math.inf


def _write(path: str, summary: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(summary, fh, indent=1, default=lambda o: None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 per model")
    ap.add_argument("--models", default=None,
                    help="comma-separated: built-in names and/or " + ", ".join(USER_MODELS))
    ap.add_argument("--out", default=None, help="JSON summary (default numerics/out/"
                                                "verify_false_failures.json)")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")

    from symicl.models import spec as spec_of
    from symicl.verify.run import DESIGN

    available = models_available()
    names = list(available) if not args.models else [m.strip() for m in args.models.split(",")]
    unknown = [n for n in names if n not in available]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(available)}")
    out_path = args.out or os.path.join(ROOT, "numerics", "out", "verify_false_failures.json")

    total_start = time.perf_counter()
    summary = {"seeds": list(range(args.seeds)), "design": DESIGN, "models": {}}
    rows = []
    for name in names:
        ref, constants, *rest = available[name]
        options = rest[0] if rest else {}
        spec = spec_of(ref)
        t0 = time.perf_counter()
        runs = []
        for k in range(args.seeds):
            r = one_run(spec, constants, k, options)
            runs.append(r)
            worst = r.get("worst_z") or {}
            status = "ok" if r["passed"] else "FAIL"
            msg = r.get("error") or "; ".join(_row_text(c) for c in r["failed"])
            print(f"[{name} seed {k}] {status} {r['seconds']:.1f} s, worst |z|/tol "
                  f"{worst.get('ratio', float('nan')):.3f}" + (f"  {msg}" if msg else ""),
                  file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
        ok = [r for r in runs if "error" not in r]
        wz = max(ok, key=lambda r: r["worst_z"]["ratio"] if r["worst_z"] else -1, default=None)
        wb = max(ok, key=lambda r: r["worst_bound"]["ratio"] if r["worst_bound"] else -1,
                 default=None)
        n_fail = sum(not r["passed"] for r in runs)
        entry = {
            "reference": ref, "constants": constants, "runs": len(runs), "failures": n_fail,
            "failed_seeds": [r["seed"] for r in runs if not r["passed"]],
            "worst_z": None if wz is None or wz["worst_z"] is None else
            dict(wz["worst_z"], seed=wz["seed"]),
            "worst_bound": None if wb is None or wb["worst_bound"] is None else
            dict(wb["worst_bound"], seed=wb["seed"]),
            "seconds": seconds, "run_details": runs,
        }
        summary["models"][name] = entry
        rows.append((name, entry))
        _write(out_path, summary)          # after every model: a crash keeps what was done
    total = time.perf_counter() - total_start
    summary["seconds"] = total

    alphas = sorted({r["alpha"] for _, e in rows for r in e["run_details"] if "alpha" in r})
    print(f"\nquick verify at seeds 0..{args.seeds - 1} (in-process); family-wise false-failure "
          f"rate per run alpha = {', '.join(f'{a:g}' for a in alphas)}")
    head = (f"{'model':<20} {'runs':>4} {'fail':>4} {'worst |z|/tol':>13} {'seed':>4}  "
            f"{'row':<58} {'bound ratio':>11} {'time s':>7}")
    print(head)
    print("-" * len(head))
    for name, e in rows:
        wz, wb = e["worst_z"] or {}, e["worst_bound"] or {}
        nan = float("nan")
        print(f"{name:<20} {e['runs']:>4} {e['failures']:>4} {wz.get('ratio', nan):>13.3f} "
              f"{wz.get('seed', ''):>4}  {wz.get('quantity', '')[:58]:<58} "
              f"{wb.get('ratio', nan):>11.3f} {e['seconds']:>7.1f}")
    n_runs = sum(e["runs"] for _, e in rows)
    n_fail = sum(e["failures"] for _, e in rows)
    print(f"\n{n_fail} of {n_runs} runs failed; total {total:.1f} s")
    for name, e in rows:
        for r in e["run_details"]:
            if r["passed"]:
                continue
            if "error" in r:
                print(f"  {name} seed {r['seed']}: error {r['error']}")
            for c in r.get("failed", []):
                print(f"  {name} seed {r['seed']}: {_row_text(c)}")

    _write(out_path, summary)
    print(f"wrote {out_path}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
