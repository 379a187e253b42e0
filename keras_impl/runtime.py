"""Shared GPU-aware training utilities used by ``keras_impl`` and ``agents``.

One module for the things every exercise needs:

* :func:`device_summary` -- a one-line description of TensorFlow, Keras and the devices.
* :func:`enable_memory_growth` -- let TensorFlow grow GPU memory instead of taking it all.
* :func:`strategy` -- a ``tf.distribute`` strategy by name (auto, cpu, gpu, mirrored, multi-worker).
* :func:`seed_everything` -- seed Python, NumPy, TensorFlow and Keras in one call.
* :func:`set_mixed_precision` -- switch Keras' global dtype policy.
* :func:`make_run_dir` / :func:`summary_writers` -- ``runs/{exercise}__{seed}__{timestamp}/`` with
  ``config.json``, TensorBoard ``train/`` and ``eval/`` logs and ``checkpoints/``.
* :func:`atomic_write_bytes`, :func:`atomic_write_json`, :func:`atomic_directory` -- write files
  and checkpoint folders so that a crash never leaves a half-written one behind.
* :func:`progress` and :class:`Timer`.

Works on a CPU-only machine and on one or more GPUs. TensorFlow is imported lazily so that
``import keras_impl.runtime`` stays cheap and never binds ``tf.keras`` before
``TF_USE_LEGACY_KERAS`` is set.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

STRATEGY_KINDS = ("auto", "cpu", "gpu", "mirrored", "multi-worker")

# ----------------------------------------------------------------------------------------------
# Keras 2 / Keras 3 coexistence
# ----------------------------------------------------------------------------------------------

LEGACY_KERAS_HELP = (
    "TF-Agents needs Keras 2 (the tf-keras package) but tf.keras is bound to Keras 3 in this "
    "process: TensorFlow (and its tf.keras) was used before TF_USE_LEGACY_KERAS=1 was set.\n"
    "Fix: set the variable before TensorFlow is first imported, e.g.\n"
    "    export TF_USE_LEGACY_KERAS=1            # in the shell, or\n"
    "    import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'   # first line of the script/notebook\n"
    "or import `agents` / `keras_impl` before `tensorflow`. In a notebook, restart the kernel "
    "after changing it."
)


class LegacyKerasError(RuntimeError):
    """Raised when TF-Agents code runs in a process where ``tf.keras`` is Keras 3.

    TensorFlow binds ``tf.keras`` lazily, on first use, reading ``TF_USE_LEGACY_KERAS`` then; once
    bound (e.g. by ``from tensorflow import keras``) it cannot change in that process.
    """


def tf_keras_is_legacy() -> bool:
    """True when ``tf.keras`` resolves to Keras 2 (``tf_keras``), as TF-Agents requires."""
    import tensorflow as tf

    module = getattr(tf.keras, "__name__", "") or ""
    version = getattr(tf.keras, "__version__", "") or ""
    # After `import tf_agents`, tf.keras is re-registered as a module named "tensorflow.keras"
    # without __version__, so also look at where its classes come from.
    layer_module = getattr(getattr(getattr(tf.keras, "layers", None), "Layer", None), "__module__", "") or ""
    return module.startswith("tf_keras") or version.startswith("2.") or layer_module.startswith("tf_keras")


def require_legacy_keras() -> None:
    """Stop with a message that says what to do when ``tf.keras`` is not Keras 2.

    Call this at every TF-Agents entry point, before any TF-Agents network is built.

    Raises:
        LegacyKerasError: TensorFlow was imported before ``TF_USE_LEGACY_KERAS=1`` was set.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if not tf_keras_is_legacy():
        raise LegacyKerasError(LEGACY_KERAS_HELP)


# ----------------------------------------------------------------------------------------------
# Devices and strategies
# ----------------------------------------------------------------------------------------------


