"""The configs of the reinforcement-learning exercises: every knob with its help, default, range and presets.

One dataclass per pipeline; ``kcourse run NAME --help`` is generated from it, and :func:`keras_impl.config.resolve` layers
``defaults < presets < the resumed run < what the user typed``. This module imports no
TensorFlow, so the command line can list and check options before the heavy imports.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from typing import Optional

from keras_impl.config import Preset, arg
from keras_impl.movielens import COURSE_USERS, SYNTHETIC_SIZES


def _check_train_seed(seed: int, largest_offset: int = 0) -> None:
    """:func:`agents.evaluation.check_train_seed` (imported when a config is checked: Gymnasium, no TensorFlow)."""
    from agents.evaluation import check_train_seed

    check_train_seed(seed, largest_offset)


# ----------------------------------------------------------------------------------------------
# Tabular methods and the basic CartPole policies (HOML ch. 18)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class MarkovConfig:
    """Walks on HOML's 4-state Markov chain."""

    sequences: int = arg(10, "number of walks to print", ge=1)
    max_steps: int = arg(50, "the most states per walk", ge=1)
    seed: int = arg(42, "random seed", ge=0)


@dataclasses.dataclass
class QValueIterationConfig:
    """Q-value iteration on HOML's 3-state MDP."""

    gamma: float = arg(0.90, "discount factor", gt=0, lt=1)
    iterations: int = arg(50, "Bellman updates", ge=1)
    seed: int = arg(0, "random seed (unused: the method is deterministic)", ge=0)


@dataclasses.dataclass
class QLearningConfig:
    """Q-learning on HOML's 3-state MDP."""

    gamma: float = arg(0.90, "discount factor", gt=0, lt=1)
    iterations: int = arg(10_000, "Q-learning steps", ge=1)
    alpha0: float = arg(0.05, "initial learning rate", gt=0, le=1)
    decay: float = arg(0.005, "learning-rate decay: alpha = alpha0 / (1 + t * decay)", ge=0)
    seed: int = arg(42, "random seed", ge=0)


@dataclasses.dataclass
class BasicPolicyConfig:
    """HOML's hard-coded angle policy and a net trained to imitate it."""

    episodes: int = arg(500, "seeded episodes for the statistics (HOML: 500)", ge=1)
    iterations: int = arg(5000, "imitation training iterations (HOML: 5000)", ge=1)
    n_envs: int = arg(50, "environments played at once during imitation (HOML: 50)", ge=1)
    learning_rate: float = arg(0.001, "RMSprop learning rate (HOML: Keras' default 0.001)", gt=0)
    eval_episodes: int = arg(100, "episodes to evaluate the trained net on", ge=1)
    gif: bool = arg(True, "write GIFs of the angle policy and of the net")
    seed: int = arg(42, "random seed", ge=0)

    def check(self) -> None:
        _check_train_seed(self.seed, self.n_envs - 1)  # imitation: env i reset with seed + i


BasicPolicyConfig.PRESETS = (Preset({"episodes": 100, "iterations": 300, "eval_episodes": 20, "gif": False},
                                    quick=True),)

# ----------------------------------------------------------------------------------------------
# REINFORCE
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PolicyGradientConfig:
    """REINFORCE; defaults tuned for CartPole-v1, a preset for LunarLander-v3 (docs/rl-foundations.md)."""

    env: str = arg("CartPole-v1", "environment id or alias (CartPole-v1, LunarLander-v3)")
    iterations: int = arg(200, "maximum training iterations (updates)", ge=1)
    episodes_per_update: int = arg(16, "episodes played in lockstep per update", ge=1)
    learning_rate: float = arg(0.01, "Adam learning rate", gt=0)
    gamma: float = arg(0.99, "discount rate (500-step CartPole needs a longer horizon than HOML's 0.95)",
                       gt=0, le=1)
    hidden_units: int = arg(32, "units of each of the 2 hidden layers", ge=1)
    max_steps: int = arg(0, "cap on steps per training episode (0: the env's own time limit)", ge=0)
    target: Optional[float] = arg(None, "stop when the greedy evaluation mean reaches this (default: the env's "
                                        "reward threshold, CartPole-v1 475, LunarLander-v3 200; none: never)")
    eval_policy: str = arg("greedy", "evaluate the greedy (argmax) or the sampled softmax policy "
                                     "(LunarLander: sample, as HOML)", choices=("greedy", "sample"))
    eval_every: int = arg(5, "iterations between greedy checks (only once training returns are near target)", ge=1)
    eval_episodes: int = arg(100, "episodes of the final greedy evaluation", ge=1)
    capture_video: bool = arg(False, "record env 0's training episodes to videos/ (Gymnasium RecordVideo)")
    gif: bool = arg(True, "write a GIF of one greedy episode of the trained policy")
    seed: int = arg(1, "random seed", ge=0)

    def check(self) -> None:
        _check_train_seed(self.seed, self.episodes_per_update - 1)  # env i reset with seed + i


PolicyGradientConfig.PRESETS = (
    Preset({"learning_rate": 0.005, "hidden_units": 64, "iterations": 150, "eval_policy": "sample"},
           when={"env": ("LunarLander-v3", "lunarlander")}),
    Preset({"iterations": 8, "eval_episodes": 10, "gif": False}, quick=True),
)

# ----------------------------------------------------------------------------------------------
# The hand-written DQN family
# ----------------------------------------------------------------------------------------------

