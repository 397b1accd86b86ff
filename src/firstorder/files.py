"""Files written atomically: a reader sees the old file or the whole new one, never half of one.

Every result, checkpoint and cache file of the package is written through :func:`atomic`, so an
interrupt (Ctrl-C, a killed job) leaves what was there before and no half-written file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` "w" for text, "wb" for bytes); when the
    block ends without an error, rename it over ``path``, otherwise remove it.

    Beside, because a rename is atomic only within one file system."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name no other writer uses; "x" creates it with the permissions of the umask, as a
    # plain open would (tempfile.mkstemp would make it readable by its owner only)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x")) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic`); returns the path."""
    with atomic(path) as fh:
        fh.write(text)
    return Path(path)
