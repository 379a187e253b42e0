"""MovieLens data: validation messages, the course preprocessing, merge order, synthetic data, download."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kcourse import cli
from keras_impl import files
from keras_impl import movielens as ml


def write_folder(folder: Path, ratings: str, movies: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    (folder / "movies.csv").write_text(movies or "movieId,title,genres\n10,A (1990),Drama\n20,B (1991),Comedy\n")
    return folder


GOOD = "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,101\n2,10,5.0,102\n"


# ----------------------------------------------------------------------------------------------
# Reading and validation: one test per bad input, each checking the file and the problem named
# ----------------------------------------------------------------------------------------------


def test_reads_a_valid_folder(tmp_path):
    ratings, movies = ml.read_movielens(write_folder(tmp_path / "ml", GOOD))
    assert ratings.dtypes["userId"] == np.int32 and ratings.dtypes["rating"] == np.float32
    assert ratings["rating"].tolist() == [4.0, 3.5, 5.0]
    assert movies["title"].tolist() == ["A (1990)", "B (1991)"]


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ml.read_movielens(tmp_path / "nope")
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "movies.csv").write_text("movieId,title,genres\n")
    with pytest.raises(FileNotFoundError, match=r"ratings\.csv: file not found"):
        ml.read_movielens(folder)
    (folder / "ratings.csv").write_text(GOOD)
    (folder / "movies.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"movies\.csv: file not found"):
        ml.read_movielens(folder)


@pytest.mark.parametrize("ratings, message", [
    ("userId,movieId,timestamp\n1,10,5\n", r"ratings\.csv: missing column\(s\) 'rating'"),
    ("userId,movieId,rating\n1,10,4.0\n1,20,abc\n", r"ratings\.csv: non-numeric value 'abc' in column 'rating' at line 3"),
    ("userId,movieId,rating\nx,10,4.0\n", r"ratings\.csv: non-numeric value 'x' in column 'userId' at line 2"),
    ("userId,movieId,rating\n1,10,4.0\n1,20,7.0\n", r"ratings\.csv: 1 rating\(s\) outside 0\.5\.\.5\.0 .* 7\.0 at line 3"),
    ("userId,movieId,rating\n1,10,0.0\n", r"outside 0\.5\.\.5\.0 .* 0\.0 at line 2"),
    ("userId,movieId,rating\n1,10,4.0\n1,20,\n2,20,\n", r"ratings\.csv: 2 missing value\(s\) \(NaN/empty\) in column 'rating', first at line 3"),
    ("userId,movieId,rating\n1,10.5,4.0\n", r"ratings\.csv: column 'movieId' must hold integer ids; got 10\.5 at line 2"),
    ("userId,movieId,rating\n1,10,4.0\n1,20,3.0\n1,10,2.0\n2,20,1.0\n2,20,1.5\n1,10,3.0\n",
     r"ratings\.csv: 3 duplicate \(userId, movieId\) pair\(s\), e\.g\. \(1, 10\) at lines 2 and 4"),
    ("", r"ratings\.csv: the file is empty"),
])
def test_bad_ratings_messages(tmp_path, ratings, message):
    with pytest.raises(ValueError, match=message):
        ml.read_movielens(write_folder(tmp_path / "ml", ratings))


@pytest.mark.parametrize("movies, message", [
    ("movieId,title\n10,A\n", r"movies\.csv: missing column\(s\) 'genres'"),
    ("movieId,title,genres\n10,A,Drama\n10,B,Drama\n", r"movies\.csv: 1 duplicate movieId value\(s\), e\.g\. 10 at line 3"),
    ("movieId,title,genres\nten,A,Drama\n", r"movies\.csv: non-numeric value 'ten' in column 'movieId' at line 2"),
    ("movieId,title,genres\n10,,Drama\n", r"movies\.csv: missing title at line 2"),
])
def test_bad_movies_messages(tmp_path, movies, message):
    with pytest.raises(ValueError, match=message):
        ml.read_movielens(write_folder(tmp_path / "ml", GOOD, movies))


def test_header_only_and_non_utf8_ratings_name_the_file(tmp_path):
    # Before: a header-only file ended in IndexError, random bytes in a 'utf-8' codec error without the file.
    with pytest.raises(ValueError, match=r"ratings\.csv: no ratings \(the file holds no data rows\)"):
        ml.read_movielens(write_folder(tmp_path / "a", "userId,movieId,rating,timestamp\n"))
    with pytest.raises(ValueError, match=r"movies\.csv: no films"):
        ml.read_movielens(write_folder(tmp_path / "b", GOOD, "movieId,title,genres\n"))
    folder = write_folder(tmp_path / "c", "")
    (folder / "ratings.csv").write_bytes(b"userId,movieId,rating\n1,10,4\n\x82\xff\xfe garbage \x81\n")
    with pytest.raises(ValueError, match=r"c/ratings\.csv: not UTF-8 text \(byte 0x82 at line 3\)"):
        ml.read_movielens(folder)


def test_ids_beyond_32_bits_are_refused_not_wrapped(tmp_path):
    # 99999999999 wraps to 1215752191 in int32 (99999999999 mod 2**32), which would merge the two
    # users below into one; the reader keeps ids in 32 bits and refuses larger ones with the line.
    assert np.int64(99999999999).astype(np.int32) == 1215752191
    ratings = "userId,movieId,rating\n1215752191,10,4.0\n99999999999,10,3.0\n"
    with pytest.raises(ValueError, match=r"ratings\.csv: userId 99999999999 at line 3 does not fit in 32 bits"):
        ml.read_movielens(write_folder(tmp_path / "a", ratings))
    movies = "movieId,title,genres\n10,A,Drama\n4294967306,B,Drama\n"
    with pytest.raises(ValueError, match=r"movies\.csv: movieId 4294967306 at line 3 does not fit in 32 bits"):
        ml.read_movielens(write_folder(tmp_path / "b", GOOD, movies))
    ratings, _ = ml.read_movielens(write_folder(tmp_path / "c", "userId,movieId,rating\n2147483647,10,4.0\n"))
    assert ratings["userId"].tolist() == [2147483647]  # the largest int32 id is kept exactly


def test_dropped_ratings_are_counted_and_named(tmp_path, capsys):
    # 2 of 5 ratings name films missing from movies.csv (99 and 98): a warning with the count and
    # an example id, and CourseData.n_dropped; the course's inner merge drops them.
    ratings = "userId,movieId,rating\n1,10,4\n1,99,3\n2,98,5\n2,20,3\n3,10,2\n"
    folder = write_folder(tmp_path / "ml", ratings)
    with pytest.warns(ml.DroppedRatingsWarning, match=r"2 of 5 rating\(s\) \(40\.0%\) have a movieId that is not in "
                                                       r"movies\.csv \(e\.g\. movieId 99\)"):
        data = ml.load_course_data(folder, test_size=0.34)
    assert data.n_dropped == 2 and len(data.frame) == 3
    # All dropped: the error names the cause instead of only "0 rating(s)".
    folder = write_folder(tmp_path / "none", "userId,movieId,rating\n1,11,4\n2,12,3\n")
    with pytest.warns(ml.DroppedRatingsWarning), \
            pytest.raises(ValueError, match=r"the ratings hold 0 user\(s\) after the merge with movies\.csv.*2 of 2 rating\(s\) \(100\.0%\) "
                                            r"have a movieId that is not in movies\.csv \(e\.g\. movieId 11\)"):
        ml.load_course_data(folder)


def test_cli_reports_bad_data_in_one_line(tmp_path, capsys):
    folder = write_folder(tmp_path / "ml", "userId,movieId,rating\n1,10,9\n")
    code = cli.main(["run", "recommender", "--data", str(folder), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("kcourse: error: ") and "ratings.csv" in err[-1] and "outside 0.5..5.0" in err[-1]


# ----------------------------------------------------------------------------------------------
# The pandas merge order
# ----------------------------------------------------------------------------------------------

# Toy frames. Left keys (movieId) in file order: 20, 10, 10, 30, 20, 99, 10.
TOY_RATINGS = pd.DataFrame({
    "userId": [5, 5, 6, 7, 7, 8, 8],
    "movieId": [20, 10, 10, 30, 20, 99, 10],
    "rating": [4.0, 3.0, 2.0, 5.0, 1.0, 2.5, 3.5],
})
TOY_MOVIES = pd.DataFrame({"movieId": [10, 20, 30, 40], "title": ["Ten", "Twenty", "Thirty", "Forty"],
                           "genres": ["Drama"] * 4})


def test_pre22_merge_order_written_by_hand():
    # pandas < 2.2 inner merge: rows grouped by key in order of the key's first appearance in the
    # left frame (20 at row 0, 10 at row 1, 30 at row 3; 99 has no film and is dropped), rows of
    # one key in file order:  20 -> rows 0, 4;  10 -> rows 1, 2, 6;  30 -> row 3.
    assert ml.merge_rows(TOY_RATINGS, TOY_MOVIES, "pre-2.2").tolist() == [0, 4, 1, 2, 6, 3]
    merged = ml.course_merge(TOY_RATINGS, TOY_MOVIES, "pre-2.2")
    assert merged["userId"].tolist() == [5, 7, 5, 6, 8, 7]
    assert merged["title"].tolist() == ["Twenty", "Twenty", "Ten", "Ten", "Ten", "Thirty"]
    # so userId.unique() -- what the course samples from -- is [5, 7, 6, 8] ...
    assert pd.unique(merged["userId"]).tolist() == [5, 7, 6, 8]
    # ... while pandas >= 2.2 keeps the left order: rows 0,1,2,3,4,6 and unique users [5, 6, 7, 8].
    current = ml.course_merge(TOY_RATINGS, TOY_MOVIES, "current")
    assert current["userId"].tolist() == [5, 5, 6, 7, 7, 8]
    assert pd.unique(current["userId"]).tolist() == [5, 6, 7, 8]


def test_current_order_is_what_this_pandas_does():
    expected = pd.merge(TOY_RATINGS, TOY_MOVIES)
    got = ml.course_merge(TOY_RATINGS, TOY_MOVIES, "current" if _pandas_at_least("2.2") else "pre-2.2")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


def _pandas_at_least(version: str) -> bool:
    major, minor = (int(p) for p in pd.__version__.split(".")[:2])
    want = tuple(int(p) for p in version.split("."))
    return (major, minor) >= want


def test_merge_order_changes_the_sampled_users():
    # 40 users; the seeded choice of 10 depends on the order of userId.unique().
    rng = np.random.default_rng(0)
    rows = [(u, m) for u in range(1, 41) for m in rng.choice(np.arange(1, 30), 5, replace=False)]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId"]).assign(rating=3.0)
    movies = pd.DataFrame({"movieId": np.arange(1, 30), "title": [f"F{i}" for i in range(1, 30)], "genres": "Drama"})
    old = ml.course_preprocess(ratings, movies, merge_order="pre-2.2", n_users=10, forced_user=None)
    new = ml.course_preprocess(ratings, movies, merge_order="current", n_users=10, forced_user=None)
    assert set(old.user_ids) != set(new.user_ids)


# ----------------------------------------------------------------------------------------------
# The course preprocessing
# ----------------------------------------------------------------------------------------------


def test_course_preprocess_step_by_step():
    # Hand-computed on the toy frames (pre-2.2 order, all 4 users kept since 4 <= n_users):
    # merged users [5, 7, 5, 6, 8, 7] and films [20, 20, 10, 10, 10, 30]. CPython iterates a set of
    # small ints by hash slot (value % 8 in an 8-slot table): set(users) -> 8 (slot 0), 5, 6, 7
    # and set(films) -> 10 (slot 2), 20 (slot 4), 30 (slot 6). So user index = position in
    # [8, 5, 6, 7] and film index = position in [10, 20, 30].
    with pytest.warns(ml.DroppedRatingsWarning, match=r"1 of 7 rating\(s\).*movieId 99"):  # film 99 is not in TOY_MOVIES
        data = ml.course_preprocess(TOY_RATINGS, TOY_MOVIES, n_users=5000, test_size=0.5)
    assert data.user_ids.tolist() == [8, 5, 6, 7]
    assert data.movie_ids.tolist() == [10, 20, 30]
    assert data.frame["userId"].tolist() == [1, 3, 1, 2, 0, 3]
    assert data.frame["movieId"].tolist() == [1, 1, 0, 0, 0, 2]
    assert data.titles.tolist() == ["Ten", "Twenty", "Thirty"]
    assert data.genres.tolist() == ["Drama"] * 3
    assert data.genre_matrix()[1] == ["Drama"]
    assert data.frame["title"].tolist() == ["Twenty", "Twenty", "Ten", "Ten", "Ten", "Thirty"]
    # the split keeps each example's source row: its rating equals the file's
    for x, y, row in zip(data.x_train, data.y_train[:, 0], data.rows_train):
        assert TOY_RATINGS["rating"][row] == y
        assert data.user_ids[x[0]] == TOY_RATINGS["userId"][row] and data.movie_ids[x[1]] == TOY_RATINGS["movieId"][row]


def test_genre_matrix_by_hand():
    # Names sorted: Action, Comedy, Drama. A film's row is 1/k on each of its k genres; MovieLens'
    # "(no genres listed)" and an empty field give zero rows; a repeated name counts once.
    matrix, names = ml.genre_matrix(["Comedy|Action", "(no genres listed)", "Drama", "", "Drama|Drama"])
    assert names == ["Action", "Comedy", "Drama"]
    np.testing.assert_allclose(matrix, [[0.5, 0.5, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 1]])
    assert matrix.dtype == np.float32


def test_set_order_is_the_course_construction():
    # 16 and 8 share slot 0 of an 8-slot table, so the set's order is the insertion order:
    # set([16, 8]) iterates 16, 8 and set([8, 16]) iterates 8, 16. The re-indexing therefore
    # depends on the row order, and must be built from the column exactly as the course does.
    movies = TOY_MOVIES
    a = ml.course_preprocess(pd.DataFrame({"userId": [16, 8], "movieId": [10, 10], "rating": [3.0, 4.0]}),
                             movies, test_size=0.5)
    b = ml.course_preprocess(pd.DataFrame({"userId": [8, 16], "movieId": [10, 10], "rating": [3.0, 4.0]}),
                             movies, test_size=0.5)
    assert a.user_ids.tolist() == [16, 8]
    assert b.user_ids.tolist() == [8, 16]


def test_course_split_sizes_and_sampling():
    # 6000 users x 3 ratings: the course samples 5000 users -> 15,000 rows. The course overwrites
    # sample[0] with its forced user 46889; where that user is not in the data (4999 users with the
    # course's code) it is not forced, with a warning that says so (issue 23, fault 5).
    users = np.repeat(np.arange(1, 6001), 3)
    movies_col = np.tile([10, 20, 30], 6000)
    ratings = pd.DataFrame({"userId": users, "movieId": movies_col, "rating": 3.0})
    data = ml.course_preprocess(ratings, TOY_MOVIES, forced_user=None)
    assert data.n_users == 5000 and len(data.frame) == 15_000
    # train_test_split(test_size=0.1): ceil(0.1 * 15000) = 1500 val, 13500 train
    assert (len(data.x_train), len(data.x_val)) == (13_500, 1_500)
    with pytest.warns(ml.CourseDataWarning, match=r"forced user \(userId 46889, of ml-20m\) is not in this data: "
                                                  r"5000 users sampled without it"):
        forced = ml.course_preprocess(ratings, TOY_MOVIES)
    assert forced.n_users == 5000 and forced.user_ids.tolist() == data.user_ids.tolist()
    # the course's 721,484 rows split into 649,335 / 72,149
    x = np.zeros((721_484, 2))
    import sklearn.model_selection
    a, b = sklearn.model_selection.train_test_split(x, test_size=0.1, random_state=42)
    assert (len(a), len(b)) == (649_335, 72_149)


def test_sampling_is_the_course_call():
    pool = np.array([11, 22, 33, 44, 55, 66, 46889])  # the forced user is in the data, as in ml-20m
    np.random.seed(43052)
    expected = np.random.choice(pool, 3, replace=False)
    expected[0] = 46889
    assert ml.sample_users(pool, 3).tolist() == expected.tolist()


# ----------------------------------------------------------------------------------------------
# Synthetic data
# ----------------------------------------------------------------------------------------------


def test_expected_rating_by_hand():
    # r_true far inside the scale with tiny noise -> the nearest half star: 3.3 -> 3.5, 3.2 -> 3.0
    np.testing.assert_allclose(ml.expected_rating(np.array([3.3, 3.2]), 1e-3), [3.5, 3.0])
    # at 10 (far above) everything lands on 5.0; at -5 on 0.5
    np.testing.assert_allclose(ml.expected_rating(np.array([10.0, -5.0]), 0.5), [5.0, 0.5])
    # at r = 2.75 exactly between 2.5 and 3.0 bins with noise 0.1: symmetric -> 2.75
    np.testing.assert_allclose(ml.expected_rating(np.array([2.75]), 0.1), [2.75], atol=1e-6)


def test_synthetic_folder_layout_and_truth(tmp_path):
    spec = ml.SyntheticSpec(n_users=50, n_movies=70, n_ratings=1500, seed=3)
    info = ml.generate_synthetic(tmp_path / "syn", spec)
    ratings, movies = ml.read_movielens(tmp_path / "syn")  # passes validation
    assert len(ratings) == 1500 and ratings["userId"].nunique() == 50
    assert set(np.unique(ratings["rating"])) <= set(np.arange(1, 11) * 0.5)
    assert ratings.groupby("userId").size().min() >= 20  # like ml-20m
    assert (np.diff(ratings["userId"].to_numpy()) >= 0).all()  # sorted by user, as ml-20m
    assert movies["title"].is_unique and movies["genres"].str.len().min() > 0
    truth = np.load(tmp_path / "syn" / ml.TRUTH_FILE)["expected"]
    oracle = np.mean((ratings["rating"].to_numpy() - truth) ** 2)
    assert info["oracle_mse"] == pytest.approx(oracle, rel=1e-5)
    # the oracle beats predicting the mean by a wide margin: the data has structure to learn
    assert oracle < 0.8 * np.var(ratings["rating"].to_numpy())
    data = ml.load_course_data(tmp_path / "syn", test_size=0.2)
    val_oracle = ml.oracle_mse(tmp_path / "syn", data.rows_val, data.y_val)
    assert 0.3 < val_oracle < 1.0


def test_synthetic_is_deterministic(tmp_path):
    spec = ml.SyntheticSpec(n_users=30, n_movies=40, n_ratings=700, seed=1)
    ml.generate_synthetic(tmp_path / "a", spec)
    ml.generate_synthetic(tmp_path / "b", spec)
    assert (tmp_path / "a" / "ratings.csv").read_bytes() == (tmp_path / "b" / "ratings.csv").read_bytes()


def test_data_synthetic_never_deletes_foreign_files(tmp_path, capsys):
    # Before: `kcourse data synthetic tiny --to DIR` replaced DIR whatever it held, and exited 0.
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    code = cli.main(["data", "synthetic", "tiny", "--to", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "is not empty and is not a synthetic folder written by kcourse (it holds notes.txt)" in err
    assert "nothing was changed" in err
    assert (folder / "notes.txt").read_text() == "hi" and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    # A real MovieLens folder (no SYNTHETIC.json) is refused too.
    real = write_folder(tmp_path / "real", GOOD)
    assert cli.main(["data", "synthetic", "tiny", "--to", str(real)]) == 2
    assert (real / "ratings.csv").read_text() == GOOD
    # An empty folder, and an earlier synthetic folder of ours, are written (atomically).
    (tmp_path / "empty").mkdir()
    assert cli.main(["data", "synthetic", "tiny", "--to", str(tmp_path / "empty")]) == 0
    assert cli.main(["data", "synthetic", "tiny", "--to", str(tmp_path / "empty"), "--seed", "3"]) == 0
    info = json.loads((tmp_path / "empty" / ml.INFO_FILE).read_text())
    assert info["spec"]["seed"] == 3 and files.is_complete(tmp_path / "empty")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left


def test_synthetic_rejects_impossible_sizes(tmp_path):
    with pytest.raises(ValueError, match="n_ratings"):
        ml.generate_synthetic(tmp_path / "x", ml.SyntheticSpec(n_users=2, n_movies=3, n_ratings=100))


# ----------------------------------------------------------------------------------------------
# Download against a local server
# ----------------------------------------------------------------------------------------------


def test_download_verifies_and_unpacks(tmp_path, server, zip_of):
    root, url = server
    ml.generate_synthetic(tmp_path / "src", ml.SyntheticSpec(n_users=20, n_movies=30, n_ratings=400))
    payload = zip_of(tmp_path / "src", "ml-latest-small")
    (root / "ml-latest-small.zip").write_bytes(payload)
    (root / "ml-latest-small.zip.md5").write_text(hashlib.md5(payload).hexdigest() + "  ml-latest-small.zip\n")
    code = cli.main(["data", "download", "ml-latest-small", "--to", str(tmp_path / "data"), "--base-url", url])
    assert code == 0
    target = tmp_path / "data" / "ml-latest-small"
    assert files.is_complete(target)
    ratings, _ = ml.read_movielens(target)
    assert len(ratings) == 400
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ml-latest-small"]  # no temporaries left


def test_download_checksum_mismatch_leaves_nothing(tmp_path, server, capsys):
    root, url = server
    (root / "ml-20m.zip").write_bytes(b"not really a zip")
    (root / "ml-20m.zip.md5").write_text("0" * 32 + "\n")
    code = cli.main(["data", "download", "ml-20m", "--to", str(tmp_path / "data"), "--base-url", url])
    assert code == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # no half-finished dataset, no partial file, not even the --to folder


def test_download_missing_files_in_archive(tmp_path, server):
    root, url = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-25m/README.txt", "hello")
    (root / "ml-25m.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="no ratings.csv"):
        ml.download("ml-25m", tmp_path / "data", base_url=url, md5=hashlib.md5(buffer.getvalue()).hexdigest())
    assert not (tmp_path / "data" / "ml-25m").exists()


def test_synthetic_cache_is_regenerated_when_the_generator_changed(tmp_path):
    folder = ml.synthetic_folder("tiny", seed=0, root=tmp_path)
    info_file = folder / ml.INFO_FILE
    first = info_file.stat().st_mtime_ns
    assert ml.synthetic_folder("tiny", seed=0, root=tmp_path) == folder
    assert info_file.stat().st_mtime_ns == first  # current cache: reused, not rewritten
    stale = json.loads(info_file.read_text())
    stale["spec"]["noise"] = 0.123  # as if written by an older generator with other defaults
    info_file.write_text(json.dumps(stale))
    ml.synthetic_folder("tiny", seed=0, root=tmp_path)
    remade = json.loads(info_file.read_text())
    assert remade["spec"]["noise"] != 0.123 and remade["generator_version"] == ml.GENERATOR_VERSION
