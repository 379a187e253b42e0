"""Agents and baselines on ``MovieLensRecommendation-v0``, and the ``movielens-rl`` exercise.

Agents (each a batched policy ``policy(obs [E, F+N], masks [E, N], users [E]) -> actions [E]``
that never picks a masked film):

* ``random``: uniform among the films not yet recommended;
* ``popular``: the most-rated films first (the same list for everyone);
* ``greedy``: the recommender's highest predicted ratings for this user (the classic top-K);
* ``q-learning``: tabular Q-learning; the state is (user segment, set of films recommended so
  far), user segments come from k-means on the recommender's user embeddings. Meant for a small
  candidate set: the number of states grows as ``segments * C(N, <K)``;
* ``dqn``: a DQN with action masking, applied both when acting and inside the TD target's max
  over next actions (:func:`masked_td_target`). The network is ``agents.networks.mlp_q_network``,
  the memory ``agents.replay.ReplayBuffer``, the TD target and loss ``agents.dqn.td_target`` /
  ``td_loss``; ``agents.dqn.DQNAgent`` itself takes no masks, hence :class:`MaskedDQN`.
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
import os
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

from agents.movielens_env import (LIKED_RATING, OBSERVED_SPLITS, REWARD_MODES, MovieLensRecommendationEnv,  # noqa: E402
                                  RecTables, build_tables, legal_from_obs, train_recommender)
from keras_impl import movielens, runtime  # noqa: E402
from keras_impl.config import arg  # noqa: E402
from keras_impl.registry import exercise  # noqa: E402

AGENTS = ("dqn", "q-learning", "popular", "greedy", "random")
Policy = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------
# Small pure functions (tested against hand-worked numbers)
# ----------------------------------------------------------------------------------------------


def masked_argmax(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``argmax`` over legal actions only: ``scores [E, N]``, ``masks [E, N]`` (1 = legal) -> ``[E]``."""
    return np.argmax(np.where(np.asarray(masks) > 0, scores, -np.inf), axis=1)


