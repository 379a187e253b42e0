"""CartPole policies from HOML ch. 18: the hard-coded angle policy and a neural net imitating it.

* :func:`basic_policy` pushes the cart towards the side the pole leans to. HOML measured it
  over 500 episodes with the old 200-step cap: mean about 42, max 68. Gymnasium's CartPole-v1
  caps episodes at 500 steps; :func:`basic_policy_stats` reports both caps.
* :func:`train_imitation` trains HOML's tiny network (5 ELU units, one sigmoid unit giving
  P(left)) to imitate the angle policy on 50 environments at once: each iteration is one
  batch of 50 observations, one compiled gradient step, and one step of every environment
  with actions sampled from the network (HOML's loop, with a Gymnasium vector env that
  resets finished episodes itself).

Example:
    >>> import numpy as np
    >>> from agents.policies import basic_policy
    >>> basic_policy(np.array([[0.0, 0.0, -0.1, 0.0], [0.0, 0.0, 0.1, 0.0]])).tolist()
    [0, 1]
"""
from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from agents import evaluation, policy_files, render
from agents.configs import BasicPolicyConfig
from agents.envs import make_env
from keras_impl.plotting import plot_learning_curve

ENV_ID = "CartPole-v1"


def basic_policy(obs_batch: np.ndarray) -> np.ndarray:
    """HOML's hard-coded policy, batched: left (0) if the pole leans left (angle < 0), else right (1).

    Args:
        obs_batch: ``[N, 4]`` CartPole observations (x, x_dot, theta, theta_dot).

    Returns:
        ``[N]`` int actions.
    """
    obs_batch = np.asarray(obs_batch)
    return (obs_batch[:, 2] >= 0).astype(np.int64)


def basic_policy_stats(episodes: int = 500, seed: int = 42, max_steps: int | None = None):
    """:func:`agents.evaluation.evaluate` of the angle policy (``max_steps=200``: HOML's cap)."""
    return evaluation.evaluate(basic_policy, ENV_ID, episodes=episodes, seed=seed, max_steps=max_steps)


