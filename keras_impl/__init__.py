"""kcourse: Keras 3 ports of the course's supervised exercises and the shared GPU-aware runtime.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` (unless already set) so that TF-Agents,
which needs Keras 2 through ``tf_keras``, works in the same process as Keras 3 code that uses
``import keras``. The variable only has an effect if TensorFlow has not been imported yet.
"""
import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
