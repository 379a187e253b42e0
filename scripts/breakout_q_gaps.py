"""How much a Breakout checkpoint's Q-values depend on the state and on the action.

Restores the QNetwork from a ``tfa-dqn --env breakout`` checkpoint folder, plays random actions
for ``--steps`` agent steps, and prints on every 4th state: the mean Q-value per action, its
standard deviation across states, the mean gap between the best and the worst action, and how
often each action is the greedy one. Small gaps mean the greedy policy is decided by noise.

Usage:
    python scripts/breakout_q_gaps.py RUN_DIR/checkpoints/ckpt-125000 [--steps 2000] [--seed 3]
"""
from __future__ import annotations

import argparse

import numpy as np

from agents.atari import make_breakout_env
from agents.configs import TfaDqnConfig
from agents.tfa import components
from agents.tfa.pipeline import CHECKPOINT_FILE, _checkpoint
from keras_impl import config as cfglib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint folder (RUN_DIR/checkpoints/ckpt-NNNNNN)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf  # after the agents.tfa imports: agents/tfa/__init__ sets TF_USE_LEGACY_KERAS first

    p = cfglib.resolve(TfaDqnConfig, {"env": "breakout", "replay_capacity": 100})  # no buffer needed
    c = components.build(p)
    _checkpoint(c, p).read(f"{args.checkpoint}/{CHECKPOINT_FILE}").expect_partial()

    env = make_breakout_env(seed=args.seed)
    obs, _ = env.reset(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    states = []
    for _ in range(args.steps):
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, _ = env.reset()
    batch = np.stack(states)[::4]  # [N, 84, 84, 4]
    q = c.agent._q_network(tf.constant(batch), training=False)[0].numpy()  # [N, 4]
    print(f"train step {int(c.train_step.numpy())}, {len(batch)} states")
    print("mean Q per action:           ", q.mean(0).round(3))
    print("std across states per action:", q.std(0).round(3))
    print("mean gap best - worst action:", round(float((q.max(1) - q.min(1)).mean()), 4))
    print("greedy action counts:        ", np.bincount(q.argmax(1), minlength=q.shape[1]))


if __name__ == "__main__":
    main()
