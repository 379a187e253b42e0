"""Build ``notebooks/*.ipynb`` from the Python source below (so the notebooks stay reviewable).

The notebooks teach: each one builds its model on the page (a ``keras.Model`` subclass, a
``Sequential``, a layer subclass, or TF-Agents' parts), writes its training step (``GradientTape``,
``fit`` or ``agent.train``) and its loop in their own cells, then evaluates on held-out episodes
(``agents.evaluation.REPORT_SEED``) and plots. The library supplies the parts only: environment
makers, replay buffers, data loading, evaluation and rendering; no cell calls a function that trains
for more than one step. Every notebook has the same skeleton, in the keras-io order:

1. the title, the idea, the full budget's time and what it reaches, and where to set
   ``KCOURSE_SOURCE`` (markdown);
2. a Colab cell that installs kcourse from ``KCOURSE_SOURCE`` (and TF-Agents without its stale
   pins); it does nothing outside Colab;
3. Setup: the ``QUICK`` form field (``KCOURSE_QUICK`` in the environment overrides it), imports, a
   run folder;
4. the lesson: data, model, step, loop, evaluation, plots.

The lesson cells that have a twin in the library are module constants here (``LESSONS``), so that
``tests/test_notebooks.py`` executes the very code a notebook shows and checks it against the twin:
the same forward outputs and the same single gradient step for the same weights and batch.

At ``QUICK`` settings each notebook finishes in about a minute on a CPU; ``tests/test_notebooks.py``
executes all of them that way. The notebooks are written without outputs.

    python scripts/make_notebooks.py           # (re)write notebooks/*.ipynb
    python scripts/make_notebooks.py --check   # exit 1 if a notebook differs from this script
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "notebooks"

# What a notebook must show once executed (checked by tests/test_notebooks.py):
# "image" = at least one image/png output, "animation" = at least one jshtml animation.
IMAGE, ANIMATION = "image", "animation"

# The one form field every notebook has (tests/test_notebooks.py looks for this exact line).
QUICK_FIELD = 'QUICK = True  #@param {type:"boolean"}'
# The install source, set by the reader (the first markdown cell says so); empty means "not set".
SOURCE_FIELD = 'KCOURSE_SOURCE = ""  #@param {type:"string"}'


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip())


def lesson(text: str) -> str:
    """A lesson cell's code: dedented and stripped, exactly as the notebook shows it."""
    return textwrap.dedent(text).strip()


def install_cell():
    return code(f'''
    # Colab only: install kcourse from KCOURSE_SOURCE, then TF-Agents with --no-deps (its metadata pins
    # cannot resolve beside TF 2.21; docs/faq.md). Outside Colab this cell does nothing: run `make venv`.
    {SOURCE_FIELD}
    import os
    import sys

    KCOURSE_SOURCE = KCOURSE_SOURCE or os.environ.get("KCOURSE_SOURCE", "")
    if "google.colab" in sys.modules:
        if not KCOURSE_SOURCE:
            raise ValueError("Set KCOURSE_SOURCE (the form field above) to this repository's git URL, e.g. "
                             "git+https://github.com/OWNER/kcourse or git+https://github.com/OWNER/kcourse@BRANCH")
        !pip -q install "kcourse[atari,box2d] @ {{KCOURSE_SOURCE}}"
        !pip -q install --no-deps tf-agents==0.19.0 gym==0.23.0
        # If TensorFlow was imported in this runtime before the install: Runtime > Restart session, run all again.
    ''')


def setup_cell(name: str, imports: str, legacy_keras: bool = False):
    legacy = ('''
    # TF-Agents needs Keras 2 (tf_keras) as tf.keras: set before TensorFlow is first imported (docs/faq.md).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")''' if legacy_keras else "")
    return code(f'''
    import os

    {QUICK_FIELD}
    # The environment overrides the form: KCOURSE_QUICK=0 runs the full budget, 1 the quick one (the tests).
    QUICK = os.environ.get("KCOURSE_QUICK", "1" if QUICK else "0") == "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2"){legacy}

    import time
    from pathlib import Path

    import numpy as np
    from IPython.display import Image, Markdown, display

    %matplotlib inline
    import matplotlib.pyplot as plt

{textwrap.indent(textwrap.dedent(imports).strip(), "    ")}

    RUN_DIR = Path("runs") / "notebooks" / "{name}"  # plots, GIFs, checkpoints
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    print(f"QUICK={{QUICK}}; outputs in {{RUN_DIR}}")
    ''')


def title_cell(title: str, idea: str, budget: str):
    colab = ("**Colab:** set `KCOURSE_SOURCE` in the next cell to this repository's git URL (for instance\n"
             "`git+https://github.com/OWNER/kcourse`, or a fork or a branch: `...kcourse@BRANCH`), then run all.\n"
             "If TensorFlow was already imported in the runtime, restart it after the install (docs/faq.md).")
    return new_markdown_cell("\n\n".join([f"# {title}", textwrap.dedent(idea).strip(), budget, colab]))


def notebook(name: str, title: str, idea: str, budget: str, imports: str, cells: list, expects: tuple,
             legacy_keras: bool = False) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [title_cell(title, idea, budget), install_cell(), md("## Setup"),
                setup_cell(name, imports, legacy_keras)] + cells
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell.id = f"{name.split('_')[0]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "kcourse": {"generated_by": "scripts/make_notebooks.py", "expects": list(expects)},
    }
    return nb


def budget(full: str, quick: str = "about a minute on a CPU") -> str:
    """The line under a title: the full budget's time and what it reached, and QUICK's time."""
    return f"**Budget.** Full (`QUICK` off): {full} `QUICK` on (the default): {quick}."

# ----------------------------------------------------------------------------------------------
# 01 recommender
# ----------------------------------------------------------------------------------------------

RECOMMENDER_MODEL = lesson('''
class MatrixFactorization(keras.Model):
    """The course's recommender: rating = 0.5 + 4.5 * sigmoid(c + b_u + b_m + p_u . q_m)."""

    def __init__(self, n_users, n_movies, embedding_dim=8, global_mean=3.5, init_std=0.05, seed=0, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=init_std, seed=seed)  # small: no saturated sigmoid
        self.user_factors = keras.layers.Embedding(n_users, embedding_dim, embeddings_initializer=init, name="p")
        self.movie_factors = keras.layers.Embedding(n_movies, embedding_dim, embeddings_initializer=init, name="q")
        self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="b_u")
        self.movie_bias = keras.layers.Embedding(n_movies, 1, embeddings_initializer="zeros", name="b_m")
        # c starts at the logit of the mean rating: the untrained model predicts the global mean.
        start = float(np.log((global_mean - 0.5) / (5.0 - global_mean)))
        self.offset = self.add_weight(shape=(), initializer=keras.initializers.Constant(start), name="c")

    def call(self, x, training=False):
        users, movies = x[:, 0], x[:, 1]  # [B], [B]
        p, q = self.user_factors(users), self.movie_factors(movies)  # [B, D]
        dot = ops.sum(p * q, axis=1, keepdims=True)  # [B, 1]: one dot product per row, not over the batch
        logit = self.offset + self.user_bias(users) + self.movie_bias(movies) + dot  # [B, 1]
        return 0.5 + 4.5 * ops.sigmoid(logit)  # [B, 1], inside the rating range (0.5, 5)
''')

RECOMMENDER_STEP = lesson('''
def l2_penalty(model, x):
    """L2 on the batch's rows, each divided by the row's training count: over an epoch every user and
    film is penalised once, however often it is rated (a Gaussian prior, not a popularity tax)."""
    users, movies = x[:, 0], x[:, 1]
    p, q = model.user_factors(users), model.movie_factors(movies)  # [B, D]
    b_u, b_m = model.user_bias(users)[:, 0], model.movie_bias(movies)[:, 0]  # [B]
    user_part = (L2 * ops.sum(p * p, axis=1) + L2_BIAS * b_u * b_u) * ops.take(inverse_user_count, users)
    movie_part = (L2 * ops.sum(q * q, axis=1) + L2_BIAS * b_m * b_m) * ops.take(inverse_movie_count, movies)
    return ops.mean(user_part + movie_part)


@tf.function
def train_step(x, y):
    """One Adam step on a batch: the exam's `loss.backward(); optimizr.step(); optimizr.zero_grad()`."""
    with tf.GradientTape() as tape:
        mse = ops.mean(ops.square(y - model(x, training=True)))  # nn.MSELoss
        loss = mse + l2_penalty(model, x)
    grads = tape.gradient(loss, model.trainable_variables)
    # An embedding's gradient lists one row per lookup; a user twice in a batch gets two. Summing them
    # (a dense tensor) before Adam gives torch's update; Adam on the raw rows would square each one.
    grads = [tf.convert_to_tensor(g) for g in grads]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return mse
''')

RECOMMENDER_LOOP = lesson('''
dataset = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
           .shuffle(len(data.x_train), seed=0, reshuffle_each_iteration=True)  # DataLoader(shuffle=True)
           .batch(BATCH_SIZE))
history = {"loss": [], "val_mse": []}
start = time.perf_counter()
for epoch in range(EPOCHS):
    losses = [float(train_step(x, y)) for x, y in dataset]
    val_mse = float(np.mean((model(data.x_val).numpy() - data.y_val) ** 2))
    history["loss"].append(np.mean(losses))
    history["val_mse"].append(val_mse)
    print(f"epoch: {epoch + 1}\\t val_loss: {val_mse:.4f}")  # the course's line
print(f"{EPOCHS} epochs in {time.perf_counter() - start:.0f}s")
''')

