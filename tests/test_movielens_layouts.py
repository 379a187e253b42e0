"""ml-100k and ml-1m read natively: layout detection, the readers' messages, synthetic folders, downloads."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from kcourse import cli
from keras_impl import files
from keras_impl import movielens as ml

SPEC = ml.SyntheticSpec(n_users=30, n_movies=40, n_ratings=700, seed=4)
ITEM_FLAGS = "|".join(["0"] * 19)


def write(folder: Path, **contents) -> Path:
    """Files named by keyword (``u_data="..."`` -> ``u.data``); bytes are written as they are."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        path = folder / name.replace("_", ".")
        path.write_bytes(text if isinstance(text, bytes) else text.encode("latin-1"))
    return folder


def item_line(movie_id, title, genres=()):
    """One u.item line: id|title|release date|video release date|IMDb URL|19 flags."""
    flags = ["1" if name in genres else "0" for name in ml.grouplens.ML100K_GENRE_NAMES]
    return "|".join([str(movie_id), title, "01-Jan-1995", "", "http://x"] + flags)


# ----------------------------------------------------------------------------------------------
# The same synthetic data in three layouts reads back the same
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["ml-100k", "ml-1m"])
def test_synthetic_layouts_read_back_like_the_csv_one(tmp_path, layout):
    ml.generate_synthetic(tmp_path / "csv", SPEC)
    info = ml.generate_synthetic(tmp_path / layout, SPEC, layout=layout)
    assert ml.detect_layout(tmp_path / layout) == layout and ml.detect_layout(tmp_path / "csv") == "csv"
    assert info["layout"] == layout
    r_csv, m_csv = ml.read_movielens(tmp_path / "csv")
    r_new, m_new = ml.read_movielens(tmp_path / layout)
    assert r_new.equals(r_csv)  # same rows, order, dtypes (int32 ids, float32 half stars, int64 timestamps)
    assert m_new["movieId"].tolist() == m_csv["movieId"].tolist() and m_new["title"].tolist() == m_csv["title"].tolist()
    # ml-100k names the genre "Children's" (u.genre); the other names are the CSV layout's
    assert m_new["genres"].str.replace("Children's", "Children").tolist() == m_csv["genres"].tolist()
    # the oracle still lines up with the rows of the ratings file
    data = ml.load_course_data(tmp_path / layout, test_size=0.2)
    assert 0.3 < ml.oracle_mse(tmp_path / layout, data.rows_val, data.y_val) < 1.0


def test_ml100k_by_hand_with_latin1_titles_and_genre_flags(tmp_path):
    folder = write(tmp_path / "ml", u_data="1\t10\t4\t881250949\n2\t20\t5\t881250950\n",
                   u_item=item_line(10, "Amélie (2001)", ("Comedy", "Romance")) + "\n" + item_line(20, "Heat (1995)",
                                                                                                   ("unknown",)) + "\n")
    ratings, movies = ml.read_movielens(folder)
    assert ratings["userId"].tolist() == [1, 2] and ratings["rating"].tolist() == [4.0, 5.0]
    assert ratings["timestamp"].tolist() == [881250949, 881250950]
    assert movies["title"].tolist() == ["Amélie (2001)", "Heat (1995)"]  # the latin-1 byte 0xe9 is é
    assert movies["genres"].tolist() == ["Comedy|Romance", "(no genres listed)"]  # "unknown" is no genre


def test_ml1m_by_hand(tmp_path):
    folder = write(tmp_path / "ml", ratings_dat="1::10::4::978300760\n1::20::3::978302109\n",
                   movies_dat="10::Père Noël (1982)::Comedy\n20::Toy Story (1995)::Animation|Children's|Comedy\n")
    ratings, movies = ml.read_movielens(folder)
    assert ratings["movieId"].tolist() == [10, 20] and ratings["rating"].tolist() == [4.0, 3.0]
    assert movies["title"].tolist() == ["Père Noël (1982)", "Toy Story (1995)"]
    assert movies["genres"].tolist()[1] == "Animation|Children's|Comedy"


