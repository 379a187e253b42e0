"""agents.networks: shapes, the dueling combination by hand, Embedding on categories, save/load."""
import numpy as np
import pytest

import agents  # noqa: F401
import keras

from agents import networks


def test_dueling_combine_by_hand():
    # V = [[1], [2]], A = [[1, 3], [0, -2]]; mean(A) per row = [2, -1]
    # Q = V + A - mean(A) = [[1 + 1 - 2, 1 + 3 - 2], [2 + 0 + 1, 2 - 2 + 1]] = [[0, 2], [3, 1]]
    q = networks.dueling_combine(np.array([[1.0], [2.0]]), np.array([[1.0, 3.0], [0.0, -2.0]]))
    np.testing.assert_allclose(np.asarray(q), [[0.0, 2.0], [3.0, 1.0]])


def test_dueling_q_is_invariant_to_a_constant_added_to_the_advantages():
    v = np.array([[0.5]])
    a = np.array([[1.0, -1.0, 4.0]])
    np.testing.assert_allclose(np.asarray(networks.dueling_combine(v, a)),
                               np.asarray(networks.dueling_combine(v, a + 10.0)), atol=1e-6)


@pytest.mark.parametrize("dueling", [False, True])
def test_mlp_shapes_and_batch_independence(dueling):
    net = networks.mlp_q_network(4, 2, hidden=(16, 16), dueling=dueling)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    q = np.asarray(net(x))
    assert q.shape == (5, 2)
    np.testing.assert_allclose(np.asarray(net(x[:1])), q[:1], rtol=1e-5, atol=1e-6)


def test_dueling_network_uses_the_mean_not_the_max():
    net = networks.mlp_q_network(2, 3, hidden=(), dueling=True)
    # V(s) = 0; A(s) = s @ W with W rows [1, 2, 6] and [0, 0, 0]: s = [1, 0] -> A = [1, 2, 6], mean 3
    net.get_layer("value").set_weights([np.zeros((2, 1)), np.zeros(1)])
    net.get_layer("advantage").set_weights([np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]]), np.zeros(3)])
    np.testing.assert_allclose(np.asarray(net(np.array([[1.0, 0.0]], "float32"))), [[-2.0, -1.0, 3.0]])


@pytest.mark.parametrize("dueling", [False, True])
def test_embedding_q_network_treats_states_as_categories(dueling):
    net = networks.embedding_q_network(16, 4, embedding_dim=8, hidden=(32,), dueling=dueling)
    assert isinstance(net.layers[1], keras.layers.Embedding)
    states = np.array([0, 5, 15], dtype="int32")
    q = np.asarray(net(states))
    assert q.shape == (3, 4)
    np.testing.assert_allclose(np.asarray(net(states[1:2])), q[1:2], rtol=1e-5, atol=1e-6)


def test_atari_q_network_shapes():
    net = networks.atari_q_network(4, dueling=True)
    frames = np.zeros((2, 84, 84, 4), dtype="uint8")
    assert np.asarray(net(frames)).shape == (2, 4)
    assert [l.name for l in net.layers if "conv" in l.name] == ["conv_0", "conv_1", "conv_2"]
    assert net.get_layer("conv_0").kernel.shape == (8, 8, 4, 32)


def test_build_q_network_dispatches_on_the_space():
    import gymnasium as gym

    assert networks.build_q_network(gym.spaces.Discrete(16), gym.spaces.Discrete(4)).name == "embedding_q_network"
    assert networks.build_q_network(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)).name == "mlp_q_network"
    with pytest.raises(ValueError, match="discrete action space"):
        networks.build_q_network(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (1,)))


def test_saved_dueling_model_loads_without_custom_objects(tmp_path):
    net = networks.mlp_q_network(4, 2, hidden=(8,), dueling=True)
    net.save(tmp_path / "q.keras")
    loaded = keras.models.load_model(tmp_path / "q.keras", compile=False)
    x = np.ones((3, 4), "float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(net(x)), rtol=1e-6)


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`n_actions`"):
        networks.mlp_q_network(4, 0)
    with pytest.raises(ValueError, match="`hidden`"):
        networks.mlp_q_network(4, 2, hidden=(16, -1))
