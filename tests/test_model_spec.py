"""The one-file model specification: options, CLI, verify and sweep from one file."""

import json
import textwrap

import pytest

from symicl.cli import main
from symicl.errors import SymiclError
from symicl.models import SPECS, spec
from symicl.spec import Option
from symicl.sweep import load, parse_config, run

MODEL_FILE = textwrap.dedent('''
    """A scalar two-layer network y = sum_k a_k b_k x with a teacher c x: one file, one SPEC."""
    import numpy as np
    import sympy as sp

    from symicl.expectation import Distribution
    from symicl.gaussian import Gaussian
    from symicl.model import Model
    from symicl.spec import ModelSpec, Option, Readout
    from symicl.symbols import vector


    def scalar_net(width=2):
        x = sp.Symbol("x", real=True)
        a, b = vector("a", width), vector("b", width)
        c = sp.Symbol("c", positive=True)
        return Model("scalar-net", {"a": sp.Matrix(a), "b": sp.Matrix(b)},
                     Distribution(Gaussian([x])), prediction=sum(ai * bi for ai, bi in zip(a, b)) * x,
                     target=c * x)


    def start(model, options, scale, seed):
        return np.full(len(model.parameters), scale)


    def readout(model, options, constants):
        w = options["width"]
        return Readout("gain", ("a.b",), lambda th: (th[..., :w] * th[..., w:]).sum(-1)[..., None],
                       "the learned gain a . b")


    SPEC = ModelSpec(name="scalar-net", build=scalar_net, summary="a scalar two-layer network",
                     options=(Option("width", "int", 2, "hidden width", low=1),),
                     constants=lambda options: {"c": 1.5}, init=start, readout=readout,
                     readout_name="gain", plan={"init": 0.2})
''')


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "scalar_net.py"
    path.write_text(MODEL_FILE)
    return f"{path}:SPEC"


def test_one_file_gives_derive_verify_and_sweep(model_file, tmp_path, capsys):
    assert main(["derive", model_file, "--width", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"] == ["a_1", "a_2", "a_3", "b_1", "b_2", "b_3"]
    assert data["constants"] == ["c"]
    out = tmp_path / "v"
    assert main(["verify", model_file, "--quick", "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["readout"]["labels"] == ["a.b"]
    assert report["constants"] == {"c": 1.5}
    config = parse_config({"model": model_file, "fixed": {"runs": 8, "t_end": 1.0, "eta": 0.02},
                           "grid": {"width": [1, 2]}})
    run(config, str(tmp_path / "sweep"), workers=0, progress=False)
    table = load(tmp_path / "sweep")
    assert list(table["status"]) == ["ok", "ok"] and list(table["width"]) == [1, 2]
    assert (table["gain_err_gd_flow"] > 0).all()


def test_options_that_do_not_belong_are_refused(model_file, capsys):
    assert main(["derive", model_file, "--depth", "3"]) == 2
    err = capsys.readouterr().err
    assert "unknown option --depth" in err and "--width" in err
    assert main(["derive", model_file, "--width", "0"]) == 2
    assert "--width must be >= 1" in capsys.readouterr().err


def test_builtins_are_collected_from_their_files():
    assert set(SPECS) == {"linear-transformer", "linear-transformer-per-mode", "deep-linear"}
    lt = spec("linear-transformer")
    assert lt.check_options({}, "verify")["dim"] == 2 and lt.check_options({}, "derive")["dim"] == 1
    with pytest.raises(SymiclError, match="takes no option --reduction in verify"):
        lt.check_options({"reduction": "aligned"}, "verify")
    with pytest.raises(SymiclError, match="unknown model 'mlp'"):
        spec("mlp")
    with pytest.raises(SymiclError, match="no such model file"):
        spec("/nonexistent/model.py:f")


@pytest.mark.parametrize("kind, text, words", [
    ("floats", "1,,2", "comma-separated numbers"),
    ("floats", "1,nan", "must be finite"),
    ("int", "2.5", "takes an integer"),
    ("float", "abc", "takes a number"),
])
def test_option_parsing_names_the_flag(kind, text, words):
    with pytest.raises(SymiclError, match=words):
        Option("some_value", kind, None, "help").parse(text)


def test_user_model_options_and_constants(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text(MODEL_FILE)
    ref = f"{path}:scalar_net"
    assert main(["derive", ref, "--opt", "width=1"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == ["a_1", "b_1"]
    assert main(["verify", ref, "--quick", "--no-progress", "--out", str(tmp_path / "v")]) == 2
    assert "no value for the constant c" in capsys.readouterr().err
    assert main(["verify", ref, "--quick", "--no-progress", "--out", str(tmp_path / "v"),
                 "--opt", "width=1", "--const", "c=2", "--const", "d=1"]) == 2
    assert "has no constant d" in capsys.readouterr().err
