"""The ``tfa-dqn`` config and its presets (CartPole, FrozenLake, Breakout).

Every tunable field of :class:`TfaDqnConfig` defaults to ``None``, meaning "the preset's value"
(see :data:`PRESETS`), so the presets stay the one place that defines the numbers and a resumed
run can tell the fields the user set (not ``None``) from those it should keep from the run it
resumes. :func:`resolve` turns a config into a :class:`Resolved` one with every field filled in.

This module imports neither TensorFlow nor TF-Agents (the CLI imports it for ``kcourse list``).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Optional

from keras_impl.config import arg

ENVS = ("cartpole", "frozenlake", "breakout")
BUDGETS = ("full", "quick")
RESOLVED_FILE = "tfa_config.json"  # the resolved config of a run (config.json holds the CLI's)


@dataclasses.dataclass
class TfaDqnConfig:
    """TF-Agents DqnAgent on CartPole, FrozenLake or Breakout (HOML ch. 18)."""

    env: Optional[str] = arg(None, "preset: cartpole, frozenlake or breakout (default cartpole; "
                                   "--resume keeps the resumed run's)", choices=ENVS)
    agent: Optional[str] = arg(None, "dqn (DqnAgent, HOML) or ddqn (DdqnAgent: Double DQN targets)",
                               choices=("dqn", "ddqn"))
    budget: Optional[str] = arg(None, "'full' or 'quick' (tiny smoke-test budget; --quick sets it)", choices=BUDGETS)
    iterations: Optional[int] = arg(None, "total training iterations, each `collect_steps` env steps then "
                                          "`train_steps` agent updates (a resumed run continues up to this number)")
    slippery: Optional[bool] = arg(None, "FrozenLake: is_slippery (default False)")
    collect_steps: Optional[int] = arg(None, "environment steps collected per training iteration (update period)")
    train_steps: Optional[int] = arg(None, "agent updates (gradient steps) per training iteration")
    initial_collect_steps: Optional[int] = arg(None, "random-policy steps collected before training")
    batch_size: Optional[int] = arg(None, "transitions per gradient step")
    replay_capacity: Optional[int] = arg(None, "replay buffer capacity (transitions, all envs together)")
    learning_rate: Optional[float] = arg(None, "optimizer learning rate")
    optimizer: Optional[str] = arg(None, "adam or rmsprop (HOML's centered RMSProp for Breakout)",
                                   choices=("adam", "rmsprop"))
    gamma: Optional[float] = arg(None, "discount factor")
    target_update_period: Optional[int] = arg(None, "agent updates between target-network updates")
    target_update_tau: Optional[float] = arg(None, "target update weight (1.0: hard copy, HOML; 0.005: soft)")
    gradient_clipping: Optional[float] = arg(None, "clip each gradient tensor to this norm (0: no clipping)")
    epsilon_start: Optional[float] = arg(None, "initial epsilon of the collect policy")
    epsilon_end: Optional[float] = arg(None, "final epsilon")
    epsilon_decay_steps: Optional[int] = arg(None, "agent (environment) steps over which epsilon decays "
                                                   "linearly; HOML: 250,000 = 1M ALE frames")
    fc_layers: Optional[tuple[int, ...]] = arg(None, "Dense layer sizes of the QNetwork, comma separated")
    num_envs: Optional[int] = arg(None, "environments collected from in parallel")
    parallel: Optional[bool] = arg(None, "use ParallelPyEnvironment (one process per env) instead of "
                                         "BatchedPyEnvironment when num_envs > 1")
    eval_interval: Optional[int] = arg(None, "iterations between greedy evaluations")
    eval_episodes: Optional[int] = arg(None, "episodes per periodic greedy evaluation")
    final_eval_episodes: Optional[int] = arg(None, "episodes of the final evaluation of the exported policy")
    eval_max_steps: Optional[int] = arg(None, "cap on steps per evaluation episode (0: the env's own limit)")
    target_return: Optional[float] = arg(None, "stop once a periodic evaluation reaches this mean return "
                                               "(0: never stop early)")
    log_interval: Optional[int] = arg(None, "iterations between TensorBoard/console logs")
    checkpoint_interval: Optional[int] = arg(None, "iterations between checkpoints")
    checkpoint_replay_buffer: Optional[bool] = arg(None, "also checkpoint the replay buffer (needed for "
                                                         "an exact resume; large for Breakout)")
    gif: Optional[bool] = arg(None, "write agent.gif of the trained greedy policy")
    gif_steps: Optional[int] = arg(None, "maximum frames in agent.gif")
    resume: str = arg("", "run dir to resume")
    seed: int = arg(0, "random seed")


# The presets: every field of TfaDqnConfig except env/budget/resume/seed.
_COMMON = dict(
    slippery=False, num_envs=1, parallel=False, epsilon_start=1.0, checkpoint_replay_buffer=True,
    gif=True, eval_max_steps=0, target_return=0.0, target_update_tau=1.0,
    gradient_clipping=0.0, train_steps=1, agent="dqn",
)

PRESETS: dict[str, dict] = {
    # CartPole-v1, rl-baselines3-zoo's tuned DQN schedule in TF-Agents terms: collect 256 steps, then
    # 128 updates against a target network refreshed at the start of each round (every 128
    # updates); Dense 256x256, Adam 2.3e-3, gradients clipped to norm 10, epsilon 1.0 -> 0.04 over
    # 8,000 steps. Stops once 20 greedy episodes average >= 495 and exports that policy.
    "cartpole": dict(
        _COMMON, iterations=300, collect_steps=256, train_steps=128, initial_collect_steps=1_000,
        batch_size=64, replay_capacity=100_000, learning_rate=2.3e-3, optimizer="adam", gamma=0.99,
        target_update_period=128, gradient_clipping=10.0, epsilon_end=0.04, epsilon_decay_steps=8_000,
        fc_layers=(256, 256), eval_interval=2, eval_episodes=20, final_eval_episodes=100, target_return=495.0,
        log_interval=5, checkpoint_interval=50, gif_steps=300,
    ),
    # FrozenLake-v1 4x4: the state index is one-hot encoded by the QNetwork's preprocessing layer
    # and, with no hidden layer, the QNetwork is a Q-table trained by DQN's replay and target net.
    # Stops early at a greedy success rate of 1.0 (reachable without slipping only: the optimal
    # slippery policy succeeds 74% of the time within the 100-step limit).
    "frozenlake": dict(
        _COMMON, iterations=30_000, collect_steps=1, initial_collect_steps=1_000, batch_size=64,
        replay_capacity=50_000, learning_rate=1e-3, optimizer="adam", gamma=0.99, target_update_period=200,
        epsilon_end=0.05, epsilon_decay_steps=10_000, fc_layers=(), eval_interval=1_000, eval_episodes=200,
        final_eval_episodes=1_000, target_return=1.0, log_interval=1_000, checkpoint_interval=5_000,
        gif_steps=100,
    ),
    # Breakout: HOML's hyperparameters (conv 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512; RMSProp 2.5e-4;
    # epsilon 1.0 -> 0.01 over 250,000 agent steps = 62,500 updates = 1M ALE frames; target update
    # every 2,000 updates; Huber loss; gamma 0.99; a train step every 4 collect steps; 20,000
    # random initial steps; a 100,000-transition uint8 replay buffer as in HOML's notebook).
    "breakout": dict(
        _COMMON, iterations=250_000, collect_steps=4, initial_collect_steps=20_000, batch_size=32,
        replay_capacity=100_000, learning_rate=2.5e-4, optimizer="rmsprop", gamma=0.99,
        target_update_period=2_000, epsilon_end=0.01, epsilon_decay_steps=250_000, fc_layers=(512,),
        eval_interval=25_000, eval_episodes=5, final_eval_episodes=10, eval_max_steps=27_000,
        log_interval=1_000, checkpoint_interval=25_000, checkpoint_replay_buffer=False, gif_steps=600,
    ),
}

# --quick: a smoke test that finishes in well under a minute on 2 CPU cores.
QUICK: dict[str, dict] = {
    "cartpole": dict(iterations=4, collect_steps=64, train_steps=64, initial_collect_steps=200, eval_interval=2,
                     eval_episodes=3, final_eval_episodes=5, target_return=0.0, log_interval=2, checkpoint_interval=2,
                     gif_steps=60),
    "frozenlake": dict(iterations=600, initial_collect_steps=200, eval_interval=300, eval_episodes=20,
                       final_eval_episodes=20, log_interval=200, checkpoint_interval=300, gif_steps=30),
    "breakout": dict(iterations=200, initial_collect_steps=200, replay_capacity=2_000, batch_size=32,
                     eval_interval=200, eval_episodes=1, final_eval_episodes=1, eval_max_steps=300,
                     log_interval=100, checkpoint_interval=200, checkpoint_replay_buffer=True, gif_steps=60),
}

# Breakout's conv QNetwork: (filters, kernel, stride).
BREAKOUT_CONV_LAYERS = ((32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1))


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A :class:`TfaDqnConfig` with every field filled in (from the preset, the resumed run, the user)."""

    env: str
    budget: str
    agent: str
    iterations: int
    slippery: bool
    collect_steps: int
    train_steps: int
    initial_collect_steps: int
    batch_size: int
    replay_capacity: int
    learning_rate: float
    optimizer: str
    gamma: float
    target_update_period: int
    target_update_tau: float
    gradient_clipping: float
    epsilon_start: float
    epsilon_end: float
    epsilon_decay_steps: int
    fc_layers: tuple
    num_envs: int
    parallel: bool
    eval_interval: int
    eval_episodes: int
    final_eval_episodes: int
    eval_max_steps: int
    target_return: float
    log_interval: int
    checkpoint_interval: int
    checkpoint_replay_buffer: bool
    gif: bool
    gif_steps: int
    seed: int

    @property
    def env_id(self) -> str:
        return {"cartpole": "CartPole-v1", "frozenlake": "FrozenLake-v1", "breakout": "BreakoutNoFrameskip-v4"}[self.env]

    @property
    def env_kwargs(self) -> dict:
        return {"is_slippery": bool(self.slippery)} if self.env == "frozenlake" else {}

    @property
    def epsilon_decay_updates(self) -> int:
        """Epsilon's decay in agent updates (the schedule is evaluated at the train step)."""
        return max(1, self.epsilon_decay_steps * self.train_steps // self.collect_steps)


def _check_positive(name: str, value, minimum=1) -> None:
    if value < minimum:
        raise ValueError(f"Received an invalid value for argument `{name}`: expected >= {minimum}, got {value!r}")


def resolve(cfg: TfaDqnConfig, saved: dict | None = None) -> Resolved:
    """Fill ``cfg``'s ``None`` fields: from ``saved`` (a resumed run's resolved config), else the preset.

    Raises:
        ValueError: a bad value, a resumed run of another environment, or Breakout without ale-py.
    """
    saved = dict(saved or {})
    env = cfg.env or saved.get("env") or "cartpole"
    if env not in ENVS:
        raise ValueError(f"Received an invalid value for argument `env`: expected one of {', '.join(ENVS)}, got {env!r}")
    if saved and saved.get("env") != env:
        raise ValueError(f"Received an invalid value for argument `env`: {env!r}, but the run being resumed "
                         f"trained on {saved.get('env')!r}")
    if env == "breakout" and importlib.util.find_spec("ale_py") is None:
        raise ValueError("Received an invalid value for argument `env`: 'breakout' needs ale-py (with its ROMs), "
                         "which is not installed: pip install 'kcourse[atari]'")
    budget = cfg.budget or saved.get("budget") or "full"
    values = dict(PRESETS[env])
    if budget == "quick":
        values.update(QUICK[env])
    values.update({k: v for k, v in saved.items() if k in values})
    user = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
            if f.name in values and getattr(cfg, f.name) is not None}
    values.update(user)
    values["fc_layers"] = tuple(int(n) for n in values["fc_layers"])
    resolved = Resolved(env=env, budget=budget, seed=int(saved.get("seed", cfg.seed)), **values)
    for name in ("iterations", "collect_steps", "train_steps", "batch_size", "replay_capacity", "target_update_period",
                 "num_envs", "eval_interval", "eval_episodes", "final_eval_episodes", "log_interval",
                 "checkpoint_interval", "epsilon_decay_steps"):
        _check_positive(name, getattr(resolved, name))
    _check_positive("initial_collect_steps", resolved.initial_collect_steps, 0)
    if resolved.initial_collect_steps + resolved.collect_steps < 2 * resolved.num_envs:
        raise ValueError("Received an invalid value for argument `initial_collect_steps`: the replay buffer needs "
                         "2 consecutive steps per env before the first training step")
    if not 0.0 < resolved.gamma <= 1.0:
        raise ValueError(f"Received an invalid value for argument `gamma`: expected 0 < gamma <= 1, got {resolved.gamma}")
    if not 0.0 < resolved.target_update_tau <= 1.0:
        raise ValueError(f"Received an invalid value for argument `target_update_tau`: expected 0 < tau <= 1, "
                         f"got {resolved.target_update_tau}")
    if not 0.0 < resolved.learning_rate:
        raise ValueError(f"Received an invalid value for argument `learning_rate`: expected > 0, got {resolved.learning_rate}")
    for name in ("epsilon_start", "epsilon_end"):
        if not 0.0 <= getattr(resolved, name) <= 1.0:
            raise ValueError(f"Received an invalid value for argument `{name}`: expected 0..1, got {getattr(resolved, name)}")
    if resolved.replay_capacity < resolved.num_envs * 2:
        raise ValueError(f"Received an invalid value for argument `replay_capacity`: expected >= 2 per env, "
                         f"got {resolved.replay_capacity} for {resolved.num_envs} envs")
    return resolved


def read_resolved(run_dir: str | Path) -> dict | None:
    """The resolved config a run wrote (None when the run never started)."""
    path = Path(run_dir) / RESOLVED_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())