# ----------------------------------------------------------------------------------------------
# Bad input: each names the file, and the line, field or value
# ----------------------------------------------------------------------------------------------

GOOD_ITEM = item_line(10, "A (1990)", ("Drama",)) + "\n"


@pytest.mark.parametrize("contents, message", [
    # wrong separator: commas instead of tabs
    ({"u_data": "1,10,4,881250949\n", "u_item": GOOD_ITEM},
     r"u\.data: line 1 has 1 '\\t'-separated field\(s\), expected 4 \(user id, item id, rating, timestamp\)"),
    ({"u_data": "1\t10\t4\t1\n", "u_item": "10,A (1990),01-Jan-1990\n"},
     r"u\.item: line 1 has 1 '\|'-separated field\(s\), expected 24"),
    # a bad value: the same message as the CSV layout, with the line (no header: line 1 is row 1)
    ({"u_data": "1\t10\t4\t1\n1\t20\t9\t2\n", "u_item": GOOD_ITEM},
     r"u\.data: 1 rating\(s\) outside 0\.5\.\.5\.0 in column 'rating', e\.g\. 9\.0 at line 2"),
    ({"u_data": "1\t10\t4\t1\nx\t20\t3\t2\n", "u_item": GOOD_ITEM},
     r"u\.data: non-numeric value 'x' in column 'userId' at line 2"),
    ({"u_data": "1\t10\t4\t1\n1\t10\t3\t2\n", "u_item": GOOD_ITEM},
     r"u\.data: 1 duplicate \(userId, movieId\) pair\(s\), e\.g\. \(1, 10\) at lines 1 and 2"),
    ({"u_data": "1\t10\t4\t1\n", "u_item": GOOD_ITEM.replace("|0|0|0|0|0|0|0|0|0|0", "|0|0|0|0|0|0|0|0|0|x", 1)},
     r"u\.item: genre flag '.+' must be 0 or 1; got 'x' at line 1"),
    # bad encoding: a UTF-16 file (what a spreadsheet's "Unicode text" export writes)
    ({"u_data": "1\t10\t4\t1\n".encode("utf-16"), "u_item": GOOD_ITEM},
     r"u\.data: NUL byte at line 1: not a latin-1 text file \(UTF-16 or binary\?\)"),
    ({"u_data": "1\t10\t4\t1\n", "u_item": GOOD_ITEM.encode("utf-16")}, r"u\.item: NUL byte at line 1"),
    ({"u_data": "", "u_item": GOOD_ITEM}, r"u\.data: the file is empty"),
])
def test_ml100k_bad_input_messages(tmp_path, contents, message):
    with pytest.raises(ValueError, match=message):
        ml.read_movielens(write(tmp_path / "ml", **contents))


def test_blank_lines_in_u_data_are_skipped_anywhere_and_errors_keep_the_file_lines(tmp_path):
    # a blank line in the middle was refused while trailing ones were skipped: both are skipped now
    folder = write(tmp_path / "ok", u_data="1\t10\t4\t1\n\n2\t10\t5\t2\n\n\n", u_item=GOOD_ITEM)
    ratings, _ = ml.read_movielens(folder)
    assert ratings["rating"].tolist() == [4.0, 5.0]
    # the bad rating is on the file's line 4 (line 2 is blank, line 3 a good row): the message says 4
    folder = write(tmp_path / "bad", u_data="1\t10\t4\t1\n\n2\t10\t5\t2\n3\t10\t9\t3\n", u_item=GOOD_ITEM)
    with pytest.raises(ValueError, match=r"u\.data: 1 rating\(s\) outside 0\.5\.\.5\.0 in column 'rating', e\.g\. 9\.0 "
                                         r"at line 4$"):
        ml.read_movielens(folder)


