"""The ``symicl`` command line.

    symicl models                         list the built-in models and their options
    symicl derive MODEL [options]         derive the exact expected loss and flow
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from . import __version__
from .errors import SymiclError
from .files import write_atomic
from .models import BUILTINS, build

VERIFIABLE = ("deep-linear", "linear-transformer")   # the models with a plan in symicl.verify
from .sweep.cli import add_parser as add_sweep_parsers

__all__ = ["main"]

FORMATS = ("json", "latex", "md")


def _spectrum(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"spectrum must be comma-separated numbers, got {text!r}") from None


def _model_options(args: argparse.Namespace) -> dict:
    if args.model == "linear-transformer":
        opts = {"dim": args.dim, "reduction": args.reduction, "tasks": args.tasks}
        if args.N is not None:
            opts["N"] = args.N
        if args.spectrum is not None:
            opts["spectrum"] = args.spectrum
        return opts
    if args.model == "linear-transformer-per-mode":
        return {"dim": args.dim, "N": args.N, "spectrum": args.spectrum}
    return {"n_in": args.n_in, "n_hidden": args.n_hidden, "n_out": args.n_out}


def _render(model, fmt: str, standalone: bool) -> str:
    from . import export

    if fmt == "json":
        return export.to_json(model)
    if fmt == "latex":
        return export.to_latex(model, standalone=standalone)
    return export.to_markdown(model)


def _committed(model):
    from .derivations import config_for

    return config_for(model)


def _render_committed(folder: str, fmt: str, standalone: bool) -> str:
    """A committed configuration's full text (loss, flow and analysis)."""
    from .derivations import render
    from .export.latex import document

    files = render(folder)
    if fmt == "json":
        return files["derivation.json"]
    if fmt == "latex":
        return document(files["equations.tex"]) if standalone else files["equations.tex"]
    return files["README.md"]


