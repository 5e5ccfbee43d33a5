"""Verification against Monte Carlo SGD (properties 3-5 of the verification issue).

Each check inside states its estimator and standard error (see
symicl/verify); the tolerance is 5 standard errors, seeds are fixed.
"""

import json

import numpy as np
import pytest

from symicl.cli import main
from symicl.verify import (DeepLinearPlan, TransformerPlan, verify_deep_linear,
                           verify_transformer)
from symicl.verify.checks import z_check


@pytest.fixture(scope="module")
def transformer_quick():
    return verify_transformer(TransformerPlan.quick(), progress=False)


@pytest.fixture(scope="module")
def deep_linear_quick():
    return verify_deep_linear(DeepLinearPlan.quick(), progress=False)


def by_name(checks, prefix):
    return [c for c in checks if c.quantity.startswith(prefix)]


def test_transformer_sgd_tracks_the_exact_flow_with_staged_learning(transformer_quick):
    checks, extra = transformer_quick
    failed = [c.quantity for c in checks if not c.passed]
    assert not failed, failed
    modes = by_name(checks, "a_")
    assert len(modes) == 4 and all(c.kind == "z" and abs(c.z) <= 5 for c in modes)
    # staged learning: the large-eigenvalue mode is half learned first
    half = {c.quantity[:3]: float(c.quantity.split("t = ")[1].split()[0])
            for c in modes if "half-way" in c.quantity}
    assert half["a_1"] < half["a_2"]


def test_exact_flow_beats_the_per_mode_flow(transformer_quick):
    checks, _ = transformer_quick
    exact = by_name(checks, "max_t |a_SGD - a_exact")[0].simulation
    paper = by_name(checks, "max_t |a_SGD - a_per-mode")[0].simulation
    assert exact < paper
    assert by_name(checks, "exact error / per-mode error")[0].passed


def test_conservation_along_flow_gd_and_sgd(transformer_quick):
    checks, extra = transformer_quick
    assert by_name(checks, "relative drift")[0].simulation < 1e-10
    assert by_name(checks, "GD per-step change")[0].simulation < 1e-9
    sweep = extra["series"]
    drift = np.abs(sweep["sweep_drift_mean"])
    assert drift[-1] > drift[0]                      # SGD breaks the law more at larger eta


def test_gradient_check_is_the_exact_check_of_the_derivation(transformer_quick):
    checks, _ = transformer_quick
    worst = by_name(checks, "dL/d")[0]
    assert worst.kind == "z" and abs(worst.z) <= 5
    assert by_name(checks, "inert gradients")[0].simulation == 0


def test_deep_linear_sgd_tracks_the_flow(deep_linear_quick):
    checks, extra = deep_linear_quick
    failed = [c.quantity for c in checks if not c.passed]
    assert not failed, failed
    assert len(by_name(checks, "mode ")) == 6
    assert len(extra["laws"]) == 6                   # entries of W1 W1^T - W2^T W2 at h = 3


def test_cli_verify_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verify", "deep-linear", "--quick", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "quantity" in text and "0 failed" in text
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True and report["model"] == "deep-linear"
    for name in ("modes.png", "conserved_drift.png"):
        assert (out / name).stat().st_size > 1000


def test_cli_verify_exits_nonzero_on_failure(tmp_path, monkeypatch, capsys):
    import symicl.verify as verify

    def failing(plan, out=None, progress=True):
        return [z_check("a deliberately wrong theory", 1.0, 2.0, 0.1)], {"plan": {}, "series": {}}

    monkeypatch.setitem(verify.PLANS, "deep-linear", (DeepLinearPlan, failing))
    assert main(["verify", "deep-linear", "--quick", "--out", str(tmp_path), "--no-plots"]) == 1
    assert "FAIL" in capsys.readouterr().out
