"""Checks of symicl.measures.Recorder: storage, measures, save/load, errors."""

import numpy as np
import pytest

from symicl.measures import (
    Recorder,
    RecorderError,
    autocorrelation_curvature,
    effective_rank,
    marginalized_effective_rank,
    subspace_distance,
)


class FakeTensor:
    """Duck-types a torch tensor: .detach().cpu().numpy()."""

    def __init__(self, a):
        self.a = np.asarray(a)
        self.calls = []

    def detach(self):
        self.calls.append("detach")
        return self

    def cpu(self):
        self.calls.append("cpu")
        return self

    def numpy(self):
        self.calls.append("numpy")
        return self.a


def make_run(T=10, seed=0, dtype="float64", capacity=2):
    rng = np.random.default_rng(seed)
    rec = Recorder(dtype=dtype, initial_capacity=capacity)
    qk = [rng.standard_normal((6, 2)) @ rng.standard_normal((2, 6)) for _ in range(T)]
    ov = [rng.standard_normal((6, 3)) for _ in range(T)]
    for t in range(T):
        rec.record(10 * t, {"qk": qk[t], "ov": ov[t]})
    return rec, np.stack(qk), np.stack(ov)


def test_record_grows_and_returns_trajectories():
    rec, qk, ov = make_run(T=11, capacity=2)
    assert len(rec) == 11
    assert rec.names == ["qk", "ov"]
    assert np.array_equal(rec.steps, 10 * np.arange(11))
    assert np.array_equal(rec.trajectory("qk"), qk)
    assert np.array_equal(rec.trajectory("ov"), ov)
    with pytest.raises(ValueError):
        rec.trajectory("qk")[0, 0, 0] = 1.0   # read-only view


def test_float32_storage_is_default_and_compact():
    rec, qk, _ = make_run(dtype="float32")
    assert Recorder().dtype == np.float32
    assert rec.trajectory("qk").dtype == np.float32
    assert np.allclose(rec.trajectory("qk"), qk, rtol=1e-6, atol=1e-6)


def test_measures_match_the_functions():
    rec, qk, _ = make_run(T=8)
    m = rec.measures("qk", ks=(1, 2))
    assert np.allclose(m["effective_rank"], effective_rank(qk), rtol=1e-14)
    assert np.allclose(m["marginalized_effective_rank_k1"], marginalized_effective_rank(qk, 1), rtol=1e-14)
    assert np.allclose(m["marginalized_effective_rank_k2"], marginalized_effective_rank(qk, 2))
    assert np.allclose(m["subspace_distance"], subspace_distance(qk, qk[-1]), atol=1e-14)
    assert m["subspace_distance"][-1] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(m["frobenius_norm"], np.linalg.norm(qk, axis=(1, 2)))
    assert m["norm_curvature"].shape == (6,) and np.array_equal(m["curvature_steps"], rec.steps[1:-1])
    # effective rank of a rank-2 product: between 1 and 2
    assert np.all((m["effective_rank"] >= 1.0) & (m["effective_rank"] <= 2.0 + 1e-12))
    every = rec.all_measures(ks=(1,))
    assert set(every) == {"qk", "ov"}


def test_float32_storage_keeps_low_rank_subspace_distance_informative():
    # float32 rounding makes a rank-2 product numerically full rank; the dtype-aware
    # rank cut must still see rank 2 (the C7 pitfall would give distance ~0).
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 2)) @ rng.standard_normal((2, 64))
    b = rng.standard_normal((64, 2)) @ rng.standard_normal((2, 64))
    r64, r32 = Recorder("float64"), Recorder("float32")
    for rec in (r64, r32):
        rec.record(0, {"m": a})
        rec.record(1, {"m": b})
    d64 = r64.measures("m")["subspace_distance"][0]
    d32 = r32.measures("m")["subspace_distance"][0]
    assert d64 > 0.5
    assert d32 == pytest.approx(d64, abs=1e-4)
    assert r32.measures("m")["effective_rank"][0] == pytest.approx(effective_rank(a), rel=1e-4)


def test_duck_typed_tensors_are_converted():
    t = FakeTensor(np.eye(3))
    rec = Recorder()
    rec.record(0, {"w": t})
    assert t.calls == ["detach", "cpu", "numpy"]
    assert np.array_equal(rec.trajectory("w")[0], np.eye(3))


def test_real_torch_tensors_if_available():
    torch = pytest.importorskip("torch")
    rec = Recorder()
    w = torch.nn.Parameter(torch.eye(4))
    rec.record(0, {"w": w})
    rec.log(0, loss=torch.tensor(0.5))
    assert np.array_equal(rec.trajectory("w")[0], np.eye(4))
    with pytest.raises(RecorderError, match="convert"):
        rec.record(1, {"w": torch.eye(4, dtype=torch.bfloat16)})


