"""The committed derivations: one folder per built-in configuration.

``symicl derive --all`` writes ``derivations/<folder>/`` with

* ``derivation.json`` — the machine contract (model, options, parameters,
  constants, loss, flow) plus the analysis: ``conserved`` (and ``inert``),
  ``fixed_points`` (symbolic and/or at the example's constants, with
  stability and learned predictors), ``timescales``, and where they exist
  ``per_mode_difference``, ``closed_forms`` (logistic modes), ``riccati`` and
  ``matrix_level``;
* ``equations.tex`` — the same equations as LaTeX ``align`` blocks;
* ``README.md`` — the same in Markdown with short prose.

Each section is built by :mod:`symicl.sections` from the model.

Output is a pure function of the configuration, so ``--check`` can compare
it byte for byte with what is committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache

import sympy as sp

from . import sections
from .analysis.fixed_points import fixed_points
from .analysis.riccati import riccati_section
from .export import derivation, to_latex, to_markdown
from .files import write_atomic
from .matrix_level import build as build_matrix
from .model import Model
from .models import build

__all__ = ["CONFIGS", "Config", "config_for", "render", "write_all"]


@dataclass(frozen=True)
class Config:
    """One committed derivation: a folder, a built-in model and its options.

    ``symbolic``: options for the symbolic fixed-point search (None: skip);
    ``example``: numeric constants of the worked example (fixed points with
    stability, timescales with the learning order); ``skip_fixed_points``: why
    the fixed points are not computed; ``logistic``: decoupled modes
    (p, q, options) whose closed forms are derived; ``riccati``: the Riccati
    form of a two-layer linear network; ``relaxation``: linearise at the
    example's stable point too; ``symmetry_variants``: (label, options) of the same model
    whose symmetry algebras are tabulated beside this one's; ``census``: a committed
    critical-point census in ``symicl/data`` (read and re-verified at 50 digits).
    """

    folder: str
    model: str
    options: dict = field(default_factory=dict)
    summary: str = ""
    matrix: dict | None = None
    symbolic: dict | None = None
    symbolic_rates: bool = True
    example: dict | None = None
    skip_fixed_points: str | None = None
    logistic: tuple = ()
    riccati: bool = False
    relaxation: bool = True
    symmetry_variants: tuple = ()
    census: str | None = None

    def build(self) -> Model:
        return build(self.model, **self.options)


_EXAMPLE_2 = {"N": 8, "s_1": 2, "s_2": sp.Rational(1, 2)}
_S = sp.Symbol("s", positive=True)


def _variants(dim: int) -> tuple:
    """The full transformer's spectra (symbolic anisotropic; isotropic s_a = s) and tasks."""
    spectra = (("anisotropic", None),) if dim == 1 else (("anisotropic", None),
                                                         ("isotropic s_a = s", [_S] * dim))
    return tuple((f"{name} spectrum, {tasks} tasks", {"dim": dim, "tasks": tasks,
                                                       **({"spectrum": sp_} if sp_ else {})})
                 for name, sp_ in spectra for tasks in ("aligned", "isotropic"))


_DEPTH_FIXED_POINTS = ("the critical-point system of 7 unknowns (a loss of degree 16 in the "
                       "weights) finishes neither by the Groebner method (10 minutes) nor by "
                       "rank strata (400 s); the stable points at N = 8, s = 1 are computed "
                       "numerically and checked in the full model by "
                       "numerics/studies/zsls_depth.py")
_OFF_DIAGONAL = {"W1_1_2": 0, "W1_2_1": 0, "W2_1_2": 0, "W2_2_1": 0}

