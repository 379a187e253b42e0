"""REINFORCE (Monte-Carlo policy gradient) with discounted, normalised returns (HOML ch. 18).

The algorithm, top to bottom:

1. play ``episodes_per_update`` episodes with the current softmax policy, all environments in
   lockstep (one model call per step for every live episode, never ``model.predict``);
2. turn each episode's rewards into discounted returns (:func:`discount_rewards`) and
   normalise them over the whole batch (:func:`discount_and_normalize_rewards`): actions of
   better-than-average episodes become more likely, the others less likely;
3. one compiled gradient step on ``-mean(log pi(a|s) * normalised return)``.

HOML computes one gradient per *step* with a tape and averages them weighted by the returns;
the loss above has exactly that gradient (the return is a constant weight), computed in one
batched ``tf.function`` call per iteration instead of one tape per step.

The policy network outputs **logits**; the policy is ``softmax(logits)`` (HOML's LunarLander
exercise uses a softmax output layer; logits + ``log_softmax`` is the numerically safe form of
the same policy). For CartPole HOML uses one sigmoid unit: a two-way softmax is the same family.

Example:
    >>> from agents.policy_gradient import discount_rewards
    >>> discount_rewards([10, 0, -50], 0.8).tolist()
    [-22.0, -40.0, -50.0]
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from agents import evaluation, policy_files, render
from agents.configs import PolicyGradientConfig
from agents.envs import make_env, resolve_env_id
from keras_impl import config as cfglib
from keras_impl import runtime
from keras_impl.plotting import plot_learning_curve

# ----------------------------------------------------------------------------------------------
# The math: pure functions, tested against hand-worked numbers
# ----------------------------------------------------------------------------------------------


def discount_rewards(rewards, discount_rate: float) -> np.ndarray:
    """Discounted return of every step: ``G_t = r_t + gamma * G_{t+1}``.

    Args:
        rewards: one episode's rewards ``[T]``.
        discount_rate: gamma in ``[0, 1]``.

    Returns:
        float64 ``[T]``; ``discount_rewards([10, 0, -50], 0.8) == [-22, -40, -50]``.
    """
    if not 0.0 <= discount_rate <= 1.0:
        raise ValueError(f"Received an invalid value for argument `discount_rate`: expected a value in [0, 1], "
                         f"got {discount_rate!r}")
    discounted = np.array(rewards, dtype=np.float64)
    for step in range(len(discounted) - 2, -1, -1):  # backwards: each G_t needs G_{t+1}
        discounted[step] += discounted[step + 1] * discount_rate
    return discounted


def discount_and_normalize_rewards(all_rewards, discount_rate: float) -> list[np.ndarray]:
    """Discount each episode's rewards, then standardise them over *all* the episodes' steps.

    Normalising over the batch (not per episode) is what compares episodes with each other: a
    long CartPole episode gets positive weights, a short one negative weights.

    Args:
        all_rewards: a list of episodes, each a list of rewards.
        discount_rate: gamma.

    Returns:
        One float64 array per episode. When every discounted return is equal (std 0) the
        result is all zeros rather than NaN (nothing to prefer).
    """
    discounted = [discount_rewards(rewards, discount_rate) for rewards in all_rewards]
    flat = np.concatenate(discounted) if discounted else np.zeros(0)
    mean, std = flat.mean(), flat.std()
    if std == 0:
        return [np.zeros_like(d) for d in discounted]
    return [(d - mean) / std for d in discounted]


def resolved(cfg: PolicyGradientConfig) -> PolicyGradientConfig:
    """The config with the env's id (aliases resolved) and ``target`` filled in from the env's
    ``reward_threshold`` when None (infinity when the env has none: never stop early)."""
    cfglib.validate(cfg)
    env_id = resolve_env_id(cfg.env)
    if cfg.target is not None:
        return dataclasses.replace(cfg, env=env_id)
    probe = make_env(env_id)
    threshold = getattr(probe.spec, "reward_threshold", None)
    probe.close()
    return dataclasses.replace(cfg, env=env_id, target=float("inf") if threshold is None else float(threshold))


# ----------------------------------------------------------------------------------------------
# Model, compiled forward pass and gradient step
# ----------------------------------------------------------------------------------------------


def build_policy_model(obs_dim: int, n_actions: int, hidden_units: int = 32):
    """Two hidden ReLU layers and one logit per action: ``[B, obs_dim] -> [B, n_actions]``."""
    return keras.Sequential([
        keras.Input((obs_dim,)),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(n_actions),  # logits; the policy is softmax(logits)
    ], name="softmax_policy")


class Reinforce:
    """The model, its optimizer and the two compiled functions REINFORCE needs."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_units: int, learning_rate: float):
        self.model = build_policy_model(obs_dim, n_actions, hidden_units)
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        obs_spec = tf.TensorSpec([None, obs_dim], tf.float32)

        # input_signature with a None batch: one trace serves every number of live episodes.
        @tf.function(input_signature=[obs_spec])
        def probabilities(obs):
            return tf.nn.softmax(self.model(obs, training=False))  # [B, A]

        @tf.function(input_signature=[obs_spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)])
        def train_step(obs, actions, weights):
            with tf.GradientTape() as tape:
                log_probs = tf.nn.log_softmax(self.model(obs, training=True))  # [T, A]
                chosen = tf.gather(log_probs, actions, batch_dims=1)  # [T] log pi(a_t|s_t)
                loss = -tf.reduce_mean(chosen * weights)
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1))
            return loss, entropy

        self.probabilities = probabilities
        self.train_step = train_step

    def policy(self, mode: str = "greedy", seed: int = 0):
        """The batched policy to evaluate: ``greedy`` (argmax) or ``sample`` (seeded softmax draws)."""
        if mode == "sample":
            return evaluation.stochastic(self.model, "softmax", seed)
        return self.greedy_policy()

    def greedy_policy(self):
        """Batched greedy policy ``[N, obs] -> [N]`` for :func:`agents.evaluation.evaluate`."""

        def policy(obs_batch):
            return np.argmax(self.probabilities(np.asarray(obs_batch, dtype=np.float32)).numpy(), axis=-1)

        return policy


