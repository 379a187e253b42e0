"""The synthetic generator's output is frozen (issue 33, item 16): splitting ``keras_impl/movielens/synthetic.py``
into ``synthetic``, ``catalogue`` and ``truth`` changed no array. The digests were recorded on the module as
of commit 1d1b214 (before the saved rating centre and the split), for generator seeds 0-5 with and without the
exposure model."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from keras_impl import movielens as ml

EXPOSURE = dict(exposure_taste=1.5, exposure_interest=2.5, interest_rank=6, popularity_exponent=1.3,
                popularity_offset=5.0, activity_sigma=1.4)  # the latest-small calibration, at a tiny size
DIGESTS = {
    ("plain", 0): "488255b1a28787f3", ("plain", 1): "8214e12a58df304d", ("plain", 2): "903211f048212153",
    ("plain", 3): "0a64b629263aaef0", ("plain", 4): "1bdbf04fec333469", ("plain", 5): "bdfd6b663a2d92be",
    ("exposure", 0): "8e272325d5fa3faa", ("exposure", 1): "3e5edcace869830d", ("exposure", 2): "c4135dcddb496ec7",
    ("exposure", 3): "09b04dd0239b74a3", ("exposure", 4): "e2f85d49a32807bd", ("exposure", 5): "359dea12a15d5ce0",
}


def digest(folder) -> str:
    """SHA-256 (16 hex digits) of every array a folder holds: ratings, films, titles, genres, the truth file."""
    h = hashlib.sha256()
    ratings, movies = pd.read_csv(folder / "ratings.csv"), pd.read_csv(folder / "movies.csv")
    for column in ("userId", "movieId", "rating", "timestamp"):
        h.update(ratings[column].to_numpy().tobytes())
    h.update(movies["movieId"].to_numpy().tobytes())
    h.update("\n".join(movies["title"]).encode())
    h.update("\n".join(movies["genres"]).encode())
    with np.load(folder / ml.TRUTH_FILE) as truth:
        for name in sorted(truth.files):
            h.update(name.encode())
            h.update(truth[name].tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("model", ["plain", "exposure"])
def test_generator_arrays_for_seeds_0_to_5_are_unchanged(tmp_path, model):
    options = EXPOSURE if model == "exposure" else {}
    for seed in range(6):
        folder = tmp_path / f"{model}{seed}"
        ml.generate_synthetic(folder, ml.SyntheticSpec(60, 80, 1500, seed=seed, **options))
        assert digest(folder) == DIGESTS[(model, seed)], (model, seed)
