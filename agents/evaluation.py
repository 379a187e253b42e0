"""Evaluation and policy-regression helpers users can import into their own pytest suites.

A *policy* here is a callable that maps a **batch** of observations ``[N, *obs_shape]`` to a
batch of actions ``[N]`` (batching is what makes evaluating a neural policy fast: one model call
per step for all episodes, never ``model.predict`` per step). Wrap a one-observation function
with :func:`from_single`, a Keras Q-network with :func:`greedy`.

Example:
    >>> from agents.evaluation import evaluate, assert_policy_return, from_single
    >>> angle = from_single(lambda obs: 0 if obs[2] < 0 else 1)
    >>> result = evaluate(angle, "CartPole-v1", episodes=20, seed=0)
    >>> result.mean > 30
    True
    >>> assert_policy_return(angle, "CartPole-v1", min_mean=30, episodes=20, seed=0)

A stochastic policy samples from the model's distribution with its own seeded generator
(:func:`stochastic`), so a seeded evaluation stays deterministic. On the command line::

    kcourse eval runs/policy-gradient__1__.../policy --episodes 100 --seed 0 --render gif
    kcourse eval random --env CartPole-v1 --episodes 20

Saved policies (``policy.json`` beside the model) are written and read by :mod:`agents.policy_files`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from agents.atari import make_agent_env
from agents.envs import resolve_env_id

Policy = Callable[[np.ndarray], np.ndarray]

# Episode seeds. What a run selects on is never what it reports, so greedy evaluations draw their
# reset seeds from two disjoint ranges, neither of which holds a training seed (training envs are
# seeded with the run's ``seed`` plus a small offset):
#   selection (early stop, best weights, the 10-episode screen): seeds in SELECT_SEEDS;
#   the reported result (eval_mean, reached, the demo's verdict, docs figures): REPORT_EPISODES
#   episodes reset with REPORT_SEED, REPORT_SEED + 1, ..., played once, after training.
TRAIN_SEEDS = range(0, 10_000)  # every reset seed a training env may get: seed + offset (check_train_seed)
SELECT_SEEDS = range(10_000, 1_000_000)
REPORT_SEEDS = range(1_000_000, 2_000_000)
SELECT_SEED, REPORT_SEED = SELECT_SEEDS.start, REPORT_SEEDS.start
REPORT_EPISODES = 100


def check_train_seed(seed: int, largest_offset: int = 0) -> int:
    """Refuse a training ``--seed`` whose training envs would reach the selection or report seeds.

    An exercise seeds its training envs with ``seed + offset`` for offsets up to ``largest_offset``
    (e.g. ``episodes_per_update - 1``); all of them must lie in :data:`TRAIN_SEEDS`. Evaluation
    commands (``kcourse eval --seed``, ``kcourse run breakout --seed``) choose evaluation episodes
    and do not call this.

    Returns:
        ``seed``.

    Raises:
        ValueError: one line naming ``--seed`` and the allowed range.
    """
    highest = TRAIN_SEEDS.stop - 1 - int(largest_offset)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= highest:
        why = (f"its training envs are reset with seeds seed..seed + {largest_offset:,}" if largest_offset
               else "its training env is reset with it")
        raise ValueError(f"Received an invalid value for argument `--seed`: expected an integer from 0 to "
                         f"{highest:,} ({why}, which must stay below the selection seeds from {SELECT_SEED:,}), "
                         f"got {seed!r}")
    return int(seed)


def train_seed(seed: int, offset: int) -> int:
    """The reset seed ``seed + offset`` of a training env, wrapped to stay in :data:`TRAIN_SEEDS`
    (an offset that grows without bound, e.g. the episode a resumed run starts at)."""
    return TRAIN_SEEDS.start + (int(seed) + int(offset) - TRAIN_SEEDS.start) % len(TRAIN_SEEDS)


def select_seed(offset: int = 0, episodes: int = 1) -> int:
    """The first seed of a selection evaluation of ``episodes`` episodes that varies with ``offset``
    (e.g. the iteration): ``SELECT_SEED + offset``, wrapped so that all its seeds stay in
    :data:`SELECT_SEEDS`."""
    span = len(SELECT_SEEDS) - episodes
    if span <= 0:
        raise ValueError(f"Received an invalid value for argument `episodes`: expected at most "
                         f"{len(SELECT_SEEDS) - 1} selection episodes, got {episodes}")
    return SELECT_SEED + int(offset) % span


def seed_span(result: "EvalResult") -> list[int]:
    """``[first, last]`` reset seed of an evaluation's episodes (what result.json states)."""
    return [int(result.seed), int(result.seed) + len(result.returns) - 1]


