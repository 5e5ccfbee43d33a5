"""Heads, separate key and query, and layers of the linear transformer.

The derived expected loss of each new configuration is checked against an
independent NumPy Monte Carlo of its forward pass, written here from the
definition (tokens z_n = (x_n, y_n), the query (x_q, 0) inside Z Z^T / N,
every token updated by each layer, the prediction read from the query's
label slot).  Estimator: the mean of the per-prompt loss (1/2)||yhat - y||^2
over n independent prompts (fixed seed); standard error std/sqrt(n);
tolerance 5 SE (a false failure has probability below 1e-6 per case).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from symicl.errors import ModelError
from symicl.export import derivation, to_json
from symicl.export.contract import blocks
from symicl.models import build
from symicl.models.linear_transformer import attention_variant, linear_transformer
from symicl.spec import MatrixPacking

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def derived_loss(model, theta) -> float:
    """The derived expected loss at numeric parameters, from the engine's exact polynomial
    (the one ``expected_loss()`` prints; its SymPy form is slow to evaluate at depth 2)."""
    poly = model._expected
    index = [poly.ring.symbols.index(p) for p in model.parameters]
    if len(index) != len(poly.ring.symbols):
        raise AssertionError("constants must be numeric here")
    exps, coeffs = zip(*poly.terms())
    E = np.array(exps)[:, index]
    C = np.array([float(c) for c in coeffs])
    return float(C @ np.prod(np.asarray(theta)[None, :] ** E, axis=1))


def _blocks(model, theta):
    """Block name -> numeric matrix, from the parameter vector."""
    value = dict(zip(model.parameters, theta))
    return {k: np.array([[value.get(e, 0.0) if not e.is_number else float(e) for e in row]
                         for row in v.tolist()]) for k, v in model.blocks.items()}


def mc_loss(W, d, tasks, N, s, heads, layers, kq, n, seed):
    """Mean and SE of the per-prompt loss of the forward pass, written independently."""
    rng = np.random.default_rng(seed)
    out = d if tasks == "aligned" else 1
    D = d + out
    x = rng.standard_normal((n, N + 1, d)) * np.sqrt(np.asarray(s))     # context and query
    if tasks == "aligned":
        y = x * rng.standard_normal((n, 1, d))
    else:
        y = np.einsum("nkd,nd->nk", x, rng.standard_normal((n, d)))[..., None]
    Z = np.concatenate([x, y], axis=2).transpose(0, 2, 1)                # (n, D, N + 1)
    target = Z[:, d:, -1].copy()
    Z[:, d:, -1] = 0.0
    one = heads == 1 and layers == 1
    for layer in range(1, layers + 1):
        M = Z @ Z.transpose(0, 2, 1) / N
        update = np.zeros_like(Z)
        for head in range(1, heads + 1):
            name = (lambda p: p if one else f"{p}_{layer}_{head}")
            WQ = W[name("WQ")] if kq == "merged" else W[name("WK")].T @ W[name("WQ")]
            update += W[name("WP")] @ M @ WQ @ Z
        Z = Z + update
    loss = 0.5 * np.sum((Z[:, d:, -1] - target) ** 2, axis=1)
    assert Z.shape[1] == D
    return loss.mean(), loss.std(ddof=1) / np.sqrt(n)


CASES = [
    dict(dim=2, heads=2, tasks="isotropic", N=8, spectrum=[2, 0.5]),
    dict(dim=2, heads=2, kq="separate", tasks="isotropic", N=8, spectrum=[2, 0.5]),
    dict(dim=2, kq="separate", rank=2, tasks="aligned", N=6, spectrum=[1.5, 0.5]),
    dict(dim=1, layers=2, tasks="aligned", N=8, spectrum=[1]),
    dict(dim=1, heads=2, tasks="aligned", N=5, spectrum=[2]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()
                                                               if k not in ("N", "spectrum")))
def test_derived_loss_matches_monte_carlo_of_the_forward_pass(case):
    model = build("linear-transformer", **case)
    rng = np.random.default_rng(11)
    scale = 0.3 if case.get("layers", 1) > 1 else 0.4     # depth: heavier tails of the loss
    theta = scale * rng.standard_normal(len(model.parameters))
    theory = derived_loss(model, theta)
    mean, se = mc_loss(_blocks(model, theta), case["dim"], case["tasks"], case["N"],
                       case["spectrum"], case.get("heads", 1), case.get("layers", 1),
                       case.get("kq", "merged"), n=200_000, seed=5)
    z = (mean - theory) / se
    assert abs(z) < 5, f"derived {theory:.6g} vs Monte Carlo {mean:.6g} +- {se:.3g} (z = {z:.2f})"
    assert se < 0.05 * abs(theory)   # the check has power: SE a small fraction of the loss


def test_defaults_are_todays_model_byte_for_byte():
    plain = linear_transformer(dim=2)
    explicit = linear_transformer(dim=2, heads=1, kq="merged", layers=1)
    assert to_json(plain) == to_json(explicit)
    assert set(plain.options) == {"dim", "reduction", "tasks", "N", "spectrum"}
    assert list(plain.blocks) == ["P11", "P12", "P21", "P22", "Q11", "Q12", "Q21", "Q22"]
    # the general construction at one head and one layer is the same model
    ref = linear_transformer(dim=1)
    blocks, prediction = attention_variant(_moments_of(ref), _query_of(ref), 1, heads=1,
                                           kq="merged", layers=1)
    assert set(blocks) == {"WP", "WQ"}
    assert (prediction - ref.prediction).applyfunc(lambda e: e.expand()).is_zero_matrix


def _moments_of(model):
    """Z Z^T / N of the model's data law (rebuilt from its symbols)."""
    import sympy as sp

    ctx = model.distribution.contexts[0]
    u = ctx.sample.variables
    lam = model.distribution.gaussians[0].variables
    x = model.distribution.gaussians[1].variables
    z = sp.Matrix([u[0], lam[0] * u[0]])
    zq = sp.Matrix([x[0], 0])
    return ctx.mean(z * z.T) + zq * zq.T / ctx.N


