"""kcourse: Keras 3 ports of the course's supervised exercises and the shared GPU-aware runtime.

Importing this package changes nothing in the process: no environment variable, warning filter or
logger is set, so a user's own ``tf.keras`` stays Keras 3. Process-wide settings live in
:mod:`keras_impl.process` and are applied by those who need them (the ``kcourse`` command line,
the TF-Agents package ``agents.tfa``, the notebooks' setup cell).
"""
__version__ = "0.1.0"
