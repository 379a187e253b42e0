"""Checkpoints that never lose work: one module for every trainer that checkpoints.

A run keeps its checkpoints in ``run_dir/checkpoints/ckpt-NNNNNN/`` (``NNNNNN``: a step or episode
counter). Each folder is

* written atomically (built beside its place, moved in complete: :func:`keras_impl.files.atomic_directory`)
  with a ``COMPLETE`` sentinel (Dopamine);
* described by ``manifest.json``, the SHA-256 of every file in it, checked before a restore;
* one of the last ``keep`` (older ones are deleted after a successful save).

:meth:`CheckpointManager.latest` returns the newest checkpoint that verifies; a newer corrupt one
is reported, kept on disk for inspection, and skipped. Pruning never deletes the checkpoint just
saved (the newest verified one) and never a checkpoint newer than it or one ``latest`` refused:
those are kept for inspection. When a resumed run saves at the very step of a refused checkpoint,
the refused folder is first renamed ``ckpt-NNNNNN.corrupt`` (kept, no longer a checkpoint). When none is usable the error names the
folder and the file that failed. :func:`save_on_interrupt` saves on Ctrl-C (SIGINT) and prints the
command that resumes the run.

What goes inside a folder is the trainer's business (``write(folder)``): Keras weights and NumPy
arrays for the hand-written DQN, a ``tf.train.Checkpoint`` of TF-Agents objects for ``tfa-dqn``.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> manager = CheckpointManager(root / "checkpoints", keep=2, log=lambda line: None)
    >>> for step in (10, 20, 30):
    ...     _ = manager.save(step, lambda folder: (folder / "w.txt").write_text(str(step)))
    >>> [p.name for p in manager.checkpoints()]
    ['ckpt-000030', 'ckpt-000020']
    >>> (manager.latest() / "w.txt").read_text()
    '30'
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import signal
import threading
from pathlib import Path
from typing import Callable, Iterator

from keras_impl.files import COMPLETE_MARKER, atomic_directory, is_complete

MANIFEST = "manifest.json"
_PATTERN = re.compile(r"^ckpt-(\d{6,})$")


class CorruptCheckpointError(ValueError):
    """A checkpoint folder that is incomplete or whose files do not match their checksums."""


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in 4 MiB chunks (replay buffers can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, exclude: tuple[str, ...] = ()) -> None:
    """``manifest.json``: the SHA-256 of every file under ``folder`` (relative paths), but ``exclude``."""
    skip = {MANIFEST, COMPLETE_MARKER, *exclude}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in skip)
    digests = {p.relative_to(folder).as_posix(): sha256(p) for p in files}
    (folder / MANIFEST).write_text(json.dumps(digests, indent=2) + "\n")


def verify_manifest(path: str | Path, what: str = "checkpoint") -> None:
    """Check every file listed in ``path/manifest.json`` against its SHA-256.

    Raises:
        CorruptCheckpointError: naming the folder and the file that failed.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"expected an object, got {type(manifest).__name__}")
    except (OSError, ValueError) as err:
        raise CorruptCheckpointError(f"{what} {path} is corrupt: unreadable {MANIFEST} ({err})") from None
    for name, digest in manifest.items():
        file = path / name
        if not file.is_file():
            raise CorruptCheckpointError(f"{what} {path} is corrupt: {file} is missing")
        if sha256(file) != digest:
            raise CorruptCheckpointError(f"{what} {path} is corrupt: {file} does not match its SHA-256 "
                                         f"in {MANIFEST} (truncated or modified)")


def verify(path: str | Path) -> None:
    """Check a checkpoint: the ``COMPLETE`` sentinel, then every file's SHA-256.

    Raises:
        CorruptCheckpointError: naming the folder and the file that failed.
    """
    path = Path(path)
    if not is_complete(path):
        raise CorruptCheckpointError(f"checkpoint {path} is incomplete (no {COMPLETE_MARKER} sentinel: "
                                     f"the save was interrupted)")
    verify_manifest(path)


class CheckpointManager:
    """The ``ckpt-NNNNNN`` folders of one run.

    Args:
        directory: the run's ``checkpoints/`` folder.
        keep: how many recent checkpoints to keep (2: a corrupt newest one still leaves one).
        log: where messages about refused checkpoints go.
    """

    def __init__(self, directory: str | Path, keep: int = 2, log: Callable[[str], None] = print):
        if keep < 1:
            raise ValueError(f"Received an invalid value for argument `keep`: expected >= 1, got {keep!r}")
        self.directory = Path(directory)
        self.keep = int(keep)
        self.log = log
        self.refused: list[Path] = []  # corrupt checkpoints latest() fell back past: kept for inspection

    def checkpoints(self) -> list[Path]:
        """Checkpoint folders, newest first (complete or not)."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.is_dir() and _PATTERN.match(p.name)]
        return sorted(found, key=lambda p: int(_PATTERN.match(p.name).group(1)), reverse=True)

    def save(self, step: int, write: Callable[[Path], None]) -> Path:
        """``write(folder)`` into a new ``ckpt-{step}`` atomically, add the manifest, prune old ones."""
        path = self.directory / f"ckpt-{int(step):06d}"
        if path in self.refused and path.exists():  # do not overwrite what latest() reported as corrupt
            aside = _free_name(path.with_name(f"{path.name}.corrupt"))
            path.rename(aside)
            self.refused = [aside if p == path else p for p in self.refused]
            self.log(f"kept the corrupt {path.name} for inspection as {aside}")
        with atomic_directory(path) as tmp:
            write(tmp)
            write_manifest(tmp)
        for old in self.prunable(path)[self.keep - 1:]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def prunable(self, saved: Path) -> list[Path]:
        """Checkpoints older than ``saved`` (just written: the newest verified one) that latest() did
        not refuse, newest first. Newer ones exist only after a fallback past them: kept."""
        number = _number(saved)
        return [p for p in self.checkpoints() if _number(p) < number and p not in self.refused]

    def latest(self) -> Path:
        """The newest checkpoint that verifies; newer corrupt ones are reported and skipped.

        Raises:
            FileNotFoundError: there is no checkpoint at all (naming the folder).
            CorruptCheckpointError: none verifies (the message gives each one's fault).
        """
        candidates = self.checkpoints()
        if not candidates:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        problems = []
        for path in candidates:
            try:
                verify(path)
            except CorruptCheckpointError as err:
                problems.append(str(err))
                self.log(f"refusing {err}; trying the previous checkpoint (this one is kept for inspection)")
                if path not in self.refused:
                    self.refused.append(path)
                continue
            return path
        raise CorruptCheckpointError("no usable checkpoint: " + "; ".join(problems))


def _number(path: Path) -> int:
    return int(_PATTERN.match(path.name).group(1))


def _free_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


@contextlib.contextmanager
def save_on_interrupt(save: Callable[[], Path], resume_command: str,
                      log: Callable[[str], None] = print) -> Iterator[None]:
    """On Ctrl-C (``KeyboardInterrupt``) or SIGTERM inside the block: ``save()``, say how to resume, re-raise.

    Long runs get killed (a batch system's time limit, a closed session) with SIGTERM: inside the
    block it is turned into ``KeyboardInterrupt`` (main thread only; the previous handler is put back
    after the block), so a killed run leaves a checkpoint as Ctrl-C does.
    """
    def terminated(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main else None
    try:
        yield
    except KeyboardInterrupt:
        path = save()
        log(f"interrupted: checkpoint {path} saved; continue with `{resume_command}`")
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
