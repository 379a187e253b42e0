"""The arguments of ``kcourse eval``, ``data``, ``predict`` and ``recommend``; each names its handler as ``"module:function"``.

Only argument definitions live here (cheap to import); a handler's module is imported when its
command runs.
"""
from __future__ import annotations

from keras_impl.configs import DEFAULT_MIN_RATINGS, DEFAULT_Z, RANKINGS
from keras_impl.movielens import DATASETS, GROUPLENS_URL, KNOWN_MD5, LAYOUTS, SYNTHETIC_SIZES


def add_commands(subs) -> None:
    """Add the ``eval``, ``data``, ``predict`` and ``recommend`` subcommands to ``kcourse``'s subparsers."""
    _add_eval(subs.add_parser("eval", help="evaluate a saved policy: kcourse eval POLICY [--env ID] [--episodes N] "
                                           "[--seed S] [--render gif]",
                              description="Evaluate a saved policy folder (or `random`). Policies saved as Keras "
                                          "files load in Keras' safe mode; a TF-Agents policy is a TensorFlow "
                                          "SavedModel whose graph runs when loaded: evaluate only policies from "
                                          "a source you trust."))
    _add_data(subs.add_parser("data", help="MovieLens data: `data download NAME --to DIR`, "
                                           "`data synthetic SIZE --to DIR [--layout L]`"))
    _add_predict(subs.add_parser("predict", help="predicted rating of a film for a user: kcourse predict MODEL --user U "
                                                 "--movie M [--by id|index]",
                                 description="Predicted rating (the posterior mean) of one film for one user, from a "
                                             "recommender saved by `kcourse run recommender`. The exam's question "
                                             "'user index 2303, movie index 49' is: kcourse predict MODEL --user 2303 "
                                             "--movie 49 --by index"))
    _add_recommend(subs.add_parser("recommend", help="top-N unseen films for a user: kcourse recommend MODEL --user U "
                                                     "[--n N] [--by id|index] [--rank ease-rating|ease|lower-bound|mean] [--min-ratings K]",
                                   description="The films a saved recommender ranks highest for a user among those "
                                               "the user has not rated, with titles and training-rating counts."))


def _add_eval(sub) -> None:
    sub.add_argument("policy", help="saved policy folder (or a run directory holding policy/), or `random`")
    sub.add_argument("--env", default=None, help="environment id or alias (default: the one the policy was trained on)")
    sub.add_argument("--episodes", type=int, default=100, help="episodes (default: 100)")
    sub.add_argument("--seed", type=int, default=0,
                     help="episode i is reset with seed + i (default: 0); any seed >= 0: an evaluation picks its "
                          "episodes (training runs use 0-9,999, selection 10,000-999,999, reports 1,000,000+)")
    sub.add_argument("--stochastic", action="store_true",
                     help="sample actions from the policy's distribution (softmax / bernoulli-left policies)")
    sub.add_argument("--epsilon", type=float, default=None,
                     help="act at random with this probability (default: the policy's eval_epsilon from policy.json, "
                          "e.g. 0.001 for Breakout, else 0: greedy)")
    sub.add_argument("--protocol", choices=("sticky", "atari100k"), default=None,
                     help="Atari only: sticky (repeat_action_probability 0.25, up to 30 no-ops: the default) or "
                          "atari100k (no sticky actions, up to 30 no-ops; the DrQ/SPR tables' setting)")
    sub.add_argument("--render", choices=("gif", "mp4"), default=None,
                     help="also record the first episode (seed S) as a GIF or MP4")
    sub.add_argument("--render-out", default=None, help="video path (default: eval_{env}_seed{S}.{gif,mp4})")
    sub.add_argument("--render-steps", type=int, default=1000, help="the most steps to record (default: 1000)")
    sub.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode (default: the env's limit)")
    sub.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON")
    sub.add_argument("--min-mean", type=float, default=None, help="exit with code 1 when the mean is below this")
    sub.set_defaults(handler="kcourse.eval_command:main")


def _add_data(sub) -> None:
    subs = sub.add_subparsers(dest="data_command", required=True)
    dl = subs.add_parser("download", help="download and unpack a MovieLens archive (needs a network)")
    dl.add_argument("name", choices=tuple(DATASETS))
    dl.add_argument("--to", required=True, help="parent folder; the data lands in TO/NAME")
    dl.add_argument("--base-url", default=GROUPLENS_URL, help="mirror to download from (default: GroupLens)")
    dl.add_argument("--md5", default=None, help=f"expected MD5 of NAME.zip (default: the known one for "
                                                f"{', '.join(KNOWN_MD5)}, else the server's NAME.zip.md5 file)")
    dl.set_defaults(handler="kcourse.data_command:download")
    syn = subs.add_parser("synthetic", help="write a synthetic MovieLens-layout folder")
    syn.add_argument("size", choices=tuple(SYNTHETIC_SIZES))
    syn.add_argument("--to", required=True, help="folder to write (new, empty, or an earlier synthetic folder; "
                                                 "a folder holding anything else is refused)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--layout", choices=tuple(LAYOUTS), default="csv",
                     help="file layout: csv (ratings.csv, movies.csv), ml-100k (u.data, u.item) or ml-1m "
                          "(ratings.dat, movies.dat) (default: csv)")
    syn.set_defaults(handler="kcourse.data_command:synthetic")


def _add_model_and_user(sub) -> None:
    sub.add_argument("model", help="a recommender .keras file (runs/recommender__.../checkpoints/recommender.keras) "
                                   "or the run folder holding it")
    sub.add_argument("--user", required=True, help="MovieLens userId (or course index with --by index)")
    sub.add_argument("--by", choices=("id", "index"), default="id",
                     help="--user/--movie are MovieLens ids (default) or the course's indices")


def _add_predict(sub) -> None:
    _add_model_and_user(sub)
    sub.add_argument("--movie", required=True, help="MovieLens movieId (or course index with --by index)")
    sub.set_defaults(handler="kcourse.recommender_command:predict")


def _add_recommend(sub) -> None:
    _add_model_and_user(sub)
    sub.add_argument("--n", type=int, default=10, help="how many films (default: 10)")
    sub.add_argument("--rank", choices=RANKINGS, default=RANKINGS[0],
                     help="ease-rating (default): EASE blended with the predicted rating (it ranks best on real "
                          "MovieLens); ease: by EASE, a linear item model of what people watch; lower-bound: by a "
                          "lower credible bound of the rating, so a film needs evidence to rank high; mean: by the "
                          "predicted rating")
    sub.add_argument("--z", type=float, default=DEFAULT_Z,
                     help=f"width of the lower bound in posterior standard deviations (default: {DEFAULT_Z:g})")
    sub.add_argument("--min-ratings", type=int, default=DEFAULT_MIN_RATINGS,
                     help=f"never recommend films with fewer training ratings (default: {DEFAULT_MIN_RATINGS})")
    sub.set_defaults(handler="kcourse.recommender_command:recommend")
