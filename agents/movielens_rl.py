"""Agents and baselines on ``MovieLensRecommendation-v0``, and the ``movielens-rl`` exercise.

Agents (each a batched policy ``policy(obs [E, F+N], masks [E, N], users [E]) -> actions [E]``
that never picks a masked film):

* ``random``: uniform among the films not yet recommended;
* ``popular``: the most-rated films first (the same list for everyone);
* ``greedy``: the recommender's highest predicted ratings for this user (the classic top-K);
* ``q-learning``: tabular Q-learning; the state is (user segment, set of films recommended so
  far), user segments come from k-means on the recommender's user embeddings. Meant for a small
  candidate set: the number of states grows as ``segments * C(N, <K)``;
* ``dqn``: :class:`agents.dqn.DQNAgent` with its action-mask hook (:func:`movielens_splitter`,
  TF-Agents' ``observation_and_action_constraint_splitter``): the mask is applied when acting and
  inside the TD target's max over next actions; the memory is ``agents.replay.ReplayBuffer``.
* ``oracle`` (reference only, not an agent): the top-K of the environment's own reward table,
  an upper bound on the average reward any policy can reach.

Metrics over the same held-out users for every agent and seed: average reward per
recommendation, hit rate against held-out (validation) ratings >= 4 stars (among users who have
at least one such film among the candidates: the share whose list contains one), coverage
(the share of candidates recommended at least once) and the share of rewards that came from an
observed rating.

What "beating greedy" means here: with ``reward="hybrid"`` the reward of an unrated film *is* the
recommender's prediction, and rewards do not depend on the order of the list, so
greedy-by-recommender is optimal except where an observed rating differs from the prediction.
The oracle row shows how much room that leaves; the DQN's target is to come within 5% of greedy
from the user embedding alone, i.e. to learn a personalised ranking, not to beat the simulator.

Run it::

    kcourse run movielens-rl --agent all --n-seeds 3
    kcourse run movielens-rl --data ~/data/ml-latest-small --candidates 50 --agent greedy
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.cluster import KMeans

from agents.configs import MOVIELENS_AGENTS as AGENTS
from agents.configs import MOVIELENS_Q_ENVS
from agents.configs import DQNConfig, MovieLensRLConfig
from agents.dqn import DQNAgent, linear_decay, masked_argmax, random_legal
from agents.movielens_env import (
    ENV_ID,
    LIKED_RATING,
    MovieLensRecommendationEnv,
    RecTables,
    build_tables,
    check_model_matches,
    train_recommender,
)
from agents.replay import ReplayBuffer
from keras_impl import files, movielens, runtime
from keras_impl import recommender as recommender_lib
from keras_impl.config import invalid

Policy = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------
# Small pure functions (tested against hand-worked numbers)
# ----------------------------------------------------------------------------------------------


def movielens_splitter(n_candidates: int):
    """The action-mask hook of :class:`agents.dqn.DQNAgent` for this environment.

    An observation's last ``N`` entries are the recommended-so-far indicator, so its legal actions
    are ``1 - obs[..., -N:]``, for the observation acted on and for a stored ``next_obs`` alike
    (the replay buffer keeps what it always keeps). Works on NumPy arrays and TF tensors.
    """
    return lambda obs: (obs, 1 - obs[..., -n_candidates:])


def recommendation_metrics(rewards: np.ndarray, actions: np.ndarray, users: np.ndarray, tables: RecTables,
                           rated: np.ndarray | None = None) -> dict:
    """Average reward per recommendation, hit rate, coverage.

    Args:
        rewards: ``[M, K]`` rewards of ``M`` episodes of ``K`` recommendations.
        actions: ``[M, K]`` candidate positions recommended.
        users: ``[M]`` course user index of each episode.
        tables: the environment's tables (held-out ratings, candidate count).
        rated: ``[M, K]`` True where the reward was an observed rating (optional).

    Returns:
        ``avg_reward``; ``hit_rate``: among users with at least one held-out rating >= 4 among the
        candidates, the share whose list holds one (NaN when no user qualifies); ``hit_users``;
        ``coverage``: distinct candidates recommended / N; ``observed_share``.
    """
    rewards, actions, users = np.asarray(rewards, float), np.asarray(actions), np.asarray(users)
    liked = np.nan_to_num(tables.heldout[users], nan=0.0) >= LIKED_RATING  # [M, N]
    eligible = liked.any(axis=1)  # [M]
    hit = np.take_along_axis(liked, actions, axis=1).any(axis=1)  # [M]
    return {"avg_reward": float(rewards.mean()),
            "hit_rate": float(hit[eligible].mean()) if eligible.any() else float("nan"),
            "hit_users": int(eligible.sum()),
            "coverage": float(len(np.unique(actions)) / tables.n_candidates),
            "observed_share": float(np.mean(rated)) if rated is not None else float("nan")}


# ----------------------------------------------------------------------------------------------
# Batched episodes through the Gymnasium API
# ----------------------------------------------------------------------------------------------


class EpisodeBatch:
    """``E`` copies of the environment stepped in lockstep (one policy call serves all ``E``).

    Every episode lasts exactly ``k`` steps, so the copies terminate together and no autoreset
    is needed (``gymnasium.vector`` would add autoreset bookkeeping for nothing). The copies share
    one :class:`RecTables` (and its reward table): a copy costs a few arrays of size ``N``.
    """

    def __init__(self, tables: RecTables, n_envs: int, **env_kwargs):
        self.envs = [MovieLensRecommendationEnv(tables, **env_kwargs) for _ in range(n_envs)]
        self.k = self.envs[0].k
        self._seeded = False

    def reset(self, users: np.ndarray, seed: int | None = None):
        """Start one episode per user in ``users [E' <= E]``; returns ``(obs [E', F+N], masks [E', N])``.

        ``seed`` seeds copy ``i`` with ``seed + i`` on the first call only (Gymnasium: seed once).
        """
        obs, masks = [], []
        first = not self._seeded and seed is not None
        self._seeded = self._seeded or first
        for i, user in enumerate(users):
            o, info = self.envs[i].reset(seed=seed + i if first else None, options={"user_index": int(user)})
            obs.append(o)
            masks.append(info["action_mask"])
        return np.stack(obs), np.stack(masks)

    def step(self, actions: np.ndarray):
        """``actions [E']`` -> ``(obs, rewards, terminated, masks, rated)`` stacked over the copies."""
        out = [self.envs[i].step(int(a)) for i, a in enumerate(actions)]
        obs = np.stack([o[0] for o in out])
        rewards = np.array([o[1] for o in out], dtype="float32")
        terminated = np.array([o[2] for o in out])
        masks = np.stack([o[4]["action_mask"] for o in out])
        rated = np.array([o[4]["rated"] for o in out])
        return obs, rewards, terminated, masks, rated


def rollout(tables: RecTables, policy: Policy, users: np.ndarray, env_kwargs: dict, seed: int = 0,
            batch: int = 256) -> dict:
    """One episode per user with ``policy``; returns arrays ``rewards/actions/rated [M, K]``, ``users [M]``."""
    runner = EpisodeBatch(tables, min(batch, len(users)), **env_kwargs)
    rewards, actions, rated = [], [], []
    for start in range(0, len(users), batch):
        chunk = np.asarray(users[start: start + batch])
        obs, masks = runner.reset(chunk, seed=seed + start)
        ep_r, ep_a, ep_o = [], [], []
        for _ in range(runner.k):
            a = np.asarray(policy(obs, masks, chunk))
            assert np.all(np.take_along_axis(masks, a[:, None], 1) == 1), "policy picked a masked film"
            obs, r, term, masks, o = runner.step(a)
            ep_r.append(r), ep_a.append(a), ep_o.append(o)
        assert term.all(), "episodes must end after k recommendations"
        rewards.append(np.stack(ep_r, 1)), actions.append(np.stack(ep_a, 1)), rated.append(np.stack(ep_o, 1))
    return {"rewards": np.concatenate(rewards), "actions": np.concatenate(actions),
            "rated": np.concatenate(rated), "users": np.asarray(users)}


def evaluate(tables: RecTables, policy: Policy, users: np.ndarray, env_kwargs: dict, seed: int = 0) -> dict:
    """:func:`rollout` then :func:`recommendation_metrics`."""
    out = rollout(tables, policy, users, env_kwargs, seed=seed)
    return recommendation_metrics(out["rewards"], out["actions"], out["users"], tables, out["rated"])


# ----------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------


def random_agent(seed: int = 0) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda obs, masks, users: random_legal(masks, rng)


def popular_agent(tables: RecTables) -> Policy:
    """The most-rated films (training ratings) first, for everyone."""
    scores = tables.popularity.astype("float64")[None]  # [1, N]
    return lambda obs, masks, users: masked_argmax(np.broadcast_to(scores, masks.shape), masks)


def greedy_agent(tables: RecTables) -> Policy:
    """The recommender's top predicted ratings for the episode's user."""
    return lambda obs, masks, users: masked_argmax(tables.predicted[users], masks)


def oracle_agent(tables: RecTables, reward: str, unrated_reward: float = 0.0) -> Policy:
    """Reads the environment's reward table: an upper bound, not a recommender."""
    table = tables.rewards(reward, unrated_reward)
    return lambda obs, masks, users: masked_argmax(table[users], masks)


# ----------------------------------------------------------------------------------------------
# Tabular Q-learning: state = (user segment, films recommended so far)
# ----------------------------------------------------------------------------------------------


class TabularQ:
    """Q-learning on (k-means segment of the user embedding, recommended-set bitmask).

    The Q-table is a dict from state to ``[N]`` values (only visited states are stored). An
    unvisited state has all-zero values, so it falls back to the first legal candidate, which is
    the most popular one (candidates are ordered by popularity).
    """

    def __init__(self, tables: RecTables, train_users: np.ndarray, segments: int = 8, seed: int = 0):
        self.n = tables.n_candidates
        self.feature_dim = tables.feature_dim
        features = tables.user_features[train_users].astype("float64")
        segments = int(min(segments, len(train_users)))
        self.kmeans = KMeans(n_clusters=segments, n_init=4, random_state=seed).fit(features)
        self.q: dict[tuple[int, bytes], np.ndarray] = {}

    def states(self, obs: np.ndarray) -> list[tuple[int, bytes]]:
        """Discrete states of observations ``[E, F+N]``."""
        seg = self.kmeans.predict(obs[:, : self.feature_dim].astype("float64"))
        bits = np.packbits(obs[:, self.feature_dim:] > 0.5, axis=1)
        return [(int(s), b.tobytes()) for s, b in zip(seg, bits)]

    def values(self, state) -> np.ndarray:
        row = self.q.get(state)
        if row is None:
            row = self.q[state] = np.zeros(self.n)
        return row

    def policy(self) -> Policy:
        return lambda obs, masks, users: masked_argmax(np.stack([self.values(s) for s in self.states(obs)]), masks)

    def train(self, tables: RecTables, users: np.ndarray, env_kwargs: dict, episodes: int, alpha: float, gamma: float,
              eps_start: float = 1.0, eps_end: float = 0.05, explore_fraction: float = 0.5, seed: int = 0,
              n_envs: int = MOVIELENS_Q_ENVS) -> list[float]:
        """Epsilon-greedy Q-learning; returns the mean reward per recommendation of each batch of episodes."""
        rng = np.random.default_rng(seed)
        runner = EpisodeBatch(tables, n_envs, **env_kwargs)
        curve, done = [], 0
        while done < episodes:
            chunk = rng.choice(users, size=min(n_envs, episodes - done))
            obs, masks = runner.reset(chunk, seed=seed + done)
            states = self.states(obs)
            batch_rewards = []
            for _ in range(runner.k):
                eps = linear_decay(eps_start, eps_end, done, explore_fraction * episodes)
                greedy = masked_argmax(np.stack([self.values(s) for s in states]), masks)
                actions = np.where(rng.random(len(chunk)) < eps, random_legal(masks, rng), greedy)
                obs, rewards, terminated, masks, _ = runner.step(actions)
                next_states = self.states(obs)
                for s, a, r, s2, m2, term in zip(states, actions, rewards, next_states, masks, terminated):
                    future = 0.0 if term else float(np.max(np.where(m2 > 0, self.values(s2), -np.inf)))
                    row = self.values(s)
                    row[a] += alpha * (r + gamma * future - row[a])
                states = next_states
                batch_rewards.append(rewards.mean())
            done += len(chunk)
            curve.append(float(np.mean(batch_rewards)))
        return curve


# ----------------------------------------------------------------------------------------------
# DQN with action masking
# ----------------------------------------------------------------------------------------------


def dqn_policy(agent: DQNAgent) -> Policy:
    """A trained masked DQN as this module's policy ``(obs, masks, users) -> actions`` (greedy, legal only)."""
    return lambda obs, masks, users: agent.greedy_policy(obs)


def train_dqn(tables: RecTables, users: np.ndarray, env_kwargs: dict, episodes: int = 4000, n_envs: int = 16,
              gamma: float = 0.9, learning_rate: float = 1e-3, hidden=(256, 256), batch_size: int = 128,
              buffer_size: int = 50_000, learning_starts: int = 1_000, gradient_steps: int = 2,
              target_tau: float = 0.01, eps_start: float = 1.0, eps_end: float = 0.02, explore_fraction: float = 0.3,
              seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[DQNAgent, list[float]]:
    """Train a masked :class:`agents.dqn.DQNAgent` on episodes of users drawn from ``users``.

    ``n_envs`` episodes run in lockstep; after each lockstep (``n_envs`` transitions) the agent
    takes ``gradient_steps`` updates and a soft target update with ``target_tau``. Every episode
    has exactly ``k`` steps whatever the actions, so the rewards are centred on the mean reward of
    the exploration before learning starts: that shifts Q(s, .) by an amount that depends on the
    step only (the greedy policy is unchanged) and keeps Q-values near 0, where the Huber loss is
    quadratic (uncentred ratings give Q ~ 25 with gamma 0.9 and learning crawls).

    Returns:
        The agent and the mean reward per recommendation of each batch of episodes.
    """
    runtime.seed_everything(seed)  # network initialisation
    rng = np.random.default_rng(seed)
    runner = EpisodeBatch(tables, n_envs, **env_kwargs)
    cfg = DQNConfig(env=ENV_ID, hidden=tuple(hidden), learning_rate=learning_rate, gamma=gamma, batch_size=batch_size,
                    loss="huber", max_grad_norm=10.0, target_update="soft", tau=target_tau, seed=seed)
    env = runner.envs[0]
    agent = DQNAgent(cfg, env.observation_space, env.action_space, splitter=movielens_splitter(tables.n_candidates))
    buffer = ReplayBuffer(buffer_size, obs_shape=env.observation_space.shape, seed=seed)
    curve, done, t0, offset = [], 0, time.time(), None
    while done < episodes:
        chunk = rng.choice(users, size=min(n_envs, episodes - done))
        obs, _ = runner.reset(chunk, seed=seed + done)
        epsilon = linear_decay(eps_start, eps_end, done, explore_fraction * episodes)
        batch_rewards = []
        for _ in range(runner.k):
            actions = agent.act_batch(obs, epsilon)
            next_obs, rewards, terminated, _, _ = runner.step(actions)
            for i in range(len(chunk)):
                buffer.add(obs[i], actions[i], rewards[i] - (offset or 0.0), next_obs[i], terminated[i], False)
            obs = next_obs
            batch_rewards.append(rewards.mean())
            if len(buffer) >= learning_starts:
                if offset is None:  # the mean reward of the exploration so far, fixed from now on
                    offset = np.float32(buffer.rewards[: len(buffer)].mean())
                    buffer.rewards[: len(buffer)] -= offset
                agent.learn(buffer, batch_size, gradient_steps)
                agent.sync_target()
        done += len(chunk)
        curve.append(float(np.mean(batch_rewards)))
        if log and (len(curve) % max(1, (episodes // n_envs) // 10) == 0 or done >= episodes):
            log(f"  dqn episodes {done:6d}  epsilon {epsilon:.2f}  avg reward (last 20 batches) "
                f"{np.mean(curve[-20:]):.3f}  {time.time() - t0:.0f}s")
    return agent, curve


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------


def prepare(cfg: MovieLensRLConfig, run_dir: Path | None = None, log=print):
    """Data, recommender and tables; returns ``(tables, train_users, eval_users, info)``."""
    folder = movielens.synthetic_folder(cfg.synthetic_size, seed=cfg.seed) if cfg.data == "synthetic" \
        else Path(cfg.data).expanduser()
    with runtime.Timer() as t_data:
        data = movielens.load_course_data(folder, n_users=cfg.users)
    log(f"data: {folder} -> {len(data.frame):,} ratings, {data.n_users} users, {data.n_movies} films "
        f"({t_data.seconds:.1f}s)")
    if not 1 <= cfg.eval_users < data.n_users:  # checked before the recommender trains
        raise ValueError(f"Received an invalid value for argument `eval_users`, expected 1 <= eval_users < "
                         f"{data.n_users} (users in the data), got {cfg.eval_users}")
    with runtime.Timer() as t_rec:
        if cfg.recommender:
            model = recommender_lib.load(cfg.recommender)
            check_model_matches(data, model)  # before any prediction reads another sample's rows
        else:
            model = train_recommender(data, epochs=cfg.rec_epochs, batch_size=cfg.rec_batch_size, seed=cfg.seed)
            if run_dir is not None:
                recommender_lib.save(model, Path(run_dir) / "checkpoints" / "recommender.keras")
    val_mse = float(np.mean((recommender_lib.predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
    log(f"recommender: {'loaded ' + cfg.recommender if cfg.recommender else f'trained {cfg.rec_epochs} epoch(s), batch {cfg.rec_batch_size}'}"
        f", val MSE {val_mse:.4f} ({t_rec.seconds:.0f}s)")
    tables = build_tables(data, model, candidates=cfg.candidates, observed=cfg.observed)
    train_users, eval_users = split_users(tables.n_users, cfg.eval_users, cfg.train_users, cfg.seed)
    info = {"val_mse": val_mse, "recommender_seconds": t_rec.seconds, "n_users": data.n_users,
            "n_movies": data.n_movies, "n_ratings": len(data.frame)}
    return tables, train_users, eval_users, info


def split_users(n_users: int, eval_users: int, train_users: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train users, evaluation users)``: disjoint, sorted; ``train_users=0``: every other user.

    The evaluation users are the report set. No agent selects anything on any users (no early
    stop, no choice of weights), so there is no selection set to keep apart.
    """
    order = np.random.default_rng(seed).permutation(n_users)
    train = order[eval_users:]
    if train_users > 0:
        train = train[:train_users]
    return np.sort(train), np.sort(order[:eval_users])


def _env_kwargs(cfg: MovieLensRLConfig) -> dict:
    return {"k": cfg.k, "reward": cfg.reward, "unrated_reward": cfg.unrated_reward, "repeat": "raise"}


def run_agent(name: str, cfg: MovieLensRLConfig, tables: RecTables, train_users: np.ndarray, seed: int,
              log=print) -> tuple[Policy, dict]:
    """Build (and train) one agent; returns its policy and training facts."""
    kwargs = _env_kwargs(cfg)
    t0 = time.time()
    if name == "random":
        return random_agent(seed), {}
    if name == "popular":
        return popular_agent(tables), {}
    if name == "greedy":
        return greedy_agent(tables), {}
    if name == "q-learning":
        agent = TabularQ(tables, train_users, segments=cfg.q_segments, seed=seed)
        curve = agent.train(tables, train_users, kwargs, cfg.q_episodes, cfg.q_alpha, cfg.gamma, seed=seed)
        return agent.policy(), {"train_seconds": time.time() - t0, "states": len(agent.q), "curve": curve}
    if name == "dqn":
        agent, curve = train_dqn(tables, train_users, kwargs, episodes=cfg.dqn_episodes, n_envs=cfg.dqn_envs,
                                 gamma=cfg.gamma, learning_rate=cfg.dqn_lr, hidden=cfg.dqn_hidden,
                                 batch_size=cfg.dqn_batch_size, gradient_steps=cfg.dqn_gradient_steps, seed=seed,
                                 log=log)
        return dqn_policy(agent), {"train_seconds": time.time() - t0, "curve": curve, "agent": agent}
    raise invalid("agent", f"one of {', '.join(AGENTS)}", name)


def format_table(rows: dict[str, list[dict]], greedy_reward: float | None) -> str:
    """A Markdown table: one row per agent, mean (and std over seeds) of each metric."""
    lines = ["| agent | seeds | avg reward / rec | vs greedy | hit rate | coverage | observed share | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        r = np.array([m["avg_reward"] for m in runs])
        reward = f"{r.mean():.4f} ± {r.std():.4f}" if len(r) > 1 else f"{r.mean():.4f}"
        vs = f"{100 * (r.mean() / greedy_reward - 1):+.1f}%" if greedy_reward else "-"
        hit = np.nanmean([m["hit_rate"] for m in runs])
        cov = np.mean([m["coverage"] for m in runs])
        obs_share = np.mean([m["observed_share"] for m in runs])
        secs = [m.get("train_seconds", 0.0) for m in runs]
        lines.append(f"| {name} | {len(runs)} | {reward} | {vs} | {hit:.3f} | {cov:.3f} | {obs_share:.3f} | "
                     f"{np.mean(secs):.0f} |")
    return "\n".join(lines)


def run(cfg: MovieLensRLConfig, run_dir: Path) -> dict:
    """``kcourse run movielens-rl``: every agent on the same held-out users; the table and results.json."""
    tables, train_users, eval_users, info = prepare(cfg, run_dir)
    print(f"env: {tables.n_candidates} candidates, k={cfg.k}, reward={cfg.reward}, observed={cfg.observed}; "
          f"agents train on {len(train_users)} users, evaluated on {len(eval_users)} held-out users", flush=True)
    names = ["random", "popular", "greedy", "q-learning", "dqn"] if cfg.agent == "all" else [cfg.agent]
    kwargs = _env_kwargs(cfg)
    rows: dict[str, list[dict]] = {}
    for name in names:
        for i in range(cfg.n_seeds):
            seed = cfg.seed + i
            print(f"{name}, seed {seed}", flush=True)
            policy, facts = run_agent(name, cfg, tables, train_users, seed)
            metrics = evaluate(tables, policy, eval_users, kwargs, seed=seed)
            metrics["seed"] = seed
            metrics.update({k: v for k, v in facts.items() if k in ("train_seconds", "states")})
            rows.setdefault(name, []).append(metrics)
            print(f"  avg reward {metrics['avg_reward']:.4f}  hit rate {metrics['hit_rate']:.3f}  "
                  f"coverage {metrics['coverage']:.3f}", flush=True)
    rows["oracle (upper bound)"] = [evaluate(tables, oracle_agent(tables, cfg.reward, cfg.unrated_reward),
                                             eval_users, kwargs)]
    greedy_reward = float(np.mean([m["avg_reward"] for m in rows["greedy"]])) if "greedy" in rows else None
    table = format_table(rows, greedy_reward)
    print(table, flush=True)
    (Path(run_dir) / "table.md").write_text(table + "\n", encoding="utf-8")
    summary = {name: {"avg_reward": float(np.mean([m["avg_reward"] for m in runs])),
                      "avg_reward_std": float(np.std([m["avg_reward"] for m in runs])),
                      "hit_rate": float(np.nanmean([m["hit_rate"] for m in runs])),
                      "coverage": float(np.mean([m["coverage"] for m in runs])), "runs": runs}
               for name, runs in rows.items()}
    files.atomic_write_json(Path(run_dir) / "results.json", {"config": dataclasses.asdict(cfg), "data": info,
                                                                "agents": summary})
    headline = ", ".join(f"{name} {summary[name]['avg_reward']:.3f}" for name in names)
    if greedy_reward and "dqn" in summary:
        headline += f" (DQN {100 * (summary['dqn']['avg_reward'] / greedy_reward - 1):+.1f}% vs greedy)"
    reached = None
    if {"dqn", "greedy", "random", "popular"} <= set(summary):  # the target: DQN above both baselines, within 5% of greedy
        dqn_reward = summary["dqn"]["avg_reward"]
        reached = (dqn_reward > max(summary["random"]["avg_reward"], summary["popular"]["avg_reward"])
                   and dqn_reward >= 0.95 * greedy_reward)
    return {"headline": f"avg reward/rec over {len(eval_users)} held-out users: {headline}", "reached": reached,
            "metrics": {"recommender_val_mse": info["val_mse"], "report_users": len(eval_users),
                        "train_users": len(train_users),
                        **{f"{n}_avg_reward": s["avg_reward"] for n, s in summary.items()},
                        **{f"{n}_hit_rate": s["hit_rate"] for n, s in summary.items()},
                        **{f"{n}_coverage": s["coverage"] for n, s in summary.items()}},
            "artifacts": ["table.md", "results.json"]}