def build_model(hidden_units: int = 5):
    """HOML's policy net: ``[B, 4] -> [B, 1]`` = P(action 0, left)."""
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(hidden_units, activation="elu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="cartpole_policy")


def train_imitation(iterations: int = 5000, n_envs: int = 50, seed: int = 42, hidden_units: int = 5,
                    learning_rate: float = 0.001, log=print):
    """Train the net to imitate :func:`basic_policy` while it plays ``n_envs`` CartPoles.

    The target is P(left) = 1 when the pole leans left, else 0 (binary cross-entropy). Actions
    are *sampled* from the network, as in HOML, so the states it trains on are the states its
    own (improving) policy visits.

    Returns:
        ``(model, losses)`` with one loss per iteration.
    """
    keras.utils.set_random_seed(seed)  # initial weights
    model = build_model(hidden_units)
    optimizer = keras.optimizers.RMSprop(learning_rate)  # HOML: RMSprop() with its default 0.001
    loss_fn = keras.losses.BinaryCrossentropy()

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def train_step(obs):
        target_left = tf.cast(obs[:, 2:3] < 0, tf.float32)  # [B, 1]: lean left -> P(left) = 1
        with tf.GradientTape() as tape:
            left_probas = model(obs, training=True)  # [B, 1]
            loss = loss_fn(target_left, left_probas)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, left_probas

    # SAME_STEP autoreset: a finished env returns its next episode's first observation at once,
    # exactly HOML's `obs if not done else env.reset()`.
    envs = gym.make_vec(ENV_ID, num_envs=n_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    envs.action_space.seed(seed)
    obs, _ = envs.reset(seed=seed)  # env i gets seed + i
    rng = np.random.default_rng(seed)
    losses = np.empty(iterations)
    start = time.perf_counter()
    for iteration in range(iterations):
        loss, left_probas = train_step(obs.astype(np.float32))
        losses[iteration] = float(loss)
        actions = (rng.random((n_envs, 1)) > left_probas.numpy()).astype(np.int64)[:, 0]  # [B]
        obs, _, _, _, _ = envs.step(actions)
        if log and (iteration + 1) % 1000 == 0:
            log(f"iteration {iteration + 1:5d}  loss {losses[iteration]:.3f}  {time.perf_counter() - start:.1f}s")
    envs.close()
    return model, losses


def greedy_left_policy(model):
    """Batched greedy policy of a P(left) model: left when P(left) > 0.5."""

    def policy(obs_batch):
        p_left = np.asarray(model(np.asarray(obs_batch, dtype=np.float32), training=False))[:, 0]
        return (p_left <= 0.5).astype(np.int64)

    return policy


# ----------------------------------------------------------------------------------------------
# Exercise
# ----------------------------------------------------------------------------------------------


def run(cfg: BasicPolicyConfig, run_dir: Path) -> dict:
    """``kcourse run basic-policy``: the angle policy's statistics, the imitation net, GIFs."""
    capped = basic_policy_stats(cfg.episodes, cfg.seed, max_steps=200)
    full = basic_policy_stats(cfg.episodes, cfg.seed)
    print(f"angle policy, 200-step cap (HOML's setting): {capped.summary()}")
    print(f"angle policy, CartPole-v1's 500-step limit:  {full.summary()}")

    start = time.perf_counter()
    model, losses = train_imitation(cfg.iterations, cfg.n_envs, cfg.seed, learning_rate=cfg.learning_rate)
    train_seconds = time.perf_counter() - start
    net = evaluation.evaluate(greedy_left_policy(model), ENV_ID, episodes=cfg.eval_episodes, seed=cfg.seed)
    net_sampled = evaluation.evaluate(evaluation.stochastic(model, "bernoulli-left", seed=cfg.seed), ENV_ID,
                                      episodes=cfg.eval_episodes, seed=cfg.seed)
    print(f"imitation net ({cfg.iterations} iterations, {train_seconds:.1f}s, final loss {losses[-1]:.3f})")
    print(f"  greedy:  {net.summary()}")
    print(f"  sampled: {net_sampled.summary()}")
    # How often the greedy net agrees with the angle policy on states the angle policy visits.
    states = _states_visited(cfg.seed)
    agreement = float(np.mean(greedy_left_policy(model)(states) == basic_policy(states)))

    policy_files.save_policy(run_dir / "policy", model, ENV_ID, kind="bernoulli-left", config=cfg, evaluation=net)
    plot_learning_curve(run_dir / "imitation_loss.png", "imitating the angle policy (50 envs)", returns=losses,
                        returns_label="binary cross-entropy", window=50, xlabel="iteration",
                        ylabel="binary cross-entropy")
    artifacts = ["imitation_loss.png", "policy"]
    if cfg.gif:
        render.write_gif(render.record_episode(basic_policy, ENV_ID, seed=cfg.seed), run_dir / "basic_policy.gif")
        render.write_gif(render.record_episode(greedy_left_policy(model), ENV_ID, seed=cfg.seed),
                         run_dir / "imitation_net.gif")
        artifacts += ["basic_policy.gif", "imitation_net.gif"]
    return {"headline": f"angle policy mean {capped.mean:.1f}, max {capped.max:.0f} at 200 steps "
                        f"(mean {full.mean:.1f}, max {full.max:.0f} at 500); imitation net greedy mean {net.mean:.1f}, "
                        f"agrees {agreement:.0%}",
            "reached": abs(capped.mean - 42) <= 5,  # HOML: mean ~42 at the 200-step cap
            "metrics": {"basic_mean_200": capped.mean, "basic_std_200": capped.std, "basic_min_200": capped.min,
                        "basic_max_200": capped.max, "basic_mean_500": full.mean, "basic_std_500": full.std,
                        "basic_min_500": full.min, "basic_max_500": full.max, "net_greedy_mean": net.mean,
                        "net_sampled_mean": net_sampled.mean, "net_agreement": agreement,
                        "final_loss": float(losses[-1]), "train_seconds": train_seconds},
            "artifacts": artifacts}


def _states_visited(seed: int, episodes: int = 20) -> np.ndarray:
    states = []
    for i in range(episodes):
        env = make_env(ENV_ID, seed=seed + i)
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            states.append(obs)
            obs, _, terminated, truncated, _ = env.step(int(basic_policy(obs[None])[0]))
            done = terminated or truncated
        env.close()
    return np.asarray(states, dtype=np.float32)
