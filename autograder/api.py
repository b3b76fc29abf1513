"""The library entry points: what the CLI, the batch runner and the tests call."""
from autograder.grading import grade_notebook  # noqa: F401
from autograder.reports import write_reports  # noqa: F401