def cmd_derive_all(args: argparse.Namespace) -> int:
    from .derivations import write_all

    changed = write_all(args.root, check=args.check,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.check:
        for path in changed:
            print(f"symicl: stale: {path}", file=sys.stderr)
        if changed:
            print("symicl: derivations are stale; run `symicl derive --all`", file=sys.stderr)
            return 1
        print("symicl: derivations are up to date", file=sys.stderr)
        return 0
    for path in changed:
        print(f"symicl: wrote {path}", file=sys.stderr)
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    if args.all:
        return cmd_derive_all(args)
    if args.check:
        raise SymiclError("--check goes with --all")
    if args.model is None:
        raise SymiclError("name a model to derive, or give --all")
    model = build(args.model, **_model_options(args))
    start = time.perf_counter()
    print(f"symicl: deriving {model.name} {model.options} ...", file=sys.stderr, flush=True)
    model.flow()
    print(f"symicl: derived expected loss and flow of {len(model.parameters)} parameters "
          f"in {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
    config = _committed(model)
    if config is None:
        text = _render(model, args.format, args.standalone)
    else:
        print(f"symicl: with the analysis of derivations/{config.folder}", file=sys.stderr)
        text = _render_committed(config.folder, args.format, args.standalone)
    if args.output:
        write_atomic(args.output, text)
        print(f"symicl: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _plan_overrides(args: argparse.Namespace, plan_cls) -> dict:
    fields = set(plan_cls.__dataclass_fields__)
    out = {}
    for name in ("dim", "N", "spectrum", "tasks", "eta", "batch", "seeds", "t_end", "seed"):
        value = getattr(args, f"v_{name}", None)
        if value is not None and name in fields:
            out[name] = tuple(value) if name == "spectrum" else value
    return out


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from .verify import PLANS
    from .verify.report import table, write_json

    plan_cls, run = PLANS[args.model]
    overrides = _plan_overrides(args, plan_cls)
    plan = plan_cls.quick(**overrides) if args.quick else plan_cls(**overrides)
    start = time.perf_counter()
    checks, extra = run(plan, out=args.out, progress=not args.no_progress)
    print(table(checks))
    failed = [c for c in checks if not c.passed]
    elapsed = time.perf_counter() - start
    write_json(f"{args.out}/report.json", args.model, json.loads(json.dumps(extra["plan"])),
               checks, {k: v for k, v in extra.items() if k != "plan"})
    files = [f"{args.out}/report.json"]
    if not args.no_plots:
        module = __import__(run.__module__, fromlist=["plot"])
        files += module.plot(extra, args.out)
    print(f"\n{len(checks) - len(failed)} passed, {len(failed)} failed "
          f"({elapsed:.1f} s); wrote {', '.join(files)}")
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    import inspect

    for name, factory in BUILTINS.items():
        params = inspect.signature(factory).parameters.values()
        opts = ", ".join(f"{p.name}={p.default!r}" for p in params)
        doc = (factory.__doc__ or "").strip().splitlines()[0]
        print(f"{name}\n    {doc}\n    options: {opts}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="symicl",
        description="Derive the exact learning dynamics of small learning models "
                    "(expected loss, expected-gradient flow) and export them.")
    top.add_argument("--version", action="version", version=f"symicl {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p_models = sub.add_parser("models", help="list the built-in models and their options",
                              description="List the built-in models and their options.")
    p_models.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "derive", help="derive the exact expected loss and flow of a model",
        description="Derive the exact expected loss L(theta) = E[loss] (Gaussian data, "
                    "symbolic context length N and input spectrum) and the flow "
                    "d theta/dt = -dL/dtheta of a built-in model, and print it as the "
                    "JSON contract, LaTeX or Markdown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="?", choices=sorted(BUILTINS), help="built-in model")
    p.add_argument("--all", action="store_true",
                   help="write every committed derivation under --root (derivation.json, "
                        "equations.tex, README.md per configuration)")
    p.add_argument("--check", action="store_true",
                   help="with --all: write nothing, exit 1 naming every stale file")
    p.add_argument("--root", default="derivations", help="folder of the committed derivations")
    p.add_argument("--format", choices=FORMATS, default="json", help="output format")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--standalone", action="store_true",
                   help="with --format latex: a complete document for pdflatex")
    t = p.add_argument_group("linear-transformer options")
    t.add_argument("--dim", type=int, default=1, help="input dimension d")
    t.add_argument("--reduction", choices=("none", "null-zero", "aligned"), default="none",
                   help="none: all eight blocks; null-zero: P21 = Q21 = 0, inert blocks "
                        "dropped; aligned: p2 = diag(p), q1 = diag(q)")
    t.add_argument("--tasks", choices=("aligned", "isotropic"), default="aligned",
                   help="aligned: y = diag(lambda) x, lambda ~ N(0, I); "
                        "isotropic: y = w^T x, w ~ N(0, I)")
    t.add_argument("--N", type=int, default=None, help="context length (default: symbolic N)")
    t.add_argument("--spectrum", type=_spectrum, default=None, metavar="S1,S2,...",
                   help="input eigenvalues (default: symbolic s_1..s_d)")
    g = p.add_argument_group("deep-linear options")
    g.add_argument("--in", dest="n_in", type=int, default=2, help="input size")
    g.add_argument("--hidden", dest="n_hidden", type=int, default=2, help="hidden size")
    g.add_argument("--out", dest="n_out", type=int, default=2, help="output size")
    p.set_defaults(func=cmd_derive)

    v = sub.add_parser(
        "verify", help="check a derived flow against real SGD on the model",
        description="Derive (cached), generate kernels, integrate the flow and run Monte Carlo "
                    "SGD on the untruncated model; print a table of theory against simulation "
                    "with standard errors and z-scores, and write report.json and plots to "
                    "--out. Exits 1 if any check fails.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    v.add_argument("model", choices=VERIFIABLE, help="built-in model")
    v.add_argument("--quick", action="store_true", help="a smaller plan that runs in seconds")
    v.add_argument("--out", default="symicl-verify", help="folder for report.json and plots")
    v.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    v.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    v.add_argument("--dim", dest="v_dim", type=int, help="transformer: input dimension")
    v.add_argument("--N", dest="v_N", type=int, help="transformer: context length")
    v.add_argument("--spectrum", dest="v_spectrum", type=_spectrum, metavar="S1,S2,...",
                   help="transformer: input eigenvalues")
    v.add_argument("--tasks", dest="v_tasks", choices=("aligned", "isotropic"),
                   help="transformer: task distribution")
    v.add_argument("--eta", dest="v_eta", type=float, help="SGD learning rate")
    v.add_argument("--batch", dest="v_batch", type=int, help="SGD batch size")
    v.add_argument("--seeds", dest="v_seeds", type=int, help="independent SGD runs")
    v.add_argument("--t-end", dest="v_t_end", type=float, help="flow time t = eta x steps")
    v.add_argument("--seed", dest="v_seed", type=int, help="random seed")
    v.set_defaults(func=cmd_verify)
    add_sweep_parsers(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SymiclError as exc:
        print(f"symicl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
