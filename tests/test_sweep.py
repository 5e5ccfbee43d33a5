"""symicl sweep: configs, seeds, the store, Dask with a killed worker, resume, the CLI."""

from __future__ import annotations

import json
import os
import signal

import distributed
import numpy as np
import pytest

from symicl.cli import main
from symicl.sweep import SweepConfigError, load, load_config, parse_config, points, run
from symicl.sweep.store import record_path, write_record

MEASURES = ["gain_err_exact", "gain_err_per_mode", "gain_z_exact", "gain_z_per_mode",
            "gain_err_gd_flow", "gain_z_gd", "loss_z_gd", "loss_end"]
TINY = {"runs": 8, "batch": 16, "t_end": 2.0, "eta": 0.01}


@pytest.fixture(autouse=True, scope="module")
def kernel_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMICL_CACHE", str(tmp_path_factory.mktemp("kernels")))
        yield


def tiny(grid: dict, **fixed) -> object:
    return parse_config({"model": "linear-transformer", "fixed": {**TINY, **fixed}, "grid": grid})


@pytest.mark.parametrize("data, words", [
    ({"model": "mlp", "grid": {"seed": [0]}}, "unknown model 'mlp'"),
    ({"model": "deep-linear", "grid": {"seed": [0]}, "plots": {}}, "unknown key plots"),
    ({"model": "deep-linear", "grid": {"N": [4]}}, "no parameter 'N'"),
    ({"model": "deep-linear"}, "empty grid"),
    ({"model": "deep-linear", "grid": {}}, "empty grid"),
    ({"model": "deep-linear", "grid": {"eta": []}}, "grid axis eta is empty"),
    ({"model": "deep-linear", "grid": {"eta": 0.1}}, "must be a list"),
    ({"model": "deep-linear", "grid": {"eta": [0.1, -1.0]}}, "eta = -1.0: must be a number > 0"),
    ({"model": "linear-transformer", "grid": {"N": [4, 2.5]}}, "N = 2.5: must be an integer"),
    ({"model": "linear-transformer", "grid": {"runs": [4]}}, "runs = 4: must be an integer >= 8"),
    ({"model": "linear-transformer", "grid": {"eta": [5.0]}}, "gives 1 SGD steps"),
    ({"model": "linear-transformer", "grid": {"seed": [0]}, "time_limit": -1},
     "time_limit must be a number of seconds >= 0"),
    ({"model": "linear-transformer", "grid": {"seed": [0]}, "plot": {"x": ["N"]}},
     "plot x = ['N'] is not a parameter"),
    ({"model": "linear-transformer", "grid": {"N": [True]}}, "N = True"),
    ({"model": "linear-transformer", "grid": {"N": [4, 4]}}, "repeats a value"),
    ({"model": "linear-transformer", "fixed": {"N": 4}, "grid": {"N": [8]}}, "both in [fixed]"),
    ({"model": "linear-transformer", "fixed": {"spectrum": [1.0, 2.0]},
      "grid": {"anisotropy": [2.0]}}, "not both"),
    ({"model": "linear-transformer", "grid": {"spectrum": [[1.0, 2.0, 3.0]]}}, "3 eigenvalues for dimension 2"),
    ({"model": "linear-transformer", "grid": {"anisotropy": [0.5]}}, "anisotropy = 0.5"),
    ({"model": "linear-transformer", "fixed": {"dim": 1}, "grid": {"anisotropy": [2.0]}},
     "needs dim >= 2"),
    ({"model": "deep-linear", "grid": {"singular_values": [[1.0, 1.0, 1.0, 1.0]]}},
     "more than min(n_in, n_out)"),
    ({"model": "deep-linear", "measure": ["gain_err_exact"], "grid": {"seed": [0]}},
     "unknown measure 'gain_err_exact'"),
    ({"model": "deep-linear", "grid": {"seed": [0]}, "plot": {"x": "N"}}, "plot x = 'N'"),
])
def test_bad_configs_name_the_problem(data, words):
    with pytest.raises(SweepConfigError) as info:
        parse_config(data)
    assert words in str(info.value)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "deep-linear"\n[grid\n')
    with pytest.raises(SweepConfigError, match="not valid TOML"):
        load_config(str(bad))
    with pytest.raises(SweepConfigError, match="cannot read"):
        load_config(str(tmp_path / "none.toml"))
    assert main(["sweep", str(bad)]) == 2


def test_point_ids_and_seeds_depend_only_on_the_point():
    a = points(tiny({"N": [4, 8], "seed": [0, 1]}))
    b = points(tiny({"seed": [1, 0], "N": [8, 4]}))
    assert len({p.id for p in a}) == 4
    assert {p.id: p.rng_seed for p in a} == {p.id: p.rng_seed for p in b}
    # a value fixed or on a one-value axis is the same point
    fixed = points(parse_config({"model": "linear-transformer", "fixed": {**TINY, "N": 4},
                                 "grid": {"seed": [0]}}))
    assert fixed[0].id in {p.id for p in a}
    # numbers are normalised: init = 1 and init = 1.0 are the same point
    assert points(tiny({"init": [1]}))[0].id == points(tiny({"init": [1.0]}))[0].id
    assert len({p.rng_seed for p in a}) == 4
    from symicl.models import spec

    s = spec("linear-transformer")
    assert s.constants({"dim": 2, "anisotropy": 4.0})["s_2"] == 0.5
    assert s.constants({"dim": 2, "anisotropy": 1.0})["s_1"] == 1.0


def test_records_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def broken(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path, {"point": "abc", "status": "ok"})
    assert list(tmp_path.rglob("*")) == [tmp_path / "points"]


def test_dask_sweep_survives_a_killed_worker(tmp_path):
    """Kill a busy worker after the first result: every point stored once, same numbers."""
    config = tiny({"N": [4, 8], "anisotropy": [1.0, 4.0], "seed": [0, 1]})
    killed = []

    def kill_a_busy_worker(record):
        if killed:
            return
        client = distributed.default_client()
        busy = {w: keys for w, keys in client.processing().items() if keys}
        target = next(iter(busy))
        pid = client.run(os.getpid, workers=[target])[target]
        os.kill(pid, signal.SIGKILL)
        killed.append(busy[target])

    summary = run(config, str(tmp_path / "dask"), workers=2, progress=False,
                  on_result=kill_a_busy_worker)
    assert killed and killed[0], "the killed worker was running a point"
    assert (summary.total, summary.computed, summary.reused) == (8, 8, 0)
    # one record per point; a writer killed mid-write leaves at most a hidden temporary file
    files = list((tmp_path / "dask" / "points").iterdir())
    assert len([f for f in files if f.suffix == ".parquet"]) == 8
    assert all(f.name.startswith(".symicl-") for f in files if f.suffix != ".parquet")
    table = load(tmp_path / "dask")
    assert len(table) == 8 and table["point"].is_unique
    assert set(table["point"]) == {p.id for p in points(config)}
    assert summary.failed == (table["status"] != "ok").sum() <= 2

    # the same points in this process, without Dask: identical records
    run(config, str(tmp_path / "serial"), workers=0, progress=False)
    serial = load(tmp_path / "serial")
    assert list(serial["point"]) == list(table["point"])
    for column in ("status", "error", "rng_seed"):
        assert list(serial[column]) == list(table[column])
    np.testing.assert_array_equal(serial[MEASURES].to_numpy(), table[MEASURES].to_numpy())


def test_interrupt_then_resume(tmp_path):
    """Interrupted after 3 points; the rerun (on an existing Dask scheduler) computes the rest."""
    config = tiny({"N": [4, 8], "init": [0.1, 30.0], "seed": [0, 1]}, t_end=2.0, eta=0.01)
    out = str(tmp_path / "store")
    seen = []

    def interrupt(record):
        seen.append(record["point"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(config, out, workers=0, progress=False, on_result=interrupt)
    first = {p: os.stat(record_path(out, p)).st_mtime_ns for p in seen}
    assert len(os.listdir(os.path.join(out, "points"))) == 3

    computed = []
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        summary = run(config, out, scheduler=cluster.scheduler_address, progress=False,
                      on_result=lambda r: computed.append(r["point"]))
    assert (summary.reused, summary.computed) == (3, 5)
    assert not set(computed) & set(seen) and len(set(computed)) == 5
    assert {p: os.stat(record_path(out, p)).st_mtime_ns for p in seen} == first

    # failing points are stored with their error and not rerun
    table = load(out).set_index("point")
    bad = table[table["init"] == 30.0]
    assert len(table) == 8 and (bad["status"] == "error").all()
    assert bad["error"].str.contains("diverge").all()
    assert bad[MEASURES].isna().all().all()
    assert (table[table["init"] == 0.1]["status"] == "ok").all()
    again = run(config, out, workers=0, progress=False)
    assert (again.reused, again.computed) == (8, 0)
    retried = run(config, out, workers=0, progress=False, retry_errors=True)
    assert (retried.reused, retried.computed, retried.failed) == (4, 4, 4)


def test_cli_sweep_table_and_heat_map(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    cfg.write_text('model = "linear-transformer"\nmeasure = ["gain_err_exact", "gain_z_exact"]\n'
                   '[fixed]\nruns = 8\nbatch = 8\nt_end = 1.0\neta = 0.02\n'
                   '[grid]\nN = [4, 16]\nanisotropy = [1.0, 4.0]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "0", "--quiet",
                 "--table"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["N", "anisotropy", "status", "gain_err_exact",
                                               "gain_z_exact"]
    assert len(printed.splitlines()) == 5
    assert (out / "plots" / "heatmap.png").stat().st_size > 1000
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["model"] == "linear-transformer" and len(manifest["points"]) == 4
    assert manifest["grid"] == {"N": [4, 16], "anisotropy": [1.0, 4.0]}
    assert main(["sweep-table", str(out), "--csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert len(csv) == 5 and "symicl_version" in csv[0] and "rng_seed" in csv[0]


def test_deep_linear_point(tmp_path):
    config = parse_config({"model": "deep-linear", "fixed": {**TINY, "n_in": 2, "n_hidden": 2,
                                                             "n_out": 2,
                                                             "singular_values": [2.0, 0.5]},
                           "grid": {"seed": [0]}})
    run(config, str(tmp_path), workers=0, progress=False)
    row = load(tmp_path).iloc[0]
    assert row["status"] == "ok"
    assert np.isfinite([row["loss_z_gd"], row["mode_err_exact"], row["mode_z_exact"],
                        row["mode_z_gd"], row["mode_err_gd_flow"]]).all()
    assert 0 < row["loss_end"] < 0.5 * (2.0 ** 2 + 0.5 ** 2)


def test_gain_z_leaves_out_the_shared_start():
    """At t = 0 every seed holds p q = 0.1 * 0.1: mean and SE are rounding error there,
    with ratio sqrt(runs - 1) = 5.57; that record must not set the z of a point."""
    from symicl.verify.steps import compare

    rng = np.random.default_rng(0)
    sgd = np.full((32, 26, 2), 0.1) * np.full((32, 26, 2), 0.1)
    sgd[:, 1:] += 0.01 * rng.standard_normal((32, 25, 2))
    flow = np.full((26, 2), 0.1 * 0.1)
    err, z, _ = compare(sgd, flow)
    _, z_later, _ = compare(sgd[:, 1:], flow[1:])
    assert z == z_later < 5
    assert err == np.max(np.abs(sgd.mean(axis=0) - flow))


def test_gradient_descent_reference_is_first_order_in_eta():
    """gain_err_gd_flow is the flow's discretisation error: it halves with eta."""
    from symicl.models import spec
    from symicl.verify.steps import Experiment, Plan

    s, gaps = spec("linear-transformer"), []
    for eta in (0.02, 0.01):
        ex = Experiment(s, s.check_options({}, "verify"), {},
                        Plan(eta=eta, t_end=2.0, records=10, seeds=8))
        gaps.append(np.max(np.abs(ex.read(ex.gd_path) - ex.read(ex.flow_path.theta))))
    assert 1.8 < gaps[0] / gaps[1] < 2.2


def test_user_model_sweep(tmp_path):
    """A user's model from a file: options, constants and the shared measures."""
    import pathlib

    user = pathlib.Path(__file__).parent / "user_models" / "models.py"
    config = parse_config({"model": f"{user}:separate_kqv", "constants": {"N": 8},
                           "fixed": {**TINY, "t_end": 1.0}, "grid": {"records": [10, 20]}})
    run(config, str(tmp_path), workers=0, progress=False)
    table = load(tmp_path)
    assert list(table["status"]) == ["ok", "ok"]
    assert np.isfinite(table["theta_z_gd"]).all() and (table["theta_err_gd_flow"] > 0).all()


def test_cli_exits_1_when_points_failed(tmp_path, capsys):
    """A sweep with a diverging point finishes, stores the error and exits 1, naming the count."""
    cfg = tmp_path / "diverge.toml"
    cfg.write_text('model = "linear-transformer"\nmeasure = ["gain_err_exact"]\n'
                   '[fixed]\nruns = 8\nbatch = 8\nt_end = 1.0\neta = 0.02\nN = 4\n'
                   '[grid]\ninit = [0.1, 30.0]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "0", "--quiet",
                 "--no-plots"]) == 1
    assert "1 of 2 points failed" in capsys.readouterr().err
