"""The MovieLens ml-latest-small set shipped inside the package (``keras_impl/movielens/ml-latest-small/``).

GroupLens' licence for it (``ml-latest-small/README.txt``, "Usage License") allows redistribution
under the same terms: research and education, no commercial use without GroupLens' permission, no
endorsement implied, and publications cite F. Maxwell Harper and Joseph A. Konstan, "The MovieLens
Datasets: History and Context", ACM TiiS 5(4), 2015. The project's ``NOTICE`` carves these files out
of its Apache-2.0 licence. Only ``ratings.csv``, ``movies.csv`` and ``README.txt`` are shipped.
"""
from __future__ import annotations

from pathlib import Path

BUNDLED_NAME = "ml-latest-small"


def bundled_folder() -> Path:
    """The shipped ml-latest-small folder (``ratings.csv``, ``movies.csv``, ``README.txt``).

    Returns:
        The folder's path inside the installed package (a git install has it: ``setup.cfg``'s
        ``package_data``). Whether the files are there is for the caller to check.
    """
    return Path(__file__).resolve().parent / BUNDLED_NAME
