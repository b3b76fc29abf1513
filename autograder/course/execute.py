"""Run a solution notebook top to bottom and store its outputs (plots, figures).

The kernel's working directory is the assignment folder, where the helper
module and public_tests.py live, exactly as for a learner.
"""
from __future__ import annotations

import time

import nbformat
from nbclient import NotebookClient

from autograder.grading import catalogue


def execute_solution(name: str, timeout: int = 1800) -> float:
    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.solution_path), as_version=4)
    started = time.monotonic()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(spec.release_dir)}})
    client.execute()
    nbformat.write(nb, str(spec.solution_path))
    return time.monotonic() - started
