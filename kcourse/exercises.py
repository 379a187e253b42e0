"""The exercises of the course, in one static table.

Each entry names its config dataclass and its ``run(config, run_dir)`` function as
``"module:attribute"`` strings, so ``kcourse list`` and ``kcourse --help`` import nothing but this
module, ``kcourse run NAME --help`` imports only the config module (no TensorFlow), and the
exercise's own module is imported when it runs. The order is the order of ``kcourse list`` and
of the report.

A ``run`` function returns a dict with ``headline`` (one line for the report's "ours" column),
``metrics`` (numbers) and ``artifacts`` (paths relative to the run folder of plots, GIFs and
files). A resumable exercise's ``run`` also takes ``resume: bool``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any, Callable

from keras_impl import names


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One row of :data:`EXERCISES`."""

    name: str
    config: str  # "module:ConfigClass", a module that imports no TensorFlow
    run: str  # "module:function"
    summary: str
    reference: str  # the course's (or a peer's) result, shown beside ours
    section: str
    target: str = ""  # what the run's "reached" (in result.json) checks; "" when it has no target
    requires: tuple[str, ...] = ()  # importable modules of optional extras, e.g. ("ale_py",)
    resumable: bool = False  # `kcourse run NAME --resume DIR` continues a run from its checkpoint

    def config_class(self) -> type:
        return _load(self.config)

    def run_function(self) -> Callable[..., dict]:
        return _load(self.run)

    def missing_requirements(self) -> list[str]:
        """Names in ``requires`` that are not installed (found without importing them)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]


def _load(target: str) -> Any:
    return names.resolve(target, field="exercise entry")


# Written out in full (no f-strings): tests/test_layout.py follows these strings as imports.

EXERCISES: tuple[Exercise, ...] = (
    Exercise("linreg", "keras_impl.configs:LinRegConfig", "keras_impl.linreg:run", section="runtime",
             summary="runtime smoke: Keras 3 linear regression y=3x+2 through the shared runtime",
             reference="w=3.00, b=2.00 (ground truth)",
             target="w and b within 0.1 of 3 and 2"),
    Exercise("recommender", "keras_impl.configs:RecommenderConfig", "keras_impl.recommender.exercise:run",
             section="supervised",
             summary="MovieLens recommender (exam part 1): biased MF with per-row dot, top-N, save/load",
             reference="val MSE 0.7995, 0.7595, 0.7444, 0.7383, 0.7334 (ml-20m, 5000 users, 5 epochs)",
             target="real ml-latest-small (found by --data auto): NDCG@10 >= 1.8x popularity and val MSE below the "
                    "PyTorch loop's 0.867; synthetic course set: val MSE within 2% of the ratings-only bound 0.7036 "
                    "and below the PyTorch loop's 0.7593"),
    Exercise("hello", "keras_impl.configs:HelloConfig", "keras_impl.hello:run", section="supervised",
             summary="next-character RNN/LSTM on 'hello': six Keras variants, hand-written cells, PyTorch import",
             reference="100% next-character accuracy; hand-written cells give the built-ins' fitted values (course)",
             target="6/6 variants at 100% accuracy; hand-written cells equal the built-ins (|dp| <= 1e-6)"),
    Exercise("markov", "agents.configs:MarkovConfig", "agents.tabular:run_markov", section="rl",
             summary="sample HOML's 4-state Markov chain",
             reference="HOML prints 10 walks from s0, most ending in the terminal s3"),
    Exercise("q-value-iteration", "agents.configs:QValueIterationConfig", "agents.tabular:run_q_value_iteration",
             section="rl", summary="Q-value iteration on HOML's 3-state MDP (gamma 0.90 and 0.95)",
             reference="HOML: Q(s0)=[18.92, 17.03, 13.62], policy [0, 0, 1]; gamma 0.95 -> [0, 2, 1]",
             target="Q(s0) = [18.92, 17.03, 13.62], policy [0, 0, 1]; gamma 0.95: [0, 2, 1]"),
    Exercise("q-learning", "agents.configs:QLearningConfig", "agents.tabular:run_q_learning", section="rl",
             summary="Q-learning on HOML's 3-state MDP with the convergence plot of Q(s0, a0)",
             reference="HOML: same greedy policy [0, 0, 1] as Q-value iteration after 10,000 steps",
             target="the same greedy policy as Q-value iteration"),
    Exercise("basic-policy", "agents.configs:BasicPolicyConfig", "agents.policies:run", section="rl",
             summary="CartPole: the hard-coded angle policy and a net trained to imitate it on 50 envs at once",
             reference="HOML (200-step cap): angle policy mean ~42, max 68 over 500 episodes",
             target="angle policy mean 42 +/- 5 at HOML's 200-step cap"),
    Exercise("policy-gradient", "agents.configs:PolicyGradientConfig", "agents.policy_gradient:run", section="rl",
             summary="REINFORCE with discounted normalised returns (CartPole-v1, LunarLander-v3 with --env)",
             reference="HOML: CartPole mean ~190 at the 200-step cap after 150 iterations; LunarLander 'pretty good', "
                       "try for 200",
             target="greedy 100-episode mean >= 475 (CartPole-v1) on the report episodes, not the selection ones"),
    Exercise("dqn", "agents.configs:DQNConfig", "agents.dqn_train:run", section="reinforcement learning",
             summary="DQN / Double / Dueling / Dueling-Double DQN (Keras 3, hand-written) on CartPole-v1",
             reference="HOML: CartPole balanced after ~600 episodes; PyTorch tutorial: 600 episodes on GPU",
             resumable=True,
             target="greedy 100-episode mean >= 475 (CartPole-v1) on the report episodes, not the selection ones"),
    Exercise("frozenlake-dqn", "agents.configs:FrozenLakeConfig", "agents.frozenlake:run",
             section="reinforcement learning",
             summary="FrozenLake 4x4 DQN with an Embedding q_net (exam part 3), cleared at mean score >= 0.9",
             reference="course: cleared in 2,832 episodes (not slippery)",
             target="greedy success >= 0.9 on the report episodes (training stops when cleared: mean score of the "
                    "last 100 episodes >= 0.9)"),
    Exercise("tfa-dqn", "agents.configs:TfaDqnConfig", "agents.tfa.pipeline:run", section="reinforcement learning",
             summary="TF-Agents DqnAgent (HOML ch.18) on CartPole / FrozenLake / Breakout: replay buffer, drivers, "
                     "metrics, checkpoints with resume, PolicySaver export, GIF",
             reference="HOML: Breakout average return 7.8 after ~200k agent steps (human ~30); CartPole solved = 475+",
             resumable=True,
             target="greedy 100-episode mean >= 475 (CartPole-v1) on the report episodes, not the selection ones"),
    Exercise("breakout", "agents.configs:BreakoutPolicyConfig", "agents.breakout_policy:run",
             section="reinforcement learning",
             summary="the committed hand-written Breakout policy (dueling-double, data-efficient preset, 100k agent "
                     "steps) plays 10 full games and a GIF; no training (the command and time that trained it are named)",
             reference="Atari 100k Breakout: DrQ 16.1, SPR 17.1, DER 1.9, random 1.7, human 30.5; HOML 7.8 (~800k steps)",
             requires=("ale_py",)),
    Exercise("movielens-rl", "agents.configs:MovieLensRLConfig", "agents.movielens_rl:run", section="rl",
             summary="MovieLens recommendation as RL: masked DQN, tabular Q-learning, random/popular/greedy baselines",
             reference="the course notebook has no working result (episodes never end; ids mixed with indices)",
             target="DQN above random and popular, within 5% of greedy-by-recommender"),
)

BY_NAME: dict[str, Exercise] = {ex.name: ex for ex in EXERCISES}


def get(name: str) -> Exercise:
    """The exercise called ``name``.

    Raises:
        ValueError: no such exercise; the message lists the names.
    """
    if name not in BY_NAME:
        raise ValueError(f"unknown exercise {name!r}; available: {', '.join(BY_NAME)} (see `kcourse list`)")
    return BY_NAME[name]
