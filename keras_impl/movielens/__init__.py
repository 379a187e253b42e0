"""MovieLens data for the recommender: read and validate a folder, the course preprocessing, a
synthetic generator in the same layout, and downloads.

The exam (``shared/seeds/dl2024-final-exam.txt``, part 1) builds its training frame like this::

    np.random.seed(43052)
    df_train_all = pd.merge(df_ratings, df_movies)
    userId_sampled = np.random.choice(df_train_all.userId.unique(), 5000, replace=False)
    userId_sampled[0] = 46889
    df_train = df_train_all.query("userId in @userId_sampled").reset_index(drop=True)
    df_train["userId"] = df_train.userId.map({u: i for i, u in enumerate(set(df_train.userId))})
    df_train["movieId"] = df_train.movieId.map({m: i for i, m in enumerate(set(df_train.movieId))})
    ... train_test_split(X, y, test_size=0.1, random_state=42)

:func:`course_preprocess` does exactly that, with one trap handled: the row order of
``pd.merge``. The course ran on pandas < 2.2, whose inner merge returned the rows *grouped by the
join key, in order of the key's first appearance in the left frame* (within a group, left rows
keep their order). pandas 2.2 made ``how="inner"`` keep the left frame's row order (whatsnew 2.2.0,
"merge() and DataFrame.join() now consistently follow documented sort behavior", GH 54611; the old
behaviour is shown in GH 55774: left keys ``[1, 2, 3, 1]`` came back ``[1, 1, 2, 3]``). The order
decides ``userId.unique()``'s order and therefore which 5000 users the seeded ``choice`` picks, and
which index each user and film gets. The course's own frame confirms the old order: it starts with
Jumanji (movieId 2, the first film rated in ml-20m's ``ratings.csv``) and is grouped by film.
``merge_order="pre-2.2"`` (the default) reproduces it on any pandas; ``"current"`` is what
``pd.merge`` does on pandas >= 2.2.

Folders in the MovieLens CSV layout (ml-20m, ml-25m, ml-32m, ml-latest-small: ``ratings.csv`` with
userId, movieId, rating[, timestamp] and ``movies.csv`` with movieId, title, genres), ml-100k
(``u.data``, ``u.item``) and ml-1m (``ratings.dat``, ``movies.dat``) are read the same way; the
layout is detected from the files (:func:`detect_layout`). ml-latest-small ships with the package
(:func:`bundled_folder`, under GroupLens' terms: see ``NOTICE``); tests and sizes the real set lacks
use :func:`generate_synthetic` (in any of the three layouts).
"""
from keras_impl.movielens.course import (
                                         COURSE_FORCED_USER,
                                         COURSE_SEED,
                                         COURSE_SPLIT_SEED,
                                         COURSE_TEST_SIZE,
                                         COURSE_USERS,
                                         CourseData,
                                         CourseDataWarning,
                                         DroppedRatingsWarning,
                                         course_index,
                                         course_merge,
                                         course_preprocess,
                                         genre_matrix,
                                         load_course_data,
                                         merge_rows,
                                         sample_users,
)
from keras_impl.movielens.bundled import BUNDLED_NAME, bundled_folder
from keras_impl.movielens.download import DATASETS, GROUPLENS_URL, KNOWN_MD5, download
from keras_impl.movielens.readers import LAYOUTS, describe_layout, detect_layout, read_movielens
from keras_impl.movielens.validation import (
                                         MERGE_ORDERS,
                                         MOVIES_COLUMNS,
                                         MOVIES_FILE,
                                         NO_GENRES,
                                         RATING_MAX,
                                         RATING_MIN,
                                         RATINGS_COLUMNS,
                                         RATINGS_FILE,
                                         validate_movies,
                                         validate_ratings,
)
from keras_impl.movielens.catalogue import GENRES, assign_genres, genre_variance_share
from keras_impl.movielens.synthetic import (
                                         GENERATOR_VERSION,
                                         SYNTHETIC_SIZES,
                                         SyntheticSpec,
                                         cache_root,
                                         generate_synthetic,
                                         synthetic_folder,
)
from keras_impl.movielens.truth import INFO_FILE, TRUTH_FILE, expected_rating, oracle_mse, true_expected_ratings

__all__ = [
    "read_movielens", "validate_ratings", "validate_movies", "merge_rows", "course_merge", "course_preprocess",
    "load_course_data", "CourseData", "course_index", "genre_matrix", "sample_users", "SyntheticSpec", "generate_synthetic",
    "oracle_mse", "synthetic_folder", "cache_root", "expected_rating", "download", "DATASETS", "GROUPLENS_URL",
    "SYNTHETIC_SIZES", "MERGE_ORDERS", "RATING_MIN", "RATING_MAX", "RATINGS_FILE", "MOVIES_FILE", "RATINGS_COLUMNS",
    "MOVIES_COLUMNS", "COURSE_SEED", "COURSE_USERS", "COURSE_FORCED_USER", "COURSE_TEST_SIZE", "COURSE_SPLIT_SEED",
    "NO_GENRES", "GENRES", "GENERATOR_VERSION", "INFO_FILE", "TRUTH_FILE", "LAYOUTS", "detect_layout", "KNOWN_MD5",
    "DroppedRatingsWarning", "CourseDataWarning", "describe_layout", "assign_genres", "genre_variance_share",
    "bundled_folder", "BUNDLED_NAME", "true_expected_ratings",
]
