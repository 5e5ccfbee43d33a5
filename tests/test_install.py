"""Installing symicl as the README says leaves a working ``symicl`` and nothing in the package.

The README sequence ``pip install . && symicl verify linear-transformer --quick && pip
install -e . && symicl --help`` once ended in ImportError: Numba's cache wrote .nbi/.nbc
files into site-packages/symicl, ``pip`` left them when it replaced the install, and the
leftover folder (no __init__.py) became a namespace package hiding the editable install.

The test runs the sequence in a fresh virtual environment on a copy of the working tree.
The dependencies (NumPy, SymPy, Numba, ...) are not reinstalled: a .pth line puts this
environment's site-packages after the new one's (its .pth files, such as this checkout's
own editable install, are not run), and pip installs symicl alone (--no-deps), built with
the setuptools already here where it can build wheels (--no-build-isolation).  HOME is a
temporary folder, so "the user cache" is one this test can look into.  It takes 30-60 s,
so the default suite skips it; .ci/run runs it (SYMICL_INSTALL_TEST=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from symicl.files import file_mode

REPO = Path(__file__).resolve().parents[1]


def _copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked, not ignored, files (like a fresh clone)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _build_isolation() -> list[str]:
    """Build with the setuptools already here when it can make wheels (it saves pip from
    installing setuptools twice into throwaway build environments); else pip's default."""
    import importlib.util

    import setuptools

    version = tuple(int(x) for x in setuptools.__version__.split(".")[:2] if x.isdigit())
    if importlib.util.find_spec("wheel") or version >= (70, 1):
        return ["--no-build-isolation", "--no-index"]
    return []


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SYMICL_INSTALL_TEST") != "1",
                    reason="30-60 s: run by .ci/run, or with SYMICL_INSTALL_TEST=1")
def test_readme_install_sequence_leaves_a_working_command(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout")
    pytest.importorskip("setuptools")
    src, venv, home = tmp_path / "src", tmp_path / "venv", tmp_path / "home"
    _copy_tree(src)
    (src / "symicl-verify").mkdir()                  # an earlier run's output in the tree
    (src / "symicl-verify" / "report.json").write_text("{}\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "_deps_of_the_test_env.pth").write_text(
        "\n".join(dict.fromkeys([sysconfig.get_paths()["purelib"],
                                 sysconfig.get_paths()["platlib"]])) + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SYMICL_CACHE", "NUMBA_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")

    def sh(*args, ok=True):
        done = subprocess.run(list(map(str, args)), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        if ok:
            assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done

    pip = [py, "-m", "pip", "install", "-q", "--no-deps", *_build_isolation()]
    sh(*pip, src)
    package = site / "symicl"
    assert (package / "__init__.py").exists()
    record = next(site.glob("symicl-*.dist-info")) / "RECORD"
    tops = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    assert {t for t in tops if not t.endswith(".dist-info") and t != ".."} == {"symicl"}

    out = tmp_path / "verify"
    sh(venv / "bin" / "symicl", "verify", "linear-transformer", "--quick", "--no-plots",
       "--out", out)
    assert (out / "report.json").stat().st_mode & 0o777 == file_mode()
    written = sorted(p.relative_to(package) for p in package.rglob("*.nb[ic]"))
    assert written == [], f"Numba cache files in the installed package: {written}"
    assert list((home / ".cache" / "symicl" / "numba").rglob("*.nbi")), "no Numba cache used"

    sh(*pip, "-e", src)
    assert not package.exists(), "the replaced install left site-packages/symicl behind"
    helped = sh(venv / "bin" / "symicl", "--help")
    assert "usage: symicl" in helped.stdout
    where = sh(py, "-c", "import symicl; print(symicl.__file__, symicl.__version__)").stdout
    assert where.startswith(str(src / "symicl" / "__init__.py"))


def test_files_are_written_with_the_users_umask(tmp_path):
    """Reports, derivations and sweep records get 0666 less the umask, not mkstemp's 0600."""
    from symicl.files import umask, write_atomic
    from symicl.sweep.store import write_record

    old = os.umask(0o027)
    try:
        assert umask() == 0o027 and file_mode() == 0o640
        write_atomic(tmp_path / "a" / "report.json", "{}\n")
        write_record(tmp_path / "store", {"point": "p1", "status": "ok"})
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "report.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "store" / "points" / "p1.parquet").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "p1.parquet", "points",
                                                           "report.json", "store"]


def test_numba_cache_goes_to_the_user_cache(tmp_path):
    """Set before Numba is imported, unless the user chose a folder (fresh interpreters)."""
    code = "import symicl, numba; print(numba.config.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "SYMICL_CACHE")}
    for extra, want in (({"SYMICL_CACHE": str(tmp_path / "c")}, str(tmp_path / "c" / "numba")),
                        ({"HOME": str(tmp_path)}, str(tmp_path / ".cache" / "symicl" / "numba")),
                        ({"NUMBA_CACHE_DIR": str(tmp_path / "mine")}, str(tmp_path / "mine"))):
        orders = (code, code.replace("symicl, numba", "numba, symicl")) if "HOME" in extra \
            else (code,)                       # Numba imported first: its config is set then
        for order in orders:
            got = subprocess.run([sys.executable, "-c", order], env={**env, **extra},
                                 capture_output=True, text=True, check=True).stdout.strip()
            assert got == want, (extra, order)
