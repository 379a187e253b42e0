"""``kcourse eval POLICY``: evaluate a saved policy (or ``random``), print the result, optionally record it."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from agents import render
from agents.atari import is_atari, protocol_kwargs
from agents.envs import make_env, resolve_env_id
from agents.evaluation import EvalResult, epsilon_greedy, evaluate, random_policy
from agents.policy_files import env_factory_for, eval_epsilon, load_policy, space_to_dict
from keras_impl import files
from keras_impl.config import invalid


MAX_EPISODES = 1_000_000  # `--episodes 100000000` ran out of memory before the first step
BATCH = 1_000  # episodes evaluated at once (one environment each)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_INPUT_VALUE = re.compile(r"for input .*? with")  # Keras prints the whole input array there


def evaluate_in_batches(policy, env_id: str, episodes: int, seed: int, batch: int = BATCH, **kwargs) -> EvalResult:
    """:func:`agents.evaluation.evaluate` over ``episodes``, ``batch`` environments at a time.

    Episode ``i`` is reset with ``seed + i`` whatever the batch size, so a greedy policy's returns
    equal one call's (an epsilon-greedy one draws its random actions from one stream across batches).
    """
    parts = [evaluate(policy, env_id, episodes=min(batch, episodes - start), seed=seed + start, **kwargs)
             for start in range(0, episodes, batch)]
    returns = np.array([r for part in parts for r in part.returns])
    return dataclasses.replace(parts[0], mean=float(returns.mean()), std=float(returns.std()),
                               min=float(returns.min()), max=float(returns.max()), returns=returns.tolist(),
                               lengths=[n for part in parts for n in part.lengths], seed=seed)


def _check_policy_fits(policy, meta: dict, path, env_id: str, env) -> None:
    """One line instead of a Keras traceback when ``policy.json`` and the model do not fit the env.

    ``policy.json``'s spaces must be the env's (an ``env_id`` edited in the file), and the model must
    map one of the env's observations to one valid action (a model copied from another policy).
    """
    for key, space in (("observation_space", env.observation_space), ("action_space", env.action_space)):
        saved, here = meta.get(key), space_to_dict(space)
        if saved and (saved.get("shape") != here.get("shape") or saved.get("n") != here.get("n")):
            raise ValueError(f"{path}: policy.json's {key.replace('_', ' ')} ({_brief(saved)}) does not match "
                             f"{env_id}'s ({_brief(here)}): the file was edited or belongs to another policy")
    obs, _ = env.reset(seed=0)
    try:
        action = np.asarray(policy(np.asarray(obs)[None]))
    except Exception as err:  # Keras' shape errors are many lines with ANSI colours: one line names the mismatch
        lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
        why = next((line for line in lines if "shape" in line.lower()), lines[0] if lines else type(err).__name__)
        raise ValueError(f"{path}: model.keras does not accept {env_id}'s observations (shape "
                         f"{list(np.shape(obs))}, as policy.json says: {_brief(meta.get('observation_space') or {})}); "
                         f"the model belongs to another policy? ({_INPUT_VALUE.sub('for input with', why)[:160]})") from None
    if action.shape[:1] != (1,) or not env.action_space.contains(action[0].item() if action.ndim == 1 else action[0]):
        raise ValueError(f"{path}: the model's action {action.tolist()} is not one of {env_id}'s actions "
                         f"({env.action_space}): model.keras belongs to another policy")


def _brief(space: dict) -> str:
    """``Box shape [4]`` / ``Discrete n=16`` from :func:`agents.policy_files.space_to_dict`'s form."""
    kind = space.get("type", "?")
    return f"{kind} n={space['n']}" if "n" in space else f"{kind} shape {space.get('shape')}"


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
    if args.epsilon is not None and not 0 <= args.epsilon <= 1:
        raise invalid("--epsilon", "a probability in [0, 1]", args.epsilon)
    if args.epsilon and (args.stochastic or args.policy == "random"):
        raise ValueError("--epsilon applies to a greedy policy; leave it out with --stochastic or `random`")
    if args.episodes > MAX_EPISODES:
        raise invalid("--episodes", f"<= {MAX_EPISODES:,} (evaluated {BATCH:,} at a time)", args.episodes)
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
        else:  # --stochastic probes a greedy copy: the sampling generator's first numbers stay for the episodes
            fits = load_policy(args.policy)[0] if args.stochastic else policy
            probe = factory(seed=seed, **env_kwargs) if factory else make_env(env_id, seed=seed, **env_kwargs)
            try:
                _check_policy_fits(fits, meta, args.policy, env_id, probe)
            finally:
                probe.close()
    if args.protocol and not is_atari(env_id):
        raise ValueError(f"--protocol {args.protocol} applies to Atari games; {env_id} is not one")
    env_kwargs.update(protocol_kwargs(env_id, args.protocol))  # Atari: sticky actions by the protocol, never an id's
    protocol = env_kwargs.get("protocol")
    video = _video_path(args, env_id, seed)
    epsilon = 0.0 if args.stochastic or args.policy == "random" else eval_epsilon(meta, args.epsilon)
    n_actions = int((meta.get("action_space") or {}).get("n", 0))
    if epsilon and not n_actions:
        raise ValueError(f"{args.policy}: policy.json names no discrete action space, so --epsilon cannot act "
                         f"at random")
    result = evaluate_in_batches(epsilon_greedy(policy, n_actions, epsilon, seed), env_id, args.episodes, seed,
                                 env_kwargs=env_kwargs, max_steps=args.max_steps, env_factory=factory)
    mode = "stochastic" if args.stochastic else f"epsilon {epsilon:g}" if epsilon else "greedy"
    print(f"{args.policy} ({meta['kind']}, {mode}{f', {protocol} protocol' if protocol else ''}) on {result.summary()}")
    low, high = result.interval()
    print(f"95% interval of the mean: [{low:.2f}, {high:.2f}] (BCa bootstrap over the {len(result.returns)} "
          f"episodes, scipy.stats.bootstrap)")
    print("returns: [" + ", ".join(f"{r:g}" for r in result.returns) + "]")
    if video is not None:
        env = factory(seed=seed, render=True, **env_kwargs) if factory else None  # e.g. Breakout's wrappers
        try:
            frames = render.record_episode(epsilon_greedy(policy, n_actions, epsilon, seed), env_id, seed=seed,
                                           env_kwargs=env_kwargs,
                                           max_steps=args.render_steps, env=env)
        finally:
            if env is not None:
                env.close()
        render.write_video(frames, video)
        print(f"wrote {video} ({len(frames)} frames, episode seed {seed})")
    if args.json:
        files.atomic_write_json(args.json, {"policy": str(args.policy), "mode": mode, "epsilon": epsilon,
                                            "protocol": protocol, "distinct_outcomes": result.distinct,
                                            "interval_95": [low, high], **dataclasses.asdict(result)})
    if args.min_mean is not None and not result.mean >= args.min_mean:
        print(f"FAIL: mean {result.mean:.2f} < --min-mean {args.min_mean:g}")
        return 1
    return 0