def sample_actions(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical sample per row of ``probs`` ``[B, A]`` (inverse-CDF; float32-safe)."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((len(probs), 1)) * cdf[:, -1:]  # scale by the row sum: rows may sum to 1 +/- 1e-7
    return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1)


# ----------------------------------------------------------------------------------------------
# Lockstep episode collection
# ----------------------------------------------------------------------------------------------


def play_episodes(envs, probabilities, rng: np.random.Generator, max_steps: int = 0, seeds=None):
    """Play one episode in each env, all in lockstep, sampling from the policy.

    Args:
        envs: Gymnasium envs (already seeded by their first reset).
        probabilities: ``[B, obs] float32 -> [B, A]`` action probabilities (one call per step).
        rng: the generator actions are sampled with.
        max_steps: optional cap on an episode's steps (0: the env's own limit).
        seeds: reset seeds, one per env, for the *first* call only (Gymnasium seeds once).

    Returns:
        ``(observations, actions, rewards)``: per-episode lists of arrays ``[T_i, obs]``,
        ``[T_i]``, ``[T_i]``.
    """
    n = len(envs)
    seeds = [None] * len(envs) if seeds is None else list(seeds)
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    observations = [[] for _ in range(n)]
    actions = [[] for _ in range(n)]
    rewards = [[] for _ in range(n)]
    live = list(range(n))
    while live:
        batch = np.asarray([obs[i] for i in live], dtype=np.float32)  # [B, obs]
        probs = np.asarray(probabilities(batch))  # [B, A]
        chosen = sample_actions(probs, rng)
        still = []
        for i, row, action in zip(live, batch, chosen):
            observations[i].append(row)
            actions[i].append(int(action))
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(action))
            rewards[i].append(float(reward))
            if not (terminated or truncated or (max_steps and len(rewards[i]) >= max_steps)):
                still.append(i)
        live = still
    return ([np.asarray(o, dtype=np.float32) for o in observations],
            [np.asarray(a, dtype=np.int32) for a in actions],
            [np.asarray(r, dtype=np.float64) for r in rewards])


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


# Two selection stages (the stop rule) on selection seeds, then the report once on the report seeds.
REPORT_SEED = evaluation.REPORT_SEED
SECOND_SET_OFFSET = 10_000  # the stop rule's second set starts this far after its first
QUICK_CHECK_EPISODES = 20


