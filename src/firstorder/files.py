"""Files written atomically: a reader sees the old file or the whole new one, never half of one.

Every result, checkpoint and cache file of the package is written through :func:`atomic`, so an
interrupt (Ctrl-C, a killed job) leaves what was there before and no half-written file. A write
that fails (a full disk, a read-only folder) raises one :class:`OSError` that names the file
and the reason, and the file keeps its last complete contents.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from firstorder.errors import UserValueError


@contextmanager
def atomic(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` "w" for text, "wb" for bytes); when the
    block ends without an error, rename it over ``path``, otherwise remove it.

    Beside, because a rename is atomic only within one file system."""
    if mode not in ("w", "wb"):
        raise UserValueError(f"mode must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    # a name no other writer uses; "x" creates it with the permissions of the umask, as a
    # plain open would (tempfile.mkstemp would make it readable by its owner only)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, mode.replace("w", "x")) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException as err:
        # removing the temporary must not raise a second error over the first (on a read-only
        # or vanished folder it can fail too): the first one is what the user needs to see
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(path, err) from None
        raise


class WriteError(OSError):
    """A file that could not be written: its name, the reason, and that its old contents are
    kept (the temporary file it was written to is gone)."""

    def __init__(self, path: Path, err: OSError):
        reason = err.strerror or str(err)
        keep = "it keeps its previous contents, if any"
        super().__init__(err.errno, f"could not write {str(path)!r}: {reason} ({keep})")
        self.filename = str(path)
        self._cause = (err.errno, reason)

    def __str__(self) -> str:
        return f"{self.strerror}."

    def __reduce__(self) -> tuple:  # pickled whole, as a worker process sends its errors back
        return (type(self), (Path(self.filename), OSError(*self._cause)))


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic`); returns the path."""
    with atomic(path) as fh:
        fh.write(text)
    return Path(path)


def check_writable(path: str | os.PathLike, name: str, *, folder: bool) -> Path:
    """Raise a UserValueError naming the option ``name`` unless ``path`` can be written: a folder
    (``folder=True``) or a file, that is not the other kind, in a folder that exists or can be
    made. Checked by writing a temporary file there, because permission bits do not tell (root
    writes through them, a read-only file system refuses even root); folders made for the
    check are removed again. The command line runs it before any work."""
    kind = "a folder" if folder else "a file name"
    if not os.fspath(path):  # Path("") would be the current folder, which "" does not say
        raise UserValueError(f"{name} must be {kind} this process can write, got ''.")
    path = Path(path)
    where = path if folder else path.parent
    made: list[Path] = []
    try:
        if folder and path.exists() and not path.is_dir():
            raise ValueError("it is a file")
        if not folder and path.is_dir():
            raise ValueError("it is a folder")
        made = [p for p in (where, *where.parents) if not p.exists()]
        above = where.parents[len(made) - 1] if made else where  # the deepest that exists
        if not above.is_dir():
            raise ValueError(f"{str(above)!r} is a file, not a folder")
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UserValueError(
            f"{name} must be {kind} this process can write, got {str(path)!r}: {reason}."
        ) from None
    finally:
        for p in made:  # the deepest first
            with contextlib.suppress(OSError, ValueError):
                p.rmdir()
    return path
