"""The built documentation opens in a browser: headless Chromium renders pages and their maths.

Uses the site in docs/_build/html (build it first:
``python -m sphinx -W --keep-going -b html docs docs/_build/html``); skipped
when there is no built site or no Chromium.  CI runs the same check through
``python docs/screenshot.py`` right after building the site.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "_build" / "html"


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("docs_screenshot", ROOT / "docs" / "screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_page_is_named(tmp_path):
    shot = _screenshot_module()
    with pytest.raises(shot.ScreenshotError, match="no such page; build the docs first"):
        shot.render(tmp_path / "index.html", tmp_path / "index.png", binary="chromium")


def test_front_page_and_a_derivation_render_with_their_maths(tmp_path):
    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("no Chromium (apt-get install -y chromium)")
    if not (SITE / "derivations" / "deep_linear.html").is_file():
        pytest.skip("no built site in docs/_build/html")
    matplotlib = pytest.importorskip("matplotlib.image")
    results = shot.check(SITE, tmp_path)
    assert [r["page"] for r in results] == list(shot.DEFAULT_PAGES)
    for r in results:
        image = matplotlib.imread(r["png"])
        assert image.shape[0] >= 1000 and image.shape[1] >= 1000
        assert image[..., :3].std() > 0.05, f"{r['page']}: a blank screenshot"
        assert r["mathjax_errors"] == 0
    derivation = results[1]
    assert derivation["mathjax_rendered"] >= 10      # loss, flow, laws, fixed points ...