def check_seeds(cfg: PolicyGradientConfig) -> tuple[int, int]:
    """The first reset seeds of the stop rule's two selection sets: ``SELECT_SEED + seed`` and
    ``SELECT_SEED + 10,000 + seed``, each wrapped into :data:`agents.evaluation.SELECT_SEEDS`."""
    episodes = max(QUICK_CHECK_EPISODES, cfg.eval_episodes)
    return (evaluation.select_seed(cfg.seed, episodes),
            evaluation.select_seed(SECOND_SET_OFFSET + cfg.seed, episodes))


def _check_target(agent: Reinforce, cfg: PolicyGradientConfig, episodes: int, evals: list, eval_writer, log):
    """The greedy check (the stop rule): 20 episodes, then all ``eval_episodes``, then a second set.

    Returns the second set's :class:`~agents.evaluation.EvalResult` when the 20 episodes' mean
    reaches the target and both sets pass the selection rule
    (:func:`agents.evaluation.selection_passes`: the report's predicted mean clears it), else None.
    All three are selection: the first set to cross the target is a biased pick, and so is a
    second set that is retried at every check, so the run reports neither; it reports one
    evaluation on the report seeds after training (:func:`train`).
    """
    first, second = check_seeds(cfg)
    policy = agent.policy(cfg.eval_policy, first)
    quick = evaluation.evaluate(policy, cfg.env, episodes=QUICK_CHECK_EPISODES, seed=first)
    if quick.mean < cfg.target:
        return None
    full = evaluation.evaluate(agent.policy(cfg.eval_policy, first), cfg.env, episodes=cfg.eval_episodes, seed=first)
    evals.append((episodes, full.mean))
    if eval_writer is not None:
        runtime.log_scalars(eval_writer, episodes, {f"eval/{cfg.eval_policy}_mean_return": full.mean})
    if log:
        log(f"{cfg.eval_policy} check after {episodes} episodes: {full.summary()}")
    if not evaluation.selection_passes(full.returns, cfg.target, cfg.eval_episodes):
        return None
    held_out = evaluation.evaluate(agent.policy(cfg.eval_policy, second), cfg.env, episodes=cfg.eval_episodes,
                                   seed=second)
    if log:
        log(f"held-out check: {held_out.summary()}")
    return held_out if evaluation.selection_passes(held_out.returns, cfg.target, cfg.eval_episodes) else None


def train(cfg: PolicyGradientConfig, run_dir: Path | None = None, log=print) -> dict:
    """Train REINFORCE; returns ``{"agent", "history", "episodes", "seconds", "reached", ...}``.

    Training stops at ``cfg.iterations`` or as soon as the greedy policy reaches ``cfg.target``
    on two sets of ``eval_episodes`` selection episodes (reset seeds ``10000 + seed + i``, then
    ``20000 + seed + i``). Greedy checks (20 episodes first) only run once the mean training return
    is within 10% of the target. The result (``evaluation``, ``reached``) is one evaluation of
    ``eval_episodes`` episodes on the report seeds ``REPORT_SEED + i`` after training;
    ``selection_passed`` says whether the stop rule fired.
    """
    cfg = resolved(cfg)
    runtime.seed_everything(cfg.seed)  # the model's initial weights; training is then a function of the seed
    rng = np.random.default_rng(cfg.seed)
    envs = [make_env(cfg.env, seed=cfg.seed + i) for i in range(cfg.episodes_per_update)]
    if cfg.capture_video and run_dir is not None:
        envs[0] = render.record_video(make_env(cfg.env, seed=cfg.seed, render=True), Path(run_dir) / "videos")
    agent = Reinforce(int(envs[0].observation_space.shape[0]), int(envs[0].action_space.n), cfg.hidden_units,
                      cfg.learning_rate)
    train_writer, eval_writer = runtime.summary_writers(run_dir) if run_dir is not None else (None, None)

    history, evals = [], []
    episodes, steps, selection_passed, last_check = 0, 0, False, -10**9
    start = time.perf_counter()
    selection = None
    for iteration in range(1, cfg.iterations + 1):
        seeds = [cfg.seed + i for i in range(len(envs))] if iteration == 1 else None  # seed the first reset only
        observations, actions, rewards = play_episodes(envs, agent.probabilities, rng, cfg.max_steps, seeds)
        weights = discount_and_normalize_rewards(rewards, cfg.gamma)
        loss, entropy = agent.train_step(np.concatenate(observations), np.concatenate(actions),
                                         np.concatenate(weights).astype(np.float32))
        returns = [float(r.sum()) for r in rewards]
        episodes += len(returns)
        steps += sum(len(r) for r in rewards)
        mean_return = float(np.mean(returns))
        history.append(mean_return)
        if train_writer is not None:
            runtime.log_scalars(train_writer, episodes, {"charts/episodic_return": mean_return,
                                                         "losses/policy_loss": float(loss),
                                                         "losses/entropy": float(entropy)})
        if log and (iteration % 10 == 0 or iteration == 1):
            log(f"iteration {iteration:4d}  episodes {episodes:5d}  mean return {mean_return:8.1f}  "
                f"entropy {float(entropy):.3f}  {time.perf_counter() - start:6.1f}s")
        near = mean_return >= cfg.target - 0.1 * abs(cfg.target)  # within 10%: worth a greedy check
        if near and iteration - last_check >= cfg.eval_every:
            last_check = iteration
            selection = _check_target(agent, cfg, episodes, evals, eval_writer, log)
            if selection is not None:
                selection_passed = True
                break
    seconds = time.perf_counter() - start
    for env in envs:
        env.close()
    final = evaluation.evaluate(agent.policy(cfg.eval_policy, REPORT_SEED + cfg.seed), cfg.env,
                                episodes=cfg.eval_episodes, seed=REPORT_SEED)  # the report: played once
    if log:
        log(f"report: {final.summary()}")
    return {"agent": agent, "config": cfg, "history": history, "evals": evals, "episodes": episodes,
            "steps": steps, "seconds": seconds, "reached": bool(final.mean >= cfg.target), "evaluation": final,
            "selection_passed": selection_passed, "selection": selection}


