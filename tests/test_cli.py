import json
import subprocess
import sys

import sympy as sp

from symicl.cli import main


def test_json_contract(capsys):
    assert main(["derive", "linear-transformer", "--dim", "2", "--reduction", "aligned"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data)[:6] == ["model", "options", "parameters", "constants", "loss", "flow"]
    # a committed configuration comes with its analysis
    assert {"conserved", "fixed_points", "timescales"} <= set(data)
    assert data["parameters"] == ["p_1", "p_2", "q_1", "q_2"]
    assert data["constants"] == ["N", "s_1", "s_2"]
    names = {n: sp.Symbol(n) for n in data["parameters"] + data["constants"]}
    loss = sp.sympify(data["loss"], locals=names)
    for p in data["parameters"]:
        flow = sp.sympify(data["flow"][p], locals=names)
        assert sp.expand(flow + sp.diff(loss, names[p])) == 0


def test_full_model_names(capsys):
    assert main(["derive", "linear-transformer", "--dim", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"][:2] == ["WP_1_1", "WP_1_2"] and len(data["parameters"]) == 8


def test_derivation_is_deterministic(tmp_path):
    outs = []
    for k in range(2):
        path = tmp_path / f"d{k}.json"
        subprocess.run([sys.executable, "-m", "symicl.cli", "derive", "linear-transformer",
                        "--dim", "2", "--reduction", "null-zero", "-o", str(path)], check=True)
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]


def test_latex_and_markdown(capsys):
    assert main(["derive", "deep-linear", "--in", "2", "--hidden", "1", "--out", "1",
                 "--format", "latex", "--standalone"]) == 0
    tex = capsys.readouterr().out
    assert tex.startswith("\\documentclass") and tex.count("\\begin{align}") == 2
    assert "\\end{document}" in tex
    assert main(["derive", "linear-transformer", "--reduction", "aligned", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "## Expected loss" in md and "\\dot{p_{1}}" in md


def test_bad_input_gives_one_clear_error(capsys, tmp_path):
    out = tmp_path / "never.json"
    assert main(["derive", "linear-transformer", "--N", "0", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--N must be >= 1, got 0" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_derive_all_check_names_the_stale_file(tmp_path, capsys, monkeypatch):
    """--all writes every configuration and --check names a stale file (on the two lightest
    configurations: the committed ones are checked in full by the test below)."""
    import symicl.derivations as derivations

    CONFIGS = [c for c in derivations.CONFIGS
               if c.folder in ("linear_transformer_aligned_d1", "linear_transformer_null_zero")]
    assert len(CONFIGS) == 2
    monkeypatch.setattr(derivations, "CONFIGS", CONFIGS)
    root = tmp_path / "derivations"
    assert main(["derive", "--all", "--root", str(root)]) == 0
    for c in CONFIGS:
        for name in ("derivation.json", "equations.tex", "README.md"):
            assert (root / c.folder / name).stat().st_size > 0
    assert main(["derive", "--all", "--check", "--root", str(root)]) == 0
    target = root / CONFIGS[0].folder / "equations.tex"
    target.write_text(target.read_text() + "% edited by hand\n")
    capsys.readouterr()
    assert main(["derive", "--all", "--check", "--root", str(root)]) == 1
    assert str(target) in capsys.readouterr().err


def test_committed_derivations_are_current():
    """The committed derivations/ equal what the engine derives now."""
    import pathlib

    from symicl.derivations import write_all

    root = pathlib.Path(__file__).resolve().parents[1] / "derivations"
    assert write_all(str(root), check=True, log=lambda m: None) == []


def test_standalone_latex_compiles_with_pdflatex(tmp_path):
    import shutil

    import pytest

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    tex = tmp_path / "aligned.tex"
    assert main(["derive", "linear-transformer", "--dim", "2", "--reduction", "aligned",
                 "--format", "latex", "--standalone", "-o", str(tex)]) == 0
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "aligned.pdf").stat().st_size > 1000
