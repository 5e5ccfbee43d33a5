"""The ring paths of conservation_laws and kernels() against the expression paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symicl.codegen  # noqa: F401
import symicl.models
from symicl.analysis import conservation
from symicl.analysis.conservation import conservation_laws

sys.path.insert(0, str(Path(__file__).parent / "user_models"))
import models as user_models  # noqa: E402

kmod = sys.modules["symicl.codegen.kernels"]

MODELS = {
    "separate-kqv": user_models.separate_kqv,
    "diagonal": user_models.diagonal_network,
    "transformer-d1": lambda: symicl.models.build("linear-transformer", dim=1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_conservation_ring_path_equals_expression_path(name, monkeypatch):
    model = MODELS[name]()
    new = conservation_laws(model)
    monkeypatch.setenv("SYMICL_ANALYSIS_PATH", "old")
    old = conservation_laws(model)
    assert [x.to_dict() for x in new.laws] == [x.to_dict() for x in old.laws]
    assert new.inert == old.inert and new.degree == old.degree


def test_certificate_rejects_a_wrong_law():
    model = user_models.separate_kqv()
    active = [p for p in model.parameters if model._gradient[p]]
    fr = conservation._FlowRing(model, active)
    polys = [fr.directional_poly((0, 0))]
    import sympy as sp
    with pytest.raises(ArithmeticError):
        conservation._certify(fr, polys, [sp.QQ(1)])


@pytest.mark.parametrize("name", ["separate-kqv", "transformer-d1"])
def test_kernels_ring_path_same_source_and_values(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMICL_CACHE", str(tmp_path / "new"))
    new = kmod._kernels(MODELS[name](), "numpy")
    monkeypatch.setenv("SYMICL_CACHE", str(tmp_path / "expr"))
    expr = kmod._kernels_expr(MODELS[name](), "numpy")
    assert new.path.read_text() == expr.path.read_text()    # the same module, built faster
    monkeypatch.setenv("SYMICL_CACHE", str(tmp_path / "old"))
    monkeypatch.setenv("SYMICL_ANALYSIS_PATH", "old")
    old = kmod._kernels(MODELS[name](), "numpy")
    rng = np.random.default_rng(3)
    theta = rng.normal(size=len(new.parameters))
    c = rng.uniform(1.5, 3.0, size=len(new.constants))
    for f in ("loss", "flow", "jacobian"):
        np.testing.assert_allclose(getattr(new, f)(theta, c), getattr(old, f)(theta, c),
                                   rtol=1e-12, atol=1e-12)


_CHILD = """
import sys, os
sys.path.insert(0, {user!r})
import models, symicl.codegen
k = sys.modules["symicl.codegen.kernels"]._kernels(models.separate_kqv(), "numpy")
print(k.path.name)
sys.stdout.write(k.path.read_text())
"""


def test_kernel_key_and_source_deterministic_across_hash_seeds(tmp_path):
    outs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "SYMICL_CACHE": str(tmp_path / seed)}
        env.pop("SYMICL_ANALYSIS_PATH", None)
        code = _CHILD.format(user=str(Path(__file__).parent / "user_models"))
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0] == outs[1]
