"""MovieLensRecommendation-v0: Gymnasium API, rewards, masking, episode end, ids vs indices.

The hand-made folder below has sparse MovieLens ids whose course indices come out in another
order (``enumerate(set(...))``), and the candidate list is in yet another order, so a test that
confused ids, indices and actions would read the wrong cell.
"""
import math

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from agents import movielens_env as me
from keras_impl import movielens, recommender

LN3 = math.log(3.0)
# Predicted rating = 0.5 + 4.5 * sigmoid(offset + b_u + b_m + p_u . q_m); with offset = b_u = 0 and
# q_m = 0 it is 0.5 + 4.5 * sigmoid(b_m):
#   b_m = ln 3  -> sigmoid = 3/4 -> 0.5 + 3.375 = 3.875
#   b_m = 0     -> sigmoid = 1/2 -> 0.5 + 2.25  = 2.75
#   b_m = -ln 3 -> sigmoid = 1/4 -> 0.5 + 1.125 = 1.625
MOVIE_BIAS = {10: LN3, 20: 0.0, 30: -LN3, 50: 0.0}
PREDICTED = {10: 3.875, 20: 2.75, 30: 1.625, 50: 2.75}
# (userId, movieId, rating): the hand-made ratings table. Film 40 is in movies.csv but nobody rated it.
RATINGS = [(9, 10, 4.0), (9, 30, 2.0), (12, 50, 5.0), (12, 20, 3.0), (7, 10, 1.0), (7, 30, 4.5), (7, 50, 3.5)]
CANDIDATE_IDS = [50, 10, 30]  # action 0 -> movieId 50, action 1 -> 10, action 2 -> 30


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hand")
    pd.DataFrame(RATINGS, columns=["userId", "movieId", "rating"]).assign(timestamp=1_000_000_000).to_csv(
        folder / "ratings.csv", index=False)
    pd.DataFrame({"movieId": [10, 20, 30, 40, 50], "title": ["Ten (1990)", "Twenty (1991)", "Thirty (1992)",
                                                             "Forty (1993)", "Fifty (1994)"],
                  "genres": ["Drama"] * 5}).to_csv(folder / "movies.csv", index=False)
    data = movielens.load_course_data(folder)
    model = recommender.build_model(data, recommender.RecommenderConfig(embedding_dim=2))
    model.offset.assign(0.0)
    # user index i gets the embedding [i + 1, -(i + 1)]: visible in the observation, no effect on
    # predictions because every film's embedding is zero.
    model.set_factors(np.array([[i + 1, -(i + 1)] for i in range(data.n_users)], "float32"),
                      np.zeros((data.n_movies, 2), "float32"), np.zeros(data.n_users, "float32"),
                      np.array([MOVIE_BIAS[int(m)] for m in data.movie_ids], "float32"))
    tables = me.build_tables(data, model, candidate_ids=CANDIDATE_IDS, observed="all")
    return data, model, tables


def expected_reward(user_id: int, movie_id: int, mode: str = "hybrid") -> float:
    for u, m, r in RATINGS:
        if (u, m) == (user_id, movie_id):
            return r
    return PREDICTED[movie_id] if mode == "hybrid" else 0.0


def test_hand_made_ids_are_not_indices(hand):
    data, _, tables = hand
    # enumerate(set(...)) does not sort: the course indices are a permutation of the ids' order,
    # which is what makes the notebook's mix-up visible.
    assert sorted(data.user_ids.tolist()) == [7, 9, 12] and data.user_ids.tolist() != [7, 9, 12]
    assert tables.candidate_ids.tolist() == CANDIDATE_IDS
    for a, movie_id in enumerate(CANDIDATE_IDS):
        assert data.movie_ids[tables.candidate_index[a]] == movie_id
        assert tables.titles[a] == {50: "Fifty (1994)", 10: "Ten (1990)", 30: "Thirty (1992)"}[movie_id]


