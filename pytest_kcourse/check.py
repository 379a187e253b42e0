"""Run one policy check: evaluate batch by batch until the sequential test settles; report it.

Episode ``i`` of a check (0-based) is reset with seed ``spec.seed + i``, so a verdict reproduces
and every episode can be replayed alone with ``kcourse eval POLICY --seed S --episodes 1``. Each
batch is one :func:`agents.evaluation.evaluate` call: the batch's environments step in lockstep,
one model call per step, so a step of a batch of 40 costs about what a step of a batch of 10 does.
Batches grow (``batch``, then ``growth`` times larger each time: 30, 60, 120, ... episodes): an
easy verdict comes after the first batch, a hard one does not pay one model call per step for
every few episodes. The first batch is 30 because fewer episodes rarely settle anything: at
alpha = 0.01 even a policy scoring the maximum every time needs 30 episodes to clear a threshold
at 80% of the range (``tests/test_policy_plugin.py``). The test is valid at every episode, so the
batch sizes do not change its error rates.

Importing this module imports ``agents`` (Gymnasium, NumPy); loading a saved policy imports
TensorFlow. The plugin imports it only when a check runs. Neither changes process state: no
environment variable, log level or warning filter is set here (TensorFlow logs as the user's
process has it configured; ``kcourse`` sets those only in its command line).
"""
from __future__ import annotations

import dataclasses
import shlex
import time
from pathlib import Path

import numpy as np

from agents.atari import make_agent_env
from agents.envs import resolve_env_id
from agents.evaluation import epsilon_greedy, evaluate
from agents.policy_stats import confidence_interval, first_verdict, indicator, normalize
from pytest_kcourse.config import ConfigError, PolicySpec, recorded_mean, write_baseline

# The range of an episode's undiscounted return, for the envs whose range is known without
# running them (CartPole: +1 per step up to the time limit; FrozenLake: 1 at the goal, else 0).
KNOWN_RETURN_RANGES = {
    "CartPole-v0": (0.0, 200.0),
    "CartPole-v1": (0.0, 500.0),
    "FrozenLake-v1": (0.0, 1.0),
    "FrozenLake8x8-v1": (0.0, 1.0),
}
REGEN_CHUNK = 100  # --policies-regen evaluates its episodes this many at a time
BARS = " ▁▂▃▄▅▆▇█"


class PolicyCheckFailed(AssertionError):
    """A policy check that failed or ran out of episodes; ``str()`` is the report, ``.result`` the numbers."""

    def __init__(self, result: "CheckResult"):
        super().__init__(format_report(result))
        self.result = result


@dataclasses.dataclass
class CheckResult:
    name: str
    verdict: str  # "pass", "fail", "inconclusive", or "recorded" (--policies-regen)
    returns: list[float]
    seed: int  # episode i was reset with seed + i
    threshold: float  # the mean's threshold; criterion "quantile": the share of episodes required
    lower: float  # the confidence interval of the mean (criterion "quantile": of the share >= at_least)
    upper: float
    return_range: tuple[float, float] | None  # None: criterion "quantile" (no range needed)
    alpha: float
    budget: int
    env_id: str
    criterion: str
    wall_s: float  # evaluation and statistics
    load_s: float = 0.0  # loading the policy (TensorFlow's import included, the first time)
    policy_folder: Path | None = None
    env_arg: str | None = None  # --env for the replay command, when the check overrides the policy's env
    max_steps: int | None = None
    baseline_mean: float | None = None
    epsilon: float = 0.0  # the probability of a random action the policy played with
    protocol: str | None = None  # Atari: the protocol the games were played under
    at_least: float | None = None  # criterion "quantile": the score an episode must reach

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def share(self) -> float | None:
        """Criterion "quantile": the share of episodes that scored ``>= at_least`` (else None)."""
        return None if self.at_least is None else float(np.mean(indicator(self.returns, self.at_least)))

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    def worst(self, k: int = 3) -> list[tuple[float, int]]:
        """The ``k`` lowest returns with their episode seeds (lowest first, then by seed)."""
        return worst_episodes(self.returns, self.seed, k)

    def replay_command(self, seed: int) -> str | None:
        return replay_command(self.policy_folder, seed, self.env_arg, self.max_steps, self.epsilon, self.protocol)