# ----------------------------------------------------------------------------------------------
# Policy adapters
# ----------------------------------------------------------------------------------------------


def from_single(fn: Callable[[Any], Any]) -> Policy:
    """Turn ``fn(obs) -> action`` into a batched policy ``[N, ...] -> [N]``."""

    def policy(obs_batch):
        return np.asarray([fn(obs) for obs in obs_batch])

    policy.__name__ = getattr(fn, "__name__", "policy")
    return policy


def greedy(model) -> Policy:
    """``argmax`` over a model's outputs (Q-values or logits), one model call per batch."""

    def policy(obs_batch):
        scores = model(np.asarray(obs_batch), training=False)  # [N, A]
        return np.argmax(np.asarray(scores), axis=-1)

    return policy


def random_policy(action_space, seed: int = 0) -> Policy:
    """Uniformly random actions (a baseline; seeded)."""
    rng = np.random.default_rng(seed)

    def policy(obs_batch):
        return rng.integers(action_space.n, size=len(obs_batch))

    return policy


def epsilon_greedy(policy: Policy, n_actions: int, epsilon: float, seed: int = 0) -> Policy:
    """``policy``, except that each action is uniformly random with probability ``epsilon`` (seeded).

    Atari evaluations use a small epsilon (DrQ(epsilon): 0.001, Nature DQN: 0.05) so that a greedy
    policy cannot loop forever; ``epsilon = 0`` returns ``policy`` itself.
    """
    if epsilon <= 0:
        return policy
    rng = np.random.default_rng(seed)

    def act(obs_batch):
        chosen = np.asarray(policy(obs_batch))
        return np.where(rng.random(len(chosen)) < epsilon, rng.integers(n_actions, size=len(chosen)), chosen)

    return act


STOCHASTIC_KINDS = ("softmax", "bernoulli-left")


