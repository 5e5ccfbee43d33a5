"""Power of ``symicl verify``: it fails when theory and SGD differ by a few percent, and
passes the same constructions when they agree.

The specs live in tests/user_models/power_models.py as module-level ModelSpec
objects (the CLI takes ``PATH.py:NAME`` for them): each pairs a theory (its
``build``, whose expected loss and flow symicl derives) with the data (its
``simulator`` hook, the SGD verify runs).  The model is the one-layer linear
transformer at d = 1 with the query token's weight k inside the moment matrix,
mean(z z^T) + k z_q z_q^T / N, so that E[(Z Z^T / N)_xx] = (N + k) / N; N = 16.
Every case runs the CLI's quick plan (16 seeds, batches 64 and 256, eta 0.01,
t = 6, 40 000 examples for the gradient check) at its default seed 0, in
process through ``symicl.cli.main``.  The rows named below are the ones that
fail at seed 0; at seeds 0..7 each wrong spec failed every time, and both correct
specs passed every time; the smallest worst |z| of a wrong spec was 9.6 for (a) and
11.9 for (b), against a tolerance of 6.09.
"""

import json
from pathlib import Path

import pytest
import sympy as sp

from symicl.cli import main

MODELS = Path(__file__).parent / "user_models" / "power_models.py"


def verify_cli(name: str, out: Path, capsys) -> tuple[int, dict, str]:
    code = main(["verify", f"{MODELS}:{name}", "--quick", "--no-plots", "--no-progress",
                 "--out", str(out)])
    text = capsys.readouterr().out
    return code, json.loads((out / "report.json").read_text()), text


def failed_rows(report: dict) -> list[dict]:
    return [c for c in report["checks"] if not c["passed"]]


def test_query_weight_one_is_the_builtin_transformer():
    """At k = 1 the power tests' model is the built-in linear transformer (d = 1, unit input
    variance): the derived expected losses agree exactly, with N symbolic, so the correct
    specs below verify the built-in model itself."""
    import sys

    sys.path.insert(0, str(MODELS.parent))
    try:
        import power_models as pm
    finally:
        sys.path.remove(str(MODELS.parent))
    from symicl.models import linear_transformer

    builtin, ours = linear_transformer(1, spectrum=[1]), pm.transformer(1)
    assert [p.name for p in ours.parameters] == [p.name for p in builtin.parameters]
    same = {p: builtin.parameter(p.name) for p in ours.parameters}
    assert sp.expand(builtin.expected_loss() - ours.expected_loss().xreplace(same)) == 0
    # k = 2 moves the loss only through the query's path (W^P)_yx (W^Q)_xx
    N = [c for c in pm.transformer(2).constants if c.name == "N"][0]
    P21, P22, Q11, Q21 = (ours.parameter(n) for n in ("WP_2_1", "WP_2_2", "WQ_1_1", "WQ_2_1"))
    gap = pm.transformer(2).expected_loss() - ours.expected_loss()
    assert sp.simplify(gap - 3 * P21 * Q11 * (2 * N * P21 * Q11 + 2 * N * P22 * Q21
                                              + 15 * P21 * Q11) / (2 * N ** 2)) == 0


def test_perturbed_coefficient_fails(tmp_path, capsys):
    """(a) Theory k = 2, data k = 1: the derived loss has E[(Z Z^T / N)_xx] = (N + 2)/N where
    the data have (N + 1)/N, 6 % apart at N = 16 (from the start the derived flow vector
    moves by 0.5 % of its norm, its (W^P)_yx component by 35 %).

    Estimator: the trajectory rows, the SGD seed mean of each parameter at batches B and 4B
    carried to B -> infinity, (4 m_4B - m_B) / 3, against gradient descent on the derived
    loss at the same eta, z = (m - GD) / SE over 16 seeds.  From the start (W^P)_yx =
    (W^P)_yy = (W^Q)_xx = 0.1 the query's path is live, and the wrong coefficient makes
    the derived (W^P)_yx decay too fast: at t = 3, GD gives 0.054 and SGD 0.081, z = 13.5
    against the Bonferroni tolerance 6.09, so the run fails (exit 1)."""
    code, report, text = verify_cli("QUERY_WEIGHT_WRONG", tmp_path, capsys)
    assert code == 1 and report["passed"] is False and "FAIL" in text
    rows = failed_rows(report)
    assert rows and all(c["kind"] == "z" for c in rows)
    assert any(c["quantity"].startswith("WP_2_1 at t") and abs(c["z"]) > c["tolerance"]
               for c in rows)


def test_wrong_simulator_gradient_fails(tmp_path, capsys):
    """(b) The simulator's gradient of (W^P)_yy is multiplied by 1.05 (a wrong backward
    pass, in minibatches and per example), from the built-in's aligned start
    (W^P)_yy = (W^Q)_xx = 0.1.

    Estimator: the same trajectory rows as in (a).  SGD then follows a flow whose
    (W^P)_yy moves 5 % faster, so it leaves the plateau earlier: at t = 3 GD on the
    derived loss gives (W^P)_yy = 0.854 and the extrapolated SGD mean 0.876, z = 17.8
    against 6.09 (exit 1).  The gradient row (mean per-example gradient at a random point,
    40 000 examples) is too noisy to see a 5 % change here (z = -1.2): the trajectory
    rows carry the power."""
    code, report, text = verify_cli("GRADIENT_WRONG", tmp_path, capsys)
    assert code == 1 and report["passed"] is False and "FAIL" in text
    rows = failed_rows(report)
    assert rows and all(c["kind"] == "z" for c in rows)
    assert any(c["quantity"].startswith("WP_2_2 at t") for c in rows)


@pytest.mark.parametrize("name", ["QUERY_WEIGHT_RIGHT", "GRADIENT_RIGHT"])
def test_correct_constructions_pass(name, tmp_path, capsys):
    """(c) The same constructions with theory and data in agreement: k = 1 on both sides
    (QUERY_WEIGHT_RIGHT, the start of (a)), and the gradient wrapper of (b) with the
    factor 1 (GRADIENT_RIGHT).  Same estimators and tolerances; with a correct theory a run
    fails with probability at most alpha = 1e-3, and at seed 0 both pass (worst |z| 1.9
    against 6.09, both on a trajectory row), exit 0."""
    code, report, text = verify_cli(name, tmp_path, capsys)
    assert code == 0, text
    assert report["passed"] is True and not failed_rows(report)