def gpus() -> list:
    """The physical GPUs TensorFlow sees (empty on a CPU-only machine)."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def enable_memory_growth() -> int:
    """Let TensorFlow allocate GPU memory as needed instead of reserving it all.

    Must run before the GPUs are initialised; later calls are ignored quietly.

    Returns:
        The number of GPUs configured.
    """
    import tensorflow as tf

    configured = 0
    for gpu in gpus():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            configured += 1
        except RuntimeError:  # already initialised: the setting can no longer change
            pass
    return configured


def device_summary() -> str:
    """One line: TensorFlow and Keras versions, CPU cores, GPUs and the global dtype policy.

    Example: ``TF 2.21.0 | Keras 3.15.1 | tf.keras 2.21.0 (legacy) | CPU x2 | GPU: none | policy float32``
    """
    import keras
    import tensorflow as tf

    gpu_list = gpus()
    if gpu_list:
        names = []
        for gpu in gpu_list:
            try:
                details = tf.config.experimental.get_device_details(gpu)
                names.append(details.get("device_name", gpu.name))
            except Exception:  # details are best effort; the name always exists
                names.append(gpu.name)
        gpu_text = f"GPU x{len(gpu_list)} ({', '.join(names)})"
    else:
        gpu_text = "GPU: none"
    tfk = getattr(tf.keras, "__version__", None)
    if tfk is None:
        import importlib.metadata as md

        try:
            tfk = md.version("tf-keras") if tf_keras_is_legacy() else keras.__version__
        except md.PackageNotFoundError:
            tfk = "?"
    legacy = "legacy" if tf_keras_is_legacy() else "Keras 3"
    policy = keras.mixed_precision.global_policy().name
    return (
        f"TF {tf.__version__} | Keras {keras.__version__} | tf.keras {tfk} ({legacy}) | "
        f"CPU x{os.cpu_count()} | {gpu_text} | policy {policy}"
    )


def strategy(kind: str = "auto"):
    """A ``tf.distribute.Strategy`` by name.

    Args:
        kind: ``auto`` (mirrored over all GPUs if there are several; otherwise TensorFlow's
            default strategy, which places ops on the one GPU if there is one, else the CPU, and
            costs nothing per step), ``cpu``, ``gpu`` (the first GPU; an error without one), ``mirrored``
            (all local GPUs, or the CPU when there is none), ``multi-worker``
            (``MultiWorkerMirroredStrategy`` configured from the ``TF_CONFIG`` variable).

    Raises:
        ValueError: unknown ``kind``, ``gpu`` without a GPU, or ``multi-worker`` without a valid
            ``TF_CONFIG``.
    """
    import tensorflow as tf

    if kind not in STRATEGY_KINDS:
        raise ValueError(
            f"Received an invalid value for argument `strategy`: expected one of "
            f"{', '.join(STRATEGY_KINDS)}, got {kind!r}"
        )
    if kind == "multi-worker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise ValueError(
                "strategy 'multi-worker' needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
                '"task": {"type": "worker", "index": 0}})'
            )
        try:
            tf_config = json.loads(raw)
            workers = tf_config["cluster"]["worker"]
            tf_config["task"]["index"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"TF_CONFIG is not valid for multi-worker training ({err}): {raw}") from None
        if not workers:
            raise ValueError(f"TF_CONFIG lists no workers: {raw}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpu_list = gpus()
    if kind == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if kind == "gpu":
        if not gpu_list:
            raise ValueError("strategy 'gpu' was asked for but TensorFlow sees no GPU; use 'auto' or 'cpu'")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    # auto
    if len(gpu_list) > 1:
        return tf.distribute.MirroredStrategy()
    # One device: no distribution at all. A OneDeviceStrategy would make Keras distribute the
    # dataset and wrap every step, which halved the recommender's batch-64 throughput on a CPU.
    return tf.distribute.get_strategy()


# ----------------------------------------------------------------------------------------------
# Seeding, determinism, precision
# ----------------------------------------------------------------------------------------------


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy, TensorFlow and Keras in one call.

    Args:
        seed: a non-negative integer.
        deterministic: also turn on TensorFlow op determinism (same results on the same hardware,
            at some speed cost on GPUs). It cannot be turned off again in the same process.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Received an invalid value for argument `seed`: expected an integer >= 0, got {seed!r}")
    import keras
    import tensorflow as tf

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)  # Python, NumPy and the Keras/backend seed generator
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def set_intra_op_threads(threads: int) -> bool:
    """Set TensorFlow's intra-op thread count (``0``: TensorFlow's default, one per core).

    Small-batch CPU training (a batch-64 recommender step is a few tiny ops) runs faster with one
    thread per op, leaving the other cores to the input pipeline. TensorFlow fixes the count when
    its runtime starts, so this works only before the first TensorFlow op of the process. Returns
    whether the count is now ``threads``; when the runtime already runs with another count it keeps
    that one and returns False (results are the same, only the speed differs).
    """
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"Received an invalid value for argument `threads`: expected an integer >= 0, got {threads!r}")
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    except RuntimeError:  # the runtime has started with another count
        return False
    return True


def set_mixed_precision(enabled: bool = True) -> str:
    """Set Keras' global dtype policy to ``mixed_float16`` (or back to ``float32``).

    Mixed precision speeds up training on GPUs with tensor cores; on a CPU it is slower, so the
    CLI only turns it on when asked. Returns the policy name now in force.
    """
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")
    return keras.mixed_precision.global_policy().name


# ----------------------------------------------------------------------------------------------
# Atomic files and checkpoint folders
# ----------------------------------------------------------------------------------------------


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    A crash leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _json_default(value: Any):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def to_json(value: Any) -> str:
    """JSON text for configs and results (dataclasses, NumPy scalars/arrays and paths allowed)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, indent=2, sort_keys=True, default=_json_default)


