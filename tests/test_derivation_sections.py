"""The analysis sections of the committed derivations (fixed points, timescales,
closed forms) against values worked out independently.

Independent values: at d = 1 the aligned model learns a = N / ((N + 2) s)
(math-spec 1.1); the paper's per-mode stable gain is 1 / s_inf with
s_inf = ((N + 1) s_a + sum_b s_b) / N; at N = 8, s = (2, 1/2) the exact
coupled flow's stable gains solve the 2 x 2 system of the exact loss by hand:
38/99 and 128/99.  Growth rates at the origin are s_a^2 (transformer) and the
teacher's singular values (deep-linear, Saxe et al.).
"""

import json

import pytest
import sympy as sp

from symicl.derivations import CONFIGS, render

N, s1, s2 = sp.symbols("N s_1 s_2", positive=True)


def data(folder: str) -> dict:
    return json.loads(render(folder)["derivation.json"])


def same(text: str, expr) -> bool:
    got = sp.sympify(text, locals={"N": N, "s_1": s1, "s_2": s2})
    return sp.simplify(got - expr) == 0


def test_every_configuration_has_the_analysis_keys():
    for c in CONFIGS:
        d = data(c.folder)
        for key in ("conserved", "fixed_points", "timescales"):
            assert key in d, (c.folder, key)
        readme = render(c.folder)["README.md"]
        assert "## Fixed points" in readme and "## Timescales" in readme


def test_aligned_d1_stable_point_is_n_over_n_plus_2_s():
    fp = data("linear_transformer_aligned_d1")["fixed_points"]
    kinds = [pt["stability"]["kind"] for pt in fp["symbolic"]]
    assert kinds == ["saddle", "stable"]
    assert same(fp["stable_gains"][0], N / ((N + 2) * s1))
    ts = data("linear_transformer_aligned_d1")["timescales"]
    assert same(ts["symbolic_growth_rates"]["mode 1 (+)"], s1 ** 2)


def test_aligned_d2_exact_gains_differ_from_the_per_mode_flow():
    d = data("linear_transformer_aligned")
    ex = d["fixed_points"]["example"]
    assert ex["constants"] == {"N": "8", "s_1": "2", "s_2": "1/2"}
    kinds = sorted(pt["stability"]["kind"] for pt in ex["points"])
    assert kinds == ["saddle", "saddle", "saddle", "stable", "stable"]
    assert [sp.Rational(g) for g in ex["per_mode_gains"]] == [sp.Rational(16, 41),
                                                              sp.Rational(8, 7)]
    s_inf = [((8 + 1) * s + sp.Rational(5, 2)) / 8 for s in (2, sp.Rational(1, 2))]
    assert [1 / v for v in s_inf] == [sp.Rational(16, 41), sp.Rational(8, 7)]
    learned = ex["learned"]
    for maps in learned.values():
        assert maps["P22*Q11"] == [["38/99", "0"], ["0", "128/99"]]
    # symbolic gains, evaluated at the example, give the same numbers
    g = [sp.sympify(x, locals={"N": N, "s_1": s1, "s_2": s2}) for x in
         d["fixed_points"]["stable_gains"]]
    at = {N: 8, s1: 2, s2: sp.Rational(1, 2)}
    assert [sp.nsimplify(sp.N(x.xreplace(at), 40)) for x in g] == [sp.Rational(38, 99),
                                                                   sp.Rational(128, 99)]
    ts = d["timescales"]
    assert same(ts["symbolic_growth_rates"]["mode 1 (+)"], s1 ** 2)
    assert ts["example"]["order"] == ["mode 1 (+)", "mode 2 (+)"]


def test_per_mode_symbolic_gains_are_one_over_s_inf():
    fp = data("linear_transformer_per_mode")["fixed_points"]
    s_inf = [((N + 1) * s1 + s1 + s2) / N, ((N + 1) * s2 + s1 + s2) / N]
    assert all(same(g, 1 / v) for g, v in zip(fp["stable_gains"], s_inf))


def test_deep_linear_rates_order_and_saxe_modes():
    d = data("deep_linear")
    ts = d["timescales"]["example"]
    assert ts["growth_rates"] == {"eigenvalue 1": "1", "eigenvalue 3": "3"}
    assert ts["order"] == ["eigenvalue 3", "eigenvalue 1"]
    T11, a0, t = sp.symbols("T_1_1 a0 t")
    sol = sp.sympify(d["closed_forms"][0]["solution"], locals={"T_1_1": T11, "a0": a0, "t": t})
    saxe = T11 * sp.exp(2 * T11 * t) / (sp.exp(2 * T11 * t) - 1 + T11 / a0)  # Saxe et al. 2014
    assert sp.simplify(sol - saxe) == 0
    assert "F_lambda" in d["riccati"]


def test_full_d2_says_why_fixed_points_are_not_computed():
    fp = data("linear_transformer_full_d2")["fixed_points"]
    assert "max_variables" in fp["not_computed"]


@pytest.mark.parametrize("folder", ["linear_transformer_aligned", "deep_linear"])
def test_equations_tex_has_the_analysis_blocks(folder):
    tex = render(folder)["equations.tex"]
    assert tex.count("\\begin{align}") == tex.count("\\end{align}")
    assert "% fixed points at" in tex and "% timescales at" in tex
    assert "\\text{eigenvalue" not in tex


def test_every_equations_tex_compiles_with_pdflatex(tmp_path):
    import shutil
    import subprocess

    from symicl.export.latex import document

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    for c in CONFIGS:
        tex = tmp_path / f"{c.folder}.tex"
        tex.write_text(document(render(c.folder)["equations.tex"]))
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (c.folder, run.stdout[-1500:])
