"""The ``symicl`` command line.

    symicl models                              the built-in models and their options
    symicl derive MODEL [options]              the exact expected loss and flow
    symicl verify MODEL [options]              the derived flow against real SGD
    symicl sweep CONFIG                        verify over a grid, on Dask

MODEL is a built-in name or a user's ``PATH.py:FUNCTION`` /
``package.module:FUNCTION``.  A model's options come from its specification
(:mod:`symicl.spec`): ``symicl derive MODEL --help`` lists them; an option
that does not belong to the model is an error naming it.  Exit codes: 0 pass,
1 a failed check (or a diverged run), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Sequence

from . import __version__
from .errors import SymiclError
from .files import write_atomic

__all__ = ["main", "parser"]

FORMATS = ("json", "latex", "md")
MAX_PARAMETERS = 250         # derive refuses larger models unless --force


class _ArgumentError(SymiclError):
    """Bad command-line arguments (argparse's message, one line)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() prints one line and returns 2.

    No abbreviations: a prefix of a model's option (``--in`` of ``--inputs``) is not that
    option."""

    def __init__(self, *args, **kw):
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)

    def error(self, message):
        where = self.prog.removeprefix("symicl").strip()
        raise _ArgumentError(f"{where}: {message}" if where else message)


class _Deprecated(argparse.Action):
    """An old spelling of a flag: stores under the new name and says so once."""

    def __init__(self, option_strings, dest, new=None, parse=None, **kw):
        self.new, self.parse = new, parse
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"symicl: note: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        try:
            setattr(namespace, self.dest, self.parse(values))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument {option_string}: {exc}")


def _typed(option):
    def parse(text):
        try:
            return option.parse(text)
        except SymiclError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = option.kind
    return parse


def _add_model_options(p: argparse.ArgumentParser, spec, command: str) -> None:
    group = p.add_argument_group(f"{spec.name} options")
    for o in spec.options_for(command):
        default = spec.defaults.get(o.name, o.default) if command != "derive" else o.default
        shown = ("symbolic" if o.role == "constant" else "none") if default is None else (
            ",".join(f"{v:g}" for v in default) if isinstance(default, tuple) else default)
        group.add_argument(o.flag, dest=f"m_{o.name}", type=_typed(o), default=None,
                           metavar=o.kind.upper() if not o.choices else "{" + ",".join(o.choices) + "}",
                           help=f"{o.help} (default: {shown})")
        for alias in (o.aliases if command == "derive" else ()):
            group.add_argument(alias, dest=f"m_{o.name}", action=_Deprecated, new=o.flag,
                               parse=_typed(o), help=argparse.SUPPRESS)


def _model_values(args: argparse.Namespace) -> dict:
    return {k[2:]: v for k, v in vars(args).items() if k.startswith("m_") and v is not None}


def _spec(name: str):
    from .models import spec

    return spec(name)


def _options(spec, args: argparse.Namespace, command: str) -> dict:
    from .spec import parse_assignments

    values = _model_values(args)
    given = parse_assignments(getattr(args, "opt", None), "--opt")
    if given and not spec.free_options:
        names = sorted(given)
        raise SymiclError(f"--opt is for a user's model; {spec.name} takes its options as flags "
                          f"({', '.join(o.flag for o in spec.options_for(command))}), not "
                          f"{', '.join(names)}")
    values.update(given)
    return spec.check_options(values, command)


# -- derive -------------------------------------------------------------------------------
def _render(model, fmt: str, standalone: bool) -> str:
    from . import export

    if fmt == "json":
        return export.to_json(model)
    if fmt == "latex":
        return export.to_latex(model, standalone=standalone)
    return export.to_markdown(model)


def _committed_text(folder: str, root: str, fmt: str, standalone: bool) -> str | None:
    """A committed configuration's text read from ``root``, or None if it is not there."""
    from .export.latex import document

    name = {"json": "derivation.json", "latex": "equations.tex", "md": "README.md"}[fmt]
    path = os.path.join(root, folder, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    return document(text) if fmt == "latex" and standalone else text


class _Ticker:
    """A line on stderr every few seconds while a long step runs."""

    def __init__(self, what: str, every: float = 5.0):
        self.what, self.every = what, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.perf_counter()
        while not self._stop.wait(self.every):
            print(f"symicl: still {self.what} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


def _check_output(path: str | None, folder: bool = False) -> None:
    """Fail before the work starts when ``path`` (a file, or a folder) cannot be written:
    its folder is made and a temporary file written and removed there."""
    import tempfile

    if not path:
        return
    if not folder and os.path.isdir(path):
        raise SymiclError(f"cannot write to {path}: it is a folder")
    target = path if folder else (os.path.dirname(os.path.abspath(path)) or ".")
    try:
        os.makedirs(target, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".symicl-probe-"):
            pass
    except OSError as exc:
        raise SymiclError(f"cannot write to {path}: {exc.strerror or exc}") from None


def cmd_derive_all(args: argparse.Namespace) -> int:
    from .derivations import write_all

    if args.model is not None:
        raise SymiclError("--all derives every committed configuration; give no model")
    if args.check and not os.path.isdir(args.root):
        raise SymiclError(f"no such folder: {args.root}")
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
    if args.standalone and args.format != "latex":
        raise SymiclError("--standalone goes with --format latex")
    _check_output(args.output)
    spec = _spec(args.model)
    options = _options(spec, args, "derive")
    if spec.size is not None and not args.force:
        _refuse_large(spec.name, spec.size(options))
    model = spec.build_model(options, "derive")
    from .derivations import config_for

    config = config_for(model) if not spec.free_options else None
    if config is not None and not args.recompute:
        text = _committed_text(config.folder, args.root, args.format, args.standalone)
        if text is not None:
            print(f"symicl: {model.name} {model.options} is the committed configuration "
                  f"{config.folder}: read from {os.path.join(args.root, config.folder)} "
                  "(--recompute derives it again)", file=sys.stderr)
            return _emit(text, args.output)
    P = len(model.parameters)
    if not args.force:
        _refuse_large(model.name, P)
    start = time.perf_counter()
    print(f"symicl: deriving {model.name} {model.options} ({P} parameters) ...",
          file=sys.stderr, flush=True)
    with _Ticker("deriving"):
        model.flow()
        if config is not None:
            from .derivations import render

            print(f"symicl: with the analysis of the committed configuration {config.folder}",
                  file=sys.stderr, flush=True)
            files = render(config.folder)
            name = {"json": "derivation.json", "latex": "equations.tex", "md": "README.md"}
            text = files[name[args.format]]
            if args.format == "latex" and args.standalone:
                from .export.latex import document

                text = document(text)
        else:
            text = _render(model, args.format, args.standalone)
    print(f"symicl: derived in {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
    return _emit(text, args.output)


def _refuse_large(name: str, P: int) -> None:
    if P > MAX_PARAMETERS:
        raise SymiclError(f"{name} has {P} parameters; derivations grow quickly with the size "
                          f"(the full transformer at d = 5, 200 parameters, takes about 15 s) "
                          f"and this one may take very long or run out of memory; give --force "
                          f"to run it anyway")


def _emit(text: str, output: str | None) -> int:
    if output:
        write_atomic(output, text)
        print(f"symicl: wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# -- verify -------------------------------------------------------------------------------
PLAN_FLAGS = (("eta", float, "SGD learning rate"), ("batch", int, "SGD batch size"),
              ("seeds", int, "independent SGD runs (at least 8)"),
              ("t_end", float, "flow time t = eta x steps"), ("seed", int, "random seed (>= 0)"),
              ("init", float, "scale of the start"),
              ("alpha", float, "family-wise false-failure rate of the run"))


def _plan_default(name: str) -> str:
    from .verify.plan import Plan

    full = getattr(Plan, name)
    quick = Plan.QUICK.get(name, full)
    return f"{full:g}" + (f", {quick:g} with --quick" if quick != full else "") + \
        " unless the model's plan says otherwise"


def cmd_verify(args: argparse.Namespace) -> int:
    from .spec import parse_assignments
    from .verify.plan import Plan
    from .verify.plots import plot
    from .verify.run import verify
    from .verify.report import table, write_json

    spec = _spec(args.model)
    if not spec.verifiable:
        raise SymiclError(f"{spec.name} is given by its expected loss alone: it has no data to "
                          "simulate, so it cannot be verified against SGD")
    options = _options(spec, args, "verify")
    constants = parse_assignments(args.const, "--const")
    overrides = {name: getattr(args, f"p_{name}") for name, _, _ in PLAN_FLAGS}
    overrides["simulator"] = args.simulator
    plan = Plan.make(spec, quick=args.quick, options=options, **overrides)
    _check_output(args.out, folder=True)
    start = time.perf_counter()
    checks, extra = verify(spec, options, plan, constants, progress=not args.no_progress)
    print(table(checks))
    failed = [c for c in checks if not c.passed]
    elapsed = time.perf_counter() - start
    report = os.path.join(args.out, "report.json")
    write_json(report, spec.name, checks, extra)
    files = [report]
    if not args.no_plots:
        files += plot(extra, args.out, spec)
    print(f"\n{len(checks) - len(failed)} passed, {len(failed)} failed "
          f"({elapsed:.1f} s); wrote {', '.join(files)}")
    return 1 if failed else 0


# -- models -------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from .models import SPECS

    for name, spec in SPECS.items():
        print(f"{name}\n    {spec.summary}")
        for o in spec.options:
            print(f"    {o.describe()}")
        if not spec.verifiable:
            print("    (derive only: defined by its expected loss)")
        print()
    print("Your own model: PATH.py:FUNCTION or package.module:FUNCTION, FUNCTION(**options) "
          "returning a symicl Model (options by --opt KEY=VALUE, constants by --const "
          "NAME=VALUE).")
    return 0


def parser(model: str | None = None, command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``model`` (and ``command``) that model's options are added."""
    from .sweep.cli import add_parser as add_sweep_parsers

    top = _Parser(
        prog="symicl",
        description="Derive the exact learning dynamics of small learning models "
                    "(expected loss, expected-gradient flow) and check them against SGD.")
    top.add_argument("--version", action="version", version=f"symicl {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p_models = sub.add_parser("models", help="list the built-in models and their options",
                              description="List the built-in models and their options.")
    p_models.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "derive", help="derive the exact expected loss and flow of a model",
        description="Derive the exact expected loss L(theta) = E[loss] (Gaussian data or "
                    "sources given by their moments, symbolic context length N and input "
                    "spectrum) and the flow "
                    "d theta/dt = -dL/dtheta of a model, and print it as the JSON contract, "
                    "LaTeX or Markdown. MODEL is a built-in name or PATH.py:FUNCTION; "
                    "`symicl derive MODEL --help` lists its options.",
        )
    p.add_argument("model", nargs="?", metavar="MODEL", help="built-in model or PATH.py:FUNCTION")
    p.add_argument("--all", action="store_true",
                   help="write every committed derivation under --root (derivation.json, "
                        "equations.tex, README.md per configuration)")
    p.add_argument("--check", action="store_true",
                   help="with --all: write nothing, exit 1 naming every stale file")
    p.add_argument("--root", default="derivations",
                   help="folder of the committed derivations (default: derivations)")
    p.add_argument("--format", choices=FORMATS, default="json", help="output format (default: json)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--standalone", action="store_true",
                   help="with --format latex: a complete document for pdflatex")
    p.add_argument("--recompute", action="store_true",
                   help="derive a committed configuration again instead of reading it")
    p.add_argument("--force", action="store_true",
                   help=f"derive models of more than {MAX_PARAMETERS} parameters")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="an option of a user's model (repeatable)")
    p.set_defaults(func=cmd_derive)

    v = sub.add_parser(
        "verify", help="check a derived flow against real SGD on the model",
        description="Derive (cached), generate kernels, and compare the model's Monte Carlo "
                    "SGD (seed means, standard errors) with gradient descent on the derived "
                    "expected loss at the same eta, and the flow as its eta -> 0 limit; print a "
                    "table, write report.json and plots to --out. Exits 1 if a check fails or "
                    "a run diverges, 2 on bad input. `symicl verify MODEL --help` lists the "
                    "model's options.",
        )
    v.add_argument("model", metavar="MODEL", help="built-in model or PATH.py:FUNCTION")
    v.add_argument("--quick", action="store_true", help="a smaller plan that runs in seconds")
    v.add_argument("--out", default="symicl-verify",
                   help="folder for report.json and plots (default: symicl-verify)")
    v.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    v.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    for name, kind, text in PLAN_FLAGS:
        v.add_argument("--" + name.replace("_", "-"), dest=f"p_{name}", type=kind, default=None,
                       metavar=name.upper(),
                       help=f"{text} (default: {_plan_default(name)})")
    v.add_argument("--simulator", choices=("auto", "generated", "hand-written"), default="auto",
                   help="SGD from the model's hand-written fast path (auto, where it has one) "
                        "or generated from its definition (default: auto)")
    v.add_argument("--const", action="append", metavar="NAME=VALUE",
                   help="the value of a constant of the model (repeatable), e.g. N=8")
    v.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="an option of a user's model (repeatable)")
    v.set_defaults(func=cmd_verify)
    if model is not None and command in ("derive", "verify"):
        try:
            spec = _spec(model)
        except SymiclError:
            spec = None
        if spec is not None and not spec.free_options:
            _add_model_options(p if command == "derive" else v, spec, command)
    add_sweep_parsers(sub)
    return top


def _model_in(argv: list[str]) -> tuple[str | None, str | None]:
    """(command, model) as they stand in argv, before parsing."""
    if not argv or argv[0] not in ("derive", "verify"):
        return None, None
    for tok in argv[1:]:
        if not tok.startswith("-"):
            return argv[0], tok
    return argv[0], None


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--spectrum -1,2`` -> ``--spectrum=-1,2`` (argparse reads -1,2 as a flag)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (tok.startswith("--") and "=" not in tok and nxt is not None and len(nxt) > 1
                and nxt[0] == "-" and (nxt[1].isdigit() or nxt[1] == ".")):
            out.append(f"{tok}={nxt}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    command, model = _model_in(argv)
    top = parser(model, command)
    try:
        args, rest = top.parse_known_args(argv)
    except _ArgumentError as exc:
        print(f"symicl: error: {exc}", file=sys.stderr)
        return 2
    if rest:
        names = " ".join(rest)
        where = f" for model {model}" if model else ""
        if model:
            try:
                spec = _spec(model)
                valid = ", ".join(o.flag for o in spec.options_for(command)) or "none"
                other = [o.flag for o in spec.options if command not in o.commands]
                extra = (f"; not for {command}: {', '.join(other)}" if other else "")
                msg = (f"unknown option {names}{where}; its {command} options: {valid}{extra}")
            except SymiclError as exc:
                msg = str(exc)
        else:
            msg = f"unrecognized arguments: {names}"
        print(f"symicl: error: {msg}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except SymiclError as exc:
        from .simulate.sgd import DivergenceError

        print(f"symicl: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DivergenceError) else 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
