"""Every ```python example of README.md and of the non-executed docs pages runs as written.

Blocks of one file run in order in one shared namespace (a later block may use
what an earlier one defined), in a temporary working directory.  A block whose
fence is preceded by the line ``<!-- no-test -->`` is skipped (for examples
needing an optional dependency).  The executed tutorial pages (front matter
``file_format: mystnb``) are run by the documentation build instead, and the
pages that docs/conf.py generates are not examples.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = ("_build", "derivations", "studies", "jupyter_execute", "reference/api")
NO_TEST = "<!-- no-test -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


@dataclass
class Block:
    path: Path
    line: int           # 1-based line of the opening fence
    code: str
    skipped: bool


def python_blocks(path: Path) -> list[Block]:
    """The fenced ```python blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence)
                                      and lines[j].strip().strip(fence[0]) == ""):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path}:{i + 1}: unclosed code fence")
        if info.split()[:1] == ["python"]:
            prev = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            code = textwrap.dedent("\n".join(lines[i + 1:j]))
            blocks.append(Block(path, i + 1, code, prev == NO_TEST))
        i = j + 1
    return blocks


def is_executed_page(path: Path) -> bool:
    """A myst-nb text notebook (its code cells run during the docs build)."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return False
    front = text[4:text.find("\n---", 4)]
    return bool(re.search(r"^file_format:\s*mystnb\s*$", front, re.M))


def example_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for path in sorted(DOCS.rglob("*.md")):
        rel = path.relative_to(DOCS).as_posix()
        if any(rel == g or rel.startswith(g + "/") for g in GENERATED):
            continue
        if not is_executed_page(path):
            files.append(path)
    return files


FILES = [p for p in example_files() if python_blocks(p)]


def test_the_readme_and_the_docs_have_examples():
    readme = python_blocks(ROOT / "README.md")
    assert len(readme) >= 3 and not any(b.skipped for b in readme)
    assert any(p.parent == DOCS for p in FILES), "no docs page with a python example"


def test_block_extraction_keeps_order_and_the_skip_marker(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\na = 1\n```\n\n<!-- no-test -->\n\n```python\nimport torch\n"
                    "```\n\n````md\n```python\nnot = code\n```\n````\n\n```bash\nls\n```\n\n"
                    "  ```python\n  b = a + 1\n  ```\n")
    blocks = python_blocks(page)
    assert [b.code for b in blocks] == ["a = 1", "import torch", "b = a + 1"]
    assert [b.skipped for b in blocks] == [False, True, False]
    assert [b.line for b in blocks] == [3, 9, 23]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run_as_written(path, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYMICL_CACHE", str(tmp_path / "kernels"))
    namespace: dict = {"__name__": "__example__"}
    ran = 0
    for block in python_blocks(path):
        if block.skipped:
            continue
        where = f"{path.relative_to(ROOT)}:{block.line}"
        try:
            exec(compile(block.code, where, "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the block that failed
            raise AssertionError(f"the example at {where} fails: {type(exc).__name__}: {exc}") \
                from exc
        ran += 1
    assert ran > 0