# ----------------------------------------------------------------------------------------------
# Small pure helpers (tested with hand-made numbers)
# ----------------------------------------------------------------------------------------------


def return_range_for(env_id: str, env_kwargs: dict | None = None) -> tuple[float, float]:
    """The known return range of ``env_id``; CartPole's follows ``max_episode_steps`` when given."""
    if env_id not in KNOWN_RETURN_RANGES:
        raise ConfigError(f"the return range of {env_id} is not known: declare it with return_range = [low, high] "
                          f"(the verdicts are only valid if no episode can leave it); known: "
                          f"{', '.join(KNOWN_RETURN_RANGES)}")
    low, high = KNOWN_RETURN_RANGES[env_id]
    steps = (env_kwargs or {}).get("max_episode_steps")
    if env_id.startswith("CartPole") and isinstance(steps, int) and steps > 0:
        high = float(steps)
    return low, high


def text_histogram(values, bins: int = 10) -> str:
    """One line: ``min <bars> max``, one bar per bin, its height the bin's share of the largest bin."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if low == high:
        return f"all {len(values)} at {low:.4g}"
    counts, _ = np.histogram(values, bins=bins, range=(low, high))
    levels = np.ceil(counts / counts.max() * (len(BARS) - 1)).astype(int)  # a non-empty bin shows at least ▁
    return f"{low:.4g} {''.join(BARS[i] for i in levels)} {high:.4g}"


def worst_episodes(returns, seed: int, k: int = 3) -> list[tuple[float, int]]:
    """``[(return, episode seed), ...]`` of the ``k`` lowest returns; episode ``i`` has seed ``seed + i``."""
    order = sorted(range(len(returns)), key=lambda i: (returns[i], i))[:k]
    return [(float(returns[i]), seed + i) for i in order]


def replay_command(folder: Path | None, seed: int, env: str | None = None, max_steps: int | None = None,
                   epsilon: float = 0.0, protocol: str | None = None) -> str | None:
    """The ``kcourse eval`` command that plays (and records) the episode of seed ``seed`` alone.

    With ``epsilon`` > 0 the replay draws its own random actions (the check drew them for a whole
    batch from one stream), so it shows the same start but not necessarily the same game.
    """
    if folder is None:
        return None
    words = ["kcourse", "eval", str(folder), "--episodes", "1", "--seed", str(seed)]
    if env:
        words += ["--env", env]
    if max_steps:
        words += ["--max-steps", str(max_steps)]
    if epsilon:
        words += ["--epsilon", f"{epsilon:g}"]
    if protocol:
        words += ["--protocol", protocol]
    return " ".join(shlex.quote(w) for w in words + ["--render", "gif"])


def _claim(r: CheckResult) -> tuple[str, str]:
    """What a pass says, and what the interval is compared with, in the criterion's words."""
    if r.at_least is not None:
        return (f"at least {r.threshold:.4g} of episodes score >= {r.at_least:.4g}", f"fraction {r.threshold:.4g}")
    against = f"threshold {r.threshold:.4g}"
    if r.criterion == "baseline" and r.baseline_mean is not None:
        against += f" (baseline {r.baseline_mean:.4g} - delta {r.baseline_mean - r.threshold:.4g})"
    return f"the mean return is above {r.threshold:.4g}", against