RECOMMENDER = notebook(
    "01_recommender", "MovieLens recommender (exam part 1): matrix factorisation in Keras",
    """
    Predict the rating a user gives a film from one learned vector per user and per film: a biased
    matrix factorisation `0.5 + 4.5 * sigmoid(c + b_u + b_m + p_u . q_m)`, trained with Adam on the
    squared error, as the exam asks (it trained on ml-20m: validation MSE **0.7995, 0.7595, 0.7444,
    0.7383, 0.7334** over 5 epochs). This notebook builds the model as a `keras.Model` subclass, writes
    the training step with `tf.GradientTape` and the epoch loop, then checks the predictions, a user's
    top-10 and how the lists compare with "most popular first". The data is the real MovieLens
    **ml-latest-small** (100,836 ratings by 610 users), shipped with kcourse under GroupLens' terms
    (`NOTICE`). The library's full model (`keras_impl/recommender/`, `kcourse run recommender`) adds
    genres, a variational posterior and EASE: `docs/recommender.md`.
    """,
    budget("5 epochs at batch 64, 66 s for the whole notebook on 2 CPU cores (measured under load, shared "
           "cores); validation MSE 0.700 after 5 epochs (0.690 after 3; the course's PyTorch loop on the same "
           "split: 0.867).", "1 epoch at batch 256, under a minute"),
    """
    import keras
    import tensorflow as tf
    from keras import ops

    from keras_impl import movielens
    from keras_impl.recommender import metrics
    from keras_impl.recommender.inference import scatter_plot
    """,
    [
        md("""
        ## Data

        `movielens.load_course_data` is the exam's preprocessing: merge `ratings.csv` with `movies.csv`,
        re-index users and films from 0, split 90/10 with `train_test_split(test_size=0.1,
        random_state=42)`. `x` holds (user index, movie index) pairs, `y` the ratings.
        """),
        code("""
        folder = movielens.bundled_folder()  # real ml-latest-small, shipped with kcourse
        data = movielens.load_course_data(folder)
        print(f"real MovieLens ml-latest-small: {len(data.frame):,} ratings, {data.n_users} users, "
              f"{data.n_movies} films; train {len(data.x_train):,}, validation {len(data.x_val):,}")
        data.frame.head()
        """),
        md("""
        ## Model

        One embedding row per user and per film, plus a bias each and a global offset `c`. The dot
        product is taken **per row** (`ops.sum(p * q, axis=1)`): `tensordot(p, q, 2)` would sum over the
        whole batch and still give a tensor of the right shape. The check below is the test for that
        bug: one example alone gives the same prediction as inside a batch.
        """),
        code(RECOMMENDER_MODEL),
        code("""
        EMBEDDING_DIM = 8
        keras.utils.set_random_seed(0)
        model = MatrixFactorization(data.n_users, data.n_movies, EMBEDDING_DIM, global_mean=float(np.mean(data.y_train)))
        x = data.x_val[:8]  # [8, 2]
        print("same prediction alone and in a batch:", np.allclose(model(x[:1]), model(x)[:1]))
        print("untrained predictions (the global mean):", model(x).numpy().ravel()[:4].round(3))
        model.summary()
        """),
        md("""
        ## Training step

        Mean squared error plus an L2 penalty per row, divided by the row's training count (rarely
        rated users and films are the ones a factor model overfits). Adam with learning rate 0.005.
        """),
        code("""
        L2, L2_BIAS = 5.0, 3.0  # noise variance / prior variance, for the factors and for the biases
        LEARNING_RATE = 0.005
        inverse_user_count = ops.convert_to_tensor(1.0 / np.maximum(np.bincount(data.x_train[:, 0], minlength=data.n_users), 1), "float32")
        inverse_movie_count = ops.convert_to_tensor(1.0 / np.maximum(np.bincount(data.x_train[:, 1], minlength=data.n_movies), 1), "float32")
        optimizer = keras.optimizers.Adam(LEARNING_RATE)
        """),
        code(RECOMMENDER_STEP),
        md("## The loop\n\nThe exam's `for epoc in range(5): for xi, yi in dl: ...`, with the course's log line."),
        code("""
        EPOCHS = 1 if QUICK else 5
        BATCH_SIZE = 256 if QUICK else 64
        """),
        code(RECOMMENDER_LOOP),
        md("""
        ## Evaluation

        The learning curve, then predicted against true ratings on the validation split (the exam's
        scatter plot).
        """),
        code("""
        fig, ax = plt.subplots(figsize=(5, 3.5))
        epochs = np.arange(1, EPOCHS + 1)
        ax.plot(epochs, history["loss"], "o-", label="training MSE")
        ax.plot(epochs, history["val_mse"], "o-", label="validation MSE")
        ax.axhline(0.867, color="k", ls="--", lw=1, label="the course's PyTorch loop, same split")
        ax.set(xlabel="epoch", ylabel="MSE", title="ml-latest-small")
        ax.legend()
        plt.show()
        y_pred = model(data.x_val).numpy()
        display(Image(filename=str(scatter_plot(data.y_val, y_pred, RUN_DIR / "scatter.png",
                                                title=f"validation MSE {np.mean((y_pred - data.y_val) ** 2):.4f}"))))
        """),
        md("""
        A user's top-10: the unseen films with the highest predicted rating, among films with at least 5
        training ratings (a film rated once gets a confident-looking score from almost no evidence).
        """),
        code("""
        counts = np.bincount(data.x_train[:, 1], minlength=data.n_movies)
        user = int(np.argmax(np.bincount(data.x_train[:, 0])))  # the most active user
        seen = data.x_train[data.x_train[:, 0] == user, 1]
        candidates = np.setdiff1d(np.flatnonzero(counts >= 5), seen)
        scores = model(np.stack([np.full(len(candidates), user), candidates], axis=1)).numpy().ravel()
        top = candidates[np.argsort(-scores)[:10]]
        print(f"user {data.user_ids[user]} (index {user}) rated {len(seen)} films; top-10 unseen:")
        for rank, movie in enumerate(top, 1):
            rating = model(np.array([[user, movie]])).numpy().item()
            print(f"{rank:3d}. {rating:.2f}  ({counts[movie]:3d} ratings)  {data.titles[movie]}")
        """),
        md("""
        Are these lists good? On the validation split a rating >= 4 is a hit; NDCG@10 rewards hits near
        the top (`docs/glossary.md`). A model trained only to fit ratings ignores *which* films people
        watch, so its lists lose to "most popular first"; the library's default ranking blends in EASE,
        a model of what is watched, and reaches 2.25x popularity's NDCG (`docs/recommender.md`).
        """),
        code("""
        counts_row = counts.astype("float32")[None]
        by_model = metrics.score_report(lambda users: np.stack([model(np.stack([np.full(data.n_movies, u), np.arange(data.n_movies)], 1)).numpy().ravel() for u in users]),
                                        data.x_train, data.x_val, data.y_val, data.n_users, data.n_movies)
        by_popularity = metrics.score_report(lambda users: np.repeat(counts_row, len(users), axis=0),
                                             data.x_train, data.x_val, data.y_val, data.n_users, data.n_movies)
        print(f"NDCG@10: predicted rating {by_model['ndcg']:.4f}, most popular first {by_popularity['ndcg']:.4f}")
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 02 hello RNN / LSTM
# ----------------------------------------------------------------------------------------------

HELLO_CELLS = lesson('''
class MyRNNCell(keras.layers.Layer):
    """The exam's rNNCell: h_t = tanh(i2h(x_t) + h2h(h_{t-1})), one bias (in i2h)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units  # keras.layers.RNN reads these two
        self.output_size = units
        self.i2h = keras.layers.Dense(units, name="i2h")  # x @ W + b
        self.h2h = keras.layers.Dense(units, use_bias=False, kernel_initializer="orthogonal", name="h2h")  # h @ U

    def build(self, input_shape):
        self.i2h.build(input_shape)
        self.h2h.build((input_shape[0], self.units))

    def call(self, inputs, states, training=False):
        h = ops.tanh(self.i2h(inputs) + self.h2h(states[0]))  # (x @ W + b) + h @ U: SimpleRNNCell's order
        return h, [h]


class MyLSTMCell(keras.layers.Layer):
    """An LSTM cell with its gates written out; columns in Keras' gate order [i, f, c, o]."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]  # h, c
        self.output_size = units
        self.i2h = keras.layers.Dense(4 * units, use_bias=False, name="i2h")  # x @ W
        self.h2h = keras.layers.Dense(4 * units, use_bias=False, kernel_initializer="orthogonal", name="h2h")  # h @ U

    def build(self, input_shape):
        self.i2h.build(input_shape)
        self.h2h.build((input_shape[0], self.units))
        forget_one = np.concatenate([np.zeros(self.units), np.ones(self.units), np.zeros(2 * self.units)])
        self.bias = self.add_weight(shape=(4 * self.units,), name="bias",  # forget gate starts at 1, as Keras'
                                    initializer=keras.initializers.Constant(forget_one))

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z = self.i2h(inputs) + self.h2h(h_prev) + self.bias  # [B, 4H]: the bias last, as LSTMCell adds it
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)
        i, f, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.sigmoid(z_o)  # input, forget, output gates
        c = f * c_prev + i * ops.tanh(z_c)  # the new cell state
        h = o * ops.tanh(c)
        return h, [h, c]
''')

HELLO_MODEL = lesson('''
def build_model(recurrent_layer, vocab_size):
    """[B, T, V] one-hot characters -> recurrent layer [B, T, H] -> Dense logits [B, T, V]."""
    return keras.Sequential([keras.Input((None, vocab_size)), recurrent_layer,
                             keras.layers.Dense(vocab_size, name="head")])


def recurrent_layers(units):
    """The exam's six models, (1)-(6): name -> recurrent layer returning the whole sequence."""
    layers = keras.layers
    return {
        "SimpleRNN": layers.SimpleRNN(units, return_sequences=True, name="rnn"),
        "RNN(SimpleRNNCell)": layers.RNN(layers.SimpleRNNCell(units), return_sequences=True, name="rnn"),
        "RNN(MyRNNCell)": layers.RNN(MyRNNCell(units), return_sequences=True, name="rnn"),
        "LSTM": layers.LSTM(units, return_sequences=True, name="rnn"),
        "RNN(LSTMCell)": layers.RNN(layers.LSTMCell(units), return_sequences=True, name="rnn"),
        "RNN(MyLSTMCell)": layers.RNN(MyLSTMCell(units), return_sequences=True, name="rnn"),
    }
''')

HELLO_STEP = lesson('''
def make_train_step(model, optimizer):
    """One Adam step on the whole sequence (one batch), compiled: the exam's loop body."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # = nn.CrossEntropyLoss

    @tf.function(jit_compile=False)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return train_step
''')

HELLO_LOOP = lesson('''
x, y = data.x[None], data.y[None]  # [1, T, V], [1, T]: the whole sequence is one batch
results = {}
for name, model in models.items():
    train_step = make_train_step(model, keras.optimizers.Adam(LEARNING_RATE))
    start = time.perf_counter()
    losses = [float(train_step(x, y)) for epoch in range(EPOCHS)]
    probs = keras.ops.softmax(model(x), axis=-1).numpy()[0]  # [T, V] fitted next-character probabilities
    accuracy = float(np.mean(probs.argmax(axis=1) == data.y))
    results[name] = {"losses": losses, "probs": probs, "accuracy": accuracy}
    print(f"{name:<20} loss {losses[-1]:.5f}  accuracy {accuracy:.1%}  {time.perf_counter() - start:.1f}s")
''')

HELLO = notebook(
    "02_hello_rnn_lstm", "\"hello\": next-character RNN and LSTM, hand-written cells (exam part 2)",
    """
    `txt = list('hello') * 100`: every character predicts the next one ('l' is followed by 'l' or by
    'o', so a model needs its hidden state). The exam asks for six models, each followed by a `Dense`
    layer and trained with Adam (0.1) for 200 epochs: (1) `SimpleRNN`, (2) `RNN(SimpleRNNCell)`, (3) a
    hand-written RNN cell that gives **the same fitted values** as (2), (4) `LSTM`, (5)
    `RNN(LSTMCell)`, (6) a hand-written LSTM cell that reproduces (5). The hand-written cells are the
    lesson: they are written below as `keras.layers.Layer` subclasses. Keras cells have one bias
    (PyTorch's two), Keras' LSTM gates are ordered i, f, c, o (PyTorch's i, f, g, o). Library twin:
    `keras_impl/hello_cells.py`; `docs/hello.md`.
    """,
    budget("the six models for 200 epochs on 'hello' x 100: 144 s on 2 CPU cores (measured under load, shared "
           "cores); 100% accuracy for all six, each hand-written cell equal to its built-in twin (largest "
           "difference of the fitted probabilities 0.0).", "'hello' x 10 for 100 epochs, under a minute"),
    """
    import keras
    import tensorflow as tf
    from keras import ops

    from keras_impl import hello  # the data (one-hot inputs, next-character targets) and weight copies
    """,
    [
        code("""
        data = hello.make_data(list("hello") * (10 if QUICK else 100))
        print(f"vocabulary {data.vocab}, {len(data.y)} steps; first inputs -> targets:",
              [(data.vocab[i], data.vocab[t]) for i, t in zip(data.input_ids[:5], data.y[:5])])
        """),
        md("""
        ## The hand-written cells

        A cell computes one time step: `(inputs, states) -> (output, new states)`; `keras.layers.RNN`
        runs it over the sequence (PyTorch: a loop over `cell(x_t, h)`). Each cell computes in the op
        order of its Keras twin, so forward values *and gradients* agree bit for bit.
        """),
        code(HELLO_CELLS),
        md("## Model\n\nThe six models: the recurrent layer, then a `Dense` head that gives one logit per character."),
        code(HELLO_MODEL),
        code("""
        UNITS = 4
        keras.utils.set_random_seed(0)
        models = {name: build_model(layer, len(data.vocab)) for name, layer in recurrent_layers(UNITS).items()}
        # Same fitted values need the same start: each model copies its family's built-in weights.
        for name, source in (("RNN(SimpleRNNCell)", "SimpleRNN"), ("RNN(MyRNNCell)", "SimpleRNN"),
                             ("RNN(LSTMCell)", "LSTM"), ("RNN(MyLSTMCell)", "LSTM")):
            hello.copy_model_weights(models[source], models[name])
        models["RNN(MyLSTMCell)"].summary()
        """),
        md("## Training step\n\nSoftmax cross-entropy on the logits, one Adam step per epoch on the whole sequence."),
        code(HELLO_STEP),
        md("## The loop"),
        code("""
        EPOCHS = 100 if QUICK else 200
        LEARNING_RATE = 0.1
        """),
        code(HELLO_LOOP),
        md("""
        ## Evaluation

        Each hand-written cell against its built-in twin (the exam's "same fitted values"), the learning
        curves (a hand-written cell's curve lies on its twin's) and the fitted probabilities.
        """),
        code("""
        for mine, twin in (("RNN(MyRNNCell)", "RNN(SimpleRNNCell)"), ("RNN(MyLSTMCell)", "RNN(LSTMCell)"),
                           ("RNN(SimpleRNNCell)", "SimpleRNN"), ("RNN(LSTMCell)", "LSTM")):
            diff = np.max(np.abs(results[mine]["probs"] - results[twin]["probs"]))
            print(f"{mine:<20} vs {twin:<20} max |difference of fitted probabilities| = {diff:.1e}")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
        for ax, family in zip(axes, (list(results)[:3], list(results)[3:])):
            for name, style in zip(family, ("-", "--", ":")):
                ax.plot(results[name]["losses"], style, lw=2, label=name)
            ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log")
            ax.legend()
        plt.show()
        """),
        code("""
        probs = results["RNN(MyLSTMCell)"]["probs"][:5]
        print("input -> P(next character)   ", "  ".join(data.vocab))
        for i, row in zip(data.input_ids[:5], probs):
            print(f"  {data.vocab[i]}                       ", "  ".join(f"{p:.2f}" for p in row))
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 03 tabular RL
# ----------------------------------------------------------------------------------------------

TABULAR_VALUE_ITERATION = lesson('''
def q_value_iteration(mdp, gamma, iterations=50):
    """Q(s, a) <- sum_s' T(s, a, s') [R(s, a, s') + gamma max_a' Q(s', a')], from the model."""
    q = mdp.initial_q()  # 0 for possible actions, -inf for impossible ones
    possible = np.isfinite(q)
    history = []
    for _ in range(iterations):
        history.append(q.copy())
        best_next = q.max(axis=1)  # [S']: the value of acting greedily from s'
        target = np.sum(mdp.transitions * (mdp.rewards + gamma * best_next[None, None, :]), axis=2)  # [S, A]
        q = np.where(possible, target, -np.inf)
    return q, np.array(history)
''')

TABULAR_Q_LEARNING = lesson('''
def q_learning(mdp, gamma, iterations=10_000, alpha0=0.05, decay=0.005, seed=42):
    """Learn Q from sampled transitions; the exploration policy is uniformly random (off-policy)."""
    rng = np.random.default_rng(seed)
    q = mdp.initial_q()
    history = np.empty((iterations, mdp.n_states, mdp.n_actions))
    u_action, u_next = rng.random(iterations), rng.random(iterations)  # all the random numbers at once
    cdf = np.cumsum(mdp.transitions, axis=2)  # [S, A, S']
    state = 0
    for t in range(iterations):
        history[t] = q
        actions = mdp.possible_actions[state]
        action = actions[int(u_action[t] * len(actions))]  # a random possible action
        next_state = min(int(np.searchsorted(cdf[state, action], u_next[t] * cdf[state, action, -1], side="right")),
                         mdp.n_states - 1)  # sample s' ~ T(s, a, .)
        reward = mdp.rewards[state, action, next_state]
        alpha = alpha0 / (1 + t * decay)  # HOML's decaying learning rate
        q[state, action] = (1 - alpha) * q[state, action] + alpha * (reward + gamma * q[next_state].max())
        state = next_state
    return q, history
''')

TABULAR = notebook(
    "03_tabular_rl", "Markov chains, Q-value iteration and Q-learning (HOML ch. 18)",
    """
    HOML's toy problems (HOML: *Hands-On Machine Learning*, the book the course follows; chapter 18): a
    4-state Markov chain, then a 3-state, 3-action MDP solved two ways, both written below: Q-value
    iteration from the known model (gamma 0.90, 50 iterations: Q(s0) = **[18.92, 17.03, 13.62]**,
    policy **[0, 0, 1]**; with gamma 0.95 the best action in s1 becomes 2, through the fire) and
    Q-learning from sampled transitions. No neural network here, so no Keras. Library twin:
    `agents/tabular.py`; `docs/rl-foundations.md`.
    """,
    budget("6 s (measured under load, shared cores): Q(s0) = [18.92, 17.03, 13.62] and policy [0, 0, 1], and "
           "Q-learning finds the same policy.", "the same (there is nothing to shorten)"),
    """
    from agents import tabular  # HOML's Markov chain and MDP (the transition and reward tables)
    """,
    [
        md("## The Markov chain\n\nIts transition matrix, and a few walks from s0 (s3 is terminal):"),
        code("""
        print(tabular.MARKOV_CHAIN)
        rng = np.random.default_rng(42)
        for _ in range(5):
            print("States:", *tabular.sample_markov_chain(tabular.MARKOV_CHAIN, 0, 50, rng))
        """),
        md("The MDP: `transitions[s, a, s']`, `rewards[s, a, s']` and the actions possible in each state."),
        code("""
        mdp = tabular.HOML_MDP
        print("possible actions:", mdp.possible_actions)
        print("rewards from s1 with action 2 (through the fire):", mdp.rewards[1, 2])
        """),
        md("## Q-value iteration\n\nThe Bellman optimality update, applied to every (state, action) at once:"),
        code(TABULAR_VALUE_ITERATION),
        code("""
        np.set_printoptions(precision=2, suppress=True)
        for gamma in (0.90, 0.95):
            q, _ = q_value_iteration(mdp, gamma)
            print(f"gamma {gamma}: Q =\\n{q}\\ngreedy policy {np.argmax(q, axis=1).tolist()}")
        q_vi, history_vi = q_value_iteration(mdp, 0.90)
        """),
        md("## Q-learning\n\nThe same values from samples only: the agent never reads `transitions` or `rewards` as tables."),
        code(TABULAR_Q_LEARNING),
        code("""
        q_ql, history_ql = q_learning(mdp, 0.90)
        print(f"Q-learning: Q =\\n{q_ql}\\ngreedy policy {np.argmax(q_ql, axis=1).tolist()} "
              f"(Q-value iteration: {np.argmax(q_vi, axis=1).tolist()})")
        """),
        md("## Evaluation\n\nHOML's figure: Q(s0, a0) against iterations, converging to the same value both ways."),
        code("""
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, title, history in zip(axes, ("Q-value iteration", "Q-learning"), (history_vi, history_ql)):
            ax.axhline(q_vi[0, 0], color="k", ls="--")
            ax.plot(history[:, 0, 0], "b-", lw=2)
            ax.set(title=title, xlabel="iterations")
        axes[0].set_ylabel("Q(s0, a0)")
        plt.show()
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 04 policy gradients
# ----------------------------------------------------------------------------------------------

PG_RETURNS = lesson('''
def discount_rewards(rewards, gamma):
    """Each step's return: r_t + gamma r_(t+1) + gamma^2 r_(t+2) + ..., summed from the end."""
    discounted = np.array(rewards, dtype=float)
    for t in range(len(rewards) - 2, -1, -1):
        discounted[t] += discounted[t + 1] * gamma
    return discounted


def discount_and_normalize_rewards(all_rewards, gamma):
    """Discounted returns of several episodes, normalised over all their steps together."""
    all_discounted = [discount_rewards(rewards, gamma) for rewards in all_rewards]
    flat = np.concatenate(all_discounted)
    return [(discounted - flat.mean()) / flat.std() for discounted in all_discounted]
''')

PG_MODEL = lesson('''
def build_policy(obs_dim, n_actions, hidden_units=32):
    """[B, obs_dim] -> [B, n_actions] logits; the policy is their softmax."""
    return keras.Sequential([
        keras.Input((obs_dim,)),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(n_actions),  # logits
    ], name="softmax_policy")
''')

PG_STEP = lesson('''
@tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
def probabilities(obs):
    return tf.nn.softmax(policy(obs, training=False))  # [B, A], one compiled call for every live episode


@tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32),
                              tf.TensorSpec([None], tf.float32)])
def train_step(obs, actions, weights):
    """REINFORCE: raise log pi(a_t | s_t) in proportion to the normalised return that followed."""
    with tf.GradientTape() as tape:
        log_probs = tf.nn.log_softmax(policy(obs, training=True))  # [T, A]
        chosen = tf.gather(log_probs, actions, batch_dims=1)  # [T]: log pi(a_t | s_t) (torch: Categorical.log_prob)
        loss = -tf.reduce_mean(chosen * weights)
    grads = tape.gradient(loss, policy.trainable_variables)
    optimizer.apply_gradients(zip(grads, policy.trainable_variables))
    return loss
''')

PG_LOOP = lesson('''
rng = np.random.default_rng(SEED)  # samples the actions
envs = [make_env("CartPole-v1", seed=SEED + i) for i in range(EPISODES_PER_UPDATE)]
history = []
start = time.perf_counter()
for iteration in range(ITERATIONS):
    seeds = [SEED + i for i in range(len(envs))] if iteration == 0 else None  # Gymnasium: seed the first reset only
    observations, actions, rewards = pg.play_episodes(envs, probabilities, rng, seeds=seeds)  # all in lockstep
    weights = discount_and_normalize_rewards(rewards, GAMMA)
    train_step(np.concatenate(observations), np.concatenate(actions), np.concatenate(weights).astype("float32"))
    history.append(float(np.mean([r.sum() for r in rewards])))
    if iteration % 10 == 0 or iteration == ITERATIONS - 1:
        print(f"iteration {iteration:3d}  mean training return {history[-1]:6.1f}  {time.perf_counter() - start:5.0f}s")
    if len(history) >= 5 and np.mean(history[-5:]) >= 490:  # the sampled policy balances: stop
        break
for env in envs:
    env.close()
''')

POLICY_GRADIENTS = notebook(
    "04_policy_gradients", "CartPole policies and REINFORCE policy gradients (HOML ch. 18)",
    """
    Balance the pole. First HOML's hard-coded policy (push towards the side the pole leans to: mean
    about **42** steps over 500 episodes). Then REINFORCE, written out below: play whole episodes with
    a softmax policy network, turn each episode's rewards into discounted returns normalised over the
    batch, and take a gradient step that makes the actions of better-than-average episodes more
    likely. HOML reaches a mean of about 190 at the old 200-step cap; Gymnasium's CartPole-v1 allows 500.
    Library twin: `agents/policy_gradient.py`; `docs/rl-foundations.md`.
    """,
    budget("up to 150 iterations of 16 episodes, stopping when the training mean passes 490: 68 s on 2 CPU "
           "cores (measured under load, shared cores; it stopped after about 25 iterations); greedy mean "
           "499.6 over 100 held-out episodes (min 455).", "8 iterations, under a minute"),
    """
    import keras
    import tensorflow as tf

    from agents import evaluation, policies, render
    from agents import policy_gradient as pg  # pg.play_episodes: episodes in lockstep (a part, no training)
    from agents.envs import make_env
    """,
    [
        md("## The hard-coded policy\n\nMeasured with HOML's 200-step cap, and one episode of it:"),
        code("""
        stats = policies.basic_policy_stats(episodes=100 if QUICK else 500, seed=42, max_steps=200)
        print(stats.summary())
        frames = render.record_episode(policies.basic_policy, "CartPole-v1", seed=42, max_steps=100 if QUICK else 500)
        render.show(frames)
        """),
        md("""
        ## Returns

        `discount_rewards([10, 0, -50], 0.8)` is `[-22, -40, -50]` (HOML's example): the reward of the
        last step weighs on the steps before it. Normalising over all episodes of a batch makes the
        better-than-average actions positive and the others negative.
        """),
        code(PG_RETURNS),
        code("""
        print(discount_rewards([10, 0, -50], 0.8))
        print(discount_and_normalize_rewards([[10, 0, -50], [10, 20]], 0.8))
        """),
        md("## Model\n\nTwo hidden layers of 32 ReLU units and one logit per action."),
        code(PG_MODEL),
        code("""
        SEED = 1
        keras.utils.set_random_seed(SEED)
        policy = build_policy(4, 2)
        optimizer = keras.optimizers.Adam(0.01)
        policy.summary()
        """),
        md("## Training step"),
        code(PG_STEP),
        md("## The loop\n\nEach iteration plays 16 episodes in lockstep (one policy call per step for all of them) and takes one gradient step."),
        code("""
        ITERATIONS = 8 if QUICK else 150
        EPISODES_PER_UPDATE = 16
        GAMMA = 0.99
        """),
        code(PG_LOOP),
        md("""
        ## Evaluation

        The greedy policy (the most probable action) on 100 episodes that training never saw: the report
        seeds `REPORT_SEED + i`. Then the learning curve and the trained policy playing.
        """),
        code("""
        def greedy(obs_batch):
            return np.argmax(probabilities(np.asarray(obs_batch, dtype="float32")).numpy(), axis=1)

        result = evaluation.evaluate(greedy, "CartPole-v1", episodes=20 if QUICK else 100, seed=evaluation.REPORT_SEED)
        print("greedy policy on held-out episodes:", result.summary())
        plt.figure(figsize=(5, 3.5))
        plt.plot(history, label="mean training return")
        plt.axhline(475, color="k", ls="--", lw=1, label="CartPole-v1 solved (475)")
        plt.xlabel("iteration"); plt.ylabel("return"); plt.legend()
        plt.show()
        """),
        code("""
        frames = render.record_episode(greedy, "CartPole-v1", seed=evaluation.REPORT_SEED, max_steps=100 if QUICK else 500)
        render.show(frames)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 05 DQN on CartPole
# ----------------------------------------------------------------------------------------------

DQN_MODEL = lesson('''
def build_q_network(obs_dim, n_actions, hidden=(256, 256)):
    """[B, obs_dim] -> [B, n_actions]: the estimated return of each action."""
    layers = [keras.Input((obs_dim,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers += [keras.layers.Dense(n_actions)]  # one Q-value per action, no activation
    return keras.Sequential(layers)
''')

# The DQN update, shared by notebooks 05 (Double DQN, n-step) and 06 (DQN, one step): DOUBLE picks the variant.
DQN_STEP = lesson('''
huber = keras.losses.Huber(delta=1.0)  # = PyTorch's SmoothL1Loss


@tf.function
def train_step(obs, actions, rewards, next_obs, terminated, horizons):
    """One gradient step on a replayed batch. `rewards` sums `horizons` rewards (n-step returns)."""
    q_next_target = target_net(next_obs, training=False)  # [B, A]
    if DOUBLE:  # Double DQN: the online net picks the next action, the target net values it
        best = tf.argmax(q_net(next_obs, training=False), axis=1, output_type=tf.int32)  # [B]
        next_q = tf.gather(q_next_target, best, axis=1, batch_dims=1)  # [B]
    else:  # DQN: the target net's best value
        next_q = tf.reduce_max(q_next_target, axis=1)  # [B]
    # Bootstrap only when the episode did not terminate: a time limit (truncated) still has a future.
    discount = GAMMA ** tf.cast(horizons, tf.float32)  # [B]
    targets = tf.cast(rewards, tf.float32) + discount * (1.0 - tf.cast(terminated, tf.float32)) * next_q  # [B]
    with tf.GradientTape() as tape:
        q_all = q_net(obs, training=True)  # [B, A]
        q_taken = tf.gather(q_all, tf.cast(actions, tf.int32), axis=1, batch_dims=1)  # [B]: torch's q.gather(1, a)
        loss = huber(tf.stop_gradient(targets), q_taken)
    grads = tape.gradient(loss, q_net.trainable_variables)
    grads, _ = tf.clip_by_global_norm(grads, MAX_GRAD_NORM)
    optimizer.apply_gradients(zip(grads, q_net.trainable_variables))
    return loss
''')

DQN_LOOP = lesson('''
env = make_env("CartPole-v1", seed=SEED)
replay = ReplayBuffer(BUFFER_SIZE, obs_shape=(4,), seed=SEED)
window = NStepWindow(replay, N_STEP, GAMMA)  # turns each step into an N_STEP-step transition in `replay`
rng = np.random.default_rng(SEED)  # exploration
obs, _ = env.reset(seed=SEED)
episode_return, returns, evals = 0.0, [], []
start = time.perf_counter()
for step in range(1, TOTAL_STEPS + 1):
    epsilon = max(EPSILON_END, 1.0 - (1.0 - EPSILON_END) * step / (EXPLORATION_FRACTION * TOTAL_STEPS))
    if rng.random() < epsilon:
        action = int(rng.integers(2))  # explore
    else:
        action = int(np.argmax(q_values(obs[None].astype("float32"))[0]))  # exploit
    next_obs, reward, terminated, truncated, _ = env.step(action)
    window.add(obs, action, reward, next_obs, terminated, truncated)
    obs, episode_return = next_obs, episode_return + reward
    if terminated or truncated:
        returns.append(episode_return)
        obs, episode_return = env.reset()[0], 0.0
    if step >= LEARNING_STARTS and step % TRAIN_FREQUENCY == 0:
        for _ in range(GRADIENT_STEPS):
            batch = replay.sample(BATCH_SIZE)
            train_step(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.terminated, batch.horizons)
    if step % TARGET_UPDATE_INTERVAL == 0:
        target_net.set_weights(q_net.get_weights())  # the hard target copy
    if step % EVAL_INTERVAL == 0:  # selection: decides when to stop, on the selection seeds
        result = evaluation.evaluate(greedy, "CartPole-v1", episodes=10, seed=evaluation.SELECT_SEED)
        if result.mean >= 475:
            result = evaluation.evaluate(greedy, "CartPole-v1", episodes=100, seed=evaluation.SELECT_SEED)
        evals.append((step, result.mean))
        print(f"step {step:6d}  episodes {len(returns):4d}  epsilon {epsilon:.2f}  "
              f"greedy mean {result.mean:6.1f} over {len(result.returns)}  {time.perf_counter() - start:4.0f}s")
        if len(result.returns) == 100 and result.mean >= 475:
            break
env.close()
''')

DQN = notebook(
    "05_dqn_cartpole", "Deep Q-Networks on CartPole: Double DQN written out (HOML, Keras and PyTorch tutorials)",
    """
    A Q-network estimates the return of each action. It learns from a replay buffer of past
    transitions, towards the TD target `r + gamma * Q_target(s', a*)`, and bootstraps **only when the
    episode did not terminate** (a time-limit truncation still has a future). Double DQN picks `a*`
    with the online network and values it with the target network. This notebook builds the Q-network
    with `keras.Sequential`, writes the update with `tf.GradientTape` and the CleanRL-style loop
    (epsilon-greedy acting, 3-step returns, 128 updates every 256 steps, a target copy every 10 steps:
    SB3's tuned CartPole settings), stops when 100 greedy episodes average 475, and reports on 100 other
    episodes. HOML's agent balances after about 600 episodes; the PyTorch tutorial's loop needs about
    93,000 env steps. Library twin: `agents/dqn.py`, `agents/dqn_train.py`; `docs/dqn.md`.
    """,
    budget("at most 50,000 env steps, stopping at a greedy 100-episode mean of 475: 110 s on 2 CPU cores "
           "(measured under load, shared cores); it stopped at 16,000 env steps, report mean 500.0 over 100 "
           "held-out episodes.", "3,000 env steps, under a minute"),
    """
    import keras
    import tensorflow as tf

    from agents import evaluation, render
    from agents.envs import make_env
    from agents.replay import NStepWindow, ReplayBuffer  # the parts: a ring buffer and n-step transitions
    """,
    [
        md("## Model\n\nA multilayer perceptron: 4 observations in, one Q-value per action (left, right) out. The target network is a copy."),
        code(DQN_MODEL),
        code("""
        SEED = 0
        keras.utils.set_random_seed(SEED)
        q_net = build_q_network(4, 2)
        target_net = build_q_network(4, 2)
        target_net.set_weights(q_net.get_weights())
        # Acting: one compiled call (not model.predict), traced once for any batch size.
        q_values = tf.function(lambda obs: q_net(obs, training=False),
                               input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        greedy = lambda obs_batch: np.argmax(q_values(np.asarray(obs_batch, "float32")).numpy(), axis=1)
        q_net.summary()
        """),
        md("## Training step\n\nThe TD target with terminated transitions not bootstrapped, the Huber loss on the taken actions, gradient clipping."),
        code("""
        GAMMA = 0.99
        DOUBLE = True
        MAX_GRAD_NORM = 10.0
        optimizer = keras.optimizers.Adam(2.3e-3)
        """),
        code(DQN_STEP),
        md("## The loop"),
        code("""
        TOTAL_STEPS = 3_000 if QUICK else 50_000
        LEARNING_STARTS = 500 if QUICK else 1_000
        BUFFER_SIZE, BATCH_SIZE, N_STEP = 100_000, 64, 3
        TRAIN_FREQUENCY, GRADIENT_STEPS = 256, 128  # 128 updates every 256 env steps
        TARGET_UPDATE_INTERVAL = 10
        EXPLORATION_FRACTION, EPSILON_END = 0.16, 0.04  # epsilon 1 -> 0.04 over the first 16% of the steps
        EVAL_INTERVAL = 1_000 if QUICK else 2_000
        """),
        code(DQN_LOOP),
        md("""
        ## Evaluation

        The report: 100 greedy episodes on the report seeds, which neither training nor the stopping rule
        ever played. Then the return of every training episode, with the greedy evaluations.
        """),
        code("""
        report = evaluation.evaluate(greedy, "CartPole-v1", episodes=20 if QUICK else 100, seed=evaluation.REPORT_SEED)
        print("report:", report.summary())
        plt.figure(figsize=(6, 3.5))
        plt.plot(returns, lw=0.8, label="training episode return")
        if evals:
            steps, means = zip(*evals)
            episode_at = [np.searchsorted(np.cumsum(returns), s) for s in steps]  # CartPole: 1 reward per step
            plt.plot(episode_at, means, "o-", label="greedy evaluation (selection seeds)")
        plt.axhline(475, color="k", ls="--", lw=1, label="solved (475)")
        plt.xlabel("episode"); plt.ylabel("return"); plt.legend()
        plt.show()
        """),
        code("""
        frames = render.record_episode(greedy, "CartPole-v1", seed=evaluation.REPORT_SEED, max_steps=100 if QUICK else 500)
        render.show(frames)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 06 FrozenLake
# ----------------------------------------------------------------------------------------------

FROZENLAKE_MODEL = lesson('''
def build_q_network(n_states, n_actions, embedding_dim=16, hidden=32):
    """[B] state numbers -> [B, n_actions]. The first layer is an Embedding: states are categories,
    not quantities (state 5 is not "more" than state 4), so each state learns its own vector."""
    return keras.Sequential([
        keras.Input((), dtype="int32"),
        keras.layers.Embedding(n_states, embedding_dim),  # [B, E]
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(n_actions),  # one Q-value per action
    ])
''')

FROZENLAKE_LOOP = lesson('''
env = make_env("FrozenLake-v1", seed=SEED, **ENV_KWARGS)
replay = ReplayBuffer(50_000, obs_shape=(), obs_dtype="int32", seed=SEED + 1)  # the exam's 50,000
rng = np.random.default_rng(SEED)  # exploration
epsilon, scores, playtimes, experiences, cleared_at = 1.0, [], [], 0, None
for episode in range(1, EPISODES + 1):
    state, _ = env.reset(seed=SEED if episode == 1 else None)  # Gymnasium: seed the first reset only
    score, playtime = 0.0, 0
    while True:
        if rng.random() < epsilon:
            action = int(rng.integers(4))
        else:
            action = int(np.argmax(q_values(np.array([state], "int32"))[0]))
        next_state, reward, terminated, truncated, _ = env.step(action)
        replay.add(state, action, reward, next_state, terminated, truncated)  # each sample keeps its own flags
        experiences, score, playtime = experiences + 1, score + reward, playtime + 1
        if len(replay) >= LEARNING_STARTS:
            batch = replay.sample(BATCH_SIZE)
            train_step(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.terminated, batch.horizons)
        if experiences % TARGET_UPDATE_INTERVAL == 0:
            target_net.set_weights(q_net.get_weights())
        state = next_state
        if terminated or truncated:
            break
    scores.append(score)
    playtimes.append(playtime)
    epsilon = max(EPSILON_END, epsilon * EPSILON_DECAY)  # decays once per episode, as the course's
    if episode % LOG_EVERY == 0:  # the course's log line (means of the last 100 episodes)
        print(f"episode:{episode} experiences(t):{experiences} score(episode):{np.mean(scores[-100:]):.2f} "
              f"playtime(episode):{np.mean(playtimes[-100:]):.2f} epsilon(episode):{epsilon:.2f}")
    if len(scores) >= 100 and np.mean(scores[-100:]) >= 0.9:  # the course's clear condition
        cleared_at = episode
        print(f"---game cleared in {episode} episodes!---")
        break
env.close()
''')

FROZENLAKE = notebook(
    "06_frozenlake", "FrozenLake 4x4 with a DQN whose first layer is an Embedding (exam part 3)",
    """
    `FrozenLake-v1`, 4x4, not slippery: walk from S to G without falling into a hole (reward 1 at the
    goal, else 0). The exam's agent keeps a replay buffer of 50,000 transitions and a Q-network whose
    first layer is an `Embedding` (states are categories), prints a log line every 500 episodes and
    is done when the mean score of the last 100 episodes reaches 0.9; the course needed **2,832
    episodes**. This notebook writes the Q-network with `keras.Sequential`, the update with
    `tf.GradientTape` (each replayed sample bootstraps on its *own* `terminated` flag, which the course's
    solution got wrong) and the course's loop, then measures the greedy policy on held-out episodes.
    Library twin: `agents/frozenlake.py`; `docs/dqn.md`, `docs/exam.md`.
    """,
    budget("until cleared (at most 3,000 episodes): 24 s on 2 CPU cores (measured under load, shared cores); "
           "cleared after 122 episodes (the course: 2,832), greedy success 1.000 over 1,000 held-out episodes.",
           "the same lake, at most 300 episodes, under a minute"),
    """
    import keras
    import tensorflow as tf

    from agents import evaluation, render
    from agents.envs import make_env
    from agents.replay import ReplayBuffer  # the part: a ring buffer (the course used five deques)
    """,
    [
        md("## The lake\n\nS start, F frozen, H hole, G goal. The state is the cell's number, 0 to 15."),
        code("""
        ENV_KWARGS = {"map_name": "4x4", "is_slippery": False}
        env = make_env("FrozenLake-v1", render=True, **ENV_KWARGS)
        env.reset(seed=0)
        plt.figure(figsize=(3, 3))
        plt.imshow(env.render())
        plt.axis("off")
        plt.show()
        env.close()
        """),
        md("## Model"),
        code(FROZENLAKE_MODEL),
        code("""
        SEED = 0
        keras.utils.set_random_seed(SEED)
        q_net = build_q_network(16, 4)
        target_net = build_q_network(16, 4)
        target_net.set_weights(q_net.get_weights())
        q_values = tf.function(lambda states: q_net(states, training=False),
                               input_signature=[tf.TensorSpec([None], tf.int32)])  # one trace for any batch size
        greedy = lambda states: np.argmax(q_values(np.asarray(states, "int32")).numpy(), axis=1)
        q_net.summary()
        """),
        md("## Training step\n\nThe DQN update (the same code as notebook 05, with `DOUBLE = False` and one-step returns)."),
        code("""
        GAMMA = 0.95
        DOUBLE = False
        MAX_GRAD_NORM = 10.0
        optimizer = keras.optimizers.Adam(3e-3)
        """),
        code(DQN_STEP),
        md("## The loop\n\nThe course's cycle: act, step the environment, save the experience, learn; epsilon decays after each episode."),
        code("""
        EPISODES = 300 if QUICK else 3_000
        LEARNING_STARTS, BATCH_SIZE = 64, 64
        TARGET_UPDATE_INTERVAL = 50  # env steps between target copies
        EPSILON_DECAY, EPSILON_END = 0.95, 0.01  # the course: about 0.999 per episode
        LOG_EVERY = 100 if QUICK else 500
        """),
        code(FROZENLAKE_LOOP),
        md("""
        ## Evaluation

        The greedy policy's success rate on held-out episodes (the report seeds), the score curve and the
        trained agent walking.
        """),
        code("""
        print("cleared after", cleared_at, "episodes (the course: 2,832)")
        report = evaluation.evaluate(greedy, "FrozenLake-v1", episodes=100 if QUICK else 1_000,
                                     seed=evaluation.REPORT_SEED, env_kwargs=ENV_KWARGS)
        print("greedy success rate on held-out episodes:", report.summary())
        plt.figure(figsize=(6, 3.5))
        plt.plot(scores, ".", ms=3, label="score per episode")
        plt.plot(np.convolve(scores, np.ones(100) / 100, mode="valid"), label="mean of the last 100")
        plt.axhline(0.9, color="k", ls="--", lw=1, label="clear condition")
        plt.xlabel("episode"); plt.ylabel("score"); plt.legend()
        plt.show()
        """),
        code("""
        frames = render.record_episode(greedy, "FrozenLake-v1", seed=evaluation.REPORT_SEED, max_steps=100,
                                       env_kwargs=ENV_KWARGS)
        render.show(frames, interval=300)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 07 TF-Agents Breakout
# ----------------------------------------------------------------------------------------------

TFA_NETWORK = lesson('''
# Nature DQN's convolutions and Dense 512 with a dueling head, shifting the frames at random by up to
# 4 pixels when training (DrQ); TF-Agents' QNetwork has no dueling head, agents.tfa.networks adds one.
q_net = AtariQNetwork(tf_env.observation_spec(), tf_env.action_spec(), BREAKOUT_CONV_LAYERS,
                      fc_units=cfg.fc_layers[-1], dueling=cfg.dueling, augment_pad=cfg.augment_pad, seed=cfg.seed)
''')

TFA_AGENT = lesson('''
train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
epsilon_fn = tf.keras.optimizers.schedules.PolynomialDecay(  # 1.0 -> 0.01, linear, over the first 5,000 updates
    initial_learning_rate=cfg.epsilon_start, decay_steps=cfg.epsilon_decay_updates, end_learning_rate=cfg.epsilon_end)
agent = dqn_agent.DdqnAgent(  # Double DQN: DqnAgent with one method overridden (_compute_next_q_values)
    tf_env.time_step_spec(), tf_env.action_spec(), q_network=q_net,
    optimizer=tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate, epsilon=cfg.adam_epsilon),
    target_update_period=cfg.target_update_period,  # 1: the target is the online net of the previous update
    td_errors_loss_fn=common.element_wise_huber_loss, gamma=cfg.gamma,
    n_step_update=cfg.n_step_update,  # 10-step returns
    train_step_counter=train_step, epsilon_greedy=lambda: epsilon_fn(train_step))
agent.initialize()
''')

TFA_REPLAY = lesson('''
# A TFUniformReplayBuffer that keeps each step's newest 84x84 frame (the 4-frame stacks are rebuilt when
# sampling: 0.7 GB for 100,000 steps instead of 2.8 GB) and the observer that adds to it.
replay_buffer, add_to_replay = make_replay(agent.collect_data_spec, tf_env.batch_size, REPLAY_CAPACITY, FRAME_STACK)
average_return = tf_metrics.AverageReturnMetric(buffer_size=10)  # the last 10 training games
collect_driver = dynamic_step_driver.DynamicStepDriver(  # plays the epsilon-greedy collect policy
    tf_env, agent.collect_policy, observers=[add_to_replay, average_return], num_steps=cfg.collect_steps)
random_driver = dynamic_step_driver.DynamicStepDriver(  # fills the buffer before training
    tf_env, random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec()),
    observers=[add_to_replay], num_steps=INITIAL_COLLECT_STEPS)
''')

TFA_STEP = lesson('''
# Windows of n + 1 consecutive steps (and the 3 frames before them, for the first stack), 32 at a time.
dataset = replay_buffer.as_dataset(sample_batch_size=cfg.batch_size, num_steps=cfg.n_step_update + FRAME_STACK)
iterator = iter(dataset)


def train(experience):
    """One update: each window's n-step transition, cut where its episode ends, then agent.train."""
    transition, weights = n_step_transition(experience, cfg.gamma, FRAME_STACK)
    return agent.train(transition, weights=weights)


train = common.function(train)  # compiled, as every TF-Agents training loop does
collect = common.function(collect_driver.run)
''')

TFA_LOOP = lesson('''
common.function(random_driver.run)()  # 1,600 random steps first (QUICK: 200)
greedy = greedy_policy(agent.policy)  # the agent's greedy policy as a batched NumPy policy (for evaluate)
time_step, policy_state = None, None
curve, evals = [], []
start = time.perf_counter()
for iteration in range(1, AGENT_STEPS + 1):
    time_step, policy_state = collect(time_step, policy_state)  # one agent step (4 frames)
    experience, _ = next(iterator)
    loss = train(experience).loss  # one update per agent step
    if iteration % LOG_INTERVAL == 0:
        curve.append((iteration, float(average_return.result())))
        print(f"agent step {iteration:6d}  epsilon {float(epsilon_fn(train_step)):.3f}  loss {float(loss):.4f}  "
              f"last 10 training games {curve[-1][1]:5.1f}  {time.perf_counter() - start:5.0f}s")
    if iteration % EVAL_INTERVAL == 0:  # selection games: how training goes, never the reported score
        result = evaluation.evaluate(greedy, "breakout", episodes=5,
                                     seed=evaluation.SELECT_SEED, env_kwargs=PROTOCOL)
        evals.append((iteration, result.mean))
        print(f"    greedy, 5 selection games: {result.summary()}")
''')

TFA_SAVE = lesson('''
policy_dir = RUN_DIR / "policy"
policy_saver.PolicySaver(agent.policy, batch_size=None, train_step=train_step).save(str(policy_dir))
saved_policy = tf.saved_model.load(str(policy_dir))  # no TF-Agents needed to play it


def saved_greedy(obs_batch):
    """The saved greedy policy as a batched NumPy policy [N, 84, 84, 4] -> [N] (what evaluate plays)."""
    obs = tf.convert_to_tensor(np.asarray(obs_batch), tf.uint8)
    n = tf.shape(obs)[0]
    step = ts.TimeStep(step_type=tf.fill([n], ts.StepType.MID), reward=tf.zeros([n]), discount=tf.ones([n]),
                       observation=obs)
    return saved_policy.action(step).action.numpy()
''')

TFA = notebook(
    "07_tfa_breakout", "TF-Agents DQN on Atari Breakout, part by part (HOML ch. 18)",
    """
    HOML's TF-Agents pipeline, built here one part per cell as in the TF-Agents DQN tutorial: the
    preprocessed Breakout environment, a conv Q-network, a `DdqnAgent`, a `TFUniformReplayBuffer`,
    drivers that collect, the training loop written out, then a `PolicySaver` export evaluated on
    games training never saw. The settings are the data-efficient preset (DrQ(epsilon)'s recipe with
    TF-Agents' parts, `agents/configs.py`): 10-step Double DQN, a dueling head, random shifts, Adam
    1e-4, one update per agent step, for the Atari 100k budget of 100,000 agent steps. Games are played
    with sticky actions (`protocol="sticky"`, `docs/atari.md`). Random play scores about 1.7, DrQ
    about 16.1, HOML reports 7.8 after about 200k agent steps. Library twin: `agents/tfa/`;
    `docs/tfa.md`.
    """,
    budget("100,000 agent steps (the Atari 100k budget) take about 50 minutes on 2 idle CPU cores (the same "
           "pipeline as `kcourse run tfa-dqn --env breakout --preset data-efficient`, docs/tfa.md). That is over "
           "20 minutes, so `QUICK` off runs a short budget of 10,000 agent steps (set `AGENT_STEPS = 100_000` "
           "for the full one): 14 minutes on 2 CPU cores (measured under load, shared cores), after which the "
           "saved greedy policy scored 3.2 +/- 4.9 over 10 held-out games, against 1.2 for random play on the "
           "same games (random's usual mean: 1.7). Ten games are too few to call that margin certain.",
           "a smoke run of 200 agent steps, about a minute"),
    """
    import functools

    import tensorflow as tf  # tf.keras is Keras 2 here (TF_USE_LEGACY_KERAS=1 above), as TF-Agents needs
    from absl import logging as absl_logging
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.environments import tf_py_environment
    from tf_agents.metrics import tf_metrics
    from tf_agents.policies import policy_saver, random_tf_policy
    from tf_agents.trajectories import time_step as ts
    from tf_agents.utils import common

    from agents import evaluation, render
    from agents.atari import FRAME_STACK, make_atari_env
    from agents.configs import BREAKOUT_CONV_LAYERS, TfaDqnConfig
    from agents.tfa.components import greedy_policy, make_replay, n_step_transition  # parts, no training
    from agents.tfa.envs import make_py_env
    from agents.tfa.networks import AtariQNetwork
    from keras_impl import process
    from keras_impl.config import resolve

    process.install_noise_filters()  # TF-Agents 0.19's own deprecation warnings on TF 2.21
    tf.get_logger().setLevel("ERROR")
    tf.autograph.set_verbosity(0, alsologtostdout=False)
    absl_logging.set_verbosity(absl_logging.ERROR)
    """,
    [
        md("""
        ## The environment

        `ALE/Breakout-v5` with sticky actions (the previous action repeats with probability 0.25), 4
        emulator frames per agent step, grey 84x84 frames, FIRE after a lost life, the last 4 frames
        stacked. What the agent sees:
        """),
        code("""
        PROTOCOL = {"protocol": "sticky"}
        env = make_atari_env("breakout", seed=0, **PROTOCOL)
        obs, _ = env.reset(seed=0)
        for _ in range(20):
            obs, *_ = env.step(env.action_space.sample())
        print("observation", obs.shape, obs.dtype, "actions", env.unwrapped.get_action_meanings())
        env.close()
        fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
        for i, ax in enumerate(axes):
            ax.imshow(obs[:, :, i], cmap="gray")
            ax.set_title(f"frame t-{3 - i}")
            ax.axis("off")
        plt.show()
        """),
        md("TF-Agents plays environments through its `PyEnvironment` API; `make_py_env` adapts the Gymnasium env, `TFPyEnvironment` makes its steps tensors."),
        code("""
        cfg = resolve(TfaDqnConfig, {"env": "breakout", "preset": "data-efficient", "seed": 0})  # the preset's values
        tf_env = tf_py_environment.TFPyEnvironment(make_py_env("breakout", seed=cfg.seed, **PROTOCOL))
        print("observation spec", tf_env.observation_spec().shape, tf_env.observation_spec().dtype.name,
              "actions 0 ..", int(tf_env.action_spec().maximum))
        AGENT_STEPS = 200 if QUICK else 10_000  # the full budget: 100_000 (about 50 minutes on 2 idle cores)
        INITIAL_COLLECT_STEPS = 200 if QUICK else cfg.initial_collect_steps
        REPLAY_CAPACITY = 2_000 if QUICK else cfg.replay_capacity
        LOG_INTERVAL, EVAL_INTERVAL = (100, 10**9) if QUICK else (1_000, 5_000)
        """),
        md("## The Q-network"),
        code(TFA_NETWORK),
        code("""
        q_net.create_variables()  # TF-Agents networks build their weights on request
        q_net.summary()
        """),
        md("## The agent\n\n`DdqnAgent` holds the loss, the target network, the optimizer and the collect (epsilon-greedy) and greedy policies."),
        code(TFA_AGENT),
        md("## Replay buffer and drivers"),
        code(TFA_REPLAY),
        md("## The training step"),
        code(TFA_STEP),
        md("## The loop\n\nCollect one agent step, take one update; log the training games, and now and then play 5 greedy selection games."),
        code(TFA_LOOP),
        md("""
        ## Export and evaluation

        `PolicySaver` writes the greedy policy as a SavedModel. The score reported is that saved policy on
        games with the report seeds (never played in training or selection), next to random play on the
        same seeds.
        """),
        code(TFA_SAVE),
        code("""
        games, cap = (1, 300) if QUICK else (10, None)
        report = evaluation.evaluate(saved_greedy, "breakout", episodes=games, seed=evaluation.REPORT_SEED,
                                     env_kwargs=PROTOCOL, max_steps=cap)
        rand = evaluation.evaluate(evaluation.random_policy(env.action_space, seed=0), "breakout", episodes=games,
                                   seed=evaluation.REPORT_SEED, env_kwargs=PROTOCOL, max_steps=cap)
        print(f"saved greedy policy after {AGENT_STEPS:,} agent steps: {report.summary()}")
        print(f"random play on the same games: {rand.summary()}")
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if curve:
            ax.plot(*zip(*curve), label="last 10 training games")
        if evals:
            ax.plot(*zip(*evals), "o-", label="greedy, 5 selection games")
        ax.axhline(rand.mean, color="gray", ls=":", label="random play")
        ax.set(xlabel="agent step", ylabel="score", title="Breakout, data-efficient preset")
        ax.legend()
        plt.show()
        """),
        code("""
        frames = render.record_episode(saved_greedy, "breakout", seed=evaluation.REPORT_SEED, env_kwargs=PROTOCOL,
                                       max_steps=150 if QUICK else 2_000)
        render.show(frames[::2])
        """),
    ],
    expects=(IMAGE, ANIMATION),
    legacy_keras=True,
)

# ----------------------------------------------------------------------------------------------
# 08 MovieLens RL
# ----------------------------------------------------------------------------------------------

MOVIELENS_RL_MODEL = lesson('''
def build_q_network(obs_dim, n_candidates, hidden=(256, 256)):
    """[B, features + candidates] -> [B, candidates]: the value of recommending each candidate next."""
    layers = [keras.Input((obs_dim,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers += [keras.layers.Dense(n_candidates)]
    return keras.Sequential(layers)
''')

MOVIELENS_RL_STEP = lesson('''
huber = keras.losses.Huber(delta=1.0)


@tf.function
def train_step(obs, actions, rewards, next_obs, terminated):
    """A DQN step whose target ignores the films already recommended (the action mask)."""
    n = N_CANDIDATES
    legal_next = 1.0 - tf.cast(next_obs[:, -n:], tf.float32)  # the observation ends with the recommended-so-far flags
    q_next = tf.where(legal_next > 0, target_net(next_obs, training=False), -np.inf)  # [B, N]: illegal: -inf
    next_q = tf.reduce_max(q_next, axis=1)  # [B]
    next_q = tf.where(tf.reduce_any(legal_next > 0, axis=1), next_q, tf.zeros_like(next_q))  # none left: no future
    targets = tf.cast(rewards, tf.float32) + GAMMA * (1.0 - tf.cast(terminated, tf.float32)) * next_q  # [B]
    with tf.GradientTape() as tape:
        q_taken = tf.gather(q_net(obs, training=True), tf.cast(actions, tf.int32), axis=1, batch_dims=1)  # [B]
        loss = huber(tf.stop_gradient(targets), q_taken)
    grads = tape.gradient(loss, q_net.trainable_variables)
    grads, _ = tf.clip_by_global_norm(grads, 10.0)
    optimizer.apply_gradients(zip(grads, q_net.trainable_variables))
    return loss


@tf.function
def soft_update(tau):
    """target <- tau * online + (1 - tau) * target (the PyTorch tutorial's TAU)."""
    for target, online in zip(target_net.weights, q_net.weights):
        target.assign(tau * online + (1.0 - tau) * target)
''')

MOVIELENS_RL_LOOP = lesson('''
runner = mrl.EpisodeBatch(tables, N_ENVS, **ENV_KWARGS)  # N_ENVS copies of the environment, stepped together
replay = ReplayBuffer(50_000, obs_shape=(OBS_DIM,), seed=SEED)
rng = np.random.default_rng(SEED)
curve, done, offset = [], 0, None
start = time.perf_counter()
while done < EPISODES:
    users = rng.choice(train_users, size=min(N_ENVS, EPISODES - done))
    obs, masks = runner.reset(users, seed=SEED + done)
    epsilon = max(0.02, 1.0 - 0.98 * done / (0.3 * EPISODES))
    batch_rewards = []
    for _ in range(runner.k):  # every episode lasts k recommendations
        greedy_actions = np.argmax(np.where(masks > 0, q_values(obs.astype("float32")).numpy(), -np.inf), axis=1)
        random_actions = np.argmax(np.where(masks > 0, rng.random(masks.shape), -1.0), axis=1)  # a legal film
        actions = np.where(rng.random(len(users)) < epsilon, random_actions, greedy_actions)
        next_obs, rewards, terminated, masks, _ = runner.step(actions)
        for i in range(len(users)):
            replay.add(obs[i], actions[i], rewards[i] - (offset or 0.0), next_obs[i], terminated[i], False)
        obs = next_obs
        batch_rewards.append(rewards.mean())
        if len(replay) >= LEARNING_STARTS:
            if offset is None:  # centre the rewards once: Q-values near 0, where the Huber loss is quadratic
                offset = np.float32(replay.rewards[: len(replay)].mean())
                replay.rewards[: len(replay)] -= offset
            for _ in range(GRADIENT_STEPS):
                batch = replay.sample(BATCH_SIZE)
                train_step(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.terminated)
            soft_update(0.01)
    done += len(users)
    curve.append(float(np.mean(batch_rewards)))
    if len(curve) % 25 == 0:
        print(f"episodes {done:5d}  epsilon {epsilon:.2f}  mean reward (last 25 batches) {np.mean(curve[-25:]):.3f}  "
              f"{time.perf_counter() - start:.0f}s")
''')

MOVIELENS_RL = notebook(
    "08_movielens_rl", "Recommending films as a reinforcement-learning problem: a masked DQN",
    """
    The course's MovieLens RL notebook as a Gymnasium environment that works: an episode recommends
    `k` distinct films from a candidate set to one user; the reward is the user's observed rating or,
    for a film they have not rated, a trained recommender's prediction. The agent observes the user's
    embedding and which films it already recommended; already-recommended films are masked out. This
    notebook trains the recommender with `fit`, then writes the DQN (a `keras.Sequential` Q-network,
    the masked update with `tf.GradientTape`, the loop over batches of episodes) and compares it with
    random, most-popular and greedy-by-recommender lists on users it never trained on. (The course's
    notebook has no working result: its episodes never end.) Library twin: `agents/movielens_env.py`,
    `agents/movielens_rl.py`; `docs/movielens-rl.md`.
    """,
    budget("synthetic MovieLens of the course's size, 100 candidates, 10 recommendations, 4,000 training "
           "episodes: 141 s on 2 CPU cores (measured under load, shared cores); on 500 held-out users the "
           "masked DQN earns 4.159 per recommendation, 0.9% below greedy-by-recommender (4.196), above random "
           "(3.406) and most popular (3.343).", "a small synthetic set, 10 candidates, 3 recommendations, under "
           "a minute"),
    """
    import keras
    import tensorflow as tf

    from agents import evaluation, movielens_env
    from agents import movielens_rl as mrl  # the parts: episodes in lockstep, baselines, metrics
    from agents.replay import ReplayBuffer
    from keras_impl import movielens
    from keras_impl.configs import RecommenderConfig
    from keras_impl.recommender.model import build_model as build_recommender
    from keras_impl.recommender.training import SparseAdam
    """,
    [
        md("""
        ## The environment

        Ratings (synthetic, in the MovieLens layout), a recommender that fills in the ratings nobody gave,
        and the environment's tables: for every user, the candidates' predicted and observed ratings.
        """),
        code("""
        SEED = 0
        data = movielens.load_course_data(movielens.synthetic_folder("small" if QUICK else "course", seed=SEED))
        print(f"{len(data.frame):,} ratings, {data.n_users} users, {data.n_movies} films")
        keras.utils.set_random_seed(SEED)
        recommender = build_recommender(data, RecommenderConfig(embedding_dim=32))  # the model of notebook 01, with genres
        recommender.compile(optimizer=SparseAdam(0.01), loss="mse")
        recommender.fit(data.x_train, data.y_train, batch_size=256 if QUICK else 512, epochs=3 if QUICK else 2,
                        validation_data=(data.x_val, data.y_val), verbose=2)
        CANDIDATES, K = (10, 3) if QUICK else (100, 10)
        tables = movielens_env.build_tables(data, recommender, candidates=CANDIDATES)
        train_users, eval_users = mrl.split_users(tables.n_users, 100 if QUICK else 500, seed=SEED)  # held out: eval_users
        ENV_KWARGS = {"k": K, "reward": "hybrid", "repeat": "raise"}
        """),
        md("One episode with the greedy-by-recommender policy, rendered as text:"),
        code("""
        env = movielens_env.MovieLensRecommendationEnv(tables, render_mode="ansi", **ENV_KWARGS)
        obs, info = env.reset(seed=0, options={"user_index": int(eval_users[0])})
        terminated = False
        while not terminated:
            action = int(np.argmax(np.where(info["action_mask"] == 1, tables.predicted[env.user_index], -np.inf)))
            obs, reward, terminated, truncated, info = env.step(action)
        print(env.render())
        """),
        md("## Model"),
        code(MOVIELENS_RL_MODEL),
        code("""
        N_CANDIDATES, OBS_DIM = tables.n_candidates, tables.feature_dim + tables.n_candidates
        q_net = build_q_network(OBS_DIM, N_CANDIDATES)
        target_net = build_q_network(OBS_DIM, N_CANDIDATES)
        target_net.set_weights(q_net.get_weights())
        q_values = tf.function(lambda obs: q_net(obs, training=False),
                               input_signature=[tf.TensorSpec([None, OBS_DIM], tf.float32)])  # one trace for any batch size
        q_net.summary()
        """),
        md("## Training step\n\nThe TD target takes the best *legal* next film; with gamma 0.5 the horizon is short (the best list does not depend on gamma here)."),
        code("""
        GAMMA = 0.5
        optimizer = keras.optimizers.Adam(1e-3)
        """),
        code(MOVIELENS_RL_STEP),
        md("## The loop\n\nBatches of 16 episodes in lockstep; epsilon-greedy among the legal films; two updates and a soft target update after each lockstep."),
        code("""
        EPISODES = 400 if QUICK else 4_000
        N_ENVS, LEARNING_STARTS, BATCH_SIZE, GRADIENT_STEPS = 16, 1_000, 128, 2
        """),
        code(MOVIELENS_RL_LOOP),
        md("""
        ## Evaluation

        Every agent on the same held-out users (their episodes reset with the report seeds); the oracle
        reads the environment's own reward table, an upper bound no recommender can reach.
        """),
        code("""
        agents = {
            "random": mrl.random_agent(SEED),
            "popular": mrl.popular_agent(tables),
            "greedy (recommender)": mrl.greedy_agent(tables),
            "masked DQN": lambda obs, masks, users: np.argmax(
                np.where(masks > 0, q_values(obs.astype("float32")).numpy(), -np.inf), axis=1),
            "oracle (upper bound)": mrl.oracle_agent(tables, "hybrid"),
        }
        rows = {name: [mrl.evaluate(tables, policy, eval_users, ENV_KWARGS, seed=evaluation.REPORT_SEED)]
                for name, policy in agents.items()}
        display(Markdown(mrl.format_table(rows, rows["greedy (recommender)"][0]["avg_reward"])))
        plt.figure(figsize=(6, 3.5))
        plt.plot(curve, label="masked DQN, training episodes")
        plt.axhline(rows["greedy (recommender)"][0]["avg_reward"], color="k", ls="--", lw=1, label="greedy (held-out users)")
        plt.xlabel("batch of 16 episodes"); plt.ylabel("mean reward per recommendation"); plt.legend()
        plt.show()
        """),
    ],
    expects=(IMAGE,),
)

NOTEBOOKS = {
    "01_recommender": RECOMMENDER,
    "02_hello_rnn_lstm": HELLO,
    "03_tabular_rl": TABULAR,
    "04_policy_gradients": POLICY_GRADIENTS,
    "05_dqn_cartpole": DQN,
    "06_frozenlake": FROZENLAKE,
    "07_tfa_breakout": TFA,
    "08_movielens_rl": MOVIELENS_RL,
}

# The lesson cells with a twin in the library, per notebook (tests/test_notebooks.py executes them
# and compares them with the twin; each must appear verbatim as one of the notebook's cells).
LESSONS = {
    "01_recommender": {"model": RECOMMENDER_MODEL, "step": RECOMMENDER_STEP, "loop": RECOMMENDER_LOOP},
    "02_hello_rnn_lstm": {"cells": HELLO_CELLS, "model": HELLO_MODEL, "step": HELLO_STEP, "loop": HELLO_LOOP},
    "03_tabular_rl": {"value_iteration": TABULAR_VALUE_ITERATION, "q_learning": TABULAR_Q_LEARNING},
    "04_policy_gradients": {"returns": PG_RETURNS, "model": PG_MODEL, "step": PG_STEP, "loop": PG_LOOP},
    "05_dqn_cartpole": {"model": DQN_MODEL, "step": DQN_STEP, "loop": DQN_LOOP},
    "06_frozenlake": {"model": FROZENLAKE_MODEL, "step": DQN_STEP, "loop": FROZENLAKE_LOOP},
    "07_tfa_breakout": {"network": TFA_NETWORK, "agent": TFA_AGENT, "replay": TFA_REPLAY, "step": TFA_STEP,
                        "loop": TFA_LOOP, "save": TFA_SAVE},
    "08_movielens_rl": {"model": MOVIELENS_RL_MODEL, "step": MOVIELENS_RL_STEP, "loop": MOVIELENS_RL_LOOP},
}


def render_notebook(nb: nbformat.NotebookNode) -> str:
    """The notebook's file text (validated against the nbformat 4 schema), ending in a newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from this script")
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder (default: notebooks/)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, nb in NOTEBOOKS.items():
        path = out_dir / f"{name}.ipynb"
        text = render_notebook(nb)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run python scripts/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
