"""symicl verify: the shared steps on the built-ins and on user models, the guards, the CLI.

Each judged row states its estimator and standard error; tolerances come from
the run's family-wise false-failure rate (alpha = 1e-3, Bonferroni over rows,
Student-t quantiles), seeds are fixed.
"""

import json
import os
import subprocess
import sys

import pytest

from symicl.cli import main
from symicl.models import spec
from symicl.verify import MIN_SEEDS, MIN_STEPS, Plan, UsageError, verify
from symicl.verify.checks import judge, z_row

HERE = os.path.dirname(os.path.abspath(__file__))
USER = os.path.join(HERE, "user_models", "models.py")


@pytest.fixture(scope="module")
def transformer_quick():
    s = spec("linear-transformer")
    return verify(s, {}, Plan.make(s, quick=True))


@pytest.fixture(scope="module")
def deep_linear_quick():
    s = spec("deep-linear")
    return verify(s, {}, Plan.make(s, quick=True))


def by_name(checks, prefix):
    return [c for c in checks if c.quantity.startswith(prefix)]


def test_transformer_sgd_tracks_gradient_descent_with_staged_learning(transformer_quick):
    checks, extra = transformer_quick
    failed = [c.quantity for c in checks if not c.passed]
    assert not failed, failed
    rows = [c for c in checks if c.kind == "z" and " at t = " in c.quantity]
    assert len(rows) == 4 and all(abs(c.z) <= c.tolerance for c in rows)
    # staged learning: the large-eigenvalue mode is half learned first
    first, second = extra["series"]["half_time"]
    assert first < second
    assert extra["readout"]["name"] == "gain" and extra["plan"]["seeds"] == 16


def test_exact_flow_beats_the_per_mode_flow_and_the_reduction_is_exact(transformer_quick):
    checks, _ = transformer_quick
    ratio = by_name(checks, "exact error / per-mode error")[0]
    assert ratio.kind == "bound" and ratio.passed and ratio.simulation < 0.5
    assert by_name(checks, "aligned reduction vs full flow")[0].simulation < 1e-8


def test_conservation_and_the_flow_as_limit_of_gd(transformer_quick):
    checks, extra = transformer_quick
    assert by_name(checks, "relative drift")[0].simulation < 1e-10
    assert by_name(checks, "GD per-step change")[0].simulation < 1e-9
    gap = by_name(checks, "flow-vs-GD gap is first order")[0]
    assert gap.passed and gap.simulation < 0.1
    drift = extra["series"]["drift"]
    assert abs(drift["mean"][-1]) > abs(drift["mean"][0])   # SGD breaks the law more at larger eta


def test_gradient_rows_are_the_exact_check_of_the_derivation(transformer_quick):
    checks, _ = transformer_quick
    worst = by_name(checks, "dL/d")[0]
    assert worst.kind == "z" and worst.comparisons == 16 and abs(worst.z) <= worst.tolerance
    assert by_name(checks, "inert gradients")[0].simulation == 0


def test_deep_linear_sgd_tracks_gd_and_the_closed_forms(deep_linear_quick):
    checks, extra = deep_linear_quick
    failed = [c.quantity for c in checks if not c.passed]
    assert not failed, failed
    assert len(extra["series"]["conserved"]) == 6   # entries of W1 W1^T - W2^T W2 at h = 3
    assert set(extra["series"]["starts"]) == {"rich", "lazy"}
    assert len(by_name(checks, "rich (lambda = 0): closed form vs flow")) == 1


def test_noise_bias_is_measured_and_removed():
    """Isotropic tasks: SGD's seed mean at batch 64 sits ~0.07 below GD (an O(eta/B) noise
    bias, 17 SE at 16 seeds); carried to B -> infinity from batches B and 4B it agrees with GD."""
    s = spec("linear-transformer")
    checks, _ = verify(s, {"tasks": "isotropic"},
                       Plan.make(s, quick=True, seeds=8, n_gradient=5000, eta_sweep=(0.01,)))
    assert all(c.passed for c in checks), [c.quantity for c in checks if not c.passed]
    bias = by_name(checks, "SGD noise bias")[0]
    assert abs(bias.simulation) > 5 * bias.se


def test_judge_sets_bonferroni_student_t_tolerances():
    rows = [z_row("a", 0.0, 1.0, 0.25, 15, 2), z_row("b", 0.0, 1.0, 0.01, 1e6, 1)]
    judge(rows, 1e-3)
    from scipy.stats import norm, t

    assert rows[0].tolerance == pytest.approx(t.ppf(1 - 1e-3 / 8, 15))
    assert rows[1].tolerance == pytest.approx(norm.ppf(1 - 1e-3 / 4))
    assert rows[0].passed and not rows[1].passed


