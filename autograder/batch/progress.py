"""The progress of a batch run: a bar on a terminal, a line now and then elsewhere (CI logs).

The time left is weighed by each job's expected cost (plan.expected_seconds), so that a batch that
grades its TensorFlow submissions first does not promise the rest at TensorFlow's pace: the time per
unit of expected cost so far, times the expected cost still to grade."""

from __future__ import annotations

import sys
import time

# Without a terminal (CI logs) a progress line every this many submissions or seconds.
PROGRESS_EVERY = 25
PROGRESS_SECONDS = 30.0


class Progress:
    """A bar on a terminal; elsewhere (CI logs) a line every PROGRESS_EVERY submissions or PROGRESS_SECONDS."""

    def __init__(self, total: int, mode: bool | None, weight_total: float | None = None):
        self.total, self.done, self.failed = total, 0, 0
        self.weight_total = float(total) if weight_total is None else weight_total
        self.weight_done = 0.0
        self.started = self.last_line = time.monotonic()
        self.last_count = 0
        self.bar = None
        self.lines = mode is None and not sys.stderr.isatty()
        if mode is True or (mode is None and not self.lines):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="nb", desc="grading", dynamic_ncols=True)

    def note(self, text: str) -> None:
        from autograder.grading.reports import clean_text

        text = clean_text(text, one_line=True)  # it may quote learner and file names
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.lines:
            print(text, file=sys.stderr, flush=True)

    def left_seconds(self) -> float | None:
        """The expected seconds left (None until something is done)."""
        if not self.done or self.weight_done <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return max(0.0, elapsed / self.weight_done * (self.weight_total - self.weight_done))

    def update(self, failed: bool, weight: float = 1.0) -> None:
        self.done += 1
        self.failed += failed
        self.weight_done += weight
        left = self.left_seconds()
        if self.bar is not None:
            self.bar.update(1)
            eta = f", about {left:.0f} s left" if left is not None and self.done < self.total else ""
            self.bar.set_postfix_str(f"done {self.done}, failed {self.failed}, remaining {self.total - self.done}{eta}")
            return
        now = time.monotonic()
        if self.lines and (
            self.done - self.last_count >= PROGRESS_EVERY
            or now - self.last_line >= PROGRESS_SECONDS
            or self.done == self.total
        ):
            elapsed = now - self.started
            print(
                f"graded {self.done}/{self.total} ({self.failed} could not be graded), {elapsed:.0f} s elapsed"
                + (f", about {left:.0f} s left" if left is not None and self.done < self.total else ""),
                file=sys.stderr,
                flush=True,
            )
            self.last_line, self.last_count = now, self.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
