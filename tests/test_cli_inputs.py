"""Bad command lines get one clear line and exit 2, before any work; nothing is ignored."""

import pytest

from symicl.cli import main, parser


@pytest.mark.parametrize("argv, words", [
    (["derive", "linear-transformer", "--hidden", "7", "--in", "9"],
     "unknown option --hidden 7 --in 9 for model linear-transformer"),
    (["verify", "deep-linear", "--dim", "7", "--N", "3"], "unknown option --dim 7 --N 3"),
    (["derive", "linear-transformer", "--format", "md", "--standalone"],
     "--standalone goes with --format latex"),
    (["derive", "--all", "--check", "--root", "/nonexistent"], "no such folder: /nonexistent"),
    (["derive", "deep-linear", "--out", "/proc/nope"], "--n-out takes a number"),
    (["derive", "deep-linear", "-o", "/proc/nope/x.json"], "cannot write to /proc/nope/x.json"),
    (["derive", "linear-transformer", "--spectrum", "-1,2"], "--spectrum must be positive"),
    (["derive", "linear-transformer", "--spectrum", "inf,1"], "--spectrum must be finite"),
    (["derive", "linear-transformer", "--dim", "50"], "give --force to run it anyway"),
    (["derive", "deep-linear", "--n-in", "30", "--n-hidden", "30", "--n-out", "30"],
     "1800 parameters"),
    (["derive", "linear-transformer", "--opt", "dim=2"], "--opt is for a user's model"),
    (["derive", "linear-transformer", "--dim", "1", "--reduction", "diagonal"],
     "reduction 'diagonal' is for several heads or layers"),
    (["derive", "linear-transformer", "--dim", "2", "--layers", "2", "--reduction", "odd-last"],
     "reduction 'odd-last' is defined at d = 1"),
    (["verify", "linear-transformer-per-mode"], "cannot be verified against SGD"),
    (["verify", "nope.py:f"], "no such model file"),
    (["verify", "mlp"], "unknown model 'mlp'"),
    (["sweep", "numerics/sweeps/finite_n.toml", "--scheduler", "bogus", "--out", "/tmp/x"],
     None),
])
def test_one_clear_line_and_exit_2(argv, words, capsys, tmp_path):
    if argv[0] == "sweep":
        argv = argv[:-1] + [str(tmp_path / "store")]
        words = "is not a scheduler address"
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith(("symicl: note:", "symicl sweep:"))]
    assert len(err) == 1 and err[0].startswith("symicl: error:") and words in err[0], err


def test_deprecated_spellings_still_work_with_a_note(capsys):
    assert main(["derive", "deep-linear", "--in", "1", "--hidden", "1", "--out", "1"]) == 0
    captured = capsys.readouterr()
    assert "--in is deprecated; use --n-in" in captured.err
    assert '"parameters": [\n    "W1_1_1",\n    "W2_1_1"\n  ]' in captured.out


def test_help_shows_real_defaults_and_models_plain_text(capsys):
    for argv in (["derive", "linear-transformer"], ["verify", "deep-linear"]):
        text = parser(argv[1], argv[0])._subparsers._group_actions[0].choices[argv[0]].format_help()
        assert "(default: None)" not in text and "--dim" in text or "--n-in" in text
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert ":class:" not in out and "``" not in out and "--reduction" in out


def test_committed_configuration_is_read_not_recomputed(capsys):
    assert main(["derive", "linear-transformer", "--dim", "2", "--reduction", "aligned"]) == 0
    err = capsys.readouterr().err
    assert "read from derivations/linear_transformer_aligned" in err