@pytest.mark.parametrize("mode", ["hybrid", "observed"])
def test_rewards_from_hand_table(hand, mode):
    data, _, tables = hand
    env = me.MovieLensRecommendationEnv(tables, k=3, reward=mode)
    for user_id in (7, 9, 12):
        obs, info = env.reset(seed=0, options={"user_id": user_id})
        assert info["user_id"] == user_id
        assert data.user_ids[info["user_index"]] == user_id
        i = info["user_index"]
        np.testing.assert_allclose(obs[:3], [i + 1, -(i + 1), 0.0])  # the user's embedding and bias
        for a, movie_id in enumerate(CANDIDATE_IDS):
            obs, reward, terminated, truncated, info = env.step(a)
            assert reward == pytest.approx(expected_reward(user_id, movie_id, mode), abs=1e-5), (user_id, movie_id)
            assert info["movie_id"] == movie_id
            assert data.movie_ids[info["movie_index"]] == movie_id
            assert info["rated"] == any((u, m) == (user_id, movie_id) for u, m, _ in RATINGS)
            assert not truncated


def test_masking_and_episode_end(hand):
    _, _, tables = hand
    env = me.MovieLensRecommendationEnv(tables, k=2, repeat="raise")
    obs, info = env.reset(seed=0, options={"user_id": 12})
    assert info["action_mask"].tolist() == [1, 1, 1] and obs[-3:].tolist() == [0, 0, 0]
    obs, reward, terminated, truncated, info = env.step(2)
    assert info["action_mask"].tolist() == [1, 1, 0]
    assert obs[-3:].tolist() == [0, 0, 1]
    np.testing.assert_array_equal(me.legal_from_obs(obs, 3), info["action_mask"])
    assert not terminated
    with pytest.raises(ValueError, match="already recommended"):
        env.step(2)
    obs, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated  # k = 2 recommendations: the list is complete
    assert info["action_mask"].tolist() == [0, 1, 0]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)
    env.reset(options={"user_id": 12})  # a new episode starts with everything legal again
    assert env.action_mask().tolist() == [1, 1, 1]


def test_repeat_penalized_not_shown(hand):
    _, _, tables = hand
    env = me.MovieLensRecommendationEnv(tables, k=3, repeat="penalize", repeat_penalty=-1.0)
    env.reset(seed=0, options={"user_id": 7})
    _, r1, _, _, _ = env.step(0)
    _, r2, terminated, _, info = env.step(0)
    assert (r1, r2) == (3.5, -1.0) and info["repeat"] and not terminated
    assert info["action_mask"].tolist() == [0, 1, 1]  # the slot is used, the film still counts once
    _, _, terminated, _, _ = env.step(1)
    assert terminated


def test_observed_train_keeps_validation_out(hand):
    data, model, _ = hand
    tables = me.build_tables(data, model, candidate_ids=CANDIDATE_IDS, observed="train")
    env = me.MovieLensRecommendationEnv(tables, k=3)
    position = {int(m): a for a, m in enumerate(CANDIDATE_IDS)}
    for (u, m), y in zip(data.x_val, data.y_val.reshape(-1)):
        movie_id = int(data.movie_ids[m])
        if movie_id not in position:
            continue
        a = position[movie_id]
        assert tables.heldout[u, a] == y and np.isnan(tables.observed[u, a])
        env.reset(options={"user_index": int(u)})
        for b in range(a):
            env.step(b)
        _, reward, _, _, info = env.step(a)
        assert reward == pytest.approx(PREDICTED[movie_id]) and not info["rated"]


def test_reset_picks_users_by_id_or_index_and_seed(hand):
    data, _, tables = hand
    env = me.MovieLensRecommendationEnv(tables, k=1, user_ids=[12])
    _, info = env.reset(seed=3)
    assert info["user_id"] == 12
    env = me.MovieLensRecommendationEnv(tables, k=1)
    seen = [env.reset(seed=5)[1]["user_index"]] + [env.reset()[1]["user_index"] for _ in range(20)]
    again = [env.reset(seed=5)[1]["user_index"]] + [env.reset()[1]["user_index"] for _ in range(20)]
    assert seen == again and len(set(seen)) == 3
    with pytest.raises(ValueError, match="userId 8 is not in the training data"):
        env.reset(options={"user_id": 8})
    with pytest.raises(ValueError, match="user_index"):
        env.reset(options={"user_index": 3})


