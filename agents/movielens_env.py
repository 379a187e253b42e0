"""MovieLens as a recommendation MDP: the Gymnasium environment ``MovieLensRecommendation-v0``.

One episode serves one user. Each step the agent recommends one film from a fixed candidate set
(action ``a`` = position ``a`` in the candidate list, *not* a MovieLens ``movieId`` and *not* a
course movie index); the reward is the user's observed rating of that film when the user rated it,
otherwise the trained recommender's predicted rating (``reward="observed"`` uses observed ratings
only and pays ``unrated_reward`` for the rest). A film is never recommended twice in an episode:
``info["action_mask"]`` (``int8 [N]``, 1 = legal) says which films are left, and a repeated
action is refused (``repeat="raise"``) or wastes the slot with ``repeat_penalty`` and shows
nothing (``repeat="penalize"``, the default, so mask-unaware agents still run). The episode
terminates after ``k`` recommendations (a list of ``k`` slots is the whole MDP, so this is a true
termination, not a time-limit truncation).

The observation is the user's state: the recommender's user embedding and user bias (what the
recommender knows about the user's taste) followed by a 0/1 vector of the candidates recommended
so far (``[F + N]`` float32). The last ``N`` entries make the state Markov (legal actions and
remaining value depend on them) and give the next-state action mask to a DQN target
(:func:`legal_from_obs`).

Three kinds of identifiers, kept apart (the French notebook mixed them):

* MovieLens ``userId`` / ``movieId``: sparse ids from the CSV files (``info["user_id"]``,
  ``info["movie_id"]``);
* course indices: the re-indexing of ``keras_impl.movielens.course_preprocess`` (rows of the
  recommender's embedding tables; ``info["user_index"]``, ``info["movie_index"]``);
* the action: a position in the candidate list (``tables.candidate_index[a]`` is its course index).

``reset(options={"user_id": 46889})`` or ``{"user_index": 3}`` picks the user; without options
the user is drawn from ``users`` with the env's seeded generator.

Example:
    >>> import gymnasium as gym
    >>> import agents  # registers MovieLensRecommendation-v0
    >>> env = gym.make("MovieLensRecommendation-v0", candidates=10, k=3)  # tiny synthetic data
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(0)
    >>> int(info["action_mask"][0])  # film 0 cannot be recommended again
    0
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.configs import OBSERVED_SPLITS, REWARD_MODES
from keras_impl import movielens
from keras_impl import recommender as recommender_lib  # `recommender` is an argument name below
from keras_impl.config import invalid as _invalid

ENV_ID = "MovieLensRecommendation-v0"
REPEAT_MODES = ("penalize", "raise")
LIKED_RATING = 4.0  # a held-out rating >= this counts as a hit


# ----------------------------------------------------------------------------------------------
# Tables: everything an episode needs, precomputed once (a step is then a NumPy lookup)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RecTables:
    """Per-user, per-candidate tables for the environment.

    Rows are course user indices ``0..U-1``; columns are candidate positions ``0..N-1``.

    Attributes:
        user_ids: ``[U]`` MovieLens ``userId`` of each course user index.
        candidate_index: ``[N]`` course movie index of each candidate.
        candidate_ids: ``[N]`` MovieLens ``movieId`` of each candidate.
        titles: ``[N]`` title of each candidate.
        user_features: ``[U, F]`` the recommender's user embedding and bias (the observation).
        predicted: ``[U, N]`` the recommender's predicted rating.
        observed: ``[U, N]`` observed rating in the observed split, NaN where the user did not rate.
        heldout: ``[U, N]`` rating in the held-out (validation) split, NaN where none.
        popularity: ``[N]`` number of training ratings of each candidate.
        observed_split: ``"train"`` (validation ratings stay held out) or ``"all"``.
    """

    user_ids: np.ndarray
    candidate_index: np.ndarray
    candidate_ids: np.ndarray
    titles: np.ndarray
    user_features: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray
    heldout: np.ndarray
    popularity: np.ndarray
    observed_split: str = "train"

    _reward_cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def rewards(self, mode: str = "hybrid", unrated_reward: float = 0.0) -> np.ndarray:
        """:func:`reward_table` for these tables, computed once per mode (many envs share it)."""
        key = (mode, float(unrated_reward))
        if key not in self._reward_cache:
            self._reward_cache[key] = reward_table(self.predicted, self.observed, mode, unrated_reward)
        return self._reward_cache[key]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_candidates(self) -> int:
        return len(self.candidate_index)

    @property
    def feature_dim(self) -> int:
        return int(self.user_features.shape[1])

    def user_index_of(self, user_id: int) -> int:
        """Course index of MovieLens ``userId`` ``user_id``.

        Raises:
            ValueError: the id is not one of the data's users.
        """
        return movielens.course_index(user_id, self.user_ids, "id", "user_id", "user")


def select_candidates(data: movielens.CourseData, n: int) -> np.ndarray:
    """The ``n`` films with the most *training* ratings, as course movie indices ``[n]``.

    Most-rated films are the ones with enough observed ratings to check the simulator against and
    where the recommender's predictions are best; ties go to the smaller index (deterministic).
    """
    if not 1 <= n <= data.n_movies:
        raise _invalid("candidates", f"1 <= candidates <= {data.n_movies} (films in the data)", n)
    counts = np.bincount(data.x_train[:, 1], minlength=data.n_movies)
    return np.argsort(-counts, kind="stable")[:n].astype("int32")


def ratings_matrix(x: np.ndarray, y: np.ndarray, n_users: int, candidate_index: np.ndarray) -> np.ndarray:
    """Scatter ratings ``(x [R, 2] course (user, movie) indices, y [R])`` into ``[n_users, N]``.

    Films outside the candidate set are dropped; cells without a rating are NaN.
    """
    position = np.full(int(max(np.max(x[:, 1], initial=-1), np.max(candidate_index, initial=-1))) + 1, -1, "int64")
    position[candidate_index] = np.arange(len(candidate_index))
    col = position[x[:, 1]]  # [R]: candidate position, -1 if not a candidate
    keep = col >= 0
    out = np.full((n_users, len(candidate_index)), np.nan, dtype="float32")
    out[x[keep, 0], col[keep]] = np.asarray(y, dtype="float32").reshape(-1)[keep]
    return out


def reward_table(predicted: np.ndarray, observed: np.ndarray, mode: str = "hybrid",
                 unrated_reward: float = 0.0) -> np.ndarray:
    """The reward of recommending each candidate to each user.

    Args:
        predicted: ``[U, N]`` recommender predictions.
        observed: ``[U, N]`` observed ratings, NaN where not rated.
        mode: ``"hybrid"``: the observed rating where there is one, else the prediction;
            ``"observed"``: the observed rating where there is one, else ``unrated_reward``.

    Returns:
        ``[U, N]`` float32.
    """
    if mode not in REWARD_MODES:
        raise _invalid("reward", " or ".join(map(repr, REWARD_MODES)), mode)
    fallback = predicted if mode == "hybrid" else np.full_like(predicted, unrated_reward)
    return np.where(np.isnan(observed), fallback, observed).astype("float32")


def user_features(model) -> np.ndarray:
    """``[U, D + 1]``: a :class:`keras_impl.recommender.DotRecommender`'s user embedding and bias."""
    tables = model.factors()
    return np.concatenate([tables["user"], tables["user_bias"][:, None]], axis=1).astype("float32")  # [U, D + 1]