@pytest.mark.parametrize("override, words", [
    ({"seeds": MIN_SEEDS - 1}, f"at least {MIN_SEEDS}"),
    ({"t_end": 0.001}, f"at least {MIN_STEPS}"),
    ({"eta": 3.0}, "2 SGD steps"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"batch": 0}, "batch must be a positive integer"),
])
def test_plans_that_cannot_give_a_verdict_are_refused(override, words):
    with pytest.raises(UsageError, match=words):
        Plan.make(spec("linear-transformer"), quick=True, **override)


@pytest.mark.parametrize("args, code, words", [
    (["--seeds", "0"], 2, "at least 8 independent SGD runs"),
    (["--seeds", "1"], 2, "at least 8"),
    (["--seed", "-1"], 2, "seed must be an integer >= 0"),
    (["--t-end", "0.001"], 2, "gives 0 SGD steps"),
    (["--eta", "0.5", "--t-end", "20"], 1, "diverges at step"),
    (["--spectrum", "1e6,1"], 1, "2/lambda_max(Hessian) = 3.35e-17"),
    (["--hidden", "3"], 2, "unknown option --hidden"),
    (["--reduction", "aligned"], 2, "not for verify: --reduction"),
])
def test_cli_guards_give_one_clear_line(tmp_path, capsys, args, code, words):
    out = tmp_path / "v"
    assert main(["verify", "linear-transformer", "--quick", "--no-progress", "--no-plots",
                 "--out", str(out)] + args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert words in err[-1] and err[-1].startswith("symicl: error:")
    assert not (out / "report.json").exists()


def test_cli_verify_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verify", "deep-linear", "--quick", "--out", str(out), "--no-progress",
                 "--n-in", "2", "--n-hidden", "2", "--n-out", "2", "--singular-values", "2,0.5",
                 "--seeds", "8"]) == 0
    text = capsys.readouterr().out
    assert "quantity" in text and " 0 failed" in text
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True and report["model"] == "deep-linear"
    assert report["design"]["minimums"] == {"seeds": MIN_SEEDS, "steps": MIN_STEPS}
    assert {"false_failure_rate", "sgd_reference", "flow_vs_gd"} <= set(report["design"])
    for name in ("readout.png", "loss.png", "conserved_drift.png", "rich_vs_lazy.png",
                 "representations.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.parametrize("function, extra", [
    ("diagonal_network", []),
    ("three_layer", []),
    ("separate_kqv", ["--const", "N=8"]),
])
def test_user_models_verify_through_the_cli(tmp_path, capsys, function, extra):
    """Three models that are not built-ins, from a file, through PATH.py:FUNCTION."""
    out = tmp_path / function
    assert main(["verify", f"{USER}:{function}", "--quick", "--no-progress", "--out", str(out)]
                + extra) == 0, capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["readout"]["name"] == "theta"
    assert any(c["quantity"].startswith("dL/d") for c in report["checks"])
    assert (out / "readout.png").exists()


def test_user_model_missing_constant_is_one_clear_error(tmp_path, capsys):
    assert main(["verify", f"{USER}:separate_kqv", "--quick", "--no-progress",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no value for the constant N" in err and "--const N=VALUE" in err


def test_generated_simulator_verifies_the_builtin_too(tmp_path):
    s = spec("deep-linear")
    checks, extra = verify(s, {"n_in": 2, "n_hidden": 2, "n_out": 2,
                               "singular_values": (2.0, 0.5)},
                           Plan.make(s, quick=True, simulator="generated"))
    assert all(c.passed for c in checks), [c.quantity for c in checks if not c.passed]
    assert any("GeneratedSGD" in line for line in extra["log"])


def test_readme_own_model_example_runs_as_written(tmp_path):
    """The README's "Your own model" section: its model file and both commands, as written."""
    import re
    import shlex

    text = open(os.path.join(HERE, "..", "README.md"), encoding="utf-8").read()
    section = text[text.index("## Your own model"):]
    section = section[:section.index("\n## ", 3)]
    (tmp_path / "my_model.py").write_text(re.search(r"```python\n(.*?)```", section, re.S)[1])
    commands = re.search(r"```bash\n(.*?)```", section, re.S)[1].strip().splitlines()
    assert len(commands) == 2
    for line in commands:
        argv = shlex.split(line.split("#")[0])
        assert argv[0] == "symicl"
        run = subprocess.run([sys.executable, "-m", "symicl.cli", *argv[1:], "--no-progress"]
                             if argv[1] == "verify" else [sys.executable, "-m", "symicl.cli",
                                                          *argv[1:]],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((tmp_path / "symicl-verify" / "report.json").read_text())["passed"]