DQN_VARIANTS = ("dqn", "double", "dueling", "dueling-double")
DQN_PRESETS = ("auto", "data-efficient", "nature")
EPSILON_SCHEDULES = ("linear", "linear-after-warmup", "linear-episode", "exponential", "multiplicative")
ATARI_PROTOCOLS = ("sticky", "atari100k")  # agents.atari.PROTOCOLS' names (this module imports no env code)


def canonical_env(env: str) -> str:
    """One spelling of an env id before presets apply: aliases and every Atari spelling resolved
    (``breakout``, ``BREAKOUT``, ``BreakoutNoFrameskip-v4`` -> ``ALE/Breakout-v5``)."""
    from agents.envs import resolve_env_id

    return resolve_env_id(env) if isinstance(env, str) and env else env


def is_atari_env(env: str) -> bool:
    """Whether a (canonical) env id is an Atari game: the Atari presets' ``when``."""
    return isinstance(env, str) and env.startswith("ALE/")


# Agent steps per second of the hand-written data-efficient Breakout run on 2 CPU cores (docs/dqn.md measures
# 30-35): only for the order of magnitude a refused budget is told in.
CPU_ATARI_STEPS_PER_SECOND = 30


def training_time(steps) -> str:
    """How long ``steps`` agent steps of Atari training take on a CPU, in words (``total_timesteps``' refusal)."""
    days = float(steps) / CPU_ATARI_STEPS_PER_SECOND / 86_400
    when = f"{days / 365:.1f} years" if days >= 365 else f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"
    return (f"{float(steps):,.0f} agent steps of Atari training take about {when} on a CPU at about "
            f"{CPU_ATARI_STEPS_PER_SECOND} steps/s; 50,000,000 about "
            f"{50_000_000 / CPU_ATARI_STEPS_PER_SECOND / 86_400:.0f} days")


