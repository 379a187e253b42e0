"""Shared GPU-aware training utilities used by ``keras_impl`` and ``agents``.

One module for the things every exercise needs:

* :func:`device_summary` -- a one-line description of TensorFlow, Keras and the devices.
* :func:`enable_memory_growth` -- let TensorFlow grow GPU memory instead of taking it all.
* :func:`strategy` -- a ``tf.distribute`` strategy by name (auto, cpu, gpu, mirrored, multi-worker).
* :func:`seed_everything` -- seed Python, NumPy, TensorFlow and Keras in one call.
* :func:`set_mixed_precision` -- switch Keras' global dtype policy.
* :func:`make_run_dir` / :func:`summary_writers` -- ``runs/{exercise}__{seed}__{timestamp}/`` with
  ``config.json``, TensorBoard ``train/`` and ``eval/`` logs and ``checkpoints/``;
  :func:`remove_unused_run_dir` removes one again when its run failed before writing anything.
* :func:`progress` and :class:`Timer`.

Works on a CPU-only machine and on one or more GPUs. ``TF_USE_LEGACY_KERAS`` is set by the
package (``keras_impl/__init__.py``) before this module imports TensorFlow; TensorFlow binds
``tf.keras`` on its first use, so TF-Agents (Keras 2) and ``import keras`` (Keras 3) coexist.
Atomic files live in :mod:`keras_impl.files`, checkpoints in :mod:`keras_impl.checkpoints`.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import keras
import numpy as np
import tensorflow as tf

from keras_impl import files
from keras_impl.config import STRATEGY_KINDS

# ----------------------------------------------------------------------------------------------
# Keras 2 / Keras 3 coexistence
# ----------------------------------------------------------------------------------------------

LEGACY_KERAS_HELP = (
    "TF-Agents needs Keras 2 (the tf-keras package) but tf.keras is bound to Keras 3 in this "
    "process: TensorFlow (and its tf.keras) was used before TF_USE_LEGACY_KERAS=1 was set.\n"
    "Fix: set the variable before TensorFlow is first imported, e.g.\n"
    "    export TF_USE_LEGACY_KERAS=1            # in the shell, or\n"
    "    import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'   # first line of the script/notebook\n"
    "or import `agents.tfa` (it sets the variable) before `tensorflow`. In a notebook, restart the kernel "
    "after changing it."
)


class LegacyKerasError(RuntimeError):
    """Raised when TF-Agents code runs in a process where ``tf.keras`` is Keras 3.

    TensorFlow binds ``tf.keras`` lazily, on first use, reading ``TF_USE_LEGACY_KERAS`` then; once
    bound (e.g. by ``from tensorflow import keras``) it cannot change in that process.
    """


def tf_keras_is_legacy() -> bool:
    """True when ``tf.keras`` resolves to Keras 2 (``tf_keras``), as TF-Agents requires."""
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
    if not tf_keras_is_legacy():
        raise LegacyKerasError(LEGACY_KERAS_HELP)


# ----------------------------------------------------------------------------------------------
# Devices and strategies
# ----------------------------------------------------------------------------------------------


def gpus() -> list:
    """The physical GPUs TensorFlow sees (empty on a CPU-only machine)."""
    return tf.config.list_physical_devices("GPU")


def enable_memory_growth() -> int:
    """Let TensorFlow allocate GPU memory as needed instead of reserving it all.

    Must run before the GPUs are initialised; later calls are ignored quietly.

    Returns:
        The number of GPUs configured.
    """
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
        deterministic: TensorFlow op determinism on (same results on the same hardware, at some
            speed cost; ``tf.data`` runs a stateful map or a prefetch serially) or off. Off turns
            it off again when an earlier call of the same process turned it on, so each run gets
            the mode its config asks for (TensorFlow's public API can only turn it on).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Received an invalid value for argument `seed`: expected an integer >= 0, got {seed!r}")

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)  # Python, NumPy and the Keras/backend seed generator
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework import config as tf_config  # disable_op_determinism has no public name

        if tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()


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
    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")
    return keras.mixed_precision.global_policy().name


# ----------------------------------------------------------------------------------------------
# Run directories and TensorBoard
# ----------------------------------------------------------------------------------------------


RUN_SUBFOLDERS = ("train", "eval", "checkpoints")  # TensorBoard logs and checkpoints


def make_run_dir(exercise: str, seed: int, config: Any = None, root: str | os.PathLike = "runs") -> Path:
    """Create ``{root}/{exercise}__{seed}__{timestamp}/`` with ``config.json``, ``train/``,
    ``eval/`` and ``checkpoints/``.

    The folder is created with one ``mkdir`` that fails if it exists (then the next suffix
    ``-2``, ``-3``... is tried), so runs started in the same second never share a folder.

    Args:
        exercise: the exercise's name, used in the folder name.
        seed: the run's seed, used in the folder name (CleanRL's naming).
        config: the resolved config (a dataclass or a dict), written to ``config.json``.
        root: the parent folder.

    Raises:
        OSError: ``root`` cannot be created or written (the message names it).
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{exercise}__{seed}__{stamp}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the run folder under {root}: {err.strerror or err}") from None
    for n in range(1, 10_000):
        run_dir = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as err:
            raise OSError(f"cannot create the run folder {run_dir}: {err.strerror or err}") from None
    for sub in RUN_SUBFOLDERS:
        (run_dir / sub).mkdir(exist_ok=True)
    if config is not None:
        files.atomic_write_json(run_dir / "config.json", config)
    return run_dir


def remove_unused_run_dir(run_dir: str | os.PathLike) -> bool:
    """Remove a run folder that holds nothing but what :func:`make_run_dir` put there.

    A run that fails before writing anything (an environment that does not fit, a recommender
    trained on other data) leaves no empty ``config.json``-only folder behind. A folder with any
    other file (a TensorBoard log, a checkpoint) is kept.

    Returns:
        True when the folder was removed.
    """
    run_dir = Path(run_dir)
    try:
        entries = {p.name: p for p in run_dir.iterdir()}
        if not set(entries) <= {"config.json", *RUN_SUBFOLDERS}:
            return False
        if any(not entries[s].is_dir() or any(entries[s].iterdir()) for s in RUN_SUBFOLDERS if s in entries):
            return False
    except OSError:
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def summary_writers(run_dir: str | os.PathLike):
    """TensorBoard writers for ``run_dir/train`` and ``run_dir/eval``.

    Returns:
        ``(train_writer, eval_writer)``; use ``with writer.as_default(): tf.summary.scalar(...)``.
        Keys follow CleanRL's grouping: ``charts/...``, ``losses/...``, ``eval/...``.
    """
    run_dir = Path(run_dir)
    return (
        tf.summary.create_file_writer(str(run_dir / "train")),
        tf.summary.create_file_writer(str(run_dir / "eval")),
    )


def log_scalars(writer, step: int, values: dict[str, float], flush: bool = True) -> None:
    """Write several scalars at one step to a TensorBoard writer (``flush=False``: leave them queued, for
    scalars written every training step; a later flushing call or the writer's own timer writes them)."""
    # An explicit call always records, also inside a `tf.summary.record_if` that throttles other summaries.
    with writer.as_default(step=int(step)), tf.summary.record_if(True):
        for key, value in values.items():
            tf.summary.scalar(key, float(value))
    if flush:
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
