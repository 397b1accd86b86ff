"""Files written atomically: a reader sees the old file or the whole new one, never half of one.

Every result, checkpoint and cache file of the package is written through :func:`atomic`, so an
interrupt (Ctrl-C, a killed job) leaves what was there before and no half-written file. A write
that fails (a full disk, a read-only folder) raises one :class:`OSError` that names the file
and the reason, and the file keeps its last complete contents.

Every JSON the package writes (results.json, a training history, ``run --json``, a saved
table of trajectories, the playground's answers) goes through :func:`to_json`: strict JSON, in
which a non-finite number (a diverged run's loss, a ratio over zero) is ``null``.
:func:`from_json` reads what the package wrote before that, too.
"""

from __future__ import annotations

import contextlib
import json
import math
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


# --- JSON: one treatment of non-finite numbers -------------------------------------------------

# what results.json held for a non-finite number before null: read back as null
_OLD_NON_FINITE = frozenset({"inf", "-inf", "nan", "Infinity", "-Infinity", "NaN"})


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (nan, ±inf) as None, recursively through dicts,
    lists and tuples; numpy scalars, 0-d arrays and 0-d tensors as Python numbers first, and
    larger arrays and tensors as nested lists. Anything else is returned as it is.

    None, because JSON has no NaN or Infinity: ``json.dumps`` writes them bare, and strict
    readers (a browser's ``JSON.parse``, jq, most languages' parsers) refuse the whole file.
    A string "inf" instead would make a number field sometimes a string.
    """
    if isinstance(obj, float):  # float first: the common case, and bool/int are never non-finite
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy or torch: scalar or array
        return json_safe(obj.tolist())
    return obj


def to_json(obj: Any, **kw: Any) -> str:
    """``obj`` as strict JSON text: non-finite numbers as null (:func:`json_safe`); ``kw`` goes
    to :func:`json.dumps` (``indent``, ``separators``, ``ensure_ascii``).

    Tried as it is first: walking a long list of finite numbers costs more than writing it."""
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except (ValueError, TypeError):  # a non-finite float, or a numpy or torch number
        return json.dumps(json_safe(obj), allow_nan=False, **kw)


def from_json(text: str | bytes) -> Any:
    """Parse JSON that firstorder wrote, this version or an earlier one: the bare NaN and
    Infinity of old ``run --json`` output and saved trajectories, and the strings "inf",
    "-inf", "nan" of old results.json, are read as None, as :func:`to_json` writes them now."""
    return old_non_finite_as_null(json.loads(text, parse_constant=lambda word: None))


def old_non_finite_as_null(obj: Any) -> Any:
    """``obj`` with the strings earlier versions wrote for non-finite numbers ("inf", "-inf",
    "nan") as None, recursively through dicts and lists; other strings stay."""
    if isinstance(obj, str):
        return None if obj in _OLD_NON_FINITE else obj
    if isinstance(obj, dict):
        return {k: old_non_finite_as_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [old_non_finite_as_null(v) for v in obj]
    return obj
