"""The exam's "hello" next-character models (part 2) in Keras 3.

``txt = list('hello') * 100``; each character predicts the next one. Six variants, as the exam's
questions (1)-(6), each followed by a ``Dense`` output layer (logits) and trained with softmax
cross-entropy on the whole sequence as one batch (Adam 0.1, 200 epochs, as the course):

=================  ==========================================  ===========================
variant            recurrent layer                              built-in twin
=================  ==========================================  ===========================
``simple_rnn``     ``keras.layers.SimpleRNN``                   ``rnn_cell``
``rnn_cell``       ``keras.layers.RNN(SimpleRNNCell)``          ``simple_rnn``
``my_rnn_cell``    ``keras.layers.RNN(RNNCell)`` (hand-written) ``rnn_cell``
``lstm``           ``keras.layers.LSTM``                        ``lstm_cell``
``lstm_cell``      ``keras.layers.RNN(LSTMCell)``               ``lstm``
``my_lstm_cell``   ``keras.layers.RNN(HandLSTMCell)``           ``lstm_cell``
=================  ==========================================  ===========================

A variant and its twin start from the same weights (:func:`copy_cell_weights` copies a built-in
cell into the hand-written one) and are trained with the same optimiser, so their fitted values
must agree after training, not only at initialisation. The hand-written cells compute in the same
op order as Keras' cells (RNN: ``(x @ W + b) + h @ U``; LSTM: ``x @ W + h @ U + b`` split into
gates ``[i, f, c, o]``; one bias) so that the gradients agree as well as the forward pass.

PyTorch weights (``nn.RNN``, ``nn.RNNCell``, ``nn.LSTM``, ``nn.LSTMCell``, ``nn.Linear``) load
into these layers with :func:`keras_impl.torch_import.load_torch_rnn` and
:func:`keras_impl.torch_import.load_torch_linear`.

    kcourse run hello                   # all six variants, the table and the heatmap
    kcourse run hello --variant my_lstm_cell
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from keras_impl import config as cfglib
from keras_impl import runtime
from keras_impl.configs import HELLO_VARIANTS as VARIANTS
from keras_impl.configs import LSTM_VARIANTS, RNN_VARIANTS, HelloConfig
from keras_impl.hello_cells import HandLSTMCell, RNNCell, cell_variables, copy_cell_weights, recurrent_cell

__all__ = ["VARIANTS", "RNN_VARIANTS", "LSTM_VARIANTS", "HelloConfig", "RNNCell", "HandLSTMCell", "cell_variables",
           "copy_cell_weights", "recurrent_cell", "make_data", "build_model", "copy_model_weights", "train",
           "train_variants", "twin_differences", "run"]

# Whose fitted values each variant must reproduce (exam (3) reproduces (2), (6) reproduces (5)).
TWIN = {
    "simple_rnn": "rnn_cell",
    "rnn_cell": "simple_rnn",
    "my_rnn_cell": "rnn_cell",
    "lstm": "lstm_cell",
    "lstm_cell": "lstm",
    "my_lstm_cell": "lstm_cell",
}

LABELS = {
    "simple_rnn": "SimpleRNN",
    "rnn_cell": "RNN(SimpleRNNCell)",
    "my_rnn_cell": "RNN(hand-written RNNCell)",
    "lstm": "LSTM",
    "lstm_cell": "RNN(LSTMCell)",
    "my_lstm_cell": "RNN(hand-written LSTMCell)",
}


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CharData:
    """A text as next-character pairs.

    Attributes:
        vocab: the sorted distinct characters; index ``k`` is one-hot column ``k``.
        x: one-hot inputs ``txt[:-1]``, ``[T, V]`` float32.
        y: target indices ``txt[1:]``, ``[T]`` int32.
    """

    vocab: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray

    @property
    def input_ids(self) -> np.ndarray:
        """Indices of the input characters, ``[T]``."""
        return self.x.argmax(axis=-1)


def make_data(text: str | Sequence[str]) -> CharData:
    """Inputs ``txt[:-1]`` (one-hot) and targets ``txt[1:]`` (indices) over a sorted vocabulary.

    Args:
        text: a string or a list of characters (tokens), e.g. ``list('hello') * 100``.

    Raises:
        ValueError: fewer than two characters (no (input, next) pair exists), or only one distinct
            character (nothing to predict).

    Example:
        >>> d = make_data("hello")
        >>> d.vocab, d.y.tolist()
        (('e', 'h', 'l', 'o'), [0, 2, 2, 3])
    """
    txt = list(text)
    if len(txt) < 2:
        raise ValueError(
            "Received an invalid value for argument `text`: expected at least 2 characters "
            f"(an input and the next character), got {''.join(map(str, txt))!r} of length {len(txt)}"
        )
    vocab = tuple(sorted(set(txt)))
    if len(vocab) < 2:
        raise ValueError(
            "Received an invalid value for argument `text`: expected at least 2 distinct characters "
            f"(with one there is nothing to predict), got only {vocab[0]!r}"
        )
    index = {ch: k for k, ch in enumerate(vocab)}
    ids = np.array([index[ch] for ch in txt], dtype="int32")  # [T+1]
    x = np.eye(len(vocab), dtype="float32")[ids[:-1]]  # [T, V]
    return CharData(vocab=vocab, x=x, y=ids[1:].copy())


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(
            f"Received an invalid value for argument `variant`, expected one of {', '.join(VARIANTS)}, got {variant!r}"
        )


def make_recurrent_layer(variant: str, units: int):
    """The recurrent layer of ``variant``, returning the whole hidden sequence ``[B, T, H]``."""
    _check_variant(variant)
    layers = keras.layers
    if variant == "simple_rnn":
        return layers.SimpleRNN(units, return_sequences=True, name="rnn")
    if variant == "rnn_cell":
        return layers.RNN(layers.SimpleRNNCell(units), return_sequences=True, name="rnn")
    if variant == "my_rnn_cell":
        return layers.RNN(RNNCell(units), return_sequences=True, name="rnn")
    if variant == "lstm":
        return layers.LSTM(units, return_sequences=True, name="rnn")
    if variant == "lstm_cell":
        return layers.RNN(layers.LSTMCell(units), return_sequences=True, name="rnn")
    return layers.RNN(HandLSTMCell(units), return_sequences=True, name="rnn")


def build_model(variant: str, vocab_size: int, units: int):
    """``Input [B, T, V] -> recurrent layer [B, T, H] -> Dense [B, T, V]`` (logits).

    Args:
        variant: one of :data:`VARIANTS`.
        vocab_size: number of distinct characters ``V``.
        units: hidden size ``H``.
    """
    _check_variant(variant)
    for name, value in (("vocab_size", vocab_size), ("units", units)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a positive integer, got {value!r}"
            )
    model = keras.Sequential(
        [
            keras.Input((None, vocab_size)),
            make_recurrent_layer(variant, units),
            keras.layers.Dense(vocab_size, name="head"),  # logits; softmax is in the loss
        ],
        name=variant,
    )
    return model


def copy_model_weights(source_model, target_model) -> None:
    """Copy the recurrent cell and the Dense head of one ``build_model`` model into another."""
    copy_cell_weights(source_model.get_layer("rnn"), target_model.get_layer("rnn"))
    target_model.get_layer("head").set_weights(source_model.get_layer("head").get_weights())


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FitResult:
    """One trained variant.

    Attributes:
        variant: the variant's name.
        losses: training loss after each epoch.
        probs: fitted next-character probabilities ``[T, V]`` after training.
        accuracy: share of steps whose most probable character is the true next one.
        seconds: wall-clock training time (tracing included).
        model: the trained Keras model.
    """

    variant: str
    losses: list
    probs: np.ndarray
    accuracy: float
    seconds: float = 0.0
    model: object = dataclasses.field(repr=False, default=None)


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows whose arg-max is the target: ``[[.9, .1], [.4, .6]]`` vs ``[0, 0]`` -> 0.5."""
    return float(np.mean(np.argmax(probs, axis=-1) == targets))