@dataclasses.dataclass
class DQNConfig:
    """Hyperparameters. Defaults: SB3 zoo's tuned CartPole-v1 DQN (rl-baselines3-zoo dqn.yml) with 3-step returns."""

    env: str = arg("CartPole-v1", "Gymnasium environment id or alias (discrete actions)")
    variant: str = arg("dqn", "which DQN: next-Q by max (dqn) or Double; plain or dueling head", choices=DQN_VARIANTS)
    total_timesteps: int = arg(50_000, "environment steps to train for (at most 50M: the Nature DQN's 200M Atari "
                               "frames; 1e9 would take years on a CPU)", ge=1, le=50_000_000, why=training_time)
    learning_rate: float = arg(2.3e-3, "optimizer learning rate", gt=0)
    preset: str = arg("auto", "Atari hyperparameters (any game): data-efficient (DrQ(epsilon), Atari 100k), nature "
                              "(Nature DQN / HOML schedule scaled to the budget); auto: data-efficient for Atari, "
                              "nothing for other envs (docs/atari.md cites every value)", choices=DQN_PRESETS)
    optimizer: str = arg("adam", "adam (SB3, HOML), adamw with amsgrad (PyTorch tutorial) or centered rmsprop "
                                 "(HOML's Breakout)", choices=("adam", "adamw", "rmsprop"))
    adam_epsilon: float = arg(1e-7, "Adam's epsilon (Keras' default 1e-7; DER/DrQ: 1.5e-4)", gt=0)
    buffer_size: int = arg(100_000, "replay buffer capacity (transitions)", ge=1)
    batch_size: int = arg(64, "transitions per gradient step", ge=1)
    gamma: float = arg(0.99, "discount factor", ge=0, le=1)
    hidden: tuple[int, ...] = arg((256, 256), "hidden layer sizes of the Q-network, e.g. 256,256", ge=1)
    activation: str = arg("relu", "hidden activation (HOML: elu)", choices=("relu", "elu", "tanh", "linear"))
    learning_starts: int = arg(1_000, "env steps of pure collection before the first update", ge=0)
    train_frequency: int = arg(256, "train every this many env steps", ge=1)
    gradient_steps: int = arg(128, "gradient steps per training round", ge=1)
    target_update: str = arg("hard", "hard: copy the online net; soft: Polyak with tau", choices=("hard", "soft"))
    target_update_interval: int = arg(10, "env steps between target-network updates", ge=1)
    target_update_updates: int = arg(0, "also update the target network every this many gradient steps inside a "
                                        "training round (0: never); the env-step interval alone updates it at most "
                                        "once a round, which is what limits how fast Q-values grow", ge=0)
    tau: float = arg(0.005, "soft-update rate (PyTorch tutorial: 0.005); ignored for hard updates", gt=0, le=1)
    loss: str = arg("huber", "TD loss", choices=("huber", "mse"))
    n_step: int = arg(3, "n-step returns: sum n discounted rewards before bootstrapping from Q (1: one-step DQN); "
                         "a target update then carries rewards n steps back instead of one (docs/dqn.md)", ge=1)
    max_grad_norm: float = arg(10.0, "clip gradients to this global norm (0: no clipping)", ge=0)
    life_loss_terminal: bool = arg(False, "Atari: a lost life ends the TD chain during training (not the game; "
                                          "evaluation always plays full games)")
    augment_pad: int = arg(0, "Atari: DrQ random shift of training batches by up to this many pixels (0: off)",
                           ge=0, le=16)
    train_protocol: str = arg("sticky", "Atari: the training env's protocol: sticky (repeat_action_probability "
                                        "0.25, Machado et al. 2018) or atari100k (no sticky actions)",
                              choices=ATARI_PROTOCOLS)
    clip_rewards: bool = arg(False, "clip training rewards to [-1, 1] (Nature DQN, DrQ; returns are reported "
                                    "unclipped)")
    jit_compile: bool = arg(False, "compile the train step with XLA (measured in docs/dqn.md)")
    epsilon_schedule: str = arg("linear", "linear (by step, SB3), linear-after-warmup (held at start through "
                                          "learning_starts, then linear: Dopamine), linear-episode (HOML), exponential "
                                          "(by step, PyTorch tutorial), multiplicative (per episode, Keras tutorial)",
                                choices=EPSILON_SCHEDULES)
    epsilon_start: float = arg(1.0, "initial exploration rate", ge=0, le=1)
    epsilon_end: float = arg(0.04, "final exploration rate", ge=0, le=1)
    exploration_fraction: float = arg(0.16, "linear, linear-after-warmup: fraction of total_timesteps to decay "
                                            "over (a resumed run keeps the span of the run it resumes)", gt=0, le=1)
    epsilon_decay_episodes: int = arg(500, "linear-episode: episodes to decay over (HOML: 500)", ge=1)
    epsilon_decay_steps: float = arg(1000.0, "exponential: EPS_DECAY in steps (PyTorch tutorial: 1000)", gt=0)
    epsilon_decay_rate: float = arg(0.995, "multiplicative: epsilon *= rate after each episode", gt=0, le=1)
    eval_interval: int = arg(2_000, "env steps between greedy evaluations (0: only at the end)", ge=0)
    eval_episodes: int = arg(100, "episodes per greedy evaluation", ge=1)
    report_episodes: int = arg(100, "episodes of the reported evaluation after training, on report seeds disjoint "
                                     "from the selection seeds (Atari: full games)", ge=1)
    eval_epsilon: float = arg(0.0, "epsilon of the evaluated policy (0: greedy; Atari: DrQ(epsilon) 0.001, "
                                   "Nature 0.05)", ge=0, le=1)
    keep_best: bool = arg(True, "end with the best evaluated weights when the target was not reached (false: the "
                                "final weights)")
    target_return: Optional[float] = arg(None, "stop when the greedy evaluation mean reaches this "
                                               "(default: the env's reward_threshold, CartPole-v1: 475; none: never)")
    early_stop: bool = arg(True, "stop training once target_return is reached")
    checkpoint_every: int = arg(50, "save a checkpoint every this many episodes (0: only on Ctrl-C/SIGTERM)", ge=0)
    checkpoint_steps: int = arg(0, "also save a checkpoint every this many env steps (0: off; Atari: 10,000)", ge=0)
    keep_checkpoints: int = arg(2, "how many recent checkpoints to keep", ge=1)
    gif: bool = arg(True, "record a GIF of one greedy episode at the end")
    deterministic: bool = arg(False, "TensorFlow op determinism (same seed, same run)")
    seed: int = arg(0, "random seed", ge=0)

    @property
    def double(self) -> bool:
        return self.variant in ("double", "dueling-double")

    @property
    def dueling(self) -> bool:
        return self.variant in ("dueling", "dueling-double")

    def check(self) -> None:
        if self.preset != "auto" and not is_atari_env(canonical_env(self.env)):
            raise ValueError(f"Received an invalid value for argument `preset`: {self.preset!r} is for Atari games "
                             f"(--env breakout, pong, ...), not {self.env!r}")
        if not self.epsilon_end <= self.epsilon_start:
            raise ValueError("Received invalid values for arguments `epsilon_start`/`epsilon_end`, expected "
                             f"0 <= end <= start <= 1, got start={self.epsilon_start!r}, end={self.epsilon_end!r}")
        _check_train_seed(self.seed)  # later sessions' first resets: agents.evaluation.train_seed


DQNConfig.FIXED_ON_RESUME = ("env", "variant", "hidden", "activation", "optimizer", "buffer_size", "preset")
DQNConfig.CANONICAL = {"env": canonical_env}
# Atari games (any of them, no per-game tuning) with the hand-written agents; every value is cited
# in docs/atari.md. Both presets: trained with sticky actions (Machado et al. 2018) and rewards
# clipped to [-1, 1] (Nature DQN, DrQ), life loss ends the TD chain in training (Nature DQN;
# Dopamine's terminal_on_life_loss), full games in evaluation, 100,000 agent steps (Atari 100k),
# the final weights, a checkpoint every 10,000 agent steps.
DQN_ATARI = dict(total_timesteps=100_000, buffer_size=100_000, batch_size=32, gamma=0.99, life_loss_terminal=True,
                 max_grad_norm=0.0, loss="huber", early_stop=False, keep_best=False, eval_interval=10_000,
                 eval_episodes=5, checkpoint_every=0, checkpoint_steps=10_000, epsilon_start=1.0,
                 train_protocol="sticky", clip_rewards=True)
# DrQ(epsilon), Dopamine labs/atari_100k/configs/DrQ_eps.gin: dueling + double, n = 10, one update
# per agent step, target = online net of the previous step, Adam 1e-4 / eps 1.5e-4, 1,600 warm-up
# steps at epsilon 1, then 1 -> 0.01 over 5,000 steps (Dopamine's linearly_decaying_epsilon:
# 0.01 from step 6,600), evaluation epsilon 0.001, random shifts of 4 pixels.
DQN_DATA_EFFICIENT = dict(variant="dueling-double", n_step=10, learning_starts=1_600, train_frequency=1,
                          gradient_steps=1, target_update="hard", target_update_interval=1, learning_rate=1e-4,
                          optimizer="adam", adam_epsilon=1.5e-4, epsilon_end=0.01,
                          epsilon_schedule="linear-after-warmup", exploration_fraction=0.05,
                          eval_epsilon=0.001, augment_pad=4)
