"""``kcourse``: the command line of the course (the top layer).

Layers point down: ``kcourse`` (command line, the exercise table, report, doctor, the ``eval``,
``data``, ``predict`` and ``recommend`` commands) -> ``agents`` (reinforcement learning) ->
``keras_impl`` (Keras models, the runtime, configs, files and checkpoints). Nothing below imports
``kcourse``; ``tests/test_layout.py`` checks it. ``docs/architecture.md`` maps the layers.

Importing this package changes nothing in the process. The command line (``kcourse.cli.main``)
applies the process-wide settings of :mod:`keras_impl.process` before TensorFlow loads: the log
level and noise filters for every command, ``TF_USE_LEGACY_KERAS=1`` only for the commands that
use TF-Agents (``run tfa-dqn``, ``doctor``), and :mod:`kcourse.quiet`'s stderr filter.
"""
__version__ = "0.1.0"