def test_scalars_and_loss_autocorrelation():
    rec = Recorder()
    rng = np.random.default_rng(3)
    losses = 1 + rng.uniform(0, 0.2, 60)
    for k, v in enumerate(losses):
        rec.log(2 * k, loss=v, acc=0.5)
    steps, vals = rec.scalar("loss")
    assert np.array_equal(steps, 2 * np.arange(60)) and np.array_equal(vals, losses)
    centre, kappa = rec.autocorrelation_curvature("loss", window=20)
    assert np.allclose(kappa, autocorrelation_curvature(losses, 20))
    assert centre[0] == 2 * 9 and len(centre) == len(kappa) == 60 - 20
    assert rec.scalar_names == ["loss", "acc"]


def test_save_load_roundtrip(tmp_path):
    rec, qk, ov = make_run(T=5, dtype="float32")
    rec.log(0, loss=1.0)
    rec.log(3, loss=0.5)
    path = rec.save(tmp_path / "run")
    assert path.exists() and path.suffix == ".npz"
    back = Recorder.load(path)
    assert back.dtype == np.float32 and back.names == rec.names
    assert np.array_equal(back.steps, rec.steps)
    assert np.array_equal(back.trajectory("ov"), rec.trajectory("ov"))
    assert np.array_equal(back.scalar("loss")[1], [1.0, 0.5])
    back.record(100, {"qk": qk[0], "ov": ov[0]})   # still appendable after loading
    assert len(back) == 6


# ------------------------------------------------------------------ errors
def test_empty_trajectory():
    rec = Recorder()
    with pytest.raises(RecorderError, match="empty trajectory"):
        rec.measures("qk")
    with pytest.raises(RecorderError, match="empty trajectory"):
        rec.all_measures()
    assert issubclass(RecorderError, ValueError)


def test_shape_change_names_step_and_matrix():
    rec = Recorder()
    rec.record(0, {"qk": np.eye(3)})
    with pytest.raises(RecorderError, match=r"step 5, matrix 'qk': shape changed from \(3, 3\) to \(3, 4\)"):
        rec.record(5, {"qk": np.ones((3, 4))})
    assert len(rec) == 1


def test_nan_and_inf_name_step_and_matrix():
    rec = Recorder()
    rec.record(0, {"a": np.eye(2), "b": np.eye(2)})
    bad = np.eye(2); bad[0, 1] = np.nan
    with pytest.raises(RecorderError, match=r"step 7, matrix 'b': contains NaN or inf"):
        rec.record(7, {"a": np.eye(2), "b": bad})
    with pytest.raises(RecorderError, match=r"matrix 'a': contains NaN or inf"):
        rec.record(8, {"a": np.full((2, 2), np.inf), "b": np.eye(2)})
    assert len(rec) == 1   # nothing half-stored
    with pytest.raises(RecorderError, match="scalar 'loss': value is nan"):
        rec.log(3, loss=float("nan"))


def test_unknown_missing_and_non_2d():
    rec = Recorder()
    rec.record(0, {"a": np.eye(2)})
    with pytest.raises(RecorderError, match=r"step 1: unknown matrix name\(s\) \['z'\]"):
        rec.record(1, {"a": np.eye(2), "z": np.eye(2)})
    with pytest.raises(RecorderError, match=r"unknown matrix name 'z'"):
        rec.measures("z")
    with pytest.raises(RecorderError, match=r"step 2, matrix 'a': expected a 2-D matrix, got shape \(2, 2, 2\)"):
        rec.record(2, {"a": np.ones((2, 2, 2))})
    with pytest.raises(RecorderError, match="unknown scalar name 'loss'"):
        rec.scalar("loss")
    with pytest.raises(RecorderError, match="non-empty mapping"):
        rec.record(3, {})


def test_missing_name():
    rec = Recorder()
    rec.record(0, {"a": np.eye(2), "b": np.eye(2)})
    with pytest.raises(RecorderError, match=r"step 1: missing matrix name\(s\) \['b'\]"):
        rec.record(1, {"a": np.eye(2)})


def test_steps_must_increase_and_be_integers():
    rec = Recorder()
    rec.record(3, {"a": np.eye(2)})
    with pytest.raises(RecorderError, match="step 3 is not after the previous step 3"):
        rec.record(3, {"a": np.eye(2)})
    with pytest.raises(RecorderError, match="step must be an integer"):
        rec.record(4.5, {"a": np.eye(2)})
    with pytest.raises(RecorderError, match="dtype must be float32 or float64"):
        Recorder(dtype="int8")
    with pytest.raises(RecorderError, match="expected real numbers"):
        rec.record(9, {"a": np.array([["x", "y"]])})