def check_model_matches(data: movielens.CourseData, model) -> None:
    """A recommender trained on another sample would read other people's rows: refuse it."""
    maps = getattr(model, "mappings", None)
    same = (model.n_users == data.n_users and model.n_movies == data.n_movies and maps is not None
            and np.array_equal(maps.user_ids, data.user_ids) and np.array_equal(maps.movie_ids, data.movie_ids))
    if not same:
        raise ValueError(f"the recommender does not match the data: it knows {model.n_users} users / {model.n_movies} "
                         f"films, the data has {data.n_users} / {data.n_movies}, or their userId/movieId <-> index "
                         f"mappings differ (train it on the same folder, merge order and number of users)")


def build_tables(data: movielens.CourseData, model, candidates: int = 20, candidate_ids=None,
                 observed: str = "train") -> RecTables:
    """Precompute the environment's tables from course data and a trained recommender.

    Args:
        data: the course data (``keras_impl.movielens.load_course_data``).
        model: a trained ``DotRecommender`` for the same data (same id <-> index mappings).
        candidates: size of the candidate set (the most-rated films), used when
            ``candidate_ids`` is None.
        candidate_ids: explicit MovieLens ``movieId`` s to use as candidates, in action order.
        observed: ``"train"``: only training ratings are observed rewards (validation ratings are
            held out for the hit rate); ``"all"``: every rating is.
    """
    if observed not in OBSERVED_SPLITS:
        raise _invalid("observed", " or ".join(map(repr, OBSERVED_SPLITS)), observed)
    check_model_matches(data, model)
    if candidate_ids is not None:
        ids = np.asarray(candidate_ids, dtype="int64").reshape(-1)
        lookup = {int(m): i for i, m in enumerate(data.movie_ids)}
        missing = [int(m) for m in ids if int(m) not in lookup]
        if missing or len(set(ids.tolist())) != len(ids) or not len(ids):
            raise _invalid("candidate_ids", "distinct movieIds present in the data",
                           missing[:5] if missing else ids.tolist()[:10])
        candidate_index = np.array([lookup[int(m)] for m in ids], dtype="int32")
    else:
        candidate_index = select_candidates(data, candidates)
    n_users = data.n_users
    users = np.repeat(np.arange(n_users, dtype="int32"), len(candidate_index))
    movies = np.tile(candidate_index, n_users)
    predicted = recommender_lib.predict_batch(model, np.stack([users, movies], axis=1)).reshape(n_users, -1)
    x_obs, y_obs = data.x_train, data.y_train
    if observed == "all":
        x_obs, y_obs = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])
    heldout = (ratings_matrix(data.x_val, data.y_val, n_users, candidate_index) if observed == "train"
               else np.full((n_users, len(candidate_index)), np.nan, dtype="float32"))
    popularity = np.bincount(data.x_train[:, 1], minlength=data.n_movies)[candidate_index]
    return RecTables(user_ids=np.asarray(data.user_ids, dtype="int64"), candidate_index=candidate_index,
                     candidate_ids=np.asarray(data.movie_ids, dtype="int64")[candidate_index],
                     titles=np.asarray(data.titles)[candidate_index].astype(str),
                     user_features=user_features(model), predicted=predicted.astype("float32"),
                     observed=ratings_matrix(x_obs, y_obs, n_users, candidate_index), heldout=heldout,
                     popularity=popularity.astype("int64"), observed_split=observed)


