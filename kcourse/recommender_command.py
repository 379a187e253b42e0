"""``kcourse predict`` and ``kcourse recommend``: ask a saved recommender, by MovieLens id or course index."""
from __future__ import annotations

from pathlib import Path

from keras_impl import recommender as rec
from keras_impl.movielens import course_index


def _load(path: str):
    """The model at ``path``, or in ``path/checkpoints/recommender.keras`` when ``path`` is a run folder."""
    model_path = Path(path)
    if model_path.is_dir():
        model_path = model_path / "checkpoints" / "recommender.keras"
    return rec.load(model_path)


def predict(args) -> int:
    """Print one predicted rating with the user's and the film's ids, indices and title."""
    model = _load(args.model)
    answer = rec.predict(model, args.user, args.movie, by=args.by)
    print(f"user {answer['user_id']} (index {answer['user_index']}) x movie {answer['movie_id']} (index "
          f"{answer['movie_index']}) {answer['title']!r}, {answer['n_ratings']:,} training ratings: predicted rating "
          f"{answer['rating']:.2f}")
    return 0


def recommend(args) -> int:
    """Print the top-N with predicted rating, lower bound, training-rating count, id and title."""
    model = _load(args.model)
    top = rec.recommend(model, args.user, n=args.n, by=args.by, rank=args.rank, z=args.z, min_ratings=args.min_ratings)
    user = course_index(args.user, model.mappings.user_ids, args.by, "user", "user")
    how = {"lower-bound": f"lower bound (z {args.z:g})", "mean": "predicted rating",
           "ease": "EASE (what people who watched the same films watched)",
           "ease-rating": "EASE blended with the predicted rating"}[args.rank]
    print(f"top {len(top)} unseen films for user {int(model.mappings.user_ids[user])} (index {user}) by {how}, films "
          f"with at least {args.min_ratings} training ratings:")
    print(f"  {'#':>3}  {'rating':>6}  {'lower':>5}  {'ratings':>8}  {'movieId':>8}  title")
    for rank, item in enumerate(top, 1):
        print(f"  {rank:>3}  {item['rating']:>6.2f}  {item['lower_bound']:>5.2f}  {item['n_ratings']:>8,}  "
              f"{item['movie_id']:>8}  {item['title']}")
    return 0