def fitted_probs(model, data: CharData) -> np.ndarray:
    """Softmax of the model's logits on the whole sequence, ``[T, V]``."""
    logits = model(data.x[None], training=False)  # [1, T, V]
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))[0]


def train(model, data: CharData, epochs: int = 200, learning_rate: float = 0.1) -> FitResult:
    """Fit ``model`` on the whole sequence as one batch, one Adam step per epoch (the course's loop).

    The step is a compiled ``tf.function`` called once per epoch. ``model.fit`` would do the same
    maths, but here an epoch is a single step and fit's per-epoch bookkeeping (data adapter,
    callbacks, metrics) cost several times the step itself on a short sequence.
    ``jit_compile=False``: XLA was no faster for this small loop, and it would compile the
    built-in and hand-written graphs separately, free to fuse them differently; without it both
    twins run the same TensorFlow ops in the same order.

    Returns:
        The loss before each update (as the course's loop prints it), and the fitted
        probabilities and accuracy of the trained model.
    """
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"Received an invalid value for argument `epochs`, expected an integer >= 1, got {epochs!r}")
    optimizer = keras.optimizers.Adam(learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # softmax + cross-entropy
    x = tf.constant(data.x[None])  # [1, T, V]: the whole sequence is one batch
    y = tf.constant(data.y[None])  # [1, T]

    @tf.function(jit_compile=False)
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    with runtime.Timer() as timer:
        losses = [float(train_step()) for _ in range(epochs)]
    probs = fitted_probs(model, data)
    return FitResult(variant=model.name, losses=losses, probs=probs, accuracy=accuracy(probs, data.y),
                     seconds=timer.seconds, model=model)


def train_variants(variants: Sequence[str], data: CharData, units: int, epochs: int = 200,
                   learning_rate: float = 0.1, seed: int = 0) -> dict[str, FitResult]:
    """Train ``variants`` (and nothing else) from shared initial weights.

    In each family (RNN, LSTM) the seed is reset and the family's first built-in model
    (``SimpleRNN`` / ``LSTM``) is initialised; every variant of that family starts from a copy of
    its weights (:func:`copy_model_weights`: built-in -> hand-written). So a variant gets the same
    initial weights, and the same fitted values, whether it is trained alone or with the others.
    """
    for variant in variants:
        _check_variant(variant)
    results: dict[str, FitResult] = {}
    for family in (RNN_VARIANTS, LSTM_VARIANTS):
        wanted = [v for v in family if v in variants]
        if not wanted:
            continue
        keras.utils.set_random_seed(seed)
        source = build_model(family[0], len(data.vocab), units)
        for variant in wanted:
            model = build_model(variant, len(data.vocab), units)
            copy_model_weights(source, model)
            results[variant] = train(model, data, epochs=epochs, learning_rate=learning_rate)
    return results


def twin_differences(results: dict[str, FitResult]) -> dict[str, float]:
    """Max |difference| of fitted probabilities between each variant and its built-in twin."""
    return {v: float(np.max(np.abs(r.probs - results[TWIN[v]].probs)))
            for v, r in results.items() if TWIN[v] in results}


# ----------------------------------------------------------------------------------------------
# Report: table, probability rows, heatmap
# ----------------------------------------------------------------------------------------------


def format_table(results: dict[str, FitResult], diffs: dict[str, float], variants: Sequence[str]) -> str:
    """The result table: variant, final loss, accuracy, max |difference| to its built-in twin, time.

    "final loss" is the loss before the last Adam step, as the course's loop reports it.
    """
    header = f"{'variant':<14} {'model':<27} {'final loss':>10} {'accuracy':>9}  {'max |dp| to twin':<24} {'train s':>7}"
    lines = [header, "-" * len(header)]
    for v in variants:
        r = results[v]
        diff = f"{diffs[v]:.1e} ({TWIN[v]})" if v in diffs else "-"
        lines.append(f"{v:<14} {LABELS[v]:<27} {r.losses[-1]:>10.5f} {r.accuracy:>8.1%}  {diff:<24} {r.seconds:>7.1f}")
    return "\n".join(lines)


def format_probs(result: FitResult, data: CharData, steps: int = 10) -> str:
    """The first ``steps`` fitted softmax rows rounded to 2 decimals, as the course prints them."""
    steps = min(steps, len(data.y))
    lines = [f"{result.variant}: P(next | input), first {steps} steps", "  in -> " + " ".join(f"{c!s:>5}" for c in data.vocab)]
    for t in range(steps):
        row = " ".join(f"{p:5.2f}" for p in result.probs[t])
        lines.append(f"  {data.vocab[data.input_ids[t]]!s:>2} -> {row}   (true next: {data.vocab[data.y[t]]})")
    return "\n".join(lines)


def save_heatmap(results: dict[str, FitResult], data: CharData, variants: Sequence[str], path: Path,
                 steps: int = 10) -> Path:
    """One panel per variant: predicted next-character probabilities for the first ``steps`` steps."""
    steps = min(steps, len(data.y))
    cols = min(3, len(variants))
    rows = -(-len(variants) // cols)
    fig = Figure(figsize=(2.6 * cols + 1.6, 0.28 * steps * rows + 1.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for n, (ax, v) in enumerate(zip(axes.flat, variants)):
        probs = results[v].probs[:steps]  # [steps, V]
        image = ax.imshow(probs, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for t in range(steps):
            for k in range(len(data.vocab)):
                ax.text(k, t, f"{probs[t, k]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if probs[t, k] > 0.5 else "white")
        ax.set_xticks(range(len(data.vocab)), [str(c) for c in data.vocab])
        ax.set_yticks(range(steps))
        if n % cols == 0:  # rows are the same steps in every panel: label them once per row
            ax.set_yticklabels([f"{data.vocab[data.input_ids[t]]} -> {data.vocab[data.y[t]]}" for t in range(steps)],
                               fontsize=8)
            ax.set_ylabel("input -> true next", fontsize=8)
        else:
            ax.set_yticklabels([])
        ax.set_title(f"{LABELS[v]}, acc {results[v].accuracy:.0%}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("predicted next character", fontsize=8)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="probability")
    path = Path(path)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------------------------
# Exercise
# ----------------------------------------------------------------------------------------------


def run(cfg: HelloConfig, run_dir: Path) -> dict:
    """``kcourse run hello``: train the variants (and their twins), print the table, save the heatmap."""
    cfglib.validate(cfg)
    data = make_data(list(cfg.text) * cfg.repeats)
    variants = list(VARIANTS) if cfg.variant == "all" else [cfg.variant]
    to_train = [v for v in VARIANTS if v in variants or any(TWIN[w] == v for w in variants)]
    print(f"[hello] text {cfg.text!r} x {cfg.repeats}: {len(data.y)} steps, vocabulary {''.join(data.vocab)!r}; "
          f"training {', '.join(to_train)} ({cfg.epochs} epochs, Adam {cfg.learning_rate})", flush=True)

    results = train_variants(to_train, data, units=cfg.units, epochs=cfg.epochs,
                             learning_rate=cfg.learning_rate, seed=cfg.seed)
    diffs = twin_differences(results)

    train_writer, _ = runtime.summary_writers(run_dir)
    for epoch in range(cfg.epochs):
        runtime.log_scalars(train_writer, epoch + 1, {f"losses/{v}": r.losses[epoch] for v, r in results.items()})
    print(format_table(results, diffs, variants))
    # The course prints the fitted softmax rows of its answers: the hand-written cells (or the one asked for).
    for v in (["my_rnn_cell", "my_lstm_cell"] if cfg.variant == "all" else variants):
        print(format_probs(results[v], data, cfg.heatmap_steps))
    save_heatmap(results, data, variants, run_dir / "heatmap.png", steps=cfg.heatmap_steps)
    np.savez(run_dir / "probs.npz", vocab=np.array(data.vocab), **{v: r.probs for v, r in results.items()})

    perfect = sum(results[v].accuracy == 1.0 for v in variants)
    shown = [diffs[v] for v in variants if v in diffs]
    max_diff = max(shown) if shown else float("nan")
    metrics = {"max_twin_diff": max_diff, "variants_at_100pct": perfect}
    for v in variants:
        metrics[f"{v}/loss"] = results[v].losses[-1]
        metrics[f"{v}/accuracy"] = results[v].accuracy
        metrics[f"{v}/twin_diff"] = diffs.get(v, float("nan"))
        metrics[f"{v}/train_seconds"] = results[v].seconds
    return {
        "headline": f"{perfect}/{len(variants)} variants at 100% accuracy; max |dp| to built-in twin {max_diff:.1e}",
        "reached": perfect == len(variants) and max_diff <= 1e-6,
        "metrics": metrics,
        "artifacts": ["heatmap.png", "probs.npz"],
    }