# Nature DQN (Mnih et al. 2015) / HOML's Breakout, its schedule scaled to the 100k budget:
# centered RMSProp 2.5e-4, a train step every 4 agent steps, target copy every 2,000 updates
# (8,000 agent steps), 20,000 warm-up steps (HOML), epsilon 1 -> 0.1 over the first 10% (Nature:
# 1M of 10M frames), evaluation epsilon 0.05.
DQN_NATURE = dict(variant="dqn", n_step=1, learning_starts=20_000, train_frequency=4, gradient_steps=1,
                  target_update="hard", target_update_interval=8_000, learning_rate=2.5e-4, optimizer="rmsprop",
                  epsilon_end=0.1, exploration_fraction=0.1, eval_epsilon=0.05, augment_pad=0)
DQNConfig.PRESETS = (
    Preset(DQN_ATARI, when={"env": is_atari_env}),
    Preset(DQN_DATA_EFFICIENT, when={"env": is_atari_env, "preset": ("auto", "data-efficient")}),
    Preset(DQN_NATURE, when={"env": is_atari_env, "preset": "nature"}),
    Preset({"total_timesteps": 2000, "learning_starts": 500, "eval_interval": 1000, "eval_episodes": 10,
            "checkpoint_every": 20, "hidden": (64, 64)}, quick=True),
    Preset({"total_timesteps": 1_500, "learning_starts": 500, "buffer_size": 5_000, "train_frequency": 4,
            "eval_interval": 0, "eval_episodes": 1, "report_episodes": 3, "checkpoint_every": 2,
            "checkpoint_steps": 0}, when={"env": is_atari_env}, quick=True),
)



@dataclasses.dataclass
class BreakoutPolicyConfig:
    """The committed hand-written Breakout policy, played (no training): ``kcourse run breakout``."""

    policy: str = arg("breakout-dueling-double", "a saved Breakout policy folder (kcourse run dqn --env breakout "
                                                  "writes RUN/policy), or the name of one in agents/trained")
    games: int = arg(10, "full games (5 lives, 27,000-step cap) to play greedily", ge=1)
    epsilon: Optional[float] = arg(None, "evaluation epsilon (default: the policy's eval_epsilon, 0.001 for "
                                         "DrQ(epsilon))", ge=0, le=1)
    protocol: str = arg("sticky", "sticky (repeat_action_probability 0.25, the headline) or atari100k (no sticky "
                                  "actions: the DrQ/SPR tables' setting); both with up to 30 no-op starts",
                        choices=ATARI_PROTOCOLS)
    gif: bool = arg(True, "write agent.gif of the first game")
    gif_steps: int = arg(1_500, "maximum agent steps in agent.gif", ge=1)
    seed: int = arg(3_000_000, "first game's seed, any value (an evaluation: held out by default; training uses "
                               "0-9,999, selection and report evaluations 10,000-1,999,999)", ge=0)


# ----------------------------------------------------------------------------------------------
# FrozenLake with an Embedding q-net (exam part 3)
# ----------------------------------------------------------------------------------------------


# The slippery 4x4 lake's verdict bar (the hand-written and the TF-Agents DQN): the optimal policy succeeds
# about 74% of the time within the 100-step limit, so the report is judged against 0.70, not 0.9 or 1.0.
SLIPPERY_FROZENLAKE_TARGET = 0.70


@dataclasses.dataclass
class FrozenLakeConfig:
    """The exam's FrozenLake DQN (defaults: the 4x4 map, not slippery; ``--slippery`` has a preset)."""

    map_name: str = arg("4x4", "FrozenLake map", choices=("4x4", "8x8"))
    slippery: bool = arg(False, "the slippery lake (moves go sideways 2 times out of 3)")
    episodes: int = arg(3000, "maximum training episodes", ge=1)
    buffer_size: int = arg(50_000, "replay buffer capacity (the course: 50,000)", ge=1)
    batch_size: int = arg(64, "transitions per gradient step", ge=1)
    learning_rate: float = arg(3e-3, "Adam learning rate", gt=0)
    gamma: float = arg(0.95, "discount factor (slippery: 0.99 to value long safe detours)", ge=0, le=1)
    embedding_dim: int = arg(16, "size of the state embedding", ge=1)
    hidden: tuple[int, ...] = arg((32,), "Dense layers after the embedding", ge=1)
    learning_starts: int = arg(64, "experiences before the first update", ge=0)
    train_frequency: int = arg(1, "learn every this many env steps", ge=1)
    target_update_interval: int = arg(50, "env steps between hard target-network copies", ge=1)
    epsilon_start: float = arg(1.0, "initial exploration rate", ge=0, le=1)
    epsilon_end: float = arg(0.01, "final exploration rate", ge=0, le=1)
    epsilon_decay: float = arg(0.95, "epsilon *= this after each episode (course: about 0.999)", gt=0, le=1)
    clear_score: float = arg(0.9, "cleared when the mean score of the last 100 episodes reaches this", gt=0, le=1)
    stop_when_cleared: bool = arg(True, "stop training once cleared")
    log_every: int = arg(500, "print the course's log line every this many episodes", ge=1)
    eval_episodes: int = arg(1000, "greedy evaluation episodes at the end", ge=1)
    gif: bool = arg(True, "write agent.gif of the trained agent")
    seed: int = arg(0, "random seed", ge=0)

    @property
    def env_kwargs(self) -> dict:
        return {"map_name": self.map_name, "is_slippery": self.slippery}

    @property
    def report_target(self) -> float:
        """The report's verdict bar: ``clear_score``, or 0.70 on the slippery lake (its optimum is about 0.74)."""
        return SLIPPERY_FROZENLAKE_TARGET if self.slippery else self.clear_score

    def check(self) -> None:
        _check_train_seed(self.seed)


