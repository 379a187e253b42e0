"""kcourse reinforcement learning: environments, tabular methods, policy gradients, DQN, TF-Agents.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` (unless already set) before TensorFlow is
imported, so TF-Agents (Keras 2 via ``tf_keras``) and Keras 3 (``import keras``) coexist, and
registers ``MovieLensRecommendation-v0`` with Gymnasium by a string entry point (nothing heavy is
imported until the environment is made).
"""
import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as _gym  # noqa: E402  (after the variable: Gymnasium does not import TensorFlow)

if "MovieLensRecommendation-v0" not in _gym.registry:
    _gym.register(id="MovieLensRecommendation-v0", entry_point="agents.movielens_env:MovieLensRecommendationEnv")

# Marker checked by `kcourse doctor`: PyPI also has packages importable as `agents`
# (e.g. `agents`, `openai-agents`); if one of them shadows ours, this attribute is missing.
__kcourse__ = True