CONFIGS = [
    Config("linear_transformer_aligned_d1", "linear-transformer",
           {"dim": 1, "reduction": "aligned"},
           "The aligned reduction at d = 1: one mode (p, q), symbolic N and s, everything in "
           "closed form.",
           symbolic={"square_roots": ["s_1"]}, logistic=(("p_1", "q_1", {}),)),
    Config("linear_transformer_aligned", "linear-transformer",
           {"dim": 2, "reduction": "aligned"},
           "The aligned reduction p2 = diag(p), q1 = diag(q) at d = 2, diagonal Gaussian tasks, "
           "symbolic N and spectrum: the exact coupled flow.",
           symbolic={"square_roots": ["s_1", "s_2"], "classify": False}, example=_EXAMPLE_2,
           logistic=(("p_1", "q_1", {"restrict": {"p_2": "p_1", "q_2": "q_1"},
                                     "constants": {"s_1": "s", "s_2": "s"}}),)),
    Config("linear_transformer_aligned_isotropic", "linear-transformer",
           {"dim": 2, "reduction": "aligned", "tasks": "isotropic"},
           "The aligned reduction with scalar tasks y = w^T x: here the per-mode form is exact.",
           symbolic={"square_roots": ["s_1", "s_2"], "classify": False}, example=_EXAMPLE_2),
    Config("linear_transformer_per_mode", "linear-transformer-per-mode", {"dim": 2},
           "The paper's per-mode flow at d = 2, derived by symicl as the exact flow of the "
           "scalar-task model with gains a_a = p_a q_a, defined by its loss.",
           symbolic={"square_roots": ["s_1", "s_2"], "classify": False}, example=_EXAMPLE_2,
           logistic=(("p_1", "q_1", {}), ("p_2", "q_2", {}))),
    Config("linear_transformer_null_zero", "linear-transformer",
           {"dim": 2, "reduction": "null-zero"},
           "The null-zero reduction (P21 = Q21 = 0, inert blocks dropped) at d = 2.",
           matrix={"reduction": "null-zero", "tasks": "aligned"}, example=_EXAMPLE_2),
    Config("linear_transformer_full_d1", "linear-transformer", {"dim": 1},
           "The full model, all eight blocks, d = 1.", example={"N": 8, "s_1": 2},
           symmetry_variants=_variants(1)),
    Config("linear_transformer_full_d2", "linear-transformer", {"dim": 2},
           "The full model, all eight blocks, d = 2.",
           skip_fixed_points="16 active parameters are beyond the polynomial-system method "
                             "(max_variables = 10); see the aligned and null-zero reductions "
                             "and the numerical census below",
           symmetry_variants=_variants(2),
           census="critical_points/linear_transformer_full_d2.json"),
    Config("linear_transformer_heads_d2", "linear-transformer",
           {"dim": 2, "heads": 2, "tasks": "isotropic"},
           "Two heads with merged key-query weights W^Q_h, scalar tasks y = w^T x (ZSLS's "
           "merged multi-head attention), d = 2, symbolic N and spectrum.",
           skip_fixed_points="18 active parameters are beyond the polynomial-system method "
                             "(max_variables = 10); see the numerical census below",
           census="critical_points/linear_transformer_heads_d2.json"),
    Config("linear_transformer_separate_d2", "linear-transformer",
           {"dim": 2, "heads": 2, "kq": "separate", "tasks": "isotropic"},
           "Two heads with separate rank-one key and query, W^Q_h = W^K_h^T W^Q_h, scalar "
           "tasks (ZSLS's separate-key-query attention), d = 2, symbolic N and spectrum.",
           skip_fixed_points="16 active parameters are beyond the polynomial-system method "
                             "(max_variables = 10); see the numerical census below",
           census="critical_points/linear_transformer_separate_d2.json"),
    Config("linear_transformer_diagonal_d1_l2", "linear-transformer",
           {"dim": 1, "layers": 2, "reduction": "diagonal"},
           "Two layers at d = 1, every W^P_l, W^Q_l diagonal: the fixed set of the sign flip "
           "y -> -y (W -> J W J), so the full flow never leaves it; the last layer's W^P "
           "x-entry acts on nothing and is dropped. 7 parameters, symbolic N and s.",
           skip_fixed_points=_DEPTH_FIXED_POINTS),
    Config("linear_transformer_odd_last_d1_l2", "linear-transformer",
           {"dim": 1, "layers": 2, "reduction": "odd-last"},
           "Two layers at d = 1, the first diagonal, the second anti-diagonal (W^P's y-row "
           "reads x; W^Q's x-y and y-x entries): the fixed set of y -> -y composed with "
           "W_2 -> -W_2, kept by the full flow; it holds the full model's least stable loss "
           "found (0.0290392 at N = 8, s = 1). 7 parameters, symbolic N and s.",
           skip_fixed_points=_DEPTH_FIXED_POINTS),
    Config("deep_linear", "deep-linear", {"n_in": 2, "n_hidden": 2, "n_out": 2},
           "Two-layer linear network 2-2-2 with a symbolic teacher T.",
           matrix={}, symbolic_rates=False,
           example={"T_1_1": 3, "T_1_2": 0, "T_2_1": 0, "T_2_2": 1}, riccati=True,
           logistic=tuple((f"W1_{k}_{k}", f"W2_{k}_{k}", {"restrict": _OFF_DIAGONAL,
                                                          "constants": {"T_1_2": 0, "T_2_1": 0}})
                          for k in (1, 2)),
           relaxation=False),
    Config("linear_transformer_aligned_d1_kurtosis", "linear-transformer",
           {"dim": 1, "reduction": "aligned", "inputs": "kurtosis"},
           "The aligned reduction at d = 1 with non-Gaussian inputs of symbolic excess kurtosis "
           "kappa (context tokens and query; higher moments by the Gamma-mixture convention of "
           "symicl.sources, which only the fourth moment reaches here): the learned gain "
           "N/((N + 2 + kappa) s), exact in N and kappa.",
           symbolic={"square_roots": ["s_1"]},
           logistic=(("p_1", "q_1", {}),)),
    Config("linear_transformer_aligned_kurtosis", "linear-transformer",
           {"dim": 2, "reduction": "aligned", "inputs": "kurtosis"},
           "The aligned reduction at d = 2 with independent non-Gaussian input coordinates of "
           "symbolic excess kurtosis kappa, diagonal Gaussian tasks, symbolic N and spectrum: "
           "the exact coupled flow and its stable gains as functions of kappa and N.",
           symbolic={"square_roots": ["s_1", "s_2"], "classify": False}),
]


