"""Feedback that does not mislead (issue 21, item 5).

An untouched stub says "not implemented yet" whatever exception its None or
NotImplementedError surfaced as in a check; the rename hint never names
another graded function; check names do not repeat the function's name or end
in stray punctuation; ``check_all()`` shows the whole hint; notes name a cell
by what it defines or by its first line, never by a number JupyterLab does not
show; tracebacks do not show the grader's site-packages paths.
"""

from __future__ import annotations

import re

import nbformat

from autograder.course import notebook_check
from autograder.grading import catalogue
from autograder.grading.grade import grade_notebook, record_result
from autograder.grading.learner_errors import LearnerError, decode_reply, error_text, shorten_paths
from autograder.grading.notebook import extract, parse_code_cells, untouched_stubs
from autograder.grading.plugin import TestRecord as Record
from autograder.grading.plugin import check_name
from autograder.grading.results import TestResult
from tests.nbtools import graded_cell, solution_notebook, write

A = "batch_norm"


def released_cell(assignment: str, function: str) -> str:
    nb = nbformat.read(str(catalogue.load(assignment).released_notebook), as_version=4)
    return graded_cell(nb, function).source


def test_an_untouched_stub_says_not_implemented_whatever_the_check_raised():
    record = Record("one_hot_matrix", "a scalar label gives a float32 vector", 1.0, False)
    record.message, record.kind = "one_hot_matrix raised IndexError: list index out of range", "error"
    result = record_result(record, untouched=frozenset({"one_hot_matrix"}))
    assert result.message == "one_hot_matrix is not implemented yet: its cell is still the released stub"
    assert "IndexError" not in result.output
    other = Record("sigmoid", "values", 1.0, False, message="sigmoid raised IndexError: x", kind="error")
    assert "IndexError" in record_result(other, untouched=frozenset({"one_hot_matrix"})).message


def test_the_released_stub_is_told_apart_from_an_edited_cell():
    nb = solution_notebook(A)
    graded_cell(nb, "batchnorm_backward").source = released_cell(A, "batchnorm_backward")
    graded_cell(nb, "batchnorm_backward_alt").source = (
        released_cell(A, "batchnorm_backward_alt").replace("raise NotImplementedError()", "pass") + "\n# mine\n"
    )
    spec = catalogue.load(A)
    assert untouched_stubs(parse_code_cells(nb), spec.released_notebook, spec.graded_functions) == {
        "batchnorm_backward"
    }


def test_a_graded_stub_reports_not_implemented_on_every_check(tmp_path):
    nb = solution_notebook(A)
    graded_cell(nb, "batchnorm_backward").source = released_cell(A, "batchnorm_backward")
    result = grade_notebook(write(nb, tmp_path / "stub.ipynb"), A)
    failed = [t for t in result.tests if not t.passed]
    assert failed and all(t.function == "batchnorm_backward" for t in failed)
    assert all("not implemented yet" in t.message for t in failed), [t.message for t in failed]


def test_the_rename_hint_never_names_another_graded_function():
    spec = catalogue.load("initialization")
    nb = nbformat.v4.new_notebook()
    for function in spec.graded_functions:
        if function != "initialize_parameters_he":
            nb.cells.append(nbformat.v4.new_code_cell(f"def {function}(layers_dims):\n    return {{}}\n"))
    nb.cells.append(nbformat.v4.new_code_cell("def initialize_parameters_hee(layers_dims):\n    return {}\n"))
    problem = extract(nb, spec.graded_functions).problems["initialize_parameters_he"]
    assert "Did you rename it to initialize_parameters_hee?" in problem
    nb.cells.pop()
    problem = extract(nb, spec.graded_functions).problems["initialize_parameters_he"]
    assert "rename" not in problem, problem  # initialize_parameters_zeros is close, but graded itself


def test_check_names_are_clean():
    assert check_name("update_lr is learning_rate0 / (1 + decay_rate * epoch_num) on several inputs.\n\nMore.") == (
        "update_lr is learning_rate0 / (1 + decay_rate * epoch_num) on several inputs"
    )
    assert check_name("Each call draws new values ...") == "Each call draws new values ..."
    assert TestResult("update_lr", "update_lr is learning_rate0 / (1 + ...)", 1, True).name == (
        "update_lr is learning_rate0 / (1 + ...)"
    )
    assert TestResult("update_lr", "uses its argument", 1, True).name == "update_lr: uses its argument"
    assert TestResult("f", "f_test passes", 1, True).name == "f: f_test passes"


def test_graded_check_names_do_not_repeat_the_function(tmp_path):
    result = grade_notebook(catalogue.load("initialization").solution_path, "initialization")
    for test in result.tests:
        assert not test.name.startswith(f"{test.function}: {test.function}"), test.name
        assert not test.check.endswith("."), test.check


def test_check_all_shows_the_whole_hint():
    hint = "dgamma sums dout * x_hat over the examples (axis 0), " * 5 + "THE END"
    table = notebook_check.format_table(
        [("batchnorm_backward", "failed", notebook_check._one_line("dgamma differs.\n" + hint))]
    )
    assert "THE END" in table and "..." not in table
    assert " ".join(table.split()).count("dgamma sums dout * x_hat over the examples (axis 0),") == 5
    assert all(len(line) <= 120 for line in table.splitlines())


def test_notes_name_cells_by_what_they_define_or_their_first_line():
    spec = catalogue.load("initialization")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print('hello')\nplot_everything()\n"))
    nb.cells.append(nbformat.v4.new_code_cell("x = 3\nprint(x)\ndef helper():\n    return 1\n"))
    notes = "\n".join(extract(nb, spec.graded_functions).notes)
    assert not re.search(r"\bcells? \d", notes), notes
    assert "the cell starting \"print('hello')\": only calls" in notes, notes
    assert "the cell defining helper: top-level code on line(s) 2 was not run" in notes, notes


def test_tracebacks_do_not_show_the_graders_paths():
    site = "/work/main/.venv/lib/python3.11/site-packages"
    trace = (
        f'  File "{site}/tensorflow/python/ops/array_ops.py", line 9, in one_hot\n'
        '  File "/usr/lib/python3.11/json/decoder.py", line 3, in decode\n'
        '  File "/tmp/sandbox-1/helpers/tensorflow_intro_utils.py", line 7, in load\n'
        '  File "<cell 12>", line 4, in one_hot_matrix\n'
    )
    short = shorten_paths(trace)
    assert '"tensorflow/python/ops/array_ops.py"' in short and '"json/decoder.py"' in short
    assert '"tensorflow_intro_utils.py"' in short and '"<cell 12>"' in short
    assert "site-packages" not in short and "/work/" not in short and "/usr/lib" not in short
    reply = {
        "ok": False,
        "error": {"type": "InvalidArgumentError", "message": f"at {site}/tf/x.py", "traceback": trace},
    }
    try:
        decode_reply(reply, "one_hot_matrix", "one_hot_matrix", frozenset(), [], {})
    except LearnerError as exc:
        assert "site-packages" not in str(exc) + exc.traceback
        assert "tensorflow/python/ops/array_ops.py" in exc.traceback
    else:
        raise AssertionError("an error reply must raise")
    assert "site-packages" not in error_text(reply)
