"""Training the recommender: the ``tf.data`` pipeline, row-sparse Adam, the course's log line, ``fit``,
and an explicit ``strategy.run`` loop for multi-worker training.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_impl import config as cfglib
from keras_impl import runtime
from keras_impl.configs import RecommenderConfig
from keras_impl.movielens import CourseData
from keras_impl.recommender.inference import predict_batch
from keras_impl.recommender.model import DotRecommender, build_model


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
    """``tf.data`` pipeline of ``(x [B, 2] int32, y [B, 1] float32)`` batches, reshuffled every epoch.

    Like ``DataLoader(shuffle=True)``: a fresh permutation each pass, the last batch may be
    smaller. Each pass gathers the whole permuted epoch at once and hands out ready-made batches
    (slices of a ``[n_batches, B, ...]`` tensor), because per-example tf.data elements, or even a
    per-batch ``map`` with a gather, cost more than the model's step at batch 64
    (``docs/recommender.md`` has the measurements).
    """
    if batch_size < 1:
        raise ValueError(f"Received an invalid value for argument `batch_size`: expected >= 1, got {batch_size}")
    x = tf.constant(np.asarray(x, dtype="int32"))
    y = tf.constant(np.asarray(y, dtype="float32").reshape(-1, 1))
    n = int(x.shape[0])
    full, rest = divmod(n, batch_size)  # full batches, size of the last partial one

    def one_epoch(epoch_seed):
        if shuffle:  # a new permutation on every pass: Dataset.random rerandomizes per iteration
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                             seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)]))
            xs, ys = tf.gather(x, order), tf.gather(y, order)  # [n, 2], [n, 1] this epoch's order
        else:
            xs, ys = x, y
        batches = tf.data.Dataset.from_tensor_slices((tf.reshape(xs[:full * batch_size], (full, batch_size, 2)),
                                                      tf.reshape(ys[:full * batch_size], (full, batch_size, 1))))
        if rest:
            batches = batches.concatenate(tf.data.Dataset.from_tensors((xs[full * batch_size:], ys[full * batch_size:])))
        return batches

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    ds = seeds.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))
    return ds.prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="kcourse")
class SparseAdam(keras.optimizers.Adam):
    """Adam that updates only the embedding rows a batch uses (lazy Adam).

    The same algorithm as ``torch.optim.SparseAdam`` (and TF-Addons' ``LazyAdam``): for a row-sparse
    gradient (``tf.IndexedSlices`` from an ``Embedding`` lookup), the moments and weights of the
    rows in the batch get the Adam update and the other rows are left alone. Dense Adam touches all
    ``(users + films) x dim`` entries every step, which is memory-bound on a CPU at batch 64;
    dense variables (the offset) get the ordinary Adam update.

    A row used twice in a batch must get one update with the sum of its gradients (as a dense
    gradient would). ``tf.unique`` has a data-dependent output shape, which XLA handles slowly, so
    the rows are sorted instead and every position gets its row's summed gradient: positions of one
    row compute the same new values, and the scatter writes identical values whichever lands last.
    """

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        order = tf.argsort(gradient.indices, stable=True)
        rows = tf.gather(gradient.indices, order)  # [K] sorted, repeats adjacent
        first = tf.concat([tf.zeros([1], tf.int32), tf.cast(rows[1:] != rows[:-1], tf.int32)], axis=0)
        segment = tf.cumsum(first)  # [K] one id per distinct row
        values = tf.gather(tf.cast(gradient.values, variable.dtype), order)  # [K, D]
        summed = tf.math.unsorted_segment_sum(values, segment, tf.shape(rows)[0])  # [K, D] (tail unused)
        grad = tf.gather(summed, segment)  # [K, D] each position: its row's summed gradient
        lr = ops.cast(learning_rate, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        m_rows = self.beta_1 * ops.take(m, rows, axis=0) + (1 - self.beta_1) * grad  # [K, D]
        v_rows = self.beta_2 * ops.take(v, rows, axis=0) + (1 - self.beta_2) * ops.square(grad)
        w_rows = ops.take(variable, rows, axis=0) - alpha * m_rows / (ops.sqrt(v_rows) + self.epsilon)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign(variable, tf.IndexedSlices(w_rows, rows))


class CourseLog(keras.callbacks.Callback):
    """Prints ``epoch: N\\t val_loss: X.XXXX`` (the course's line) and logs ``eval/val_mse``.

    ``val_loss`` in the course is the plain MSE on ``X_val``, and so is Keras' ``val_loss`` here:
    the model adds its L2 penalty only when called with ``training=True`` (tested), so no extra
    ``mse`` metric has to run in every training step.
    """

    def __init__(self, eval_writer=None, printer=print):
        super().__init__()
        self.eval_writer, self.printer = eval_writer, printer
        self.val_mse: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = float(logs.get("val_mse", logs.get("val_loss", float("nan"))))
        self.val_mse.append(value)
        self.printer(f"epoch: {epoch + 1}\t val_loss: {value:.4f}")
        if self.eval_writer is not None:
            runtime.log_scalars(self.eval_writer, epoch + 1, {"eval/val_mse": value,
                                                              "losses/train_loss": float(logs.get("loss", np.nan))})


def make_optimizer(cfg: RecommenderConfig, total_steps: int):
    """Adam (row-sparse by default) with an optional cosine decay over ``total_steps``."""
    lr = cfg.learning_rate
    if cfg.lr_decay:
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=max(1, total_steps), alpha=0.1)
    return SparseAdam(lr) if cfg.optimizer == "sparse-adam" else keras.optimizers.Adam(lr)


def compile_model(model: DotRecommender, cfg: RecommenderConfig, n_train: int | None = None) -> None:
    """Adam + MSE, as in the course (``val_loss`` is the plain validation MSE: see :class:`CourseLog`)."""
    steps = cfg.epochs * -(-(n_train or 1) // cfg.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps), loss="mse",
                  steps_per_execution=cfg.steps_per_execution, jit_compile=cfg.jit_compile)


def train(data: CourseData, cfg: RecommenderConfig, run_dir: Path | None = None,
          strategy=None, verbose_lines: bool = True):
    """Build and fit the model on ``data``; returns ``(model, history, CourseLog)``."""
    cfglib.validate(cfg)
    runtime.set_intra_op_threads(cfg.intra_op_threads)  # speed only; kept as is if TF already runs
    strategy = strategy or runtime.strategy(cfg.strategy)
    with strategy.scope():
        model = build_model(data, cfg)
        compile_model(model, cfg, len(data.x_train))
    train_ds = make_dataset(data.x_train, data.y_train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = make_dataset(data.x_val, data.y_val, 8192, shuffle=False)
    writers = runtime.summary_writers(run_dir) if run_dir is not None else (None, None)
    log = CourseLog(eval_writer=writers[1], printer=print if verbose_lines else (lambda *_: None))
    callbacks = [log]
    if run_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / "tensorboard"), write_graph=False))
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0, callbacks=callbacks,
                        shuffle=False)  # the dataset reshuffles itself every epoch
    return model, history, log


def train_multi_worker(data: CourseData, cfg: RecommenderConfig, strategy, printer=print):
    """Train under a ``tf.distribute`` strategy with an explicit loop (``strategy.run``).

    Keras 3.15's ``fit`` cannot take a dataset distributed by ``MultiWorkerMirroredStrategy``
    (its symbolic build reduces the first ``PerReplica`` batch and fails), so multi-worker runs use
    the loop TensorFlow's multi-worker tutorial uses. Every worker builds the same seeded stream of
    global batches and keeps its slice of each (``distribute_datasets_from_function``), gradients
    are all-reduced by the optimizer, so all workers hold identical weights. The last partial global
    batch of an epoch is dropped (every replica needs a share). Returns ``(model, CourseLog)``.
    """
    global_batch = cfg.batch_size
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"Received an invalid value for argument `batch_size`: the global batch {global_batch} must "
                         f"divide evenly over {replicas} replicas")
    per_replica = global_batch // replicas
    n = len(data.x_train)
    steps = n // global_batch
    x_all = tf.constant(np.asarray(data.x_train, "int32"))
    y_all = tf.constant(np.asarray(data.y_train, "float32").reshape(-1, 1))

    def dataset_fn(context):
        index = context.input_pipeline_id * (replicas // context.num_input_pipelines)

        def epoch(epoch_seed):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(cfg.seed, tf.int64)]))

            def batch(i):
                start = i * global_batch + index * per_replica  # this replica's slice of global batch i
                idx = order[start: start + per_replica]
                return tf.gather(x_all, idx), tf.gather(y_all, idx)

            return tf.data.Dataset.range(steps).map(batch)

        # the same seed on every worker: all see the same permutation, each takes its own slice
        return tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).take(1).flat_map(epoch)

    with strategy.scope():
        model = build_model(data, cfg)
        optimizer = make_optimizer(cfg, cfg.epochs * steps)
        optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)  # [b, 1]
            # mean over the *global* batch, penalty split over replicas: the all-reduced gradient
            # equals the single-process gradient of the same global batch.
            loss = tf.reduce_sum(tf.square(pred - y)) / global_batch + tf.add_n(model.losses) / replicas
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    log = CourseLog(printer=printer)
    dist = strategy.distribute_datasets_from_function(dataset_fn)
    for epoch in range(cfg.epochs):
        for x, y in dist:
            strategy.run(train_step, args=(x, y))
        val = float(np.mean((predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
        log.on_epoch_end(epoch, {"val_mse": val})
    return model, log