def _query_of(model):
    import sympy as sp

    return sp.Matrix([model.distribution.gaussians[1].variables[0], 0])


def test_blocks_key_names_every_entry():
    data = derivation(linear_transformer(dim=1, reduction="aligned"))
    assert data["blocks"] == {"P22": [["p_1"]], "Q11": [["q_1"]]}
    data = derivation(linear_transformer(dim=2, reduction="aligned", spectrum=[2, 1], N=4))
    assert data["blocks"]["P22"] == [["p_1", "0"], ["0", "p_2"]]
    full = derivation(linear_transformer(dim=1))["blocks"]
    assert full["P21"] == [["WP_2_1"]] and list(full) == ["P11", "P12", "P21", "P22", "Q11",
                                                          "Q12", "Q21", "Q22"]
    sep = derivation(build("linear-transformer", dim=1, heads=2, kq="separate", rank=1,
                           tasks="isotropic", N=4, spectrum=[1]))["blocks"]
    assert list(sep) == ["WP_1_1", "WK_1_1", "WQ_1_1", "WP_1_2", "WK_1_2", "WQ_1_2"]
    assert sep["WK_1_2"] == [["WK_1_2_1_1", "WK_1_2_1_2"]]
    assert np.array(sep["WP_1_1"]).shape == (2, 2)
    deep = blocks(build("linear-transformer", dim=1, layers=2, N=4, spectrum=[1]))
    assert list(deep) == ["WP_1_1", "WQ_1_1", "WP_2_1", "WQ_2_1"]
    diagonal = blocks(build("linear-transformer", dim=1, layers=2, reduction="diagonal"))
    assert diagonal["WP_2_1"] == [["0", "0"], ["0", "WP_2_1_2_2"]]      # x-row of the last
    assert diagonal["WQ_1_1"] == [["WQ_1_1_1_1", "0"], ["0", "WQ_1_1_2_2"]]   # layer acts on nothing
    two_heads = build("linear-transformer", dim=2, heads=2, tasks="isotropic",
                      reduction="diagonal")
    assert blocks(two_heads)["WQ_1_2"][2] == ["0", "0", "0"]   # query's y-slot is 0: inert
    from symicl.models import spec
    s = spec("linear-transformer")
    for model, kw in ((two_heads, dict(dim=2, heads=2, tasks="isotropic")),
                      (build("linear-transformer", dim=1, layers=2, reduction="diagonal"),
                       dict(dim=1, layers=2))):
        opts = s.check_options({**kw, "reduction": "diagonal"}, "derive")
        assert s.size(opts) == len(model.parameters)
    one = derivation(build("linear-transformer", dim=1, kq="separate", N=4, spectrum=[1]))
    assert list(one["blocks"]) == ["WP", "WK", "WQ"] and one["options"]["rank"] == 1


@pytest.mark.parametrize("kw, words", [
    (dict(heads=2, reduction="aligned"), "reduction 'aligned'"),
    (dict(layers=2, reduction="null-zero"), "reduction 'null-zero'"),
    (dict(reduction="diagonal"), "reduction 'diagonal' is for several heads or layers"),
    (dict(heads=2, kq="separate", reduction="diagonal"), "needs merged key and query"),
    (dict(rank=2), "rank applies to separate"),
    (dict(kq="split"), "unknown key-query form"),
    (dict(heads=0), "heads must be a positive integer"),
    (dict(layers=1.5), "layers must be a positive integer"),
    (dict(kq="separate", rank=0), "rank must be a positive integer"),
])
def test_bad_combinations_are_one_clear_error(kw, words):
    with pytest.raises(ModelError, match=words):
        linear_transformer(dim=1, **kw)