FrozenLakeConfig.PRESETS = (
    # The slippery lake needs a longer horizon (the safe route is long), slower exploration decay
    # and more episodes. What the user types still wins (keras_impl.config.resolve).
    Preset({"gamma": 0.99, "episodes": 2500, "epsilon_decay": 0.998, "epsilon_end": 0.05, "train_frequency": 2},
           when={"slippery": True}),
    Preset({"episodes": 300, "eval_episodes": 100}, quick=True),
)

# ----------------------------------------------------------------------------------------------
# MovieLens as reinforcement learning
# ----------------------------------------------------------------------------------------------

MOVIELENS_AGENTS = ("dqn", "q-learning", "popular", "greedy", "random")
MOVIELENS_Q_ENVS = 64  # Q-learning's episodes played in lockstep (agents.movielens_rl.TabularQ.train)
REWARD_MODES = ("hybrid", "observed")
OBSERVED_SPLITS = ("train", "all")


@dataclasses.dataclass
class MovieLensRLConfig:
    """Agents and baselines on ``MovieLensRecommendation-v0``."""

    data: str = arg("synthetic", "MovieLens folder (ratings.csv + movies.csv) or 'synthetic'")
    synthetic_size: str = arg("course", "size of the synthetic set with --data synthetic",
                              choices=tuple(SYNTHETIC_SIZES))
    users: int = arg(COURSE_USERS, "users sampled by the course preprocessing (all when fewer)", ge=1)
    recommender: str = arg("", "a .keras recommender trained on the same data (kcourse run recommender); "
                               "empty: train one here")
    rec_epochs: int = arg(2, "epochs when training the recommender here", ge=1)
    rec_batch_size: int = arg(512, "batch size when training the recommender here", ge=1)
    candidates: int = arg(100, "candidate set: the N most-rated films (training ratings)", ge=1)
    k: int = arg(10, "recommendations per episode", ge=1)
    reward: str = arg("hybrid", "hybrid: observed rating else the recommender's prediction; observed: observed only",
                      choices=REWARD_MODES)
    observed: str = arg("train", "ratings that count as observed rewards (train: validation ratings are held out "
                                 "for the hit rate)", choices=OBSERVED_SPLITS)
    unrated_reward: float = arg(0.0, "reward of an unrated film with --reward observed")
    eval_users: int = arg(500, "held-out users every agent is evaluated on (the same for all agents and seeds)", ge=1)
    train_users: int = arg(0, "users the agents train on (0: every user not in the evaluation set)", ge=0)
    agent: str = arg("all", "agent(s) to run", choices=("all",) + MOVIELENS_AGENTS)
    n_seeds: int = arg(1, "agent seeds seed, seed+1, ...; the table shows mean and std over them", ge=1)
    gamma: float = arg(0.5, "discount factor (DQN and Q-learning); the best list is the same for any gamma",
                       ge=0, le=1)
    dqn_episodes: int = arg(4000, "DQN training episodes", ge=1)
    dqn_envs: int = arg(16, "DQN episodes collected in lockstep", ge=1)
    dqn_hidden: tuple[int, ...] = arg((256, 256), "hidden layer sizes of the Q-network", ge=1)
    dqn_lr: float = arg(1e-3, "DQN Adam learning rate", gt=0)
    dqn_batch_size: int = arg(128, "DQN replay batch size", ge=1)
    dqn_gradient_steps: int = arg(2, "gradient steps per lockstep of dqn_envs transitions", ge=1)
    q_episodes: int = arg(20_000, "Q-learning training episodes", ge=1)
    q_alpha: float = arg(0.1, "Q-learning step size", gt=0, le=1)
    q_segments: int = arg(8, "Q-learning user segments (k-means on user embeddings)", ge=1)
    seed: int = arg(0, "seed (data, recommender, user split; agent seeds start here)", ge=0)

    def check(self) -> None:
        # agent seed s = seed + i (i < n_seeds) resets its training episodes' envs with s + j, j < the lockstep width
        _check_train_seed(self.seed, self.n_seeds - 1 + max(self.dqn_envs, MOVIELENS_Q_ENVS) - 1)


MovieLensRLConfig.PRESETS = (
    Preset({"synthetic_size": "small", "candidates": 10, "k": 3, "eval_users": 100, "rec_epochs": 3,
            "rec_batch_size": 256, "dqn_episodes": 400, "q_episodes": 1000}, quick=True),
)

# ----------------------------------------------------------------------------------------------
# TF-Agents DqnAgent (HOML ch. 18): CartPole's settings as defaults, presets for FrozenLake,
# Breakout and --quick
# ----------------------------------------------------------------------------------------------

