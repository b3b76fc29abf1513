"""dlgrade vs nbgrader autograde on TensorFlow submissions (assignment 5), in one run.

    python bench/bench_tf.py [--count 50] [--out bench/out]

The same measurements as bench_numpy.py: a cold `dlgrade grade` (a fresh
interpreter that imports TensorFlow and starts a zygote), grade_notebook() in a
warm process whose zygote has TensorFlow imported and forks one sandboxed child
per submission, `dlgrade batch` over all submissions (amortized seconds per
submission), and nbgrader autograde on the same notebooks.
"""

from __future__ import annotations

import sys

from common import run_benchmark


def main(argv=None) -> int:
    run_benchmark(argv, __doc__, "tensorflow_intro", 50)
    return 0


if __name__ == "__main__":
    sys.exit(main())
