"""Safe file output: whole files or nothing, with the user's permissions.

A file is written to a hidden temporary name beside its target
(``.symicl-*.tmp``) and renamed into place, so a reader sees the old file or
the new one, never half of one.  ``tempfile.mkstemp`` creates files with
mode 0600; before the rename the file gets the mode a plain ``open`` would
give it, 0666 less the umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TMP_PREFIX", "TMP_SUFFIX", "atomic_path", "file_mode", "umask", "write_atomic"]

TMP_PREFIX, TMP_SUFFIX = ".symicl-", ".tmp"


def umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask."""
    return 0o666 & ~umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path to write; on success it gets the user's mode and replaces ``path``.

    On any failure the temporary file is removed and ``path`` is untouched.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX, suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` in one step (no half-written file on failure)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