@cache
def render(folder: str) -> dict[str, str]:
    """The three files of the configuration named ``folder``, as text (cached per process)."""
    config = next(c for c in CONFIGS if c.folder == folder)
    model = config.build()
    data = derivation(model)
    parts = [sections.conserved(model),
             sections.symmetry_section(model, tuple(
                 (label, build(config.model, **options))
                 for label, options in config.symmetry_variants))]
    if model.options.get("reduction") == "aligned" and model.options.get("tasks") == "aligned" \
            and "inputs" not in model.options:   # the per-mode model has Gaussian inputs
        parts.append(sections.per_mode_difference(model))
    example = fixed_points(model, config.example) if config.example is not None else None
    parts.append(sections.fixed_point_section(model, config.symbolic, example,
                                              config.skip_fixed_points))
    parts.append(sections.timescale_section(model, config.symbolic_rates, example,
                                            config.relaxation))
    if config.census is not None:
        parts.append(sections.census_section(model, _census_data(config.census),
                                             f"symicl/data/{config.census}"))
    if config.logistic:
        parts.append(sections.logistic_section(model, list(config.logistic)))
    if config.riccati:
        r = riccati_section(model)
        parts.append(sections.Section({"riccati": r["data"]}, r["tex"], r["md"] + [""]))
    if config.matrix is not None:
        parts.append(_matrix_section(config))
    tex, md = [], []
    for part in parts:
        data.update(part.data)
        tex += part.tex
        md += part.md
    head = to_markdown(model).replace(f"# {model.name}\n", f"# {model.name}\n\n{config.summary}\n",
                                      1)
    return {
        "derivation.json": json.dumps(data, indent=2) + "\n",
        "equations.tex": to_latex(model) + "\n".join(tex) + "\n",
        "README.md": head + "\n" + "\n".join(md).rstrip("\n") + "\n",
    }


def _census_data(name: str) -> dict:
    """A committed census file of ``symicl/data`` (written by its numerical study)."""
    from importlib.resources import files

    return json.loads(files("symicl").joinpath("data", *name.split("/")).read_text("utf-8"))


def _matrix_section(config: Config) -> sections.Section:
    """Loss and gradients derived with matrix symbols (any dimension)."""
    mm = build_matrix(config.model, **config.matrix)
    loss_form, grads = mm.expected_loss(), mm.gradients()
    block_tex = {k: mm.latex_names.get(k) or sp.latex(v) for k, v in mm.parameters.items()}
    data = {"matrix_level": {"loss": str(loss_form),
                             "gradient": {k: str(v) for k, v in grads.items()}}}
    tex = ["% matrix level (dimension-free), S the input covariance\n"
           "\\begin{align}\nL &= " + loss_form.latex() + " \\\\\n" +
           " \\\\\n".join(f"\\frac{{\\partial L}}{{\\partial {block_tex[k]}}} &= {v.latex()}"
                          for k, v in grads.items()) + "\n\\end{align}"]
    md = ["## Matrix level (any dimension)", "",
          "The same loss and gradient derived with matrix symbols (S the input "
          "covariance in its eigenbasis, Diag the diagonal part); at d = 1, 2, 3 "
          "they equal the component-wise results above identically (tested):", "",
          "$$L = " + loss_form.latex() + "$$", ""]
    md += [f"$$\\frac{{\\partial L}}{{\\partial {block_tex[k]}}} = {v.latex()}$$"
           for k, v in grads.items()]
    return sections.Section(data, tex, md)


def config_for(model: Model) -> Config | None:
    """The committed configuration that derives exactly ``model`` (same name and options)."""
    for config in CONFIGS:
        if config.model == model.name and config.build().options == model.options:
            return config
    return None


def write_all(root: str, check: bool = False, log=print) -> list[str]:
    """Write (or with ``check`` compare) every configuration under ``root``.

    Returns the paths that were stale (``check``) or rewritten.
    """
    changed = []
    for config in CONFIGS:
        log(f"symicl: {config.folder} ...")
        for name, text in render(config.folder).items():
            path = os.path.join(root, config.folder, name)
            old = None
            if os.path.exists(path):
                with open(path, encoding="utf-8", newline="") as fh:
                    old = fh.read()
            if old == text:
                continue
            changed.append(path)
            if not check:
                write_atomic(path, text)
    return changed
