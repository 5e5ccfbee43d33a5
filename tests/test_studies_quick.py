"""End-to-end runs of the quick study configurations (needs the optional torch extra)."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def _finite_numbers(obj):
    """Every number in a JSON tree is finite (NaN/inf are written as null)."""
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite_numbers(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def _check_event(ev, n_seeds):
    assert set(ev) >= {"per_seed", "mean", "se", "min", "max", "n_seeds_with_event", "n_seeds"}
    assert ev["n_seeds"] == n_seeds and len(ev["per_seed"]) == n_seeds
    assert ev["n_seeds_with_event"] == sum(s is not None for s in ev["per_seed"])
    assert all(s is None or isinstance(s, int) for s in ev["per_seed"])


def test_icl_emergence_quick(tmp_path):
    from numerics.studies import icl_emergence

    icl_emergence.main(["--config", "quick", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] is True and _finite_numbers(summary)
    n = len(summary["seeds"])
    assert n == 2
    assert set(summary["runs"]) == {"classification/L1", "classification/L2", "regression/L1", "regression/L2"}
    for run in summary["runs"].values():
        for key in ("icl_emergence_step", "erank_dip_step", "subspace_distance_fall_step"):
            _check_event(run["events"][key], n)
        for flag in run["flags"].values():
            assert 0.0 <= flag["fraction_of_seeds"] <= 1.0 and isinstance(flag["majority"], bool)
        assert all(0.0 <= d <= 1.0 for d in run["events"]["erank_dip_depth"])
    for claims in summary["claims"].values():
        assert set(claims) == {"qk_marginalized_erank_dips_around_icl_in_2plus_layers",
                               "no_qk_erank_dip_around_icl_in_1_layer",
                               "qk_subspace_distance_falls_early_in_2plus_layers", "icl_emerges_in_2plus_layers"}
        assert all(isinstance(v, bool) for v in claims.values())
    for name in ("icl_classification.png", "icl_regression.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    curves = np.load(tmp_path / "curves.npz")
    sd = curves["classification/L2/qk_sd"]
    assert sd.shape[0] == n and np.all(np.isfinite(sd)) and np.all((sd >= 0) & (sd <= 1))
    assert np.allclose(sd[:, -1], 0.0, atol=1e-6)   # distance of the final checkpoint to itself
    erank = curves["classification/L2/qk_erank_k0"]
    d_head = summary["config"]["model"]["d_head"]
    assert np.all((erank >= 1.0) & (erank <= d_head + 1e-9))   # QK has rank <= d_head


def test_grokking_quick(tmp_path):
    from numerics.studies import grokking

    grokking.main(["--config", "quick", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert _finite_numbers(summary)
    n = len(summary["seeds"])
    for key in ("memorisation_step", "grokking_step", "ov_stabilisation_step", "qk_subspace_fall_step"):
        _check_event(summary["events"][key], n)
    assert isinstance(summary["claims"]["grokking_happened"], bool)
    assert isinstance(summary["claims"]["ov_subspace_stabilises_late_with_test_accuracy_jump"], bool)
    assert 0.0 <= summary["final"]["train_acc_mean"] <= 1.0
    png = tmp_path / "grokking.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    curves = np.load(tmp_path / "curves.npz")
    assert curves["ov_sd"].shape == (n, len(curves["steps"]))
    assert np.all(np.isfinite(curves["ov_sd"])) and np.allclose(curves["ov_sd"][:, -1], 0.0, atol=1e-6)
    assert np.all((curves["test_acc"] >= 0) & (curves["test_acc"] <= 1))