def format_report(r: CheckResult) -> str:
    """The failure report: verdict, the estimate and its interval against the bar, histogram, worst episodes."""
    claim, against = _claim(r)
    head = {
        "fail": (f"FAILED: fewer than {r.threshold:.4g} of episodes score >= {r.at_least:.4g}" if r.at_least is not None
                 else f"FAILED: the mean return is below {r.threshold:.4g}"),
        "inconclusive": (f"INCONCLUSIVE after {r.episodes} episodes (the budget, max_episodes = {r.budget}): the "
                         f"interval still holds the {against.split(' (')[0]}; raise max_episodes or set a bar "
                         f"further from the policy's score"),
        "pass": f"passed: {claim}",
        "recorded": "baseline recorded",
    }[r.verdict]
    if r.at_least is not None:
        estimate = (f"  share of episodes >= {r.at_least:.4g}: {r.share:.4g}, confidence interval [{r.lower:.4g}, "
                    f"{r.upper:.4g}] vs {against} (mean return {r.mean:.4g})")
        bounds = f"the indicator of a return >= {r.at_least:.4g} (no return range needed)"
    else:
        estimate = f"  mean {r.mean:.4g}, confidence interval [{r.lower:.4g}, {r.upper:.4g}] vs {against}"
        bounds = f"returns bounded by [{r.return_range[0]:.4g}, {r.return_range[1]:.4g}]"
    lines = [
        f"policy check {r.name!r} {head}",
        estimate,
        f"  {r.episodes} episodes (seeds {r.seed}..{r.seed + r.episodes - 1}) on {r.env_id}, alpha {r.alpha:g} per "
        f"side, {bounds}; {r.wall_s:.1f} s (+ {r.load_s:.1f} s loading the policy)",
        f"  returns: {text_histogram(r.returns)}",
        "  worst episodes:",
    ]
    for value, seed in r.worst(3):
        command = r.replay_command(seed)
        replay = f"  replay: {command}" if command else "  (a policy object: replay with agents.render.record_episode)"
        lines.append(f"    return {value:.4g}  seed {seed}{replay}")
    return "\n".join(lines)


def summary_line(r: CheckResult) -> str:
    """One line for the terminal summary of a run."""
    what = "mean" if r.at_least is None else f"share >= {r.at_least:.4g}"
    value = r.mean if r.at_least is None else r.share
    if r.verdict == "recorded":
        return (f"{r.name}: baseline recorded, {what} {value:.4g} [{r.lower:.4g}, {r.upper:.4g}] over {r.episodes} "
                f"episodes, {r.wall_s:.1f} s")
    return (f"{r.name}: {r.verdict} after {r.episodes} episodes, {what} {value:.4g} "
            f"[{r.lower:.4g}, {r.upper:.4g}] vs {r.threshold:.4g}, {r.wall_s:.1f} s (+ {r.load_s:.1f} s loading)")


# ----------------------------------------------------------------------------------------------
# Running a check
# ----------------------------------------------------------------------------------------------


def _set_protocol(spec: PolicySpec, env_id: str, env_kwargs: dict) -> None:
    """An Atari game is played under ``spec.protocol`` (default sticky); other envs refuse the key."""
    from agents.atari import is_atari, protocol_kwargs

    if spec.protocol is not None and not is_atari(env_id):
        raise ConfigError(f"policy check {spec.name!r}: protocol applies to Atari games; {env_id} is not one")
    env_kwargs.update(protocol_kwargs(env_id, spec.protocol))


def _load(spec: PolicySpec):
    """``(policy, env_id, env_kwargs, env_factory, folder, env_arg, epsilon, n_actions)`` for a spec."""
    folder = spec.policy_folder()
    if folder is None:
        env_id, env_kwargs = resolve_env_id(spec.env), dict(spec.env_kwargs or {})
        _set_protocol(spec, env_id, env_kwargs)
        return spec.policy, env_id, env_kwargs, None, None, spec.env, spec.epsilon or 0.0, None
    from agents.policy_files import env_factory_for, eval_epsilon, load_policy  # TensorFlow: only for a saved policy

    policy, meta = load_policy(folder)
    env_id = meta["env_id"] if spec.env is None else resolve_env_id(spec.env)
    same_env = env_id == meta["env_id"]
    if spec.env_kwargs is not None:
        env_kwargs = dict(spec.env_kwargs)
    else:  # the policy's own env kwargs, unless the check plays another env
        env_kwargs = dict(meta.get("env_kwargs") or {}) if same_env else {}
    factory = env_factory_for(meta) if same_env else None
    _set_protocol(spec, env_id, env_kwargs)
    epsilon = eval_epsilon(meta, spec.epsilon)
    n_actions = (meta.get("action_space") or {}).get("n")
    return policy, env_id, env_kwargs, factory, folder, None if same_env else env_id, epsilon, n_actions


