"""kcourse reinforcement learning: environments, tabular methods, policy gradients, DQN, TF-Agents.

Importing this package registers ``MovieLensRecommendation-v0`` with Gymnasium by a string entry
point (nothing heavy is imported until the environment is made). It sets no environment variable:
the hand-written agents use Keras 3 (``import keras``); ``agents.tfa`` sets ``TF_USE_LEGACY_KERAS``
for TF-Agents itself (:mod:`keras_impl.process`).
"""
import gymnasium as _gym

if "MovieLensRecommendation-v0" not in _gym.registry:
    _gym.register(id="MovieLensRecommendation-v0", entry_point="agents.movielens_env:MovieLensRecommendationEnv")

# Marker checked by `kcourse doctor`: PyPI also has packages importable as `agents`
# (e.g. `agents`, `openai-agents`); if one of them shadows ours, this attribute is missing.
__kcourse__ = True
