"""The sweep store keeps nothing broken and loses nothing: real truncated, emptied, swapped,
stale and half-written files, a damaged sweep.json, a changed config, and a point past its
time limit."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symicl.cli import main
from symicl.files import file_mode
from symicl.sweep import load, parse_config, points, run
from symicl.sweep import store
from symicl.sweep.store import (BadRecord, StoreWarning, SweepStoreError, read_manifest,
                                read_record, record_path)

TINY = {"runs": 8, "batch": 16, "t_end": 1.0, "eta": 0.02, "N": 4, "records": 10}
MEASURES = ["gain_err_exact", "gain_z_exact", "loss_z_gd", "loss_end"]
TOML = ('model = "linear-transformer"\n[fixed]\n'
        + "".join(f"{k} = {v}\n" for k, v in TINY.items()) + "[grid]\nseed = {seeds}\n")


@pytest.fixture(autouse=True, scope="module")
def kernel_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMICL_CACHE", str(tmp_path_factory.mktemp("kernels")))
        yield


def config(seeds=(0, 1, 2, 3)):
    return parse_config({"model": "linear-transformer", "fixed": TINY,
                         "grid": {"seed": list(seeds)}})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished store of four points, computed once; tests change copies of it."""
    out = tmp_path_factory.mktemp("base") / "store"
    summary = run(config(), str(out), workers=0, progress=False)
    assert (summary.computed, summary.failed) == (4, 0)
    return out


@pytest.fixture
def store_copy(base, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(base, out)
    return out


def ids():
    return [p.id for p in points(config())]


def measures(out):
    return load(out).set_index("point").loc[ids(), MEASURES].to_numpy()


def test_records_describe_and_check_themselves(base):
    for point_id in ids():
        path = record_path(base, point_id)
        assert path.stat().st_mode & 0o777 == file_mode()
        record = read_record(base, point_id)
        assert record["point"] == point_id and record["model"] == "linear-transformer"
        assert record["measures_version"] == store.MEASURES_VERSION
        assert record["checksum"] == store._checksum(record)
    assert (base / "sweep.json").stat().st_mode & 0o777 == file_mode()
    manifest = read_manifest(base)
    assert manifest["measures_version"] == store.MEASURES_VERSION
    assert manifest["points"] == ids()


def test_truncated_emptied_and_swapped_records_are_named_moved_and_recomputed(
        store_copy, base, capsys):
    out = store_copy
    a, b, c, d = (record_path(out, p) for p in ids())
    a.write_bytes(a.read_bytes()[: a.stat().st_size // 2])   # truncated
    b.write_bytes(b"")                                       # emptied
    shutil.copyfile(c, d)                                    # c's record over d's file

    # sweep-table: no traceback, one warning line per bad record, the good one shown
    assert main(["sweep-table", str(out)]) == 0
    captured = capsys.readouterr()
    rows = captured.out.strip().splitlines()[1:]
    assert len(rows) == 1
    warned = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warned) == 3
    assert any(a.name in w and "not a readable Parquet file" in w for w in warned)
    assert any(b.name in w and "not a readable Parquet file" in w for w in warned)
    assert any(d.name in w and f"holds the record of point {ids()[2]}" in w for w in warned)
    assert "3 of 4 points have no usable record" in captured.err
    assert "Traceback" not in captured.err

    # the library says the same with StoreWarning and leaves the files alone
    with pytest.warns(StoreWarning) as caught:
        assert list(load(out)["point"]) == [ids()[2]]
    assert len(caught) == 3 and a.exists() and b.exists()

    # resume: the three are moved to DIR/bad and computed again, with the same numbers
    with pytest.warns(StoreWarning, match="moved to") as caught:
        summary = run(config(), str(out), workers=0, progress=False)
    assert len(caught) == 3
    assert (summary.reused, summary.computed, summary.failed) == (1, 3, 0)
    assert sorted(f.name for f in (out / "bad").iterdir()) == sorted([a.name, b.name, d.name])
    table = load(out)
    assert list(table["point"]) == ids()
    np.testing.assert_array_equal(measures(out), measures(base))


def test_retry_errors_and_resume_with_a_bad_record_exit_cleanly(store_copy, tmp_path, capsys):
    out = store_copy
    cfg = tmp_path / "s.toml"
    cfg.write_text(TOML.format(seeds="[0, 1, 2, 3]"))
    path = record_path(out, ids()[1])
    path.write_bytes(path.read_bytes()[:100])
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "0", "--quiet",
                 "--no-plots", "--retry-errors", "--time-limit", "300"]) == 0
    err = capsys.readouterr().err
    assert err.count("symicl sweep: warning:") == 1 and path.name in err
    assert "Traceback" not in err
    assert len(load(out)) == 4
    assert read_manifest(out)["time_limit"] == 300