def run(cfg: PolicyGradientConfig, run_dir: Path) -> dict:
    """``kcourse run policy-gradient``: train, evaluate on the report episodes, save the curve, policy and GIF."""
    out = train(cfg, run_dir)
    cfg = out["config"]
    result = out["evaluation"]
    agent = out["agent"]
    plot_learning_curve(run_dir / "learning_curve.png", f"REINFORCE on {cfg.env}", returns=out["history"],
                        returns_label="mean training return", window=10, xlabel="iteration", ylabel="mean return",
                        target=cfg.target if np.isfinite(cfg.target) else None)
    artifacts = ["learning_curve.png"]
    policy_files.save_policy(run_dir / "policy", agent.model, cfg.env, kind="softmax", config=cfg, evaluation=result,
                           extra={"training": {"episodes": out["episodes"], "steps": out["steps"],
                                               "seconds": round(out["seconds"], 1),
                                               "selection_passed": out["selection_passed"]}})
    artifacts.append("policy")
    if cfg.gif:
        frames = render.record_episode(agent.policy(cfg.eval_policy, REPORT_SEED + cfg.seed), cfg.env,
                                       seed=REPORT_SEED, max_steps=1000)
        render.write_gif(frames, run_dir / "agent.gif", fps=30)
        artifacts.append("agent.gif")
    status = (f">= {cfg.target:g}" if out["reached"] else f"< {cfg.target:g}, missed by {cfg.target - result.mean:.1f}"
              if np.isfinite(cfg.target) else "no target")
    selection = "selection passed" if out["selection_passed"] else "selection never passed"
    headline = (f"{cfg.env}: report {cfg.eval_policy} mean {result.mean:.1f} over {len(result.returns)} episodes "
                f"({status}); {selection} after {out['episodes']} episodes, {out['seconds']:.0f}s")
    chosen = out["selection"]
    return {"headline": headline, "reached": bool(out["reached"]),
            "metrics": {"eval_policy": cfg.eval_policy, "eval_mean": result.mean, "eval_std": result.std,
                        "eval_min": result.min, "report_episodes": len(result.returns),
                        "report_seeds": evaluation.seed_span(result), "selection_passed": out["selection_passed"],
                        "select_mean": None if chosen is None else chosen.mean,
                        "episodes": out["episodes"], "steps": out["steps"], "train_seconds": out["seconds"],
                        "last_training_mean": out["history"][-1] if out["history"] else None},
            "artifacts": artifacts}