def atomic_write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, (to_json(value) + "\n").encode())


COMPLETE_MARKER = "COMPLETE"


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder (a checkpoint) in a temporary sibling and move it into place at the end.

    The yielded path is the temporary folder: write everything there. On success a
    ``COMPLETE`` sentinel is written inside it and it replaces ``path``; on an exception the
    temporary folder is removed and any previous ``path`` is left untouched. Readers should
    call :func:`is_complete` before trusting a folder (Dopamine's sentinel idea).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text(_dt.datetime.now().isoformat() + "\n")
        old = None
        if path.exists():
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


# ----------------------------------------------------------------------------------------------
# Run directories and TensorBoard
# ----------------------------------------------------------------------------------------------


def make_run_dir(exercise: str, seed: int, config: Any = None, root: str | os.PathLike = "runs") -> Path:
    """Create ``{root}/{exercise}__{seed}__{timestamp}/`` with ``config.json``, ``train/``,
    ``eval/`` and ``checkpoints/``.

    Args:
        exercise: the exercise's name, used in the folder name.
        seed: the run's seed, used in the folder name (CleanRL's naming).
        config: the resolved config (a dataclass or a dict), written to ``config.json``.
        root: the parent folder.
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{exercise}__{seed}__{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():  # two runs in the same second get distinct folders
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    for sub in ("train", "eval", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if config is not None:
        atomic_write_json(run_dir / "config.json", config)
    return run_dir


def summary_writers(run_dir: str | os.PathLike):
    """TensorBoard writers for ``run_dir/train`` and ``run_dir/eval``.

    Returns:
        ``(train_writer, eval_writer)``; use ``with writer.as_default(): tf.summary.scalar(...)``.
        Keys follow CleanRL's grouping: ``charts/...``, ``losses/...``, ``eval/...``.
    """
    import tensorflow as tf

    run_dir = Path(run_dir)
    return (
        tf.summary.create_file_writer(str(run_dir / "train")),
        tf.summary.create_file_writer(str(run_dir / "eval")),
    )


def log_scalars(writer, step: int, values: dict[str, float]) -> None:
    """Write several scalars at one step to a TensorBoard writer."""
    import tensorflow as tf

    with writer.as_default(step=int(step)):
        for key, value in values.items():
            tf.summary.scalar(key, float(value))
    writer.flush()


# ----------------------------------------------------------------------------------------------
# Progress and timing
# ----------------------------------------------------------------------------------------------


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", disable: bool | None = None):
    """A tqdm progress bar; hidden when stderr is not a terminal (CI, tests) unless asked."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True)


class Timer:
    """Wall-clock timer, as a context manager or by hand.

    Example:
        >>> with Timer() as t:
        ...     pass
        >>> t.seconds >= 0
        True
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stop: float | None = None

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.stop = None
        return self

    def __exit__(self, *exc) -> None:
        self.stop = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds since the start (frozen once the ``with`` block ends)."""
        end = self.stop if self.stop is not None else time.perf_counter()
        return end - self.start

    def __repr__(self) -> str:
        return f"Timer({self.seconds:.3f}s)"