def random_legal(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn legal action per row of ``masks [E, N]`` -> ``[E]``."""
    noise = rng.random(np.shape(masks))
    return np.argmax(np.where(np.asarray(masks) > 0, noise, -1.0), axis=1)


def masked_td_target(rewards, q_next, next_legal, terminated, gamma: float):
    """``r + gamma * (1 - terminated) * max_{a' legal} Q_target(s', a')`` -> ``[B]``.

    The max runs over the films not yet recommended in ``s'`` only: a film already shown can never
    be taken again, so its Q-value must not leak into the target. A row with no legal action
    (only possible at the end of an episode) contributes 0 instead of ``-inf``.

    Args:
        rewards: ``[B]``; q_next: ``[B, A]`` target-network Q-values of ``s'``;
        next_legal: ``[B, A]`` 1 where the action is legal in ``s'``; terminated: ``[B]``.
    """
    import tensorflow as tf

    from agents.dqn import td_target

    legal = tf.cast(next_legal, tf.bool)
    q_next = tf.cast(q_next, tf.float32)
    best = tf.reduce_max(tf.where(legal, q_next, tf.fill(tf.shape(q_next), -np.inf)), axis=1)  # [B]
    best = tf.where(tf.reduce_any(legal, axis=1), best, tf.zeros_like(best))  # [B]
    return td_target(rewards, best, terminated, gamma)


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
        from sklearn.cluster import KMeans

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
              n_envs: int = 64) -> list[float]:
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
                eps = eps_end + (eps_start - eps_end) * max(0.0, 1 - done / (explore_fraction * episodes))
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


class MaskedDQN:
    """Online and target MLP Q-networks; masks applied when acting and in the TD target.

    The next state's mask is read from ``next_obs`` (its last ``N`` entries are the
    recommended-so-far indicator: :func:`agents.movielens_env.legal_from_obs`), so the shared
    ``ReplayBuffer`` stores what it always stores.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden=(256, 256), learning_rate: float = 1e-3,
                 gamma: float = 0.9, loss: str = "huber", seed: int = 0):
        import keras
        import tensorflow as tf

        from agents.dqn import td_loss
        from agents.networks import mlp_q_network

        self.n_actions, self.gamma, self.loss_kind = int(n_actions), float(gamma), loss
        self.q_net = mlp_q_network(obs_dim, n_actions, hidden=tuple(hidden))
        self.target_net = mlp_q_network(obs_dim, n_actions, hidden=tuple(hidden))
        self.target_net.set_weights(self.q_net.get_weights())
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.rng = np.random.default_rng(seed)
        # Every episode has exactly k steps whatever the actions, so subtracting a constant from
        # every reward shifts Q(s, .) by an amount that depends on the step only: the greedy
        # policy is unchanged, but Q-values stay near 0 where the Huber loss is quadratic
        # (uncentred ratings give Q ~ 25 with gamma 0.9 and learning crawls in the linear part).
        self.reward_offset = 0.0
        self._td_loss = td_loss
        spec = tf.TensorSpec((None, obs_dim), tf.float32)
        self._q_values = tf.function(lambda obs: self.q_net(obs, training=False), input_signature=[spec])
        self._train_steps = tf.function(self.train_steps, reduce_retracing=True)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``[E, A]`` Q-values (a compiled call, no ``model.predict``)."""
        return self._q_values(np.asarray(obs, dtype="float32")).numpy()

    def act(self, obs: np.ndarray, masks: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
        """Epsilon-greedy over legal actions only -> ``[E]``."""
        greedy = masked_argmax(self.q_values(obs), masks)
        if epsilon <= 0:
            return greedy
        return np.where(self.rng.random(len(greedy)) < epsilon, random_legal(masks, self.rng), greedy)

    def policy(self) -> Policy:
        return lambda obs, masks, users: self.act(obs, masks, 0.0)

    def compute_loss(self, obs, actions, rewards, next_obs, terminated):
        """``(loss, targets [B], q_taken [B])``; the target uses the next state's mask."""
        import tensorflow as tf

        next_legal = 1.0 - next_obs[:, -self.n_actions:]  # [B, A]
        q_next = self.target_net(next_obs, training=False)  # [B, A]
        targets = tf.stop_gradient(masked_td_target(rewards, q_next, next_legal, terminated, self.gamma))  # [B]
        q_all = self.q_net(obs, training=True)  # [B, A]
        q_taken = tf.gather(q_all, tf.cast(actions, tf.int32), axis=1, batch_dims=1)  # [B]
        return self._td_loss(q_taken, targets, self.loss_kind), targets, q_taken

    def train_steps(self, obs, actions, rewards, next_obs, terminated):
        """``G`` gradient steps in one compiled call; inputs ``[G, B, ...]``; returns losses ``[G]``."""
        import tensorflow as tf

        losses = tf.TensorArray(tf.float32, size=tf.shape(actions)[0])
        for g in tf.range(tf.shape(actions)[0]):
            with tf.GradientTape() as tape:
                loss, _, _ = self.compute_loss(obs[g], actions[g], rewards[g], next_obs[g], terminated[g])
            grads = tape.gradient(loss, self.q_net.trainable_variables)
            grads, _ = tf.clip_by_global_norm(grads, 10.0)
            self.optimizer.apply_gradients(zip(grads, self.q_net.trainable_variables))
            losses = losses.write(g, loss)
        return losses.stack()

    def learn(self, buffer, batch_size: int, gradient_steps: int) -> np.ndarray:
        """``gradient_steps`` updates on replay batches (rewards minus :attr:`reward_offset`)."""
        idx = buffer.sample_indices(gradient_steps * batch_size).reshape(gradient_steps, batch_size)  # [G, B]
        rewards = buffer.rewards[idx] - np.float32(self.reward_offset)
        return self._train_steps(buffer.obs[idx], buffer.actions[idx].astype("int32"), rewards,
                                 buffer.next_obs[idx], buffer.terminated[idx]).numpy()

    def sync_target(self, tau: float = 1.0) -> None:
        for target, online in zip(self.target_net.weights, self.q_net.weights):
            target.assign(tau * online + (1.0 - tau) * target)