def test_bad_arguments(hand):
    data, model, tables = hand
    with pytest.raises(ValueError, match="`k`"):
        me.MovieLensRecommendationEnv(tables, k=4)
    with pytest.raises(ValueError, match="`reward`"):
        me.MovieLensRecommendationEnv(tables, k=2, reward="bogus")
    with pytest.raises(ValueError, match="candidate_ids"):
        me.build_tables(data, model, candidate_ids=[40])  # in movies.csv, but rated by nobody
    env = me.MovieLensRecommendationEnv(tables, k=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="`action`"):
        env.step(3)
    other = recommender.build_model(data, recommender.RecommenderConfig(embedding_dim=2))
    other.mappings.user_ids = other.mappings.user_ids[::-1].copy()  # same sizes, another id order
    with pytest.raises(ValueError, match="does not match the data"):
        me.build_tables(data, other, candidate_ids=CANDIDATE_IDS)


def test_reward_table_by_hand():
    predicted = np.array([[3.0, 2.0], [4.0, 1.0]], "float32")
    observed = np.array([[5.0, np.nan], [np.nan, 0.5]], "float32")
    # hybrid: observed where present, else predicted -> [[5, 2], [4, 0.5]]
    np.testing.assert_array_equal(me.reward_table(predicted, observed, "hybrid"), [[5.0, 2.0], [4.0, 0.5]])
    # observed only, unrated -> -1: [[5, -1], [-1, 0.5]]
    np.testing.assert_array_equal(me.reward_table(predicted, observed, "observed", -1.0), [[5.0, -1.0], [-1.0, 0.5]])


def test_ratings_matrix_by_hand():
    x = np.array([[0, 7], [1, 3], [1, 7], [0, 2]])  # (user index, movie index)
    y = np.array([4.0, 3.0, 2.5, 1.0])
    # candidates: movie 7 is action 0, movie 3 is action 1; movie 2 is not a candidate
    out = me.ratings_matrix(x, y, 2, np.array([7, 3]))
    np.testing.assert_array_equal(out, [[4.0, np.nan], [2.5, 3.0]])


def test_check_env_and_gymnasium_make(hand):
    _, _, tables = hand
    env = gym.make(me.ENV_ID, tables=tables, k=2)
    check_env(env.unwrapped)
    env = gym.make(me.ENV_ID, tables=tables, k=2, render_mode="ansi")
    env.reset(seed=0, options={"user_id": 7})
    env.step(0)
    text = env.render()
    assert "userId 7" in text and "Fifty (1994) (movieId 50): 3.50 (observed)" in text


def test_deterministic_rollouts(hand):
    _, _, tables = hand

    def rollout(seed):
        env = me.MovieLensRecommendationEnv(tables, k=3)
        env.action_space.seed(seed)
        out = []
        obs, info = env.reset(seed=seed)
        for _ in range(4):
            terminated = False
            while not terminated:
                action = env.action_space.sample(mask=info["action_mask"])
                obs, reward, terminated, _, info = env.step(action)
                out.append((info["user_id"], int(action), reward, obs.tobytes()))
            obs, info = env.reset()
        return out

    assert rollout(1) == rollout(1)


def test_make_env_alias_on_tiny_synthetic():
    """The whole default path: synthetic folder, a freshly trained recommender, gymnasium.make."""
    from agents.envs import make_env

    env = make_env("movielens", seed=0, candidates=8, k=3, recommender_epochs=1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (33 + 8,) and env.observation_space.contains(obs)
    rewards = []
    for action in (0, 1, 2):
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
    assert terminated and all(0.5 <= r <= 5.0 for r in rewards)
    tables = env.unwrapped.tables
    assert tables.n_candidates == 8 and tables.popularity.tolist() == sorted(tables.popularity.tolist(), reverse=True)