def run_check(spec: PolicySpec, regen: bool = False) -> CheckResult:
    """Evaluate ``spec``'s policy in batches until a verdict or the budget (``regen``: the whole budget).

    The test runs on numbers in ``[0, 1]``: the returns mapped by their range (criteria ``min_mean``
    and ``baseline``), or the indicator of a return ``>= at_least`` (criterion ``quantile``, no range).

    Raises:
        ConfigError: an unknown return range, a threshold outside it, or a missing baseline.
    """
    start = time.perf_counter()
    baseline_mean = None
    quantile = spec.criterion == "quantile"
    if quantile:
        threshold = float(spec.fraction)
    elif regen:
        threshold = float("nan")
    elif spec.criterion == "baseline":
        baseline_mean = recorded_mean(spec.baseline_path, spec.name)
        threshold = baseline_mean - spec.delta
    else:
        threshold = float(spec.min_mean)
    policy, env_id, env_kwargs, factory, folder, env_arg, epsilon, n_actions = _load(spec)  # after the cheap checks
    if epsilon and not n_actions:
        probe = factory(**env_kwargs) if factory else make_agent_env(env_id, **env_kwargs)
        n_actions = int(probe.action_space.n)
        probe.close()
    load_s = time.perf_counter() - start
    if quantile:  # the share of episodes >= at_least: a mean in [0, 1] whatever the returns' range
        low, high = 0.0, 1.0
        theta = threshold

        def unit(values):
            return indicator(values, spec.at_least)
    else:
        low, high = spec.return_range or return_range_for(env_id, env_kwargs)
        theta = (threshold - low) / (high - low)

        def unit(values):
            return normalize(values, low, high)
    if not regen and not 0 < theta < 1:
        raise ConfigError(f"policy check {spec.name!r}: the threshold {threshold:g} is not inside the return range "
                          f"[{low:g}, {high:g}]: the check could never {'fail' if theta <= 0 else 'pass'}")

    returns: list[float] = []
    verdict = None
    size = float(max(spec.batch, REGEN_CHUNK) if regen else spec.batch)
    while len(returns) < spec.max_episodes:
        n = min(int(round(size)), spec.max_episodes - len(returns))
        size = size if regen else size * spec.growth  # fewer, larger batches: fewer model calls
        played = epsilon_greedy(policy, n_actions, epsilon, spec.seed + len(returns))  # policy itself at 0
        result = evaluate(played, env_id, episodes=n, seed=spec.seed + len(returns), env_kwargs=env_kwargs,
                          max_steps=spec.max_steps, env_factory=factory)
        returns += result.returns
        x = unit(returns)
        if not regen:
            verdict, _ = first_verdict(x, theta, spec.alpha)
            if verdict is not None:
                break
    lower, upper = confidence_interval(unit(returns), spec.alpha)
    out = CheckResult(
        name=spec.name, verdict="recorded" if regen else (verdict or "inconclusive"), returns=returns,
        seed=spec.seed, threshold=threshold, lower=low + lower * (high - low), upper=low + upper * (high - low),
        return_range=None if quantile else (low, high), alpha=spec.alpha, budget=spec.max_episodes, env_id=env_id,
        criterion=spec.criterion, wall_s=time.perf_counter() - start - load_s, load_s=load_s,
        policy_folder=folder, env_arg=env_arg, max_steps=spec.max_steps, baseline_mean=baseline_mean,
        epsilon=epsilon, at_least=spec.at_least if quantile else None, protocol=env_kwargs.get("protocol"))
    if regen:  # criterion "quantile": the interval is the share's (the mean's needs a range it may not have)
        write_baseline(spec.baseline_path, spec.name, {
            "mean": out.mean, "lower": out.lower, "upper": out.upper, "episodes": out.episodes,
            **({"share": out.share, "at_least": spec.at_least} if quantile else {}),
            "alpha": spec.alpha, "seed": spec.seed, "env_id": env_id,
            "policy": str(folder) if folder else getattr(policy, "__name__", "policy"),
        })
    return out
