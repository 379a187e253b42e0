"""``kcourse data download NAME --to DIR`` and ``kcourse data synthetic SIZE --to DIR``."""
from __future__ import annotations

import urllib.error

from keras_impl import movielens
from keras_impl.config import invalid


def download(args) -> int:
    """Fetch, check and unpack a MovieLens archive."""
    try:
        folder = movielens.download(args.name, args.to, base_url=args.base_url, md5=args.md5)
    except urllib.error.URLError as err:
        raise ValueError(f"download of {args.name} failed: {err.reason}") from None
    print(f"{args.name}: {folder}")
    return 0


def synthetic(args) -> int:
    """Write a synthetic folder (refusing a folder that holds anything else)."""
    if args.seed < 0:  # NumPy's "expected non-negative integer" did not name the argument
        raise invalid("--seed", ">= 0", args.seed)
    info = movielens.generate_synthetic(args.to, args.size, seed=args.seed, layout=args.layout)
    print(f"synthetic {args.size} ({args.layout} layout): {info['n_users']} users, {info['n_movies']} films, "
          f"{info['n_ratings']} ratings, oracle MSE {info['oracle_mse']:.4f} -> {args.to}")
    return 0
