"""Writing files so that an interrupted command leaves either the old or the new bytes."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WorkWouldBeLost

# What a file is called while it is being written; sync removes leftovers and the manifest never lists them.
TEMP_SUFFIX = ".buildsys-tmp"


def write_atomically(path: Path, content: bytes, mode: str = "100644") -> None:
    """Replace `path` in one rename, so a reader or a kill never sees half a file. A refusal of the file
    system names `path` itself: a full disk fails in write(), which names no file."""
    try:
        _write(path, content, mode)
    except OSError as error:
        if error.filename is None or str(error.filename).endswith(TEMP_SUFFIX):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise


def _write(path: Path, content: bytes, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise WorkWouldBeLost(f"{path} is a folder where a file belongs", hint="move it away and re-run")
    temporary = path.with_name(path.name + TEMP_SUFFIX)
    if temporary.exists() or temporary.is_symlink():
        temporary.unlink()
    try:
        if mode == "120000":
            os.symlink(os.fsdecode(content), temporary)
        else:
            temporary.write_bytes(content)
            os.chmod(temporary, 0o755 if mode == "100755" else 0o644)
    except OSError:
        temporary.unlink(missing_ok=True)  # a half-written temporary on a full disk only takes more room
        raise
    os.replace(temporary, path)
