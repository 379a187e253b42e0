"""``python -m keras_impl.recommender worker ...``: one worker of a multi-worker run."""
import sys

from keras_impl.recommender.exercise import worker_main

if len(sys.argv) > 1 and sys.argv[1] == "worker":
    sys.exit(worker_main(sys.argv[2:]))
print("usage: python -m keras_impl.recommender worker --data DIR --out result.json  "
      "(or `kcourse run recommender`)", file=sys.stderr)
sys.exit(2)
