"""Tests for the "hello" next-character models (keras_impl.hello) and the PyTorch import
(keras_impl.torch_import).

Tiers: hand-worked unit tests of the data, the cells and the weight layout; the PyTorch fixture
(tests/fixtures/torch_rnn_lstm.npz, written by scripts/make_torch_fixture.py; no torch needed
here); twins trained on a short sequence (default tier); a smoke run of the real CLI; and the
course's full setting (499 steps, 200 epochs, 3 seeds) behind ``@pytest.mark.slow``.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_impl  # noqa: F401
from keras_impl import hello
from keras_impl import torch_import

FIXTURE = Path(__file__).parent / "fixtures" / "torch_rnn_lstm.npz"
REPO = Path(__file__).resolve().parents[1]


def _keras():
    import keras

    return keras


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def test_make_data_hello_by_hand():
    # "hello": sorted vocabulary e, h, l, o -> indices 0, 1, 2, 3.
    # inputs  h e l l  -> ids 1 0 2 2 ; targets e l l o -> ids 0 2 2 3
    data = hello.make_data("hello")
    assert data.vocab == ("e", "h", "l", "o")
    assert data.y.tolist() == [0, 2, 2, 3]
    assert data.input_ids.tolist() == [1, 0, 2, 2]
    assert data.x.shape == (4, 4) and data.x.dtype == np.float32
    np.testing.assert_array_equal(data.x[0], [0, 1, 0, 0])  # 'h'
    np.testing.assert_array_equal(data.x.sum(axis=1), 1)


def test_make_data_course_sequence_and_other_texts():
    data = hello.make_data(list("hello") * 100)
    assert data.x.shape == (499, 4) and data.y.shape == (499,)
    # any text, any characters: vocabulary sorted by code point
    other = hello.make_data("abrac")
    assert other.vocab == ("a", "b", "c", "r")
    assert other.y.tolist() == [1, 3, 0, 2]  # b r a c


@pytest.mark.parametrize("text", ["", "h", [], ["x"], "aaaa"])
def test_make_data_rejects_texts_with_nothing_to_predict(text):
    with pytest.raises(ValueError, match="argument `text`"):
        hello.make_data(text)


def test_accuracy_by_hand():
    # row 0 arg-max 0 (correct), row 1 arg-max 1 (target 0): 1/2
    assert hello.accuracy(np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0])) == 0.5


# ----------------------------------------------------------------------------------------------
# Hand-written cells against hand-worked numbers and against Keras' cells
# ----------------------------------------------------------------------------------------------


def _run_layer(layer, x):
    return _keras().ops.convert_to_numpy(layer(x))


def test_hand_rnn_cell_by_hand():
    # H = 1, I = 2, W = [[0.5], [-1.0]], U = [[2.0]], b = [0.1]
    # x1 = [1, 0]: h1 = tanh(0.5 + 0.1 + 2*0)              = tanh(0.6)
    # x2 = [0, 1]: h2 = tanh(-1.0 + 0.1 + 2*tanh(0.6))     = tanh(-0.9 + 1.07349...)
    keras = _keras()
    layer = keras.layers.RNN(hello.RNNCell(1), return_sequences=True)
    layer.build((None, None, 2))
    kernel, recurrent, bias = hello.cell_variables(layer)
    kernel.assign([[0.5], [-1.0]])
    recurrent.assign([[2.0]])
    bias.assign([0.1])
    out = _run_layer(layer, np.array([[[1, 0], [0, 1]]], "float32"))[0, :, 0]
    h1 = math.tanh(0.6)
    h2 = math.tanh(-0.9 + 2 * h1)
    np.testing.assert_allclose(out, [h1, h2], rtol=1e-6)


def test_hand_lstm_cell_by_hand():
    # H = 1, I = 1, columns [i, f, c, o]: W = [[1, 2, 3, 4]], U = [[0.5, 0.5, 0.5, 0.5]],
    # b = [0, 1, 0, -1]; one step with x = [1], h0 = c0 = 0:
    #   z = [1, 3, 3, 3]; i = s(1), f = s(3), c~ = tanh(3), o = s(3)
    #   c1 = f*0 + i*c~ = s(1)*tanh(3);  h1 = o*tanh(c1)
    keras = _keras()
    layer = keras.layers.RNN(hello.HandLSTMCell(1), return_sequences=True, return_state=True)
    layer.build((None, None, 1))
    kernel, recurrent, bias = hello.cell_variables(layer)
    kernel.assign([[1.0, 2.0, 3.0, 4.0]])
    recurrent.assign([[0.5, 0.5, 0.5, 0.5]])
    bias.assign([0.0, 1.0, 0.0, -1.0])
    seq, h, c = layer(np.array([[[1.0]]], "float32"))
    c1 = _sigmoid(1) * math.tanh(3)
    h1 = _sigmoid(3) * math.tanh(c1)
    np.testing.assert_allclose(np.asarray(c)[0, 0], c1, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(h)[0, 0], h1, rtol=1e-6)


def test_hand_lstm_cell_default_bias_is_unit_forget_bias():
    # Keras' LSTMCell starts the forget-gate bias at 1 (unit_forget_bias=True): the hand-written one too.
    cell = hello.HandLSTMCell(2)
    cell.build((None, 3))
    np.testing.assert_array_equal(np.asarray(cell.bias), [0, 0, 1, 1, 0, 0, 0, 0])
    keras_cell = _keras().layers.LSTMCell(2)
    keras_cell.build((None, 3))
    np.testing.assert_array_equal(np.asarray(keras_cell.bias), np.asarray(cell.bias))


@pytest.mark.parametrize("builtin, hand", [("rnn_cell", "my_rnn_cell"), ("lstm_cell", "my_lstm_cell"),
                                           ("simple_rnn", "rnn_cell"), ("lstm", "lstm_cell")])
def test_copied_weights_give_identical_outputs(builtin, hand):
    hello_data = hello.make_data(list("hello") * 3)
    _keras().utils.set_random_seed(1)
    source = hello.build_model(builtin, 4, 3)
    target = hello.build_model(hand, 4, 3)
    before = hello.fitted_probs(target, hello_data)
    hello.copy_model_weights(source, target)
    after = hello.fitted_probs(target, hello_data)
    expected = hello.fitted_probs(source, hello_data)
    assert np.abs(before - expected).max() > 1e-3  # the test can fail: fresh weights differ
    np.testing.assert_array_equal(after, expected)  # bit-identical after the copy


def test_copy_cell_weights_rejects_shape_mismatch():
    small = hello.build_model("rnn_cell", 4, 3)
    large = hello.build_model("my_rnn_cell", 4, 5)
    with pytest.raises(ValueError, match=r"expected shape \(4, 5\)"):
        hello.copy_cell_weights(small.get_layer("rnn"), large.get_layer("rnn"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="argument `variant`"):
        hello.build_model("gru", 4, 3)
    with pytest.raises(ValueError, match="argument `units`"):
        hello.build_model("lstm", 4, 0)
    with pytest.raises(ValueError, match="argument `units`"):
        hello.RNNCell(-1)
    with pytest.raises(ValueError, match="argument `epochs`"):
        hello.train(hello.build_model("lstm", 4, 2), hello.make_data("hello"), epochs=0)


# ----------------------------------------------------------------------------------------------
# Twins: same fitted values after training (short sequence; the full setting is in the slow tier)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_runs():
    """All six variants on 'hello' x 20 (99 steps), 200 epochs, Adam 0.1, seed 0."""
    data = hello.make_data(list("hello") * 20)
    return data, hello.train_variants(hello.VARIANTS, data, units=4, epochs=200, learning_rate=0.1, seed=0)


@pytest.mark.parametrize("variant", hello.VARIANTS)
def test_twins_same_fitted_values_after_training(short_runs, variant):
    _, results = short_runs
    twin = hello.TWIN[variant]
    diff = np.abs(results[variant].probs - results[twin].probs).max()
    assert diff <= 1e-6, f"{variant} vs {twin}: max |dp| = {diff:.2e}"
    # training moved the weights a long way, so agreeing is not agreeing at initialisation
    assert results[variant].losses[0] > 1.0 > 100 * results[variant].losses[-1]


@pytest.mark.parametrize("variant", hello.VARIANTS)
def test_every_variant_learns_hello_short(short_runs, variant):
    data, results = short_runs
    assert results[variant].accuracy == 1.0
    # 'l' is followed by 'l' after 'e' and by 'o' after 'l': that needs the hidden state
    probs, ids = results[variant].probs, data.input_ids
    l_id, o_id = data.vocab.index("l"), data.vocab.index("o")
    assert probs[2].argmax() == l_id and probs[3].argmax() == o_id and ids[2] == ids[3] == l_id


def test_differently_initialised_twin_differs(short_runs):
    # The comparison is sensitive: the same hand-written cell started from its own initial
    # weights (no copy) ends with visibly different fitted values.
    data, results = short_runs
    _keras().utils.set_random_seed(123)
    model = hello.build_model("my_lstm_cell", len(data.vocab), 4)
    other = hello.train(model, data, epochs=200, learning_rate=0.1)
    assert np.abs(other.probs - results["lstm_cell"].probs).max() > 1e-4


def test_variant_alone_matches_variant_in_all(short_runs):
    # Determinism and shared initialisation: training one variant alone (same seed) gives
    # exactly what it gave when trained with the others.
    data, results = short_runs
    alone = hello.train_variants(["my_rnn_cell"], data, units=4, epochs=200, learning_rate=0.1, seed=0)
    assert list(alone) == ["my_rnn_cell"]
    np.testing.assert_array_equal(alone["my_rnn_cell"].probs, results["my_rnn_cell"].probs)
    assert alone["my_rnn_cell"].losses == results["my_rnn_cell"].losses


# ----------------------------------------------------------------------------------------------
# PyTorch import
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_fixture():
    return dict(np.load(FIXTURE))


def test_torch_to_keras_layout_by_hand():
    # RNN, H = 1, I = 2: weight_ih [[1, 2]] -> kernel [[1], [2]]; bias 0.5 + 0.25 = 0.75.
    sd = {"weight_ih": np.array([[1.0, 2.0]]), "weight_hh": np.array([[3.0]]),
          "bias_ih": np.array([0.5]), "bias_hh": np.array([0.25])}
    kernel, recurrent, bias = torch_import.torch_rnn_to_keras(sd, input_size=2, units=1, gates=1)
    np.testing.assert_array_equal(kernel, [[1.0], [2.0]])
    np.testing.assert_array_equal(recurrent, [[3.0]])
    np.testing.assert_array_equal(bias, [0.75])
    # LSTM, H = 1, I = 1: torch rows [i, f, g, o] = [1, 2, 3, 4] -> Keras columns [i, f, c, o],
    # same order; no bias (bias=False) -> zeros.
    sd = {"weight_ih_l0": np.array([[1.0], [2.0], [3.0], [4.0]]), "weight_hh_l0": np.array([[5.0], [6.0], [7.0], [8.0]])}
    kernel, recurrent, bias = torch_import.torch_rnn_to_keras(sd, input_size=1, units=1, gates=4)
    np.testing.assert_array_equal(kernel, [[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(recurrent, [[5.0, 6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(bias, [0.0, 0.0, 0.0, 0.0])


TORCH_CASES = [
    ("rnn", "simple_rnn"), ("rnn", "rnn_cell"), ("rnn", "my_rnn_cell"),
    ("rnn_cell", "simple_rnn"), ("rnn_cell", "rnn_cell"), ("rnn_cell", "my_rnn_cell"),
    ("lstm", "lstm"), ("lstm", "lstm_cell"), ("lstm", "my_lstm_cell"),
    ("lstm_cell", "lstm"), ("lstm_cell", "lstm_cell"), ("lstm_cell", "my_lstm_cell"),
]


@pytest.mark.parametrize("torch_module, variant", TORCH_CASES)
def test_torch_weights_reproduce_torch_outputs(torch_fixture, torch_module, variant):
    f = torch_fixture
    x = f["x"][None]  # [1, T, I]
    layer = hello.make_recurrent_layer(variant, f["out.rnn"].shape[1])
    layer.build((None, None, x.shape[-1]))
    torch_import.load_torch_rnn(layer, f, prefix=torch_module + ".")
    out = _run_layer(layer, x)[0]  # [T, H]
    np.testing.assert_allclose(out, f["out." + torch_module], atol=1e-5, rtol=0)


@pytest.mark.parametrize("torch_module", ["lstm", "lstm_cell"])
def test_torch_lstm_cell_state(torch_fixture, torch_module):
    f = torch_fixture
    layer = _keras().layers.LSTM(3, return_state=True)
    layer.build((None, None, 4))
    torch_import.load_torch_rnn(layer, f, prefix=torch_module + ".")
    _, _, c = layer(f["x"][None])
    np.testing.assert_allclose(np.asarray(c)[0], f[f"out.{torch_module}_c"], atol=1e-5, rtol=0)


def test_torch_linear(torch_fixture):
    f = torch_fixture
    dense = _keras().layers.Dense(4)
    dense.build((None, 3))
    torch_import.load_torch_linear(dense, f, prefix="linear.")
    np.testing.assert_allclose(_run_layer(dense, f["out.lstm"]), f["out.linear"], atol=1e-5, rtol=0)


def test_torch_import_rejects_wrong_shapes(torch_fixture):
    keras = _keras()
    bad = dict(torch_fixture)
    bad["lstm.weight_hh_l0"] = bad["lstm.weight_hh_l0"][:, :2]  # [12, 2] instead of [12, 3]
    layer = keras.layers.LSTM(3)
    layer.build((None, None, 4))
    with pytest.raises(ValueError, match=r"lstm\.weight_hh_l0.*expected shape \(12, 3\).*got shape \(12, 2\)"):
        torch_import.load_torch_rnn(layer, bad, prefix="lstm.")
    # RNN weights into an LSTM: weight_ih is [3, 4], the LSTM needs [12, 4]
    with pytest.raises(ValueError, match=r"expected shape \(12, 4\)"):
        torch_import.load_torch_rnn(layer, torch_fixture, prefix="rnn.")
    # hidden size mismatch for Linear
    dense = keras.layers.Dense(4)
    dense.build((None, 5))
    with pytest.raises(ValueError, match=r"linear\.weight.*expected shape \(4, 5\).*got shape \(4, 3\)"):
        torch_import.load_torch_linear(dense, torch_fixture, prefix="linear.")


def test_torch_import_rejects_missing_keys_and_stacked_modules(torch_fixture):
    layer = _keras().layers.SimpleRNN(3)
    layer.build((None, None, 4))
    with pytest.raises(ValueError, match="weight_ih_l0"):
        torch_import.load_torch_rnn(layer, torch_fixture, prefix="nothing.")
    stacked = {k: v for k, v in torch_fixture.items() if k.startswith("rnn.")}
    stacked["rnn.weight_ih_l1"] = stacked["rnn.weight_ih_l0"]
    with pytest.raises(ValueError, match="one-layer"):
        torch_import.load_torch_rnn(layer, stacked, prefix="rnn.")


def test_torch_import_state_dict_without_bias(torch_fixture):
    layer = _keras().layers.SimpleRNN(3)
    layer.build((None, None, 4))
    no_bias = {k: v for k, v in torch_fixture.items() if k.startswith("rnn_cell.weight")}
    torch_import.load_torch_rnn(layer, no_bias, prefix="rnn_cell.")
    np.testing.assert_array_equal(np.asarray(layer.cell.bias), 0)


# ----------------------------------------------------------------------------------------------
# The CLI
# ----------------------------------------------------------------------------------------------


def test_cli_quick_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kcourse", "run", "hello", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for variant in hello.VARIANTS:
        assert f"\n{variant} " in proc.stdout  # one table row per variant
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok"
    assert result["metrics"]["max_twin_diff"] <= 1e-6
    assert (run_dir / "heatmap.png").stat().st_size > 1000
    probs = np.load(run_dir / "probs.npz")
    assert probs["my_lstm_cell"].shape == (49, 4)  # quick: 'hello' x 10


def test_cli_single_variant_and_bad_input(tmp_path, capsys):
    from kcourse import cli

    code = cli.main(["run", "hello", "--variant", "my_rnn_cell", "--repeats", "4", "--epochs", "3",
                     "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "\nmy_rnn_cell " in out and "\nrnn_cell " not in out  # the twin is trained, not shown
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects a choice outside --variant's list
        cli.main(["run", "hello", "--variant", "gru", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "my_lstm_cell" in capsys.readouterr().err  # the message lists the valid variants
    assert cli.main(["run", "hello", "--text", "", "--out", str(tmp_path)]) == 2
    assert "argument `text`" in capsys.readouterr().err
    assert cli.main(["run", "hello", "--text", "h", "--repeats", "1", "--out", str(tmp_path)]) == 2
    assert "at least 2 characters" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The course's setting: 'hello' x 100, 200 epochs, Adam 0.1, three seeds (slow tier)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_course_setting_all_variants_three_seeds(seed):
    data = hello.make_data(list("hello") * 100)
    results = hello.train_variants(hello.VARIANTS, data, units=4, epochs=200, learning_rate=0.1, seed=seed)
    diffs = hello.twin_differences(results)
    for variant in hello.VARIANTS:
        assert results[variant].accuracy == 1.0, f"seed {seed}: {variant} accuracy {results[variant].accuracy:.3f}"
        assert diffs[variant] <= 1e-6, f"seed {seed}: {variant} vs {hello.TWIN[variant]} max |dp| {diffs[variant]:.2e}"