def train_recommender(data: movielens.CourseData, epochs: int = 3, batch_size: int = 64, seed: int = 0,
                      embedding_dim: int = 32, verbose: bool = False):
    """Train the project's recommender (``keras_impl.recommender.train``) with a few overrides."""
    # XLA compilation costs seconds; it pays only on large data.
    cfg = recommender_lib.RecommenderConfig(epochs=epochs, batch_size=batch_size, seed=seed, embedding_dim=embedding_dim,
                                        jit_compile=len(data.x_train) > 100_000)
    model, _, _ = recommender_lib.train(data, cfg, run_dir=None, verbose_lines=verbose)
    return model


_DEFAULT_TABLES: dict[tuple, RecTables] = {}


def default_tables(data: str = "synthetic", synthetic_size: str = "tiny", recommender=None, recommender_epochs: int = 3,
                   candidates: int = 20, candidate_ids=None, observed: str = "train", n_users: int | None = None,
                   seed: int = 0) -> RecTables:
    """Tables from a folder (or the cached synthetic one) and a recommender (a model, a ``.keras``
    path, or None to train one), memoised per process so ``gymnasium.make`` stays cheap."""
    key = (str(data), synthetic_size, str(recommender) if not hasattr(recommender, "user_embedding") else id(recommender),
           recommender_epochs, candidates, None if candidate_ids is None else tuple(candidate_ids), observed, n_users, seed)
    if key in _DEFAULT_TABLES:
        return _DEFAULT_TABLES[key]
    folder = movielens.synthetic_folder(synthetic_size, seed=seed) if data == "synthetic" else Path(data).expanduser()
    course = movielens.load_course_data(folder, n_users=n_users or movielens.COURSE_USERS)
    if recommender is None:
        model = train_recommender(course, epochs=recommender_epochs, seed=seed)
    elif isinstance(recommender, (str, os.PathLike)):
        model = recommender_lib.load(recommender)
    else:
        model = recommender
    tables = build_tables(course, model, candidates=candidates, candidate_ids=candidate_ids, observed=observed)
    _DEFAULT_TABLES[key] = tables
    return tables


