"""Open pages of the built documentation in headless Chromium: screenshots and a maths check.

    python docs/screenshot.py [--site docs/_build/html] [--out DIR] [PAGE.html ...]

Default pages: the front page and one derivation page.  For each page it
writes ``<page>.png`` (what a reader sees, after MathJax has run) and checks
in the rendered DOM that MathJax typeset the page's equations (pages with
maths must contain ``mjx-container`` elements and no MathJax error).  Exits 1
naming any page that failed.  Needs Chromium (Debian: ``apt-get install -y
chromium``); ``CHROMIUM`` names another binary.  No network is used: the
site's MathJax is the copy under ``_static/mathjax``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
DEFAULT_PAGES = ("index.html", "derivations/deep_linear.html")
BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")


class ScreenshotError(RuntimeError):
    """A page could not be rendered, or rendered without its maths."""


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM, else the first of chromium, chromium-browser, ... on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((shutil.which(b) for b in BINARIES if shutil.which(b)), None)


def _chromium(binary: str, args: list[str], profile: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--disable-background-networking",
           f"--user-data-dir={profile}", "--allow-file-access-from-files",
           "--virtual-time-budget=8000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def render(page: Path, png: Path, binary: str, width: int = 1280, height: int = 1600,
           timeout: float = 90.0) -> dict:
    """Screenshot ``page`` to ``png`` and report how its maths rendered.

    Returns ``{"png", "math_sources", "mathjax_rendered", "mathjax_errors"}``;
    raises :class:`ScreenshotError` when Chromium fails or writes no image.
    """
    if not page.is_file():
        raise ScreenshotError(f"{page}: no such page; build the docs first "
                              "(python -m sphinx -b html docs docs/_build/html)")
    url = page.resolve().as_uri()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        shot = _chromium(binary, [f"--window-size={width},{height}", f"--screenshot={png}", url],
                         profile, timeout)
        if shot.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
            raise ScreenshotError(f"{page.name}: chromium wrote no screenshot "
                                  f"(exit {shot.returncode}): {shot.stderr.strip()[-500:]}")
        dom = _chromium(binary, ["--dump-dom", url], profile, timeout)
    if dom.returncode != 0:
        raise ScreenshotError(f"{page.name}: chromium could not dump the DOM: "
                              f"{dom.stderr.strip()[-500:]}")
    source = page.read_text(encoding="utf-8")
    html = dom.stdout
    return {
        "png": str(png),
        "math_sources": source.count('class="math') + source.count("\\(") + source.count("\\["),
        "mathjax_rendered": html.count("<mjx-container"),
        "mathjax_errors": html.count("<mjx-merror") + html.count('data-mjx-error'),
    }


def check(site: Path, out: Path, pages=DEFAULT_PAGES, binary: str | None = None) -> list[dict]:
    """Render each page; raise ScreenshotError naming the pages whose maths did not render."""
    binary = binary or find_chromium()
    if binary is None:
        raise ScreenshotError("no Chromium found (apt-get install -y chromium, or set CHROMIUM)")
    results, problems = [], []
    for name in pages:
        r = render(site / name, out / (name.replace("/", "__").removesuffix(".html") + ".png"),
                   binary)
        r["page"] = name
        results.append(r)
        if r["math_sources"] and not r["mathjax_rendered"]:
            problems.append(f"{name}: {r['math_sources']} maths sources but MathJax rendered none")
        if r["mathjax_errors"]:
            problems.append(f"{name}: {r['mathjax_errors']} MathJax errors")
    if problems:
        raise ScreenshotError("; ".join(problems))
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES),
                    help="pages relative to --site (default: %(default)s)")
    ap.add_argument("--site", default=str(DOCS / "_build" / "html"), help="the built site")
    ap.add_argument("--out", default=str(DOCS / "_build" / "screenshots"),
                    help="folder for the PNGs")
    args = ap.parse_args(argv)
    try:
        results = check(Path(args.site), Path(args.out), args.pages)
    except ScreenshotError as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r['page']}: {r['png']} (maths: {r['mathjax_rendered']} rendered by MathJax, "
              f"{r['mathjax_errors']} errors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