def stochastic(model, kind: str = "softmax", seed: int = 0) -> Policy:
    """Sample actions from a policy model's distribution (seeded: deterministic per seed).

    Args:
        model: a Keras model; ``kind="softmax"``: ``[N, A]`` logits; ``kind="bernoulli-left"``:
            ``[N, 1]`` P(action 0) (HOML's CartPole net).
        kind: which output the model has.
        seed: seeds the generator the actions are drawn with.
    """
    if kind not in STOCHASTIC_KINDS:
        raise ValueError(f"Received an invalid value for argument `kind`: expected one of {', '.join(STOCHASTIC_KINDS)}, "
                         f"got {kind!r} (an 'argmax' policy has no action distribution to sample)")
    rng = np.random.default_rng(seed)

    def policy(obs_batch):
        out = np.asarray(model(np.asarray(obs_batch, dtype="float32"), training=False), dtype=np.float64)
        if kind == "bernoulli-left":
            return (rng.random(len(out)) > out[:, 0]).astype(np.int64)  # P(left) -> action 0
        probs = np.exp(out - out.max(axis=-1, keepdims=True))  # softmax of the logits  [N, A]
        cdf = np.cumsum(probs, axis=-1)
        u = rng.random((len(out), 1)) * cdf[:, -1:]
        return np.minimum((cdf <= u).sum(axis=-1), out.shape[-1] - 1)

    return policy


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class EvalResult:
    """The outcome of :func:`evaluate`. ``returns[i]`` is episode ``i``'s (seed ``seed + i``)."""

    mean: float
    std: float
    min: float
    max: float
    returns: list[float]
    lengths: list[int]
    env_id: str
    seed: int

    def __iter__(self):  # allows `mean, std, mn, mx, returns = evaluate(...)`
        return iter((self.mean, self.std, self.min, self.max, self.returns))

    @property
    def distinct(self) -> int:
        """How many different ``(return, length)`` outcomes the episodes had: a deterministic env
        (Atari without sticky actions) replays a few games whatever the seeds."""
        return len(set(zip(self.returns, self.lengths)))

    @property
    def distinct_phrase(self) -> str:
        """``"7 distinct outcomes"`` (``"1 distinct outcome"``): the one wording every report uses."""
        return f"{self.distinct} distinct outcome{'' if self.distinct == 1 else 's'}"

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """A ``confidence`` interval of the mean over these episodes: SciPy's BCa bootstrap (9,999
        resamples, a fixed generator, so the same returns give the same interval). Episode returns are
        far from normal (Atari games end on lives lost), hence a bootstrap, not a t interval; one
        episode, or episodes that all scored the same, give ``(mean, mean)``."""
        values = np.asarray(self.returns, dtype=np.float64)
        if len(values) < 2 or np.all(values == values[0]):
            return float(self.mean), float(self.mean)
        from scipy import stats

        ci = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=9_999,
                             method="BCa", rng=np.random.default_rng(0)).confidence_interval
        return float(ci.low), float(ci.high)

    def summary(self) -> str:
        return (f"{self.env_id}: mean {self.mean:.2f} +/- {self.std:.2f} (min {self.min:.1f}, "
                f"max {self.max:.1f}) over {len(self.returns)} episodes ({self.distinct_phrase}), "
                f"seed {self.seed}")


def evaluate(policy: Policy, env_id: str, episodes: int = 100, seed: int = 0, env_kwargs: dict | None = None,
             max_steps: int | None = None, env_factory: Callable[..., Any] | None = None) -> EvalResult:
    """Run ``episodes`` episodes in lockstep and return their undiscounted returns.

    Episode ``i`` is the first episode of its own environment, reset with ``seed + i``, so the
    result is deterministic for a deterministic policy and independent of ``episodes`` ordering.

    Args:
        policy: batched policy ``[N, *obs] -> [N]`` (greedy or stochastic; a stochastic policy
            should carry its own seeded generator).
        env_id: environment id or alias (see :func:`agents.envs.make_env`).
        episodes: number of episodes (>= 1).
        seed: base seed.
        env_kwargs: passed to ``make_env``.
        max_steps: optional cap on steps per episode, on top of the env's own time limit.
        env_factory: build envs with this instead of ``make_env`` (wrapped envs, e.g. Atari).
    """
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"Received an invalid value for argument `episodes`: expected an integer >= 1, got {episodes!r}")
    env_id = resolve_env_id(env_id)
    env_kwargs = dict(env_kwargs or {})
    factory = env_factory or (lambda **kw: make_agent_env(env_id, **kw))  # Breakout: its preprocessing
    envs = [factory(seed=seed + i, **env_kwargs) for i in range(episodes)]
    try:
        obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
        returns = np.zeros(episodes, dtype=np.float64)
        lengths = np.zeros(episodes, dtype=np.int64)
        live = np.ones(episodes, dtype=bool)
        while live.any():
            idx = np.flatnonzero(live)
            actions = np.asarray(policy(np.stack([obs[i] for i in idx])))
            if actions.shape[0] != len(idx):
                raise ValueError(f"policy returned {actions.shape[0]} actions for a batch of {len(idx)} observations")
            for i, action in zip(idx, actions):
                action = action.item() if np.ndim(action) == 0 else action
                obs[i], reward, terminated, truncated, _ = envs[i].step(action)
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated or truncated or (max_steps is not None and lengths[i] >= max_steps):
                    live[i] = False
    finally:
        for env in envs:
            env.close()
    return EvalResult(mean=float(returns.mean()), std=float(returns.std()), min=float(returns.min()),
                      max=float(returns.max()), returns=returns.tolist(), lengths=lengths.tolist(),
                      env_id=env_id, seed=seed)


