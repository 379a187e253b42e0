"""The configs of ``keras_impl``'s exercises: every knob with its help, default, range and presets.

One dataclass per pipeline; ``kcourse run NAME --help`` is generated from it. This module imports
no TensorFlow, so the command line can list and check options before the heavy imports.
"""
from __future__ import annotations

import dataclasses

from keras_impl.config import STRATEGY_KINDS, Preset, arg
from keras_impl.movielens import COURSE_USERS, MERGE_ORDERS, SYNTHETIC_SIZES

# ----------------------------------------------------------------------------------------------
# linreg: the runtime's smoke test
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LinRegConfig:
    """Keras 3 linear regression ``y = 3x + 2`` through the shared runtime."""

    n: int = arg(1000, "number of samples", ge=2)
    noise: float = arg(0.1, "standard deviation of the noise added to y", ge=0)
    epochs: int = arg(20, "training epochs", ge=1)
    batch_size: int = arg(32, "batch size", ge=1)
    learning_rate: float = arg(0.05, "Adam learning rate", gt=0)
    strategy: str = arg("auto", "tf.distribute strategy", choices=STRATEGY_KINDS)
    seed: int = arg(0, "random seed", ge=0)


LinRegConfig.PRESETS = (Preset({"epochs": 5}, quick=True),)

# ----------------------------------------------------------------------------------------------
# hello: next-character RNN/LSTM (exam part 2)
# ----------------------------------------------------------------------------------------------

RNN_VARIANTS = ("simple_rnn", "rnn_cell", "my_rnn_cell")
LSTM_VARIANTS = ("lstm", "lstm_cell", "my_lstm_cell")
HELLO_VARIANTS = RNN_VARIANTS + LSTM_VARIANTS


@dataclasses.dataclass
class HelloConfig:
    """The six "hello" variants of the exam's part 2."""

    variant: str = arg("all", "which model to train (its built-in twin is trained too, for the comparison)",
                       choices=("all",) + HELLO_VARIANTS)
    text: str = arg("hello", "the text that is repeated to make the sequence")
    repeats: int = arg(100, "how often the text is repeated (the course: list('hello')*100)", ge=1)
    units: int = arg(4, "hidden size of the RNN/LSTM", ge=1)
    epochs: int = arg(200, "epochs; each is one Adam step on the whole sequence (the course: 200)", ge=1)
    learning_rate: float = arg(0.1, "Adam learning rate (the course: 0.1)", gt=0)
    heatmap_steps: int = arg(10, "steps shown in the heatmap and the printed probability rows", ge=1)
    seed: int = arg(0, "random seed (initial weights)", ge=0)


HelloConfig.PRESETS = (Preset({"repeats": 10, "epochs": 100}, quick=True),)

# ----------------------------------------------------------------------------------------------
# recommender: MovieLens (exam part 1)
# ----------------------------------------------------------------------------------------------

# How top-N lists are ranked (keras_impl.recommender.ranking), here so that the CLI needs no TensorFlow.
RANKINGS = ("ease-rating", "ease", "lower-bound", "mean")  # the first is the default
DEFAULT_Z = 1.0  # the 84% lower bound (Phi(1) = 0.841)
DEFAULT_MIN_RATINGS = 5  # films with fewer training ratings are never recommended by default