def test_changed_numbers_fail_the_checksum(store_copy):
    path = record_path(store_copy, ids()[0])
    row = pq.read_table(path).to_pylist()[0]
    row["gain_err_exact"] *= 1.5
    pq.write_table(pa.Table.from_pylist([row]), path)
    with pytest.raises(BadRecord, match="fails its checksum"):
        read_record(store_copy, ids()[0])


@pytest.mark.parametrize("damage", ["truncate", "empty", "not an object"])
def test_damaged_sweep_json_is_one_clear_error(store_copy, capsys, damage):
    manifest = store_copy / "sweep.json"
    text = manifest.read_text()
    manifest.write_text({"truncate": text[: len(text) // 2], "empty": "",
                         "not an object": "[1, 2]"}[damage])
    assert main(["sweep-table", str(store_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("symicl: error: ") and f"{manifest} is damaged" in err
    assert "--force" in err
    with pytest.raises(SweepStoreError, match="is damaged"):
        run(config(), str(store_copy), workers=0, progress=False)
    # --force rewrites it from the config; the records are good and reused
    summary = run(config(), str(store_copy), workers=0, progress=False, force=True)
    assert (summary.reused, summary.computed) == (4, 0)
    assert read_manifest(store_copy)["points"] == ids()


def test_records_without_a_manifest_are_not_taken_silently(store_copy):
    (store_copy / "sweep.json").unlink()
    with pytest.raises(SweepStoreError, match="holds 4 records but no sweep.json"):
        run(config(), str(store_copy), workers=0, progress=False)


def test_a_changed_config_is_refused_unless_forced(store_copy, tmp_path, capsys):
    out = store_copy
    cfg = tmp_path / "other.toml"
    cfg.write_text(TOML.format(seeds="[0, 1, 2, 4]"))
    before = (out / "sweep.json").read_text()
    args = ["sweep", str(cfg), "--out", str(out), "--workers", "0", "--no-plots"]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "was made by another config (grid seed: [0, 1, 2, 3] -> [0, 1, 2, 4])" in err
    assert "--force" in err and "--out" in err
    assert (out / "sweep.json").read_text() == before          # nothing touched
    assert len(list((out / "points").iterdir())) == 4

    assert main([*args, "--force"]) == 0
    err = capsys.readouterr().err
    assert "1 records of points not in it moved to" in err
    assert "4 points, 3 in the store, 1 to run" in err
    manifest = read_manifest(out)
    new_ids = [p.id for p in points(config((0, 1, 2, 4)))]
    assert manifest["points"] == new_ids and manifest["grid"] == {"seed": [0, 1, 2, 4]}
    assert [f.stem for f in (out / "superseded").iterdir()] == [ids()[3]]
    assert list(load(out)["point"]) == new_ids


def test_a_store_of_another_measures_version_is_refused_unless_forced(tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / "old"
    monkeypatch.setattr(store, "MEASURES_VERSION", "0")
    run(config((0, 1)), str(out), workers=0, progress=False)
    monkeypatch.undo()
    with pytest.raises(SweepStoreError, match="holds measures of version 0, this symicl computes "
                                              f"version {store.MEASURES_VERSION}; --force"):
        run(config((0, 1)), str(out), workers=0, progress=False)
    with pytest.warns(StoreWarning, match="holds measures of version 0"):
        assert len(load(out)) == 2          # the old results can still be read, with a word

    # a record of the old version in a current store is set aside, not reused
    old = record_path(out, points(config((0, 1)))[0].id).read_bytes()
    summary = run(config((0, 1)), str(out), workers=0, progress=False, force=True)
    assert (summary.reused, summary.computed) == (0, 2)
    assert len(list((out / "stale").iterdir())) == 2
    record_path(out, points(config((0, 1)))[0].id).write_bytes(old)
    with pytest.warns(StoreWarning, match="computed by measures version 0"):
        assert len(load(out)) == 1
    summary = run(config((0, 1)), str(out), workers=0, progress=False)
    assert (summary.reused, summary.computed) == (1, 1)


def test_a_store_from_before_measures_were_versioned_is_refused(store_copy):
    manifest = json.loads((store_copy / "sweep.json").read_text())
    del manifest["measures_version"]
    (store_copy / "sweep.json").write_text(json.dumps(manifest))
    with pytest.raises(SweepStoreError, match=r"version \(none\)"):
        run(config(), str(store_copy), workers=0, progress=False)


def test_leftover_temporary_files_are_removed(store_copy, capsys):
    left = [store_copy / "points" / ".symicl-abc123.tmp", store_copy / ".symicl-x.tmp"]
    for f in left:
        f.write_bytes(b"PAR1 half")
    summary = run(config(), str(store_copy), workers=0)
    assert "removed 2 unfinished temporary files" in capsys.readouterr().err
    assert not any(f.exists() for f in left) and summary.reused == 4


def test_a_point_past_its_time_limit_is_an_error_record(base, tmp_path):
    """A stiff point (s = 1e6, 1: the flow's integrator crawls) is stopped, not waited for;
    the same child process then measures a normal point with the same numbers as in-process."""
    stiff = parse_config({"model": "linear-transformer", "fixed": {**TINY, "dim": 2},
                          "grid": {"spectrum": [[1e6, 1.0]]}})
    summary = run(stiff, str(tmp_path / "stiff"), workers=0, progress=False, time_limit=2)
    assert (summary.computed, summary.failed) == (1, 1)
    row = load(tmp_path / "stiff").iloc[0]
    assert row["status"] == "error" and row["error"] == "exceeded the time limit of 2 s"
    assert read_manifest(tmp_path / "stiff")["time_limit"] == 2

    # the next point gets a fresh child; no limit (0) measures in this process: same numbers
    for limit, name in ((600, "child"), (0, "here")):
        run(config((0,)), str(tmp_path / name), workers=0, progress=False, time_limit=limit)
    here, child = load(tmp_path / "here"), load(tmp_path / "child")
    np.testing.assert_array_equal(here[MEASURES].to_numpy(), child[MEASURES].to_numpy())
    np.testing.assert_array_equal(here[MEASURES].to_numpy()[0], measures(base)[0])


def test_bad_time_limit_is_refused():
    from symicl.errors import SymiclError

    with pytest.raises(SymiclError, match="time_limit must be"):
        run(config(), "unused", workers=0, time_limit=-1)
    assert not os.path.exists("unused")


def test_run_point_on_a_worker_checks_the_record_it_would_reuse(store_copy):
    """The task itself (what a Dask worker runs) never returns a damaged record."""
    from symicl.sweep import run_point

    point = points(config())[0]
    good = read_record(store_copy, point.id)
    assert run_point(point, str(store_copy)) == good               # reused as it is
    record_path(store_copy, point.id).write_bytes(b"PAR1")
    with pytest.warns(StoreWarning, match="not a readable Parquet file"):
        again = run_point(point, str(store_copy))
    assert all(again[m] == good[m] for m in MEASURES)             # same numbers, recomputed
    assert read_record(store_copy, point.id)["point"] == point.id
    assert len(list((store_copy / "bad").iterdir())) == 1


def test_an_unwritable_store_is_one_clear_error_before_any_point(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(TOML.format(seeds="[0]"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["sweep", str(cfg), "--out", str(blocker / "store"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"symicl: error: cannot write the sweep store {blocker / 'store'}")
    assert len(err.splitlines()) == 1