def legal_from_obs(obs: np.ndarray, n_candidates: int) -> np.ndarray:
    """The action mask (1 = not yet recommended) read from observations ``[..., F + N]`` -> ``[..., N]``.

    The last ``N`` entries of an observation are the recommended-so-far indicator, so the mask of
    a stored ``next_obs`` is available to a DQN target without storing it separately.
    """
    return (1 - np.asarray(obs)[..., -n_candidates:]).astype("int8")


# ----------------------------------------------------------------------------------------------
# The environment
# ----------------------------------------------------------------------------------------------


class MovieLensRecommendationEnv(gym.Env):
    """Recommend ``k`` distinct films from a candidate set to one user per episode.

    Args:
        tables: precomputed :class:`RecTables`; when None they are built by :func:`default_tables`
            from ``data``/``synthetic_size``/``recommender``/``recommender_epochs``/``candidates``/
            ``candidate_ids``/``observed``/``n_users``/``data_seed``.
        k: recommendations per episode (``1 <= k <= N``).
        users: course user indices episodes are drawn from (default: all users).
        user_ids: MovieLens ``userId`` s instead of ``users`` (not both).
        reward: ``"hybrid"`` (observed rating, else the recommender's prediction) or ``"observed"``
            (observed rating, else ``unrated_reward``).
        unrated_reward: reward for an unrated film with ``reward="observed"``.
        repeat: what a repeated film does: ``"penalize"`` (nothing is shown, the slot is used,
            reward ``repeat_penalty``) or ``"raise"`` (ValueError).
        render_mode: None or ``"ansi"`` (the user and the list so far, as text).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tables: RecTables | None = None, *, k: int = 5, users=None, user_ids=None,
                 reward: str = "hybrid", unrated_reward: float = 0.0, repeat: str = "penalize",
                 repeat_penalty: float = 0.0, render_mode: str | None = None, data: str = "synthetic",
                 synthetic_size: str = "tiny", recommender=None, recommender_epochs: int = 3, candidates: int = 20,
                 candidate_ids=None, observed: str = "train", n_users: int | None = None, data_seed: int = 0):
        if tables is None:
            tables = default_tables(data, synthetic_size, recommender, recommender_epochs, candidates, candidate_ids,
                                    observed, n_users, data_seed)
        self.tables = tables
        n = tables.n_candidates
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise _invalid("k", f"an integer 1 <= k <= {n} (the candidate set size)", k)
        if repeat not in REPEAT_MODES:
            raise _invalid("repeat", " or ".join(map(repr, REPEAT_MODES)), repeat)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise _invalid("render_mode", "None or 'ansi'", render_mode)
        if users is not None and user_ids is not None:
            raise ValueError("pass either `users` (course indices) or `user_ids` (MovieLens userIds), not both")
        if user_ids is not None:
            users = [tables.user_index_of(u) for u in np.asarray(user_ids).reshape(-1)]
        users = np.arange(tables.n_users) if users is None else np.asarray(users, dtype="int64").reshape(-1)
        if not len(users) or users.min() < 0 or users.max() >= tables.n_users:
            raise _invalid("users", f"course user indices in 0..{tables.n_users - 1}", users[:10].tolist())
        self.users = users
        self.k, self.repeat, self.repeat_penalty = int(k), repeat, float(repeat_penalty)
        self.reward_mode = reward
        self.rewards = tables.rewards(reward, unrated_reward)  # [U, N], shared by envs on the same tables
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(n)
        # Finite bounds: the features are fixed once the recommender is trained.
        low = np.concatenate([tables.user_features.min(0), np.zeros(n)]).astype("float32")
        high = np.concatenate([tables.user_features.max(0), np.ones(n)]).astype("float32")
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._user = int(users[0])
        self._shown = np.zeros(n, dtype=bool)  # [N] recommended so far
        self._history: list[tuple[int, float, str]] = []  # (action, reward, "observed"/"predicted"/...)

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def n_candidates(self) -> int:
        return self.tables.n_candidates

    @property
    def user_index(self) -> int:
        """Course index of the current episode's user."""
        return self._user

    def action_mask(self) -> np.ndarray:
        """``[N]`` int8, 1 where the film has not been recommended in this episode."""
        return (~self._shown).astype("int8")

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.tables.user_features[self._user], self._shown.astype("float32")])

    def _info(self) -> dict:
        return {"user_index": self._user, "user_id": int(self.tables.user_ids[self._user]),
                "action_mask": self.action_mask(), "step": len(self._history)}

    # -- Gymnasium API ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "user_id" in options and "user_index" in options:
            raise ValueError("reset options: pass `user_id` or `user_index`, not both")
        if "user_id" in options:
            self._user = self.tables.user_index_of(options["user_id"])
        elif "user_index" in options:
            index = int(options["user_index"])
            if not 0 <= index < self.tables.n_users:
                raise _invalid("user_index", f"a course user index in 0..{self.tables.n_users - 1}", index)
            self._user = index
        else:
            self._user = int(self.users[self.np_random.integers(len(self.users))])
        self._shown = np.zeros(self.n_candidates, dtype=bool)
        self._history = []
        return self._obs(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise _invalid("action", f"a candidate position in 0..{self.n_candidates - 1}", action)
        if len(self._history) >= self.k:
            raise RuntimeError("step() called after the episode terminated; call reset() first")
        a = int(action)
        repeat = bool(self._shown[a])
        if repeat:
            if self.repeat == "raise":
                raise ValueError(f"film at candidate position {a} (movieId {int(self.tables.candidate_ids[a])}) was "
                                 f"already recommended in this episode; see info['action_mask']")
            reward, rated, source = self.repeat_penalty, False, "repeat: not shown"
        else:
            reward = float(self.rewards[self._user, a])
            rated = bool(not np.isnan(self.tables.observed[self._user, a]))
            source = "observed" if rated else ("predicted" if self.reward_mode == "hybrid" else "unrated")
            self._shown[a] = True
        self._history.append((a, reward, source))
        terminated = len(self._history) >= self.k
        info = self._info()
        info.update(movie_index=int(self.tables.candidate_index[a]), movie_id=int(self.tables.candidate_ids[a]),
                    title=str(self.tables.titles[a]), rated=rated, repeat=repeat)
        return self._obs(), reward, terminated, False, info

    def render(self):
        if self.render_mode != "ansi":
            return None
        t = self.tables
        lines = [f"user index {self._user} (userId {int(t.user_ids[self._user])}), "
                 f"{len(self._history)}/{self.k} recommended:"]
        for rank, (a, reward, source) in enumerate(self._history, 1):
            lines.append(f"  {rank:2d}. {t.titles[a]} (movieId {int(t.candidate_ids[a])}): {reward:.2f} ({source})")
        return "\n".join(lines) + "\n"

