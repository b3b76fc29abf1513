"""dlgrade vs nbgrader autograde on numpy-assignment submissions, in one run.

    python bench/bench_numpy.py [--assignment initialization] [--count 12] [--out bench/out]

Prints, for the same notebooks:
  - nbgrader: `nbgrader autograde --student X` per submission (median s), and
    one `nbgrader autograde` over all of them (s per submission);
  - dlgrade: `dlgrade grade` per submission as a fresh command (median s),
    grade_notebook() in one warm process (median s per submission, what
    `dlgrade batch` does in each worker), and `dlgrade batch` (s per submission);
and the ratios. Scores of both engines are printed to show they agree on the
correct and the stub submissions.
"""

from __future__ import annotations

import sys

from common import run_benchmark


def main(argv=None) -> int:
    run_benchmark(argv, __doc__, "initialization", 12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
