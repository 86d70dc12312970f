"""Writing files whole or not at all (shared by the classifier's save_model and the study)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file in the same folder, then
    rename it over ``path``: readers see the old file or the whole new one, never a part.

    The temporary file has a unique name (``.<name>.<pid>.<random>.tmp``) and is created with
    ``open(..., "xb")``, so it gets the permissions the umask gives any file the user writes.
    On any failure it is removed and the error propagates, carrying the temporary file's name
    as ``temporary_file``.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        err.temporary_file = tmp.name
        raise
