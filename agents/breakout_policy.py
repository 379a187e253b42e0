"""``kcourse run breakout``: play the committed hand-written Breakout policy; no training.

The policy in ``agents/trained/breakout-dueling-double`` was trained by ``kcourse run dqn --env
breakout --seed 0`` from the frozen Atari recipe (the data-efficient preset, 100,000 agent steps, the
seed picked by docs/atari.md's committed-policy rule); its
``policy.json`` records the config, the training time and the report evaluation. This exercise plays
``games`` full games on held-out seeds with the policy's evaluation epsilon, writes a GIF of one,
and says what the policy is and how it was trained, from its own ``policy.json`` (``--policy`` may
name any saved Breakout policy: a run folder, a TF-Agents export). Loading goes through
:mod:`agents.policy_files` (manifest-verified, every field checked; its env factory from the
allow-list).
"""
from __future__ import annotations

from pathlib import Path

from agents import policy_files, render, trained
from agents.configs import BreakoutPolicyConfig
from agents.atari import BREAKOUT_ID, protocol_kwargs
from agents.envs import resolve_env_id
from agents.evaluation import epsilon_greedy, evaluate


def training_command(meta: dict) -> str | None:
    """The command that trained the policy, from its ``policy.json`` (None when the file does not say)."""
    cfg = meta.get("config") or {}
    if meta["kind"] == policy_files.TFA_KIND:
        exercise = "tfa-dqn"
    elif str(meta.get("algorithm", "")).startswith("keras-"):
        exercise = "dqn"
    else:
        return None
    if not cfg:
        return None
    parts = [f"kcourse run {exercise} --env breakout", f"--seed {cfg.get('seed', 0)}"]
    if cfg.get("preset", "auto") != "auto":
        parts.append(f"--preset {cfg['preset']}")
    return " ".join(parts)


def describe(meta: dict, committed: bool) -> tuple[str, str]:
    """What the policy is and how it was trained, from its own ``policy.json`` (only what the file records):
    ``("committed keras-dueling-double", "trained by `kcourse run dqn ...`, 100,000 agent steps in 77 min")``."""
    cfg = meta.get("config") or {}
    if meta.get("algorithm"):
        name = meta["algorithm"]
    elif meta["kind"] == policy_files.TFA_KIND:
        name = f"TF-Agents {cfg.get('agent', 'dqn')} export"
    else:
        name = f"{meta['kind']} policy"
    command = training_command(meta)
    how = f"trained by `{command}`" if command else "its policy.json does not say how it was trained"
    facts = []
    if "env_steps" in meta:
        facts.append(f"{meta['env_steps']:,} agent steps")
    if "train_seconds" in meta:
        facts.append(f"{meta['train_seconds'] / 60:.0f} min")
    if command:
        how += ", " + " in ".join(facts) if facts else " (steps and time not recorded)"
    return f"{'committed ' if committed else ''}{name}", how


def run(cfg: BreakoutPolicyConfig, run_dir: Path) -> dict:
    """Evaluate the saved policy on ``cfg.games`` held-out full games; GIF of the first."""
    committed = cfg.policy in trained.available()
    folder = trained.policy_path(cfg.policy) if committed else Path(cfg.policy)
    policy, meta = policy_files.load_policy(folder)
    if resolve_env_id(meta.get("env_id") or "?") != BREAKOUT_ID:
        raise ValueError(f"Received an invalid value for argument `policy`: {cfg.policy} is a policy for "
                         f"{meta.get('env_id')!r}, not Breakout (use `kcourse eval {cfg.policy}`)")
    epsilon = policy_files.eval_epsilon(meta, cfg.epsilon)
    n_actions = int(meta["action_space"]["n"])
    factory = policy_files.env_factory_for(meta)
    played = epsilon_greedy(policy, n_actions, epsilon, cfg.seed)
    result = evaluate(played, meta["env_id"], episodes=cfg.games, seed=cfg.seed, env_factory=factory,
                      env_kwargs=protocol_kwargs(meta["env_id"], cfg.protocol))
    artifacts = []
    if cfg.gif:  # the first game again, from its start (the same seed, a fresh epsilon stream)
        env = factory(seed=cfg.seed, render=True, protocol=cfg.protocol) if factory else None
        frames = render.record_episode(epsilon_greedy(policy, n_actions, epsilon, cfg.seed), meta["env_id"],
                                       seed=cfg.seed, max_steps=cfg.gif_steps, env=env)
        if env is not None:
            env.close()
        render.write_gif([f[::2, ::2] for f in frames[::2]], run_dir / "agent.gif", fps=25)
        artifacts.append("agent.gif")
    name, how = describe(meta, committed)
    headline = (f"{name}: {cfg.games}-game mean {result.mean:.1f} +/- "
                f"{result.std:.1f} ({cfg.protocol} protocol, {result.distinct_phrase}, epsilon {epsilon:g}, "
                f"seeds {cfg.seed}-{cfg.seed + cfg.games - 1}); {how}")
    metrics = {"mean": result.mean, "std": result.std, "returns": [float(r) for r in result.returns],
               "games": cfg.games, "seed": cfg.seed, "epsilon": epsilon, "policy": str(cfg.policy),
               "protocol": cfg.protocol, "distinct_outcomes": result.distinct,
               "train_seconds": meta.get("train_seconds"), "training_command": training_command(meta),
               "committed": committed}
    return {"headline": headline, "metrics": metrics, "artifacts": artifacts, "reached": None}
