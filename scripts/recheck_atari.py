"""Re-check an Atari policy's score outside kcourse: the env from Gymnasium's and ALE's own parts, the
network from plain ``keras.models.load_model``, the games played one by one by a loop written here.

Nothing of kcourse is imported: this is the check a referee would write. What it shares with
kcourse's protocol (docs/atari.md) is written out here, not imported:

* ``--env gymnasium`` (the default): ``ALE/{Game}-v5`` with ``frameskip=1``, ``full_action_space=False``
  and ``repeat_action_probability`` set by ``--protocol`` (sticky 0.25, atari100k 0); Gymnasium's
  ``AtariPreprocessing`` (up to 30 no-ops, a 4-frame skip with the max of the last two frames, grey
  84x84, uint8) and ``FrameStackObservation(4)``. This should be the env the policy trained on.
* ``--env ale``: ALE's own frame skip instead (``frameskip=4`` inside ALE, so no max over the last
  two frames), then the same no-ops, resize and stack (``AtariPreprocessing(frame_skip=1)``). Not the
  training env: how far the score moves says how much the policy leans on max-pooled frames.
* FIRE after the reset and after each lost life where action 1 is FIRE and the game has at least 3
  actions (SB3's ``FireResetEnv`` rule; neither library has a wrapper for the lost-life part, so a
  small one is written here). It sits below the frame stack, as in the protocol: the stack holds the
  frame after FIRE, not the one that lost the life (placed above the stack, the observations differ
  and so do the games).
* epsilon 0.001 random actions (DrQ(epsilon)'s evaluation), at most 27,000 agent steps a game.

Usage (seeds 6,000,000+ are used by no run, selection, report or other check)::

    python scripts/recheck_atari.py agents/trained/breakout-dueling-double --protocol sticky --episodes 30
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

STICKY = {"sticky": 0.25, "atari100k": 0.0}
FIRE = 1
MAX_AGENT_STEPS = 27_000


def make_env(env_id: str, protocol: str, which: str):
    """The game through Gymnasium's and ALE's wrappers, and the FIRE rule (see the module docstring)."""
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    class FireAfterResetAndLifeLoss(gym.Wrapper):
        def reset(self, **kwargs):
            self.env.reset(**kwargs)
            obs, _, _, _, info = self.env.step(FIRE)
            return obs, info

        def step(self, action):
            lives = self.env.unwrapped.ale.lives()
            obs, reward, terminated, truncated, info = self.env.step(action)
            if not (terminated or truncated) and self.env.unwrapped.ale.lives() < lives:
                obs, fire_reward, terminated, truncated, info = self.env.step(FIRE)
                reward += fire_reward
            return obs, reward, terminated, truncated, info

    gym.register_envs(ale_py)
    ale_skip, wrapper_skip = (1, 4) if which == "gymnasium" else (4, 1)
    env = gym.make(env_id, frameskip=ale_skip, repeat_action_probability=STICKY[protocol], full_action_space=False)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=wrapper_skip, screen_size=84, terminal_on_life_loss=False,
                             grayscale_obs=True, scale_obs=False)
    meanings = env.unwrapped.get_action_meanings()
    if len(meanings) >= 3 and meanings[FIRE] == "FIRE":
        env = FireAfterResetAndLifeLoss(env)
    return FrameStackObservation(env, stack_size=4)  # [4, 84, 84]


def play(model, env, seed: int, epsilon: float, rng: np.random.Generator) -> tuple[float, int]:
    """One full game: ``(score, agent steps)``."""
    obs, _ = env.reset(seed=seed)
    score, steps, done = 0.0, 0, False
    while not done and steps < MAX_AGENT_STEPS:
        if rng.random() < epsilon:
            action = int(rng.integers(env.action_space.n))
        else:
            q = model(np.transpose(obs, (1, 2, 0))[None], training=False)  # [1, A], channels last
            action = int(np.argmax(np.asarray(q)[0]))
        obs, reward, terminated, truncated, _ = env.step(action)
        score, steps, done = score + reward, steps + 1, terminated or truncated
    return score, steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", type=Path, help="a policy folder (model.keras and policy.json)")
    parser.add_argument("--protocol", choices=sorted(STICKY), default="sticky")
    parser.add_argument("--env", choices=("gymnasium", "ale"), default="gymnasium", dest="which")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=6_000_000)
    parser.add_argument("--epsilon", type=float, default=0.001)
    args = parser.parse_args(argv)
    try:
        meta = json.loads((args.policy / "policy.json").read_text())
        env_id = str(meta["env_id"])
    except (OSError, ValueError, KeyError) as error:
        print(f"recheck_atari: {args.policy} is not a policy folder with a policy.json naming env_id ({error})",
              file=sys.stderr)
        return 2
    if not env_id.startswith("ALE/"):
        print(f"recheck_atari: {args.policy} plays {env_id!r}, not an ALE v5 game", file=sys.stderr)
        return 2
    import keras
    from scipy import stats

    model = keras.models.load_model(args.policy / "model.keras", compile=False, safe_mode=True)
    env = make_env(env_id, args.protocol, args.which)
    rng = np.random.default_rng(args.seed)
    games = [play(model, env, args.seed + i, args.epsilon, rng) for i in range(args.episodes)]
    env.close()
    scores = np.array([score for score, _ in games])
    ci = stats.bootstrap((scores,), np.mean, method="BCa", n_resamples=9_999,
                         rng=np.random.default_rng(0)).confidence_interval if np.ptp(scores) else None
    interval = f"[{ci.low:.2f}, {ci.high:.2f}]" if ci is not None else "(all games scored the same)"
    print(f"{args.policy} on {env_id}, {args.which} env, {args.protocol} protocol, epsilon {args.epsilon:g}: "
          f"mean {scores.mean():.2f} +/- {scores.std():.2f} over {len(scores)} games "
          f"({len(set(games))} distinct outcomes), seeds {args.seed}-{args.seed + args.episodes - 1}; "
          f"95% interval of the mean {interval}")
    print("scores:", [int(s) if s == int(s) else float(s) for s in scores])
    return 0


if __name__ == "__main__":
    sys.exit(main())
