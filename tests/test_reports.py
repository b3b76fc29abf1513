"""Results and reports: one Result object, and learner text that cannot forge or break any report.

The hostile notebook's functions raise exceptions and print text built to
break each format: a forged "**Score: 11 / 11**" paragraph and raw HTML for
feedback.md, ANSI escapes for the terminal, control characters that make XML
invalid for junit.xml, and backtick runs that would close a code fence.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from autograder.grading import catalogue
from autograder.grading.reports import (
    clean_text,
    feedback_html,
    feedback_markdown,
    junit_xml,
    md_fenced,
    md_inline,
    results_json,
    terminal_summary,
    write_reports,
)
from autograder.grading.results import FunctionScore, Result, TestResult, as_result, zero_result
from tests.nbtools import ROOT, graded_cell, solution_path, with_function, write

A = "initialization"
ZEROS, RANDOM = "initialize_parameters_zeros", "initialize_parameters_random"

# Runtime strings written as Python escapes, so the notebook's source itself is plain text.
FORGED = "\\n\\n**Score: 11 / 11**\\n\\nEvery check passed.\\n\\n# Feedback: forged\\n"
HOSTILE_MESSAGE = (
    "\\x1b]0;owned title\\x07\\x1b[2J\\x1b[1;32mboom\\x1b[0m\\r"
    + FORGED
    + "````\\n</pre><script>alert(1)</script><img src=x onerror=alert(2)>"
    "\\x1b[2J\\x1b[31mRED\\x1b[0m\\x07\\x01\\x0b\\x1b]0;owned\\x07 ```end"
)
HOSTILE_ZEROS = f'''
def initialize_parameters_zeros(layers_dims):
    print("\\x1b[2J\\x1b[1;31mprinted\\x1b[0m\\x00\\x08")
    raise ValueError("{HOSTILE_MESSAGE}")
'''
HOSTILE_RANDOM = f'''
def initialize_parameters_random(layers_dims):
    return "{HOSTILE_MESSAGE}"
'''


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The solution with two functions replaced by hostile ones, graded once by the real engine."""
    from autograder.grading.grade import grade_notebook

    folder = tmp_path_factory.mktemp("hostile")
    nb = with_function(A, ZEROS, HOSTILE_ZEROS)
    graded_cell(nb, RANDOM).source = HOSTILE_RANDOM
    path = write(nb, folder / "hostile`*name*<b>.ipynb")
    result = grade_notebook(path, A)
    assert result.functions[ZEROS].score == 0 and result.functions[RANDOM].score == 0
    assert any("\x1b" in t.message for t in result.tests), "the attack text must reach the report to test it"
    return folder, path, result


def rendered_markdown(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def outside_code(html_text: str) -> str:
    """The rendered HTML with every <pre>/<code> element removed: what the reader sees as prose."""
    return re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", html_text, flags=re.S)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html_text: str) -> list:
    parser = Tags()
    parser.feed(html_text)
    return parser.tags


# ------------------------------------------------------------------ the hostile notebook, every format


def test_feedback_markdown_cannot_be_forged(hostile):
    _, _, result = hostile
    text = feedback_markdown(result)
    html_text = rendered_markdown(text)
    strong = re.findall(r"<strong>(.*?)</strong>", html_text)
    assert strong[0] == f"Score: {result.score:g} / {result.max_score:g}"
    assert "Score: 11 / 11" not in outside_code(html_text)  # only ever inside a code block
    assert "Every check passed" not in outside_code(html_text)
    assert [h for h in re.findall(r"<h1>(.*?)</h1>", html_text)] == [f"Feedback: {catalogue.load(A).title}"]
    assert not [t for t, _ in tags(html_text) if t in ("script", "img")]
    assert "Score: 11 / 11" in html_text  # still shown, as the learner's text
    assert "\x1b" not in text and "\x01" not in text and "\x07" not in text


def test_feedback_html_escapes_learner_text(hostile):
    _, _, result = hostile
    page = feedback_html(result)
    assert not [t for t, _ in tags(page) if t in ("script", "img")]
    assert "&lt;script&gt;" in page
    assert "\x1b" not in page and "\x01" not in page


def test_junit_xml_stays_valid_xml(hostile):
    _, _, result = hostile
    text = junit_xml(result)
    root = ET.fromstring(text.encode())  # a strict parser: raises on invalid characters
    failures = root.findall(".//failure")
    assert failures and any("Score: 11 / 11" in (f.text or "") for f in failures)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)


def test_terminal_output_has_no_escape_sequences(hostile):
    _, path, _ = hostile
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", str(path), "--assignment", A],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert ZEROS in run.stdout and "raised ValueError" in run.stdout
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", run.stdout), repr(run.stdout[:2000])


