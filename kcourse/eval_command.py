"""``kcourse eval POLICY``: evaluate a saved policy (or ``random``), print the result, optionally record it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from agents import render
from agents.envs import make_env, resolve_env_id
from agents.evaluation import evaluate, random_policy
from agents.policy_files import env_factory_for, load_policy, space_to_dict
from keras_impl import files
from keras_impl.config import invalid


def _check_spaces(meta: dict, env_id: str, env_kwargs: dict) -> None:
    """A clear error when ``--env`` names an env whose spaces differ from the policy's."""
    env = make_env(env_id, **env_kwargs)
    try:
        for key, space in (("observation_space", env.observation_space), ("action_space", env.action_space)):
            saved = meta.get(key)
            here = space_to_dict(space)
            if saved and (saved.get("shape") != here.get("shape") or saved.get("n") != here.get("n")):
                raise ValueError(f"the policy was trained on {meta['env_id']} and cannot act in {env_id}: its "
                                 f"{key.replace('_', ' ')} differs (saved {saved}, {env_id} has {here})")
    finally:
        env.close()


def _video_path(args, env_id: str, seed: int) -> Path | None:
    """The ``--render`` output, checked before the evaluation runs."""
    if not args.render:
        return None
    out = Path(args.render_out) if args.render_out else Path(f"eval_{env_id}_seed{seed}.{args.render}")
    if out.suffix.lower() != f".{args.render}":
        raise ValueError(f"Received an invalid value for argument `--render-out`: expected a .{args.render} file, "
                         f"got {str(out)!r}")
    return files.writable_path(out, "video (--render-out)")


def main(args) -> int:
    """Evaluate, print mean/std/min/max and every return; exit 1 below ``--min-mean``."""
    seed = int(args.seed)
    for name, value, least in (("--episodes", args.episodes, 1), ("--seed", args.seed, 0),
                               ("--max-steps", args.max_steps, 1), ("--render-steps", args.render_steps, 1)):
        if value is not None and value < least:  # --seed -1 was a Gymnasium traceback; --max-steps 0 one-step episodes
            raise invalid(name, f">= {least}", value)
    if args.json:
        files.writable_path(args.json, "result file (--json)")
    factory = None
    if args.policy == "random":
        if not args.env:
            raise ValueError("`kcourse eval random` needs --env ID")
        env_id, env_kwargs = resolve_env_id(args.env), {}
        probe = make_env(env_id, seed=seed)
        policy, meta = random_policy(probe.action_space, seed), {"kind": "random", "env_id": env_id}
        probe.close()
    else:
        policy, meta = load_policy(args.policy, stochastic=args.stochastic, seed=seed)
        env_kwargs, env_id = dict(meta.get("env_kwargs") or {}), meta["env_id"]
        factory = env_factory_for(meta)
        if args.env and resolve_env_id(args.env) != env_id:
            env_id, env_kwargs, factory = resolve_env_id(args.env), {}, None
            _check_spaces(meta, env_id, env_kwargs)
    video = _video_path(args, env_id, seed)
    result = evaluate(policy, env_id, episodes=args.episodes, seed=seed, env_kwargs=env_kwargs,
                      max_steps=args.max_steps, env_factory=factory)
    mode = "stochastic" if args.stochastic else "greedy"
    print(f"{args.policy} ({meta['kind']}, {mode}) on {result.summary()}")
    print("returns: [" + ", ".join(f"{r:g}" for r in result.returns) + "]")
    if video is not None:
        env = factory(seed=seed, render=True, **env_kwargs) if factory else None  # e.g. Breakout's wrappers
        try:
            frames = render.record_episode(policy, env_id, seed=seed, env_kwargs=env_kwargs,
                                           max_steps=args.render_steps, env=env)
        finally:
            if env is not None:
                env.close()
        render.write_video(frames, video)
        print(f"wrote {video} ({len(frames)} frames, episode seed {seed})")
    if args.json:
        files.atomic_write_json(args.json, {"policy": str(args.policy), "mode": mode, **dataclasses.asdict(result)})
    if args.min_mean is not None and not result.mean >= args.min_mean:
        print(f"FAIL: mean {result.mean:.2f} < --min-mean {args.min_mean:g}")
        return 1
    return 0