def test_spec_hooks_for_variants():
    from symicl.models import spec

    s = spec("linear-transformer")
    opts = s.check_options({"dim": 2, "heads": 2, "kq": "separate", "tasks": "isotropic"},
                           "verify")
    assert s.size(opts) == 2 * (9 + 3 + 3)
    model = s.build_model(opts, "verify")
    theta = s.start(model, opts, 0.1, seed=1)
    assert theta.shape == (len(model.parameters),) and np.all(np.abs(theta) < 1)
    readout = s.readout_of(model, opts, {})
    assert readout.labels == ("a_1", "a_2") and readout.value(theta).shape == (2,)
    # the hand-written simulator covers the one-head model only: None here, so verify runs
    # the generated SGD (auto) or refuses (--simulator hand-written, below)
    assert s.simulator(model, opts, {"N": 8, "s_1": 2, "s_2": 0.5}, 16) is None


def test_verify_heads_quick_passes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "symicl.cli", "verify", "linear-transformer",
                          "--dim", "1", "--heads", "2", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["options"]["heads"] == 2
    refused = subprocess.run([sys.executable, "-m", "symicl.cli", "verify", "linear-transformer",
                              "--dim", "1", "--heads", "2", "--quick", "--simulator",
                              "hand-written", "--out", str(tmp_path / "hw")],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert refused.returncode == 2
    assert "does not cover these options" in refused.stderr


def test_verify_two_layers_quick_passes(tmp_path):
    """The two-layer model's verify (about 50 s cold): every check passes, among them the
    derived loss and gradients against Monte Carlo, SGD against GD on the derived loss,
    and the two conservation laws along the flow and per GD step."""
    out = subprocess.run([sys.executable, "-m", "symicl.cli", "verify", "linear-transformer",
                          "--dim", "1", "--layers", "2", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and report["options"]["layers"] == 2
    tested = [c for c in report["checks"] if c["kind"] != "info"]
    assert len(tested) == 12 and all(c["passed"] for c in tested), report["checks"]


def test_zsls_study_quick(tmp_path):
    """The ZSLS study's quick run: the derived flow predicts when gradient descent on their
    fixed training set learns each component (median ratio of learn times within 25 %; a
    seed whose start lands near a saddle can be far off on 400 prompts), and the
    separate rank-one heads show a plateau between two drops at seed 0."""
    pytest.importorskip("matplotlib")
    from numerics.studies import zsls

    summary = zsls.main(["--quick", "--skip-depth", "--out", str(tmp_path)])
    assert (tmp_path / "zsls.json").exists() and (tmp_path / "zsls.png").exists()
    for name in ("merged", "separate"):
        ratio = summary[name]["gd_over_theory_learn_time"]["median"]   # over seeds, components
        assert 0.75 < ratio < 1.25, (name, ratio)
        assert len(summary[name]["table"]) == 2
    assert summary["separate"]["theory_loss_drops"][0] == 2
    assert summary["merged"]["theory_loss_drops"][0] == 1


def test_two_layers_run_on_the_table_kernels_and_sampled_laws():
    """Two layers' loss is beyond printed kernels and the expanded law system: the kernels walk
    the monomial table, the laws come from exact sampling, and both agree with the engine."""
    from symicl.analysis.conservation import conservation_laws
    from symicl.codegen import kernels

    model = build("linear-transformer", dim=1, layers=2, tasks="aligned", N=8, spectrum=[1])
    k = kernels(model, "numpy")
    assert k.module.TERMS > 20_000 and k.path is None        # the table, nothing printed
    theta = 0.3 * np.random.default_rng(2).standard_normal(len(model.parameters))
    assert k.loss(theta, k.constants_vector({})) == pytest.approx(derived_loss(model, theta),
                                                                  rel=1e-10)
    laws = conservation_laws(model, with_step_change=False)
    names = [str(law.expression) for law in laws.laws]
    assert len(names) == 2 and names[0].startswith("WP_1_1_1_1**2 + WP_1_1_1_2**2")
    flow = k.flow(theta, k.constants_vector({}))
    for law in laws.laws:                                      # grad h . F = 0 numerically too
        grad = np.array([float(law.expression.diff(p).subs(dict(zip(model.parameters, theta))))
                         for p in model.parameters])
        assert abs(grad @ flow) < 1e-10 * (1 + np.abs(grad).sum() * np.abs(flow).sum())


@pytest.mark.parametrize("reduction, case", [
    ("diagonal", dict(dim=1, layers=2, tasks="aligned", N=8, spectrum=[1])),
    ("odd-last", dict(dim=1, layers=2, tasks="aligned", N=8, spectrum=[1])),
    ("diagonal", dict(dim=2, heads=2, tasks="isotropic", N=8, spectrum=[2, 0.5])),
    ("diagonal", dict(dim=2, heads=2, tasks="aligned", N=8, spectrum=[2, 0.5])),
])
def test_sign_symmetry_reductions_are_kept_by_the_full_flow(reduction, case):
    """Every W^P_{l,h}, W^Q_{l,h} diagonal is the fixed set of the sign flips of the data
    (y -> -y; at d = 2 also each coordinate's), W -> J W J; odd-last (second layer
    anti-diagonal) that of y -> -y composed with W_2 -> -W_2.  So the full flow never leaves
    them: at random points of each the full model's flow has zero components off it, and its
    loss and other components are the reduced model's (two layers; two heads at d = 2)."""
    from symicl.codegen import kernels

    full = build("linear-transformer", **case)
    reduced = build("linear-transformer", **case, reduction=reduction)
    assert len(reduced.parameters) < len(full.parameters)
    kf, kr = kernels(full, "numpy"), kernels(reduced, "numpy")
    names = [p.name for p in full.parameters]
    index = [names.index(p.name) for p in reduced.parameters]
    rng = np.random.default_rng(4)
    for _ in range(3):
        theta = 0.4 * rng.standard_normal(len(index))
        embedded = np.zeros(len(names))
        embedded[index] = theta
        Ff = kf.flow(embedded, kf.constants_vector({}))
        Fr = kr.flow(theta, kr.constants_vector({}))
        assert np.max(np.abs(Fr)) > 0.1                      # a point where the flow moves
        assert np.max(np.abs(np.delete(Ff, index))) < 1e-12
        np.testing.assert_allclose(Ff[index], Fr, rtol=1e-10, atol=1e-12)
        assert kf.loss(embedded, kf.constants_vector({})) == pytest.approx(
            kr.loss(theta, kr.constants_vector({})), rel=1e-12)
    # off the subspace the flow does leave it (the test can fail)
    embedded[names.index("WQ_1_1_1_2")] = 0.3
    assert np.max(np.abs(np.delete(kf.flow(embedded, kf.constants_vector({})), index))) > 1e-3


def test_two_layer_stable_points_of_the_depth_study():
    """The committed depth study's stable points: Newton on each reduced model's derived flow
    from the committed weights stays there (|F| < 1e-11), and in the full 16-parameter model the
    point is a critical point whose Hessian has exactly 4 zero modes (2 inert entries, 2
    scalings) and every other eigenvalue positive; the odd-last point has the lower loss."""
    from symicl.codegen import kernels

    data = json.loads(open(os.path.join(ROOT, "numerics", "studies", "results", "zsls_depth",
                                        "depth.json")).read())["stable_points"]
    full = build("linear-transformer", dim=1, layers=2, tasks="aligned", N=8, spectrum=[1])
    kf = kernels(full, "numpy")
    cf = kf.constants_vector({})
    names = [p.name for p in full.parameters]
    losses = {}
    for reduction in ("diagonal", "odd-last"):
        model = build("linear-transformer", dim=1, layers=2, tasks="aligned", N=8,
                      spectrum=[1], reduction=reduction)
        k = kernels(model, "numpy")
        c = k.constants_vector({})
        weights = {n: np.array(w) for n, w in data[reduction]["weights"].items()}
        theta = MatrixPacking(model, {n: w.shape for n, w in weights.items()}).pack(weights)
        for _ in range(5):
            theta = theta - np.linalg.lstsq(k.jacobian(theta, c), k.flow(theta, c),
                                            rcond=1e-10)[0]
        assert np.max(np.abs(k.flow(theta, c))) < 1e-11
        embedded = np.zeros(len(names))
        embedded[[names.index(p.name) for p in model.parameters]] = theta
        assert np.max(np.abs(kf.flow(embedded, cf))) < 1e-11
        H = -kf.jacobian(embedded, cf)
        ev = np.sort(np.linalg.eigvalsh((H + H.T) / 2))
        zero = np.abs(ev) < 1e-8 * np.max(np.abs(ev))
        assert zero.sum() == 4 and ev[~zero].min() > 1e-4, ev
        losses[reduction] = kf.loss(embedded, cf)
    assert losses["odd-last"] == pytest.approx(0.0290392, abs=1e-7)
    assert losses["diagonal"] == pytest.approx(0.0333911, abs=1e-7)