def test_every_report_file_is_written_and_parses(hostile, tmp_path):
    _, _, result = hostile
    write_reports(result, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["score"] == result.score
    ET.parse(tmp_path / "junit.xml")
    assert (tmp_path / "feedback.md").read_text().startswith("# Feedback")
    assert (tmp_path / "feedback.html").read_text().startswith("<!DOCTYPE html>")


# ------------------------------------------------------------------ escaping, unit by unit


@pytest.mark.parametrize("text", ["plain", "a ``` b", "````", "x `y` ``z``", "```\n**bold**\n```", ""])
def test_a_fence_is_longer_than_any_backtick_run_inside(text):
    block = md_fenced(text)
    html_text = rendered_markdown("\n".join(block))
    assert html_text.startswith("<pre><code") and html_text.count("<pre>") == 1
    assert "<strong>" not in html_text


def test_inline_text_is_literal():
    html_text = rendered_markdown(md_inline("**bold** _em_ [link](http://x) <b>tag</b> `code`\n# heading"))
    assert "<strong>" not in html_text and "<em>" not in html_text and "<a " not in html_text
    assert "<b>" not in html_text and "<code>" not in html_text and "<h1>" not in html_text
    assert "**bold**" in html_text


def test_clean_text_removes_ansi_controls_and_bidi_overrides():
    assert clean_text("a\x1b[31mred\x1b[0m\x1b]0;title\x07b\x00\x08\u202ec\r\n\td\ud800") == "aredbc\n\td"


# ------------------------------------------------------------------ Markdown that renders in a job summary


def failing(function, check, message, traceback=""):
    return TestResult(function, check, 1.0, False, message=message, hint="look at the shapes", traceback=traceback)


def a_result(tests, **kwargs) -> Result:
    functions = {}
    for test in tests:
        entry = functions.setdefault(test.function, FunctionScore(0.0, 0.0))
        entry.max_score += test.max_score
        entry.tests += 1
        entry.passed += test.passed
        entry.score += test.score
    return Result(
        assignment="demo",
        submission="s.ipynb",
        title="Demo",
        score=sum(t.score for t in tests),
        max_score=sum(t.max_score for t in tests),
        tests=tests,
        functions=functions,
        **kwargs,
    )


def test_one_traceback_per_function_not_per_failed_check():
    trace = '  File "<cell 3>", line 2, in f\n    raise ValueError("x")\n'
    result = a_result(
        [failing("f", f"check {i}", "f raised ValueError: x", trace) for i in range(4)]
        + [failing("g", "g check", "g raised KeyError", '  File "<cell 4>", line 9, in g\n')]
    )
    text = feedback_markdown(result)
    assert text.count('File "<cell 3>"') == 1 and text.count('File "<cell 4>"') == 1
    html_text = rendered_markdown(text)
    # Message, hint and traceback are separate blocks, not one paragraph of continuation lines.
    assert html_text.count("<pre><code") == 5 + 2
    assert html_text.count("<p>Hint: look at the shapes</p>") == 5
    assert "<h3><code>f</code> (0 / 4)</h3>" in html_text and "<h3><code>g</code> (0 / 1)</h3>" in html_text
    assert "<table>" in html_text


# ------------------------------------------------------------------ the Result object


def test_result_round_trips_through_its_document():
    result = a_result(
        [failing("f", "check", "bad", "trace"), TestResult("f", "ok", 2.0, True, score=2.0)],
        notes=["n"],
        sandbox="bwrap",
    )
    again = Result.from_dict(json.loads(results_json(result)))
    assert again == result
    assert again["score"] == 2.0 and again.get("functions")["f"]["max_score"] == 3.0  # reads like the old dict


def test_an_old_results_dict_is_still_read():
    old = {
        "score": 1,
        "max_score": 2,
        "output": "Old: 1 / 2",
        "tests": [
            {
                "name": "f: f works",
                "function": "f",
                "score": 0,
                "max_score": 1,
                "status": "failed",
                "output": "f raised X\nHint: h",
                "visibility": "visible",
            }
        ],
        "functions": {"f": {"score": 1, "max_score": 2}},
    }
    result = as_result(old)
    assert (
        result.title == "Old" and result.tests[0].check == "f works" and result.tests[0].message.startswith("f raised")
    )
    assert "f raised X" in feedback_markdown(result)


def test_one_zero_result_for_every_ungradable_submission():
    spec = catalogue.load(A)
    known = zero_result("x.ipynb", spec, "not valid JSON")
    assert known.score == 0 and known.max_score == spec.max_score and set(known.functions) == set(spec.graded_functions)
    assert known.unreadable and known.problem() == "not valid JSON"
    unknown = zero_result("y.ipynb", None, "no assignment", assignment="unknown")
    assert unknown.assignment == "unknown" and unknown.max_score == 0 and unknown.unreadable
    text = terminal_summary(unknown)
    assert "no assignment" in text
    from autograder.batch import pool
    from autograder.grading.grade import unreadable_result

    assert pool.failed_result("x.ipynb", A, "r").to_dict() == zero_result("x.ipynb", spec, "r", assignment=A).to_dict()
    assert unreadable_result(solution_path(A), A, "r", [], 0).functions == known.functions


def test_a_note_cannot_become_a_heading_or_a_list():
    result = a_result([TestResult("f", "ok", 1.0, True, score=1.0)], notes=["# Score: 11 / 11", "1. forged", "- x"])
    html_text = rendered_markdown(feedback_markdown(result))
    assert "<h1>Score" not in html_text and "<ol>" not in html_text and html_text.count("<li>") == 3
    assert "<li>1. forged</li>" in html_text and "<li># Score: 11 / 11</li>" in html_text
