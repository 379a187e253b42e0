"""Process-wide settings, in one place, applied only by those who need them.

Nothing here runs at import. Who calls what:

* :func:`use_legacy_keras` (``TF_USE_LEGACY_KERAS=1``: ``tf.keras`` becomes Keras 2, ``tf_keras``,
  which TF-Agents needs): ``agents.tfa`` when it is imported, ``kcourse run tfa-dqn`` and the
  notebooks' setup cell. The hand-written models use Keras 3 (``import keras``) and do not need
  it; ``import keras_impl`` or ``import agents`` leaves ``tf.keras`` alone. TensorFlow reads the
  variable when ``tf.keras`` is first used (not when TensorFlow is imported, and Keras 3 training
  does not use ``tf.keras``), so ``agents.tfa`` can set it after Keras 3 code has run.
* :func:`quiet_tensorflow` (the one log-level policy: ``TF_CPP_MIN_LOG_LEVEL=2``, C++ INFO and
  WARNING lines off, errors kept; a value the user set is kept) and :func:`install_noise_filters`
  (warnings and log records from TF-Agents' own internals that a user cannot act on): the
  ``kcourse`` command line before TensorFlow loads, and the notebooks. The start-up lines that
  TensorFlow prints before its logging is set up (``oneDNN custom operations``, ``Could not find
  cuda drivers``, ``failed call to cuInit``) ignore the variable; the command line filters them out
  of its stderr (``kcourse/quiet.py``).
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import warnings

LEGACY_KERAS = "TF_USE_LEGACY_KERAS"
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
LOG_LEVEL_VALUE = "2"  # C++ INFO and WARNING off, ERROR and FATAL kept


def use_legacy_keras() -> None:
    """``TF_USE_LEGACY_KERAS=1`` unless set: TF-Agents' ``tf.keras`` is Keras 2 (before ``tf.keras`` is first used)."""
    os.environ.setdefault(LEGACY_KERAS, "1")


def quiet_tensorflow() -> None:
    """``TF_CPP_MIN_LOG_LEVEL=2`` unless set (takes effect when TensorFlow is imported afterwards)."""
    os.environ.setdefault(LOG_LEVEL, LOG_LEVEL_VALUE)


# Libraries whose own calls of deprecated TensorFlow APIs a user cannot act on.
NOISY_LIBRARIES = ("tf_agents", "tensorflow", "tensorflow_probability", "tf_keras", "keras")
# TensorFlow's deprecation records start "From FILE:LINE: ... is deprecated and will be removed ..."
# (tensorflow/python/util/deprecation.py); FILE is where the deprecated API was called.
_DEPRECATION = re.compile(r"From (?P<file>.+?):\d+: .*is deprecated and will be removed")
# PolicySaver renames the TimeStep's nested argument names (function_type.py's sanitizing warning).
_POLICY_SAVER_NAME = re.compile(r"`\d+/(step_type|reward|discount|observation)` is not a valid tf.function "
                                r"parameter name")


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    """The installed folders of :data:`NOISY_LIBRARIES` (``find_spec`` of a top-level package imports nothing)."""
    dirs = []
    for name in NOISY_LIBRARIES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            dirs.append(os.path.join(os.path.realpath(location), ""))
    return tuple(dirs)


def is_known_noise(message: str) -> bool:
    """A TensorFlow/absl log message about TF-Agents' or TensorFlow's own internals: a deprecation notice
    for a call made inside those libraries (``ReplayBuffer.get_next``, ``foldr`` with ``back_prop``), or
    ``PolicySaver``'s renaming of a TimeStep argument. A deprecated call in the user's own code is kept."""
    found = _DEPRECATION.match(message)
    if found:
        return os.path.realpath(found.group("file")).startswith(_library_dirs())
    return bool(_POLICY_SAVER_NAME.match(message))


class KnownNoise(logging.Filter):
    """Drop the log records :func:`is_known_noise` recognises (TF-Agents 0.19 on TF 2.21's start-up noise)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_known_noise(record.getMessage())


def install_noise_filters() -> None:
    """Hide TF-Agents' internal warnings (autograph's ``is ()`` SyntaxWarning, PolicySaver's TFP spec
    UserWarning) and :class:`KnownNoise` log records. Calling it again adds nothing."""
    warnings.filterwarnings("ignore", category=SyntaxWarning, message=r'"is( not)?" with a literal')
    warnings.filterwarnings("ignore", category=UserWarning, message="Encoding a StructuredValue with type tfp")
    for name in ("tensorflow", "absl"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, KnownNoise) for f in logger.filters):
            logger.addFilter(KnownNoise())