TFA_ENVS = ("cartpole", "frozenlake")  # and any Atari game (canonical_tfa_env)
TFA_ENV_IDS = {"cartpole": "CartPole-v1", "frozenlake": "FrozenLake-v1"}


def canonical_tfa_env(env: str) -> str:
    """``cartpole``/``frozenlake`` as typed (any case), any spelling of an Atari game as ``ALE/{Game}-v5``."""
    if isinstance(env, str) and env.lower() in TFA_ENVS:
        return env.lower()
    return canonical_env(env)
# Breakout's conv QNetwork (HOML, Nature DQN): (filters, kernel, stride).
BREAKOUT_CONV_LAYERS = ((32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1))


@dataclasses.dataclass
class TfaDqnConfig:
    """TF-Agents DqnAgent on CartPole, FrozenLake or Breakout (HOML ch. 18).

    The defaults are CartPole-v1's: rl-baselines3-zoo's tuned DQN schedule in TF-Agents terms
    (collect 256 steps, then 128 updates against a target network refreshed every 128 updates;
    Dense 256x256, Adam 2.3e-3, gradients clipped to norm 10, epsilon 1.0 -> 0.04 over 8,000
    steps) with 3-step TD targets; it stops once 100 greedy selection episodes pass the selection
    rule for 475 (CartPole-v1's threshold; :func:`agents.evaluation.selection_passes`) and exports
    that policy. Deterministic on CPU by default (``deterministic``).
    """

    env: str = arg("cartpole", "cartpole, frozenlake or an Atari game: breakout, spaceinvaders (HOML's exercise 9), "
                               "pong, ... (each has its preset; --resume keeps the run's)")
    agent: str = arg("dqn", "dqn (DqnAgent, HOML) or ddqn (DdqnAgent: Double DQN targets)", choices=("dqn", "ddqn"))
    iterations: int = arg(300, "total training iterations, each `collect_steps` env steps then `train_steps` agent "
                               "updates (a resumed run continues up to this number)", ge=1)
    slippery: bool = arg(False, "FrozenLake: is_slippery")
    collect_steps: int = arg(256, "environment steps collected per training iteration (update period)", ge=1)
    train_steps: int = arg(128, "agent updates (gradient steps) per training iteration", ge=1)
    initial_collect_steps: int = arg(1_000, "random-policy steps collected before training", ge=0)
    batch_size: int = arg(64, "transitions per gradient step", ge=1)
    replay_capacity: int = arg(100_000, "replay buffer capacity (transitions, all envs together)", ge=2)
    learning_rate: float = arg(2.3e-3, "optimizer learning rate", gt=0)
    optimizer: str = arg("adam", "adam or rmsprop (HOML's centered RMSProp for Breakout)", choices=("adam", "rmsprop"))
    adam_epsilon: float = arg(1e-7, "Adam's epsilon (Keras' default 1e-7; DER/DrQ: 1.5e-4)", gt=0)
    preset: str = arg("auto", "Breakout: homl (HOML's DqnAgent; auto) or data-efficient (DrQ(epsilon) with what "
                              "TF-Agents offers: DdqnAgent, n_step_update 10, dueling head, random shifts)",
                      choices=("auto", "homl", "data-efficient"))
    dueling: bool = arg(False, "Breakout: a dueling head (agents.tfa.networks.AtariQNetwork)")
    augment_pad: int = arg(0, "Breakout: DrQ random shift of the training batch's observations by up to this "
                              "many pixels (a layer active only when training; 0: off)", ge=0, le=16)
    clip_rewards: bool = arg(False, "clip the rewards the agent learns from to [-1, 1] (Atari presets, Nature DQN / DrQ); "
                                    "returns are reported unclipped")
    keep_best: bool = arg(True, "export the best selection evaluation's policy (false: the final policy; Atari "
                                "presets: false)")
    eval_epsilon: float = arg(0.0, "probability of a random action in evaluations (0: greedy; Atari data-efficient "
                                   "preset: DrQ(epsilon)'s 0.001)", ge=0, le=1)
    gamma: float = arg(0.99, "discount factor", gt=0, le=1)
    target_update_period: int = arg(128, "agent updates between target-network updates", ge=1)
    target_update_tau: float = arg(1.0, "target update weight (1.0: hard copy, HOML; 0.005: soft)", gt=0, le=1)
    n_step_update: int = arg(3, "DqnAgent's n_step_update: TD targets over n steps (1: one-step, HOML); the replay "
                                "samples n + 1 consecutive steps", ge=1)
    gradient_clipping: float = arg(10.0, "clip each gradient tensor to this norm (0: no clipping)", ge=0)
    epsilon_start: float = arg(1.0, "initial epsilon of the collect policy", ge=0, le=1)
    epsilon_end: float = arg(0.04, "final epsilon", ge=0, le=1)
    epsilon_decay_steps: int = arg(8_000, "agent (environment) steps over which epsilon decays linearly; "
                                          "HOML's Breakout: 250,000 = 1M ALE frames", ge=1)
    fc_layers: tuple[int, ...] = arg((256, 256), "Dense layer sizes of the QNetwork, comma separated", ge=1)
    num_envs: int = arg(1, "environments collected from in parallel", ge=1)
    parallel: bool = arg(False, "use ParallelPyEnvironment (one process per env) instead of BatchedPyEnvironment "
                                "when num_envs > 1")
    eval_interval: int = arg(2, "iterations between greedy evaluations", ge=1)
    eval_episodes: int = arg(100, "episodes of a periodic greedy evaluation (with a target_return, a 10-episode "
                                  "screen runs first and all of them only when the screen reaches the target)", ge=1)
    final_eval_episodes: int = arg(100, "episodes of the final evaluation of the exported policy", ge=1)
    eval_max_steps: int = arg(0, "cap on steps per evaluation episode (0: the env's own limit)", ge=0)
    target_return: float = arg(475.0, "the report's target; a periodic evaluation of all eval_episodes passes when "
                                      "the lower prediction bound of the report's mean reaches it "
                                      "(agents.evaluation.selection_passes; 0: no target)")
    early_stop: bool = arg(True, "stop at the first passing periodic evaluation and export its policy (false: train "
                                 "all iterations, every evaluation plays all eval_episodes, export the best)")
    log_interval: int = arg(5, "iterations between TensorBoard/console logs", ge=1)
    checkpoint_interval: int = arg(50, "iterations between checkpoints (the last 2 are kept; Ctrl-C saves one)",
                                   ge=1)
    checkpoint_replay_buffer: bool = arg(True, "also checkpoint the replay buffer (needed for an exact resume; "
                                               "large for Breakout)")
    jit_compile: bool = arg(False, "compile the train step with XLA (its effect is measured in docs/tfa.md)")
    deterministic: bool = arg(True, "same command and seed, same run on CPU: the replay sampled one call at a time "
                                    "and TensorFlow op determinism (false: 3 parallel sampling calls and prefetch, "
                                    "faster, not reproducible; the cost is in docs/tfa.md)")
    gif: bool = arg(True, "write agent.gif of the trained greedy policy")
    gif_steps: int = arg(300, "maximum frames in agent.gif", ge=1)
    seed: int = arg(0, "random seed", ge=0)

    @property
    def atari(self) -> bool:
        """Whether ``env`` is an Atari game (its presets, conv network, frame replay)."""
        return is_atari_env(self.env)

    @property
    def env_id(self) -> str:
        return TFA_ENV_IDS.get(self.env, self.env)

    @property
    def env_kwargs(self) -> dict:
        """The env's keyword arguments: FrozenLake's slipperiness; an Atari game's protocol (training and
        selection play sticky actions: agents.atari)."""
        if self.atari:
            from agents.atari import protocol_kwargs  # (imports no TensorFlow)

            return protocol_kwargs(self.env_id)
        return {"is_slippery": bool(self.slippery)} if self.env == "frozenlake" else {}

    @property
    def report_target(self) -> float:
        """The report's verdict bar: ``target_return``, or 0.70 on the slippery lake (whose optimum is about 0.74)."""
        return SLIPPERY_FROZENLAKE_TARGET if self.env == "frozenlake" and self.slippery else self.target_return

    @property
    def epsilon_decay_updates(self) -> int:
        """Epsilon's decay in agent updates (the schedule is evaluated at the train step)."""
        return max(1, self.epsilon_decay_steps * self.train_steps // self.collect_steps)

    def check(self) -> None:
        if self.env not in TFA_ENVS and not self.atari:
            raise ValueError(f"Received an invalid value for argument `env`: expected cartpole, frozenlake or an "
                             f"Atari game (breakout, spaceinvaders, pong, ...), got {self.env!r}")
        if not self.atari and (self.preset != "auto" or self.dueling or self.augment_pad):
            raise ValueError(f"Received an invalid value for argument `env`: preset/dueling/augment_pad are "
                             f"for Atari games (--env breakout), not {self.env!r}")
        if self.atari and importlib.util.find_spec("ale_py") is None:
            raise ValueError(f"Received an invalid value for argument `env`: {self.env!r} needs ale-py (with its "
                             f"ROMs), which is not installed: pip install 'kcourse[atari]'")
        if self.initial_collect_steps + self.collect_steps < 2 * self.num_envs:
            raise ValueError("Received an invalid value for argument `initial_collect_steps`: the replay buffer needs "
                             "2 consecutive steps per env before the first training step")
        self._check_sizes()
        _check_train_seed(self.seed, self.num_envs - 1)  # env i reset with seed + i

    def _check_sizes(self) -> None:
        """The replay's window and memory, before TF-Agents allocates or samples anything (its own errors are
        an "is empty" assertion or an InvalidArgumentError traceback)."""
        from agents.atari import FRAME_STACK
        from agents.replay import check_memory

        lead = FRAME_STACK - 1 if self.atari else 0  # Atari stores single frames: a window starts 3 steps early
        steps = self.n_step_update + 1 + lead  # frames of one sampled window
        if self.replay_capacity < self.num_envs * max(steps, 2):
            raise ValueError(f"Received an invalid value for argument `replay_capacity`: expected >= "
                             f"{self.num_envs * max(steps, 2):,} ({max(steps, 2)} per env: a sampled window of "
                             f"n_step_update {self.n_step_update} + 1{f' + {lead} stack' if lead else ''} frames, "
                             f"for {self.num_envs} env(s)), got {self.replay_capacity}")
        frame = 84 * 84 if self.atari else 16  # bytes of a stored observation (a uint8 frame; CartPole's 4 floats)
        check_memory(self.replay_capacity * (frame + 32), "replay_capacity", self.replay_capacity, "the replay buffer")
        # a batch of windows, and its stacked observations in float32 in the network
        batch = self.batch_size * (steps * (frame + 32) + 2 * frame * (FRAME_STACK if self.atari else 1) * 4)
        check_memory(batch, "batch_size", self.batch_size, "one sampled batch")


TfaDqnConfig.CANONICAL = {"env": canonical_tfa_env}
TfaDqnConfig.FIXED_ON_RESUME = ("env", "agent", "slippery", "fc_layers", "optimizer", "num_envs", "replay_capacity",
                                "checkpoint_replay_buffer", "preset", "dueling")
TfaDqnConfig.PRESETS = (
    # FrozenLake-v1 4x4: the state index is one-hot encoded by the QNetwork's preprocessing layer
    # and, with no hidden layer, the QNetwork is a Q-table trained by DQN's replay and target net.
    # Stops at a greedy success rate of 1.0 (reachable without slipping only: the optimal
    # slippery policy succeeds 74% of the time within the 100-step limit).
    Preset(dict(iterations=30_000, collect_steps=1, train_steps=1, initial_collect_steps=1_000, batch_size=64,
                replay_capacity=50_000, learning_rate=1e-3, optimizer="adam", target_update_period=200, n_step_update=1,
                gradient_clipping=0.0, epsilon_end=0.05, epsilon_decay_steps=10_000, fc_layers=(),
                eval_interval=1_000, eval_episodes=200, final_eval_episodes=1_000, target_return=1.0,
                log_interval=1_000, checkpoint_interval=5_000, gif_steps=100), when={"env": "frozenlake"}),
    # The slippery lake: the report's target is 0.70 (the optimum is about 0.74); training runs all
    # iterations (no early stop), every evaluation plays all its 200 episodes (no 10-episode screen,
    # which picked the best of mostly 10-episode samples), the best one is exported.
    Preset(dict(target_return=SLIPPERY_FROZENLAKE_TARGET, early_stop=False),
           when={"env": "frozenlake", "slippery": True}),
    # Breakout, HOML's hyperparameters: conv 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512; centered
    # RMSProp 2.5e-4; epsilon 1.0 -> 0.01 over 250,000 agent steps (62,500 updates = 1M ALE
    # frames); target update every 2,000 updates; a train step every 4 collect steps; 20,000
    # random initial steps; a 100,000-transition uint8 buffer as in HOML's notebook (each frame
    # stored once: 0.7 GB; not checkpointed). 62,500 iterations = 250,000 agent steps, greedy
    # evaluations every 25,000 (10 episodes, capped at 27,000 steps each).
    Preset(dict(iterations=62_500, collect_steps=4, train_steps=1, initial_collect_steps=20_000, batch_size=32,
                replay_capacity=100_000, learning_rate=2.5e-4, optimizer="rmsprop", target_update_period=2_000, n_step_update=1,
                gradient_clipping=0.0, epsilon_end=0.01, epsilon_decay_steps=250_000, fc_layers=(512,),
                eval_interval=6_250, eval_episodes=10, final_eval_episodes=10, eval_max_steps=27_000,
                target_return=0.0, log_interval=1_000, checkpoint_interval=6_250, checkpoint_replay_buffer=False,
                gif_steps=600, clip_rewards=True, keep_best=False), when={"env": is_atari_env}),
    # Breakout, DrQ(epsilon) (Dopamine's DrQ_eps.gin) with TF-Agents' own parts: DdqnAgent,
    # n_step_update 10, Adam 1e-4 / eps 1.5e-4, a target update every update, one update per agent
    # step after 1,600 random steps, epsilon 1 -> 0.01 over 5,000 updates, a dueling head and random
    # shifts (agents.tfa.networks); 100,000 agent steps. docs/tfa.md cites each value.
    Preset(dict(agent="ddqn", iterations=100_000, collect_steps=1, train_steps=1, initial_collect_steps=1_600,
                batch_size=32, replay_capacity=100_000, learning_rate=1e-4, optimizer="adam", adam_epsilon=1.5e-4,
                target_update_period=1, n_step_update=10, gradient_clipping=0.0, epsilon_end=0.01,
                epsilon_decay_steps=5_000, fc_layers=(512,), dueling=True, augment_pad=4, eval_interval=10_000,
                eval_episodes=5, final_eval_episodes=100, eval_max_steps=27_000, target_return=0.0, eval_epsilon=0.001,
                log_interval=1_000, checkpoint_interval=10_000, checkpoint_replay_buffer=False, gif_steps=600),
           when={"env": is_atari_env, "preset": "data-efficient"}),
    # --quick: smoke tests that finish in well under a minute on 2 CPU cores.
    Preset(dict(iterations=4, collect_steps=64, train_steps=64, initial_collect_steps=200, eval_interval=2,
                eval_episodes=3, final_eval_episodes=5, target_return=0.0, log_interval=2, checkpoint_interval=2,
                gif_steps=60), when={"env": "cartpole"}, quick=True),
    Preset(dict(iterations=600, initial_collect_steps=200, eval_interval=300, eval_episodes=20, final_eval_episodes=20,
                log_interval=200, checkpoint_interval=300, gif_steps=30), when={"env": "frozenlake"}, quick=True),
    Preset(dict(iterations=200, initial_collect_steps=200, replay_capacity=2_000, batch_size=32, eval_interval=200,
                eval_episodes=1, final_eval_episodes=1, eval_max_steps=300, log_interval=100, checkpoint_interval=200,
                checkpoint_replay_buffer=True, gif_steps=60), when={"env": is_atari_env}, quick=True),
)
