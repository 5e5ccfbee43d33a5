"""Prior knowledge in two-layer linear networks: rich, lazy, large and transfer starts.

Qualitative claims checked (Braun et al., NeurIPS 2022; Dominé et al., ICLR 2025): small
zero-balanced weights learn sigmoidally with plateaus; large-lambda (lazy) starts learn
exponentially from the start; large task-independent zero-balanced weights learn without a
plateau and end with the same representational similarity as small ones, (T^T T)^{1/2} for
the input RSM.  What symicl finds for the lazy start's final RSM is checked as found: it is
close to T^T T (normalised), not (T^T T)^{1/2}.  And the closed form against the seed mean of
Monte Carlo SGD, within 5 standard errors.
"""

import numpy as np
import pytest

from symicl.analysis.prior_knowledge import (
    balanced_weights,
    compare_starts,
    decay_profile,
    standard_starts,
    teacher,
    time_to_loss,
)
from symicl.analysis.representations import Representations, closed_form
from symicl.simulate import DeepLinearSGD


@pytest.fixture(scope="module")
def study():
    T, T1 = teacher(4, 5, [3, 2, 1], 1), teacher(4, 5, [3, 2, 1], 2)
    starts = standard_starts(T, 4, previous=T1, lazy_lambda=20.0, large=3.0, small=1e-3)
    return T, T1, starts, compare_starts(T, starts, np.linspace(0, 30, 601), threshold=1e-3)


def test_lazy_is_exponential_and_fast_rich_has_plateaus(study):
    _, _, _, res = study
    rich, lazy = res["starts"]["rich"], res["starts"]["lazy"]
    assert lazy["time_to_threshold"] < rich["time_to_threshold"] / 10
    assert lazy["max_log_deviation"] < 0.2              # log L linear in t from t = 0
    assert rich["max_log_deviation"] > 1.0 and rich["plateau_fraction"] > 0.15
    assert lazy["rate"] > 2 * 20 * 0.9                  # L ~ e^{-2 lambda t} at large lambda
    for row in res["starts"].values():
        assert row["loss_final"] < 1e-3


def test_final_representations(study):
    _, _, _, res = study
    rows = res["starts"]
    for name in ("rich", "large", "transfer"):            # zero-balanced starts
        assert rows[name]["rsm_in_vs_sqrt(T^T T)"] < 1e-2
        assert rows[name]["rsm_out_vs_sqrt(T T^T)"] < 1e-2
    assert rows["large"]["plateau_fraction"] < 0.05 < rows["rich"]["plateau_fraction"]
    assert rows["large"]["time_to_threshold"] < 3 * rows["rich"]["time_to_threshold"]
    # found: the lazy input RSM ends near T^T T (normalised), unlike the rich start's
    assert rows["lazy"]["rsm_in_vs_T^T T"] < 0.02
    assert rows["lazy"]["rsm_in_vs_rich"] > 0.1
    assert rows["lazy"]["rsm_out_vs_rich"] > 0.3


def test_transfer_starts_from_the_previous_task(study):
    T, T1, starts, res = study
    path = res["paths"]["transfer"]
    assert np.linalg.norm(path.network[0] - T1) < 1e-3 and np.linalg.norm(path.network[-1] - T) < 1e-2
    assert next(s for s in starts if s.name == "transfer").note.startswith("learned")


def test_threshold_and_decay_profile_on_known_curves():
    t = np.linspace(0, 10, 1001)
    expo = Representations(t, np.zeros((1001, 1, 1)), np.zeros((1001, 1, 1)),
                           np.zeros((1001, 1, 1)), np.exp(-2 * t))
    assert time_to_loss(expo, np.exp(-5)) == pytest.approx(2.5, abs=1e-9)
    assert time_to_loss(expo, -1.0) == float("inf")
    prof = decay_profile(expo)
    assert prof["rate"] == pytest.approx(2, rel=1e-2) and prof["max_log_deviation"] < 0.05


def test_lazy_and_rich_closed_forms_track_sgd_mean():
    """Seed mean of DeepLinearSGD (eta small) against the closed form, |z| <= 5 per entry."""
    T = teacher(3, 3, [2.0, 1.0, 0.5], 5)
    for lam, scale, eta, times in ((4.0, 0.05, 0.002, [0.1, 0.3]), (0.0, 0.2, 0.005, [1.0, 2.0])):
        W1, W2 = balanced_weights(3, 3, 3, lam, scale, seed=2)
        cf = closed_form(T, W1, W2, times)
        every = round(times[0] / eta)
        steps = round(times[-1] / eta)
        run = DeepLinearSGD(T, batch=64, eta=eta).run(W1, W2, steps, seeds=32, seed=1,
                                                      record_every=every)
        W = run.params["W2"] @ run.params["W1"]              # (seeds, records, o, i)
        for k, tk in enumerate(times):
            rec = round(tk / eta) // every
            mean, se = W[:, rec].mean(axis=0), W[:, rec].std(axis=0, ddof=1) / np.sqrt(32)
            z = (mean - cf.network[k]) / se
            assert np.abs(z).max() <= 5, (lam, tk, z)
