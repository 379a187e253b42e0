"""Files that are never half written: atomic writes, strict JSON, folders moved into place complete.

* :func:`atomic_write_bytes` / :func:`atomic_write_json` -- a temporary file, ``fsync``, ``os.replace``;
* :func:`to_json` -- JSON for configs and results (dataclasses, NumPy, paths); NaN and infinity
  become ``null`` so that strict JSON parsers read every file we write;
* :func:`atomic_directory` -- build a folder beside its final place and move it there with a
  ``COMPLETE`` sentinel (Dopamine's idea); :func:`is_complete` checks the sentinel;
* :func:`writable_path` -- a one-line error naming an output path that cannot be written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

COMPLETE_MARKER = "COMPLETE"


def _usual_mode(path: str) -> None:
    """``mkstemp``/``mkdtemp`` create 0600/0700; give files and folders the umask's usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    A crash leaves either the old file or the new one, never a truncated file.

    Raises:
        OSError: the folder cannot be created or written (the message names the path).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types; non-finite floats become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def to_json(value: Any) -> str:
    """Strict JSON text (no NaN or Infinity: they are written as ``null``), indented, keys sorted."""
    return json.dumps(_plain(value), indent=2, sort_keys=True, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, (to_json(value) + "\n").encode())


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing, unreadable or corrupt file is a ``ValueError`` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {path} is unreadable or corrupt ({err})") from None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder (a checkpoint, a saved policy) in a temporary sibling and move it into place.

    The yielded path is the temporary folder: write everything there. On success a ``COMPLETE``
    sentinel is written inside it and it replaces ``path``; on an exception the temporary folder
    is removed and any previous ``path`` is left untouched. Readers call :func:`is_complete`
    before trusting a folder. A folder that was there keeps its permission bits (a folder the user
    made, e.g. read-only, is not given the umask's mode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    _usual_mode(tmp)
    tmp = Path(tmp)
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text(_dt.datetime.now().isoformat() + "\n")
        old = None
        if path.exists():
            if path.is_dir():
                os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder written completely by :func:`atomic_directory`."""
    return (Path(path) / COMPLETE_MARKER).is_file()


def writable_path(path: str | os.PathLike, what: str = "output") -> Path:
    """Check before a long job that ``path`` can be written, without creating anything.

    The nearest folder of ``path`` that exists (``path``'s own folder, or the one its missing
    folders will be made in) must be a folder in which a file can be created; it is probed with a
    temporary file that is removed at once. Nothing is left behind, so a command that fails later
    for another reason has written nothing.

    Raises:
        ValueError: one line naming the path and the reason.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write the {what} {path}: it is a folder")
    existing = path.parent
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write the {what} {path}: {existing} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write the {what} {path}: {existing}: {err.strerror or err}") from None
    return path


def exit_unless_writable(parser, path: str | os.PathLike | None, what: str = "result file (--json)") -> None:
    """For a script's ``argparse`` parser: exit 2 with one ``PROG: error: ...`` line when ``path`` (if
    given) cannot be written (:func:`writable_path`). Call it before the long work, not after."""
    if not path:
        return
    try:
        writable_path(path, what)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def code_version(path: str | os.PathLike | None = None) -> dict | None:
    """The git commit of the code at ``path`` (default: this package's checkout) and whether files
    differ from it: ``{"commit": sha, "dirty": bool}``; None outside a git checkout (a pip install).

    ``result.json`` records it, so a number says which code made it (a frozen recipe is a commit).
    """
    import subprocess

    where = Path(path) if path is not None else Path(__file__).resolve().parent.parent
    if not (where / ".git").exists():  # e.g. site-packages inside some other project's repository
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}