@pytest.mark.parametrize("contents, message", [
    ({"ratings_dat": "1\t10\t4\t978300760\n", "movies_dat": "10::A::Drama\n"},
     r"ratings\.dat: line 1 has 1 '::'-separated field\(s\), expected 4 \(UserID::MovieID::Rating::Timestamp\)"),
    ({"ratings_dat": "1::10::4::1\n", "movies_dat": "10::A::Drama\n20|B|Drama\n"},
     r"movies\.dat: line 2 has 1 '::'-separated field\(s\), expected 3 \(MovieID::Title::Genres\)"),
    ({"ratings_dat": "1::10::4::1\n2::10::4.5::2\n3::10::0::3\n", "movies_dat": "10::A::Drama\n"},
     r"ratings\.dat: 1 rating\(s\) outside 0\.5\.\.5\.0 in column 'rating', e\.g\. 0\.0 at line 3"),
    ({"ratings_dat": "1::10::4::1\n", "movies_dat": "10::A::Drama\n10::B::Drama\n"},
     r"movies\.dat: 1 duplicate movieId value\(s\), e\.g\. 10 at line 2"),
    ({"ratings_dat": "1::10::4::1\n", "movies_dat": "10::::Drama\n"}, r"movies\.dat: missing title at line 1"),
    ({"ratings_dat": "1::10::4::1\n".encode("utf-16-le"), "movies_dat": "10::A::Drama\n"},
     r"ratings\.dat: NUL byte at line 1"),
    ({"ratings_dat": "1::10::4::1\n", "movies_dat": b"10::A\x00::Drama\n"}, r"movies\.dat: NUL byte at line 1"),
])
def test_ml1m_bad_input_messages(tmp_path, contents, message):
    with pytest.raises(ValueError, match=message):
        ml.read_movielens(write(tmp_path / "ml", **contents))


@pytest.mark.parametrize("present, missing", [
    ({"u_data": "1\t10\t4\t1\n"}, r"ml/u\.item: file not found \(a MovieLens folder in the ml-100k layout needs u\.data "
                                  r"and u\.item\)"),
    ({"u_item": GOOD_ITEM}, r"ml/u\.data: file not found"),
    ({"movies_dat": "10::A::Drama\n"}, r"ml/ratings\.dat: file not found .*ml-1m layout"),
    ({"README": "hello"}, r"holds no MovieLens files \(expected one of: ratings\.csv \+ movies\.csv \(csv\); "
                          r"u\.data \+ u\.item \(ml-100k\); ratings\.dat \+ movies\.dat \(ml-1m\)\)"),
])
def test_missing_file_names_it(tmp_path, present, missing):
    with pytest.raises(FileNotFoundError, match=missing):
        ml.read_movielens(write(tmp_path / "ml", **present))