def train_dqn(tables: RecTables, users: np.ndarray, env_kwargs: dict, episodes: int = 4000, n_envs: int = 16,
              gamma: float = 0.9, learning_rate: float = 1e-3, hidden=(256, 256), batch_size: int = 128,
              buffer_size: int = 50_000, learning_starts: int = 1_000, gradient_steps: int = 2,
              target_tau: float = 0.01, eps_start: float = 1.0, eps_end: float = 0.02, explore_fraction: float = 0.3,
              seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[MaskedDQN, list[float]]:
    """Train :class:`MaskedDQN` on episodes of users drawn from ``users``.

    ``n_envs`` episodes run in lockstep; after each lockstep (``n_envs`` transitions) the agent
    takes ``gradient_steps`` updates and a soft target update with ``target_tau``.

    Returns:
        The agent and the mean reward per recommendation of each batch of episodes.
    """
    from agents.replay import ReplayBuffer

    runtime.seed_everything(seed)  # network initialisation
    rng = np.random.default_rng(seed)
    runner = EpisodeBatch(tables, n_envs, **env_kwargs)
    obs_dim = tables.feature_dim + tables.n_candidates
    agent = MaskedDQN(obs_dim, tables.n_candidates, hidden, learning_rate, gamma, seed=seed)
    buffer = ReplayBuffer(buffer_size, obs_shape=(obs_dim,), seed=seed)
    curve, done, t0, learning = [], 0, time.time(), False
    while done < episodes:
        chunk = rng.choice(users, size=min(n_envs, episodes - done))
        obs, masks = runner.reset(chunk, seed=seed + done)
        epsilon = eps_end + (eps_start - eps_end) * max(0.0, 1 - done / (explore_fraction * episodes))
        batch_rewards = []
        for _ in range(runner.k):
            actions = agent.act(obs, masks, epsilon)
            next_obs, rewards, terminated, masks, _ = runner.step(actions)
            for i in range(len(chunk)):
                buffer.add(obs[i], actions[i], rewards[i], next_obs[i], terminated[i], False)
            obs = next_obs
            batch_rewards.append(rewards.mean())
            if len(buffer) >= learning_starts:
                if not learning:  # the mean reward of the exploration so far, fixed from now on
                    agent.reward_offset, learning = float(buffer.rewards[: len(buffer)].mean()), True
                agent.learn(buffer, batch_size, gradient_steps)
                agent.sync_target(target_tau)
        done += len(chunk)
        curve.append(float(np.mean(batch_rewards)))
        if log and (len(curve) % max(1, (episodes // n_envs) // 10) == 0 or done >= episodes):
            log(f"  dqn episodes {done:6d}  epsilon {epsilon:.2f}  avg reward (last 20 batches) "
                f"{np.mean(curve[-20:]):.3f}  {time.time() - t0:.0f}s")
    return agent, curve


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class MovieLensRLConfig:
    data: str = arg("synthetic", "MovieLens folder (ratings.csv + movies.csv) or 'synthetic'")
    synthetic_size: str = arg("course", "size of the synthetic set with --data synthetic",
                              choices=tuple(movielens.SYNTHETIC_SIZES))
    users: int = arg(movielens.COURSE_USERS, "users sampled by the course preprocessing (all when fewer)")
    recommender: str = arg("", "a .keras recommender trained on the same data (kcourse run recommender); "
                               "empty: train one here")
    rec_epochs: int = arg(2, "epochs when training the recommender here")
    rec_batch_size: int = arg(512, "batch size when training the recommender here")
    candidates: int = arg(100, "candidate set: the N most-rated films (training ratings)")
    k: int = arg(10, "recommendations per episode")
    reward: str = arg("hybrid", "hybrid: observed rating else the recommender's prediction; observed: observed only",
                      choices=REWARD_MODES)
    observed: str = arg("train", "ratings that count as observed rewards (train: validation ratings are held out "
                                 "for the hit rate)", choices=OBSERVED_SPLITS)
    unrated_reward: float = arg(0.0, "reward of an unrated film with --reward observed")
    eval_users: int = arg(500, "held-out users every agent is evaluated on (the same for all agents and seeds)")
    train_users: int = arg(0, "users the agents train on (0: every user not in the evaluation set)")
    agent: str = arg("all", "agent(s) to run", choices=("all",) + AGENTS)
    n_seeds: int = arg(1, "agent seeds seed, seed+1, ...; the table shows mean and std over them")
    gamma: float = arg(0.5, "discount factor (DQN and Q-learning); the best list is the same for any gamma")
    dqn_episodes: int = arg(4000, "DQN training episodes")
    dqn_envs: int = arg(16, "DQN episodes collected in lockstep")
    dqn_hidden: tuple[int, ...] = arg((256, 256), "hidden layer sizes of the Q-network")
    dqn_lr: float = arg(1e-3, "DQN Adam learning rate")
    dqn_batch_size: int = arg(128, "DQN replay batch size")
    dqn_gradient_steps: int = arg(2, "gradient steps per lockstep of dqn_envs transitions")
    q_episodes: int = arg(20_000, "Q-learning training episodes")
    q_alpha: float = arg(0.1, "Q-learning step size")
    q_segments: int = arg(8, "Q-learning user segments (k-means on user embeddings)")
    seed: int = arg(0, "seed (data, recommender, user split; agent seeds start here)")


def prepare(cfg: MovieLensRLConfig, run_dir: Path | None = None, log=print):
    """Data, recommender and tables; returns ``(tables, train_users, eval_users, info)``."""
    from keras_impl import recommender as rec

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
            model = rec.load(cfg.recommender)
        else:
            model = train_recommender(data, epochs=cfg.rec_epochs, batch_size=cfg.rec_batch_size, seed=cfg.seed)
            if run_dir is not None:
                rec.save(model, Path(run_dir) / "checkpoints" / "recommender.keras")
    val_mse = float(np.mean((rec.predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
    log(f"recommender: {'loaded ' + cfg.recommender if cfg.recommender else f'trained {cfg.rec_epochs} epoch(s), batch {cfg.rec_batch_size}'}"
        f", val MSE {val_mse:.4f} ({t_rec.seconds:.0f}s)")
    tables = build_tables(data, model, candidates=cfg.candidates, observed=cfg.observed)
    order = np.random.default_rng(cfg.seed).permutation(tables.n_users)
    eval_users = np.sort(order[: cfg.eval_users])
    train_users = order[cfg.eval_users:]
    if cfg.train_users > 0:
        train_users = train_users[: cfg.train_users]
    train_users = np.sort(train_users)
    info = {"val_mse": val_mse, "recommender_seconds": t_rec.seconds, "n_users": data.n_users,
            "n_movies": data.n_movies, "n_ratings": len(data.frame)}
    return tables, train_users, eval_users, info


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
        return agent.policy(), {"train_seconds": time.time() - t0, "curve": curve, "agent": agent}
    raise ValueError(f"Received an invalid value for argument `agent`, expected one of {', '.join(AGENTS)}, got {name!r}")


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


@exercise("movielens-rl", config=MovieLensRLConfig, section="rl",
          summary="MovieLens recommendation as RL: masked DQN, tabular Q-learning, random/popular/greedy baselines",
          reference="the course notebook has no working result (episodes never end; ids mixed with indices)",
          quick={"synthetic_size": "small", "candidates": 10, "k": 3, "eval_users": 100, "rec_epochs": 3,
                 "rec_batch_size": 256, "dqn_episodes": 400, "q_episodes": 1000})
def run(cfg: MovieLensRLConfig, run_dir: Path) -> dict:
    if cfg.n_seeds < 1:
        raise ValueError(f"Received an invalid value for argument `n_seeds`, expected >= 1, got {cfg.n_seeds}")
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
    runtime.atomic_write_json(Path(run_dir) / "results.json", {"config": dataclasses.asdict(cfg), "data": info,
                                                                "agents": summary})
    headline = ", ".join(f"{name} {summary[name]['avg_reward']:.3f}" for name in names)
    if greedy_reward and "dqn" in summary:
        headline += f" (DQN {100 * (summary['dqn']['avg_reward'] / greedy_reward - 1):+.1f}% vs greedy)"
    return {"headline": f"avg reward/rec over {len(eval_users)} held-out users: {headline}",
            "metrics": {"recommender_val_mse": info["val_mse"],
                        **{f"{n}_avg_reward": s["avg_reward"] for n, s in summary.items()},
                        **{f"{n}_hit_rate": s["hit_rate"] for n, s in summary.items()},
                        **{f"{n}_coverage": s["coverage"] for n, s in summary.items()}},
            "artifacts": ["table.md", "results.json"]}
