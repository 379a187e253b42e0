"""``kcourse``: the command line of the course (the top layer).

Layers point down: ``kcourse`` (command line, the exercise table, report, doctor, the ``eval``,
``data``, ``predict`` and ``recommend`` commands) -> ``agents`` (reinforcement learning) ->
``keras_impl`` (Keras models, the runtime, configs, files and checkpoints). Nothing below imports
``kcourse``; ``tests/test_layout.py`` checks it. ``docs/architecture.md`` maps the layers.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` (unless set) before anything imports
TensorFlow, as ``agents`` and ``keras_impl`` do.
"""
import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# Without an NVIDIA driver TensorFlow's CUDA probe always fails and logs "E0000 ... failed call to
# cuInit: UNKNOWN ERROR (303)": not an error of the run. There, only fatal C++ logs are kept.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if _os.path.exists("/dev/nvidiactl") else "3")

__version__ = "0.1.0"