@dataclasses.dataclass
class RecommenderConfig:
    """The MovieLens recommender: data, model, training."""

    data: str = arg("auto", "MovieLens folder (ratings.csv + movies.csv: ml-20m, ml-25m, ml-32m, "
                            "ml-latest-small; u.data + u.item: ml-100k; ratings.dat + movies.dat: ml-1m), 'synthetic', "
                            "or 'auto': real ml-latest-small from ./data, ~/data (where `kcourse data download "
                            "ml-latest-small --to DIR` is told to put it in the docs), else the copy shipped with kcourse")
    synthetic_size: str = arg("course", "size of the synthetic set with --data synthetic",
                              choices=tuple(SYNTHETIC_SIZES))
    merge_order: str = arg("pre-2.2", "row order of pd.merge: the course's (pandas < 2.2) or this pandas'",
                           choices=MERGE_ORDERS)
    users: int = arg(COURSE_USERS, "users sampled by the course preprocessing (all when fewer)", ge=1)
    epochs: int = arg(5, "training epochs (course: 5)", ge=1)
    batch_size: int = arg(64, "batch size (course: 64)", ge=1)
    learning_rate: float = arg(1e-2, "initial Adam learning rate (the course used Adam's default 0.001 with "
                                     "dense Adam)", gt=0)
    lr_decay: bool = arg(True, "cosine-decay the learning rate to 10% of its start over the run")
    optimizer: str = arg("sparse-adam", "Adam updating only the rows a batch uses (= torch.optim.SparseAdam), "
                                        "or dense Adam as in the course", choices=("sparse-adam", "adam"))
    posterior: str = arg("variational", "variational: a mean and a variance per factor, trained by variational Bayes "
                                        "(predictions use the means); map: point estimates with L2, as the course's "
                                        "model (best with --l2 20 --embedding-dim 32 --learning-rate 0.005)",
                         choices=("variational", "map"))
    genres: bool = arg(True, "use the films' genres (movies.csv) as side information: a film's row is its own plus "
                             "the mean of its genres' rows, so rarely rated films start from their genres")
    embedding_dim: int = arg(8, "size of the user and film embeddings", ge=1)
    l2: float = arg(5.0, "L2 on the factors per row and epoch (each row's penalty divided by its count; "
                         "noise variance / prior variance)", ge=0)
    l2_bias: float = arg(3.0, "L2 on the user and film biases, counted like --l2 (their prior is wider)", ge=0)
    noise_variance: float = arg(0.75, "variational: assumed variance of a rating around its expectation "
                                      "(weights the posterior's entropy)", gt=0)
    init_std: float = arg(0.05, "standard deviation of the embedding initialisation", ge=0)
    steps_per_execution: int = arg(256, "training steps per compiled call (speed; results unchanged)", ge=1)
    jit_compile: bool = arg(True, "compile the train step with XLA")
    intra_op_threads: int = arg(1, "TensorFlow intra-op threads (0: TF's default). One is fastest for the tiny "
                                   "ops of batch-64 steps: the second core runs the input pipeline", ge=0)
    strategy: str = arg("auto", "tf.distribute strategy (multi-worker reads TF_CONFIG)", choices=STRATEGY_KINDS)
    top_n: int = arg(10, "recommendations listed for the example user, and k of the ranking metrics (precision@k ...)",
                     ge=1)
    rank: str = arg(RANKINGS[0], "rank top-N lists by EASE (a linear item model of what people watch) blended with "
                                 "the predicted rating (best on real data: docs/recommender.md), by EASE alone, by a "
                                 "lower credible bound of the rating (a film needs evidence to rank high) or by the "
                                 "predicted rating", choices=RANKINGS)
    credible_z: float = arg(DEFAULT_Z, "width of the lower bound in posterior standard deviations (1: 84%)", ge=0)
    min_ratings: int = arg(DEFAULT_MIN_RATINGS, "films with fewer training ratings are never recommended", ge=0)
    ranking_metrics: bool = arg(True, "precision/recall/NDCG@k, coverage and median count of the top-k lists on the "
                                      "validation split (mean, lower bound, popularity) at the end of the run")
    seed: int = arg(0, "seed for initialisation, shuffling and the synthetic data", ge=0)

    def check(self) -> None:
        if self.posterior == "variational" and (self.l2 == 0 or self.l2_bias == 0):
            raise ValueError("Received an invalid value for argument `l2`/`l2_bias`: the variational prior must be "
                             f"proper, expected > 0, got l2={self.l2}, l2_bias={self.l2_bias}")


RecommenderConfig.PRESETS = (
    Preset({"data": "synthetic", "synthetic_size": "small", "epochs": 3, "batch_size": 256, "jit_compile": False},
           quick=True),
)