SCREEN_EPISODES = 10  # a periodic evaluation with a target first plays this many episodes


def screened(run_episodes: Callable[[int], EvalResult], episodes: int, target: float | None) -> EvalResult:
    """A periodic greedy evaluation of ``episodes`` episodes that stops early when it cannot pass ``target``.

    With a target, the first :data:`SCREEN_EPISODES` episodes run alone and all ``episodes`` only
    when those reach it: most evaluations of an unfinished agent stop there. Without a target, all
    of them run at once. ``run_episodes(n)`` evaluates the first ``n`` episodes of a fixed seed
    sequence (:func:`evaluate` with a fixed ``seed``), so a passing screen's episodes are the first
    ones of the full evaluation; the caller tells a full result by ``len(result.returns)``.
    """
    if target is None or episodes <= SCREEN_EPISODES:
        return run_episodes(episodes)
    result = run_episodes(SCREEN_EPISODES)
    return run_episodes(episodes) if result.mean >= target else result


SELECTION_Z = 1.645  # one-sided 95% normal quantile of the selection rule


def selection_bound(returns, report_episodes: int = REPORT_EPISODES, z: float = SELECTION_Z) -> float:
    """The lower prediction bound of a report's mean from a selection evaluation's ``returns``.

    The report plays ``report_episodes`` other episodes of the same policy. With ``n`` selection
    returns of mean ``m`` and sample standard deviation ``s`` (``ddof=1``), the difference of the two
    means has standard error ``s * sqrt(1/n + 1/report_episodes)``, so (normal approximation) the
    report's mean falls below ``m - z * s * sqrt(1/n + 1/report_episodes)`` with probability
    ``1 - Phi(z)``: 5% for ``z = 1.645``. Fewer than 2 returns give no spread to measure: ``-inf``.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if not isinstance(report_episodes, (int, np.integer)) or report_episodes < 1:
        raise ValueError(f"Received an invalid value for argument `report_episodes`: expected an integer >= 1, "
                         f"got {report_episodes!r}")
    if returns.ndim != 1 or len(returns) < 2:
        return -np.inf
    spread = returns.std(ddof=1) * np.sqrt(1 / len(returns) + 1 / report_episodes)
    return float(returns.mean() - z * spread)


def selection_passes(returns, target: float, report_episodes: int = REPORT_EPISODES, z: float = SELECTION_Z) -> bool:
    """The selection rule: a policy passes when :func:`selection_bound` of its selection returns reaches ``target``.

    A mean just over the target with widely spread returns does not pass (its report would miss
    about half the time); a policy whose returns barely vary passes with a mean just over it. The
    bound holds for one evaluation: a run that evaluates often and keeps the first pass picks the
    luckiest sample, which is what the margin is there to absorb.
    """
    return selection_bound(returns, report_episodes, z) >= target


def assert_policy_return(policy: Policy, env_id: str, min_mean: float, episodes: int = 100, seed: int = 0,
                         **kwargs) -> EvalResult:
    """Fail (``AssertionError``) unless the policy's mean return is at least ``min_mean``.

    The message shows the mean, the threshold and every episode's return, so a regression in CI
    says how far off the policy is. Returns the :class:`EvalResult` when it passes.
    """
    result = evaluate(policy, env_id, episodes=episodes, seed=seed, **kwargs)
    if not result.mean >= min_mean:
        shown = ", ".join(f"{r:g}" for r in result.returns)
        raise AssertionError(
            f"policy mean return {result.mean:.2f} < required {min_mean:g} on {result.env_id} "
            f"({episodes} episodes, seed {seed}); returns: [{shown}]"
        )
    return result