def test_cli_data_synthetic_layouts_and_bad_u_data_in_one_line(tmp_path, capsys):
    assert cli.main(["data", "synthetic", "tiny", "--to", str(tmp_path / "a"), "--layout", "ml-100k"]) == 0
    assert "(ml-100k layout)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        ["COMPLETE", "SYNTHETIC.json", "synthetic_truth.npz", "u.data", "u.genre", "u.item"])
    folder = write(tmp_path / "bad", u_data="1;10;4;1\n", u_item=GOOD_ITEM)
    code = cli.main(["run", "recommender", "--data", str(folder), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("kcourse: error: ") and "u.data: line 1 has 1" in err[-1]


# ----------------------------------------------------------------------------------------------
# Downloads of ml-100k and ml-1m (a local server)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_download_grouplens_layouts(tmp_path, server, name, zip_of):
    root, url = server
    ml.generate_synthetic(tmp_path / "src", SPEC, layout=name)
    payload = zip_of(tmp_path / "src", name)
    (root / f"{name}.zip").write_bytes(payload)
    # Without --md5 the known GroupLens checksum is used, which this synthetic zip cannot match.
    code = cli.main(["data", "download", name, "--to", str(tmp_path / "data"), "--base-url", url])
    assert code == 2 and not (tmp_path / "data" / name).exists()
    with pytest.raises(ValueError, match=rf"checksum mismatch .*expected {ml.KNOWN_MD5[name]}"):
        ml.download(name, tmp_path / "data", base_url=url)
    md5 = hashlib.md5(payload).hexdigest()
    assert cli.main(["data", "download", name, "--to", str(tmp_path / "data"), "--base-url", url, "--md5", md5]) == 0
    target = tmp_path / "data" / name
    assert files.is_complete(target) and ml.detect_layout(target) == name
    assert len(ml.read_movielens(target)[0]) == 700


def test_download_without_published_checksum_or_into_a_foreign_folder(tmp_path, server):
    root, url = server
    (root / "ml-32m.zip").write_bytes(b"PK")  # no ml-32m.zip.md5 on this server
    with pytest.raises(ValueError, match=r"ml-32m\.zip\.md5: no checksum published \(HTTP 404\); pass --md5 HEX"):
        ml.download("ml-32m", tmp_path / "data", base_url=url)
    with pytest.raises(ValueError, match=r"argument `md5`: expected 32 hex digits, got 'abc'"):
        ml.download("ml-32m", tmp_path / "data", base_url=url, md5="abc")
    # A folder the user made at the target is never replaced.
    mine = write(tmp_path / "data" / "ml-100k", notes_txt="mine")
    with pytest.raises(ValueError, match=r"ml-100k exists and is not a complete download by kcourse; nothing was changed"):
        ml.download("ml-100k", tmp_path / "data", base_url=url, md5="0" * 32)
    assert (mine / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------------------------
# The generator's genres
# ----------------------------------------------------------------------------------------------


def test_genre_variance_share_by_hand():
    # One factor column. Films "A" (q 1), "A" (q 3), "B" (q -2), "B" (q -2). Least squares gives the
    # genre rows T_A = mean(1, 3) = 2 and T_B = -2; residuals -1, 1, 0, 0 -> 2; total 1 + 9 + 4 + 4 = 18;
    # share 1 - 2 / 18 = 0.888889. Films without genres keep their whole variance as residual.
    assert ml.genre_variance_share(np.array([[1.0], [3.0], [-2.0], [-2.0]]), ["A", "A", "B", "B"]) == \
        pytest.approx(8 / 9)
    assert ml.genre_variance_share(np.array([[1.0], [3.0]]), ["(no genres listed)", ""]) == 0.0
    # Two columns, one genre for all: T = column means (2, 0); residual 2 + 0 = 2 of 10 + 0 -> 0.8
    assert ml.genre_variance_share(np.array([[1.0, 0.0], [3.0, 0.0]]), ["A", "A"]) == pytest.approx(0.8)


def test_genre_strength_changes_only_the_genres(tmp_path):
    weak = ml.generate_synthetic(tmp_path / "weak", SPEC.__class__(**{**SPEC.__dict__, "n_movies": 400,
                                                                       "n_ratings": 4000, "genre_strength": 0.0}))
    strong = ml.generate_synthetic(tmp_path / "strong", SPEC.__class__(**{**SPEC.__dict__, "n_movies": 400,
                                                                           "n_ratings": 4000, "genre_strength": 1.0}))
    for name in ("ratings.csv", ml.TRUTH_FILE):  # ratings, truth and the oracle do not move
        assert (tmp_path / "weak" / name).read_bytes() == (tmp_path / "strong" / name).read_bytes()
    assert weak["oracle_mse"] == strong["oracle_mse"]
    assert (tmp_path / "weak" / "movies.csv").read_text() != (tmp_path / "strong" / "movies.csv").read_text()
    # strength 0: the genres explain only what 18 free genre rows fit by chance (400 films, rank 4)
    assert weak["genre_variance_share"] < 0.1 < 0.3 < strong["genre_variance_share"]
    with pytest.raises(ValueError, match=r"argument `genre_strength`: expected 0 <= genre_strength <= 1, got 1.5"):
        ml.assign_genres(np.zeros((3, 2)), 1.5, np.random.default_rng(0))
