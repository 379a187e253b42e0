"""MovieLens recommender in Keras 3: the exam's part 1 (``shared/seeds/dl2024-final-exam.txt``).

The model is a biased matrix factorisation::

    rating(u, m) = 0.5 + 4.5 * sigmoid(c + b_u + b_m + p_u . q_m)

with one row ``[p_u, b_u]`` / ``[q_m, b_m]`` per user/film (factors and bias in one table, so a
batch reads and updates two tables, not four), and a constant ``c`` started at the
logit of the training mean, so the very first prediction is the global mean rating (an N(0, 1)
init with ``5 * sigmoid`` starts saturated and stays at MSE 4.4: SPEC section 1). The dot product
is taken per row (``ops.sum(u * m, axis=1, keepdims=True)``; ``tensordot(u, m, 2)`` would sum over
the batch and still pass a shape test). L2 regularisation applies to the rows used in each batch.

Training is ``model.fit`` on a ``tf.data`` pipeline with the course's batch size 64 and Adam;
after each epoch the validation MSE is printed in the course's format (``epoch: 1\t val_loss:
0.7995``) and logged to TensorBoard. The trained model answers ``predict`` and ``recommend``
(unseen films only) by original MovieLens ids or course indices, and saves to one ``.keras``
file that carries the id/title mappings and each user's seen films.

Run it: ``kcourse run recommender [--data DIR | --data synthetic] [--epochs 5] [--batch-size 64]
[--strategy auto|mirrored|multi-worker]``. Multi-worker training runs one process per worker
with ``TF_CONFIG`` set: ``python -m keras_impl.recommender worker --data DIR --out result.json``.

Modules: :mod:`~keras_impl.recommender.model`, :mod:`~keras_impl.recommender.training`,
:mod:`~keras_impl.recommender.inference`, :mod:`~keras_impl.recommender.exercise`; the config is
:class:`keras_impl.configs.RecommenderConfig`.
"""
from keras_impl.configs import RecommenderConfig
from keras_impl.recommender.exercise import COURSE_QUESTION, COURSE_VAL_MSE, load_data, run
from keras_impl.recommender.inference import load, predict, predict_batch, recommend, save, scatter_plot
from keras_impl.recommender.model import DotRecommender, FactorsAndBias, IdMappings, build_model
from keras_impl.recommender.training import (
                                             CourseLog,
                                             SparseAdam,
                                             compile_model,
                                             make_dataset,
                                             make_optimizer,
                                             train,
                                             train_multi_worker,
)

__all__ = [
    "RecommenderConfig", "COURSE_QUESTION", "COURSE_VAL_MSE", "load_data", "run", "load", "predict", "predict_batch",
    "recommend", "save", "scatter_plot", "DotRecommender", "FactorsAndBias", "IdMappings", "build_model", "CourseLog",
    "SparseAdam", "compile_model", "make_dataset", "make_optimizer", "train", "train_multi_worker",
]
