"""Gradescope: results.json in Gradescope's published format, per-test visibility from the suites, and
docker/gradescope/run_autograder run against a temporary folder standing in for /autograder."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.grading import catalogue
from autograder.grading.results import FunctionScore, Result, TestResult, zero_result
from tests.nbtools import ROOT, graded_cell, solution_notebook, solution_path, with_function, write

A = "initialization"
GRADESCOPE = ROOT / "docker" / "gradescope"
HE = "initialize_parameters_he"

# The fields of https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format"), and no others.
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
TEST = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "max_score": {"type": "number"},
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string"},
        "name_format": FORMAT,
        "number": {"type": "string"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
}
RESULTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST},
        "leaderboard": {"type": "array"},
    },
}


def validate(document: dict) -> None:
    jsonschema.validate(document, RESULTS_SCHEMA)


def test_to_gradescope_follows_the_published_schema():
    tests = [
        TestResult("f", "works", 2.0, True, score=2.0, visibility="after_due_date"),
        TestResult(
            "f",
            "edge case",
            1.0,
            False,
            message="f raised \x1b[31mValueError\x1b[0m",
            hint="h",
            traceback="  File <cell 1>",
            visibility="hidden",
        ),
    ]
    result = Result(
        "demo",
        "s.ipynb",
        "Demo",
        2.0,
        3.0,
        tests,
        {"f": FunctionScore(2.0, 3.0, 1, 2)},
        notes=["a note"],
        sandbox="bwrap",
    )
    document = result.to_gradescope()
    validate(document)
    assert document["score"] == 2.0 and [t["visibility"] for t in document["tests"]] == ["after_due_date", "hidden"]
    assert document["tests"][1]["output"] == "f raised ValueError\nHint: h\n  File <cell 1>"  # no ANSI
    extra = document["extra_data"]
    assert extra["functions"]["f"]["max_score"] == 3.0 and extra["notes"] == ["a note"] and extra["sandbox"] == "bwrap"
    validate(zero_result("x.ipynb", catalogue.load(A), "not valid JSON").to_gradescope())


def test_visibility_is_declared_in_the_suite(tmp_path):
    """A suite's @pytest.mark.graded(..., visibility=...) reaches results.json; an unknown value is refused."""
    from autograder.grading.grade import build_result, run_suite, warm_spawner
    from autograder.grading.learner import LearnerProcess
    from autograder.grading.notebook import extract, read_notebook

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_visibility.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.graded('{HE}', points=2, visibility='after_published')\n"
        "def test_shapes(learner):\n"
        f"    '''{HE} returns a dict.'''\n"
        f"    assert isinstance(learner.{HE}([3, 2, 1]), dict)\n\n"
        f"@pytest.mark.graded('{HE}', points=2)\n"
        "def test_default(learner):\n"
        "    '''visible by default.'''\n\n"
        f"@pytest.mark.graded('{HE}', points=1, visibility='hidden')\n"
        "def test_hidden(learner):\n"
        "    '''a hidden check.'''\n"
    )
    spec = dataclasses.replace(catalogue.load(A), suite_dir=suite)
    nb, _ = read_notebook(solution_path(A))
    extraction = extract(nb, spec.graded_functions)
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=extraction.cells,
        limits=spec.limits(),
        time_policy=spec.time_policy,
        spawner=warm_spawner(spec),
    )
    try:
        plugin = run_suite(spec, process)
    finally:
        process.close()
    result = build_result(solution_path(A), spec, plugin.records, process, [], 0.0)
    document = result.to_gradescope()
    validate(document)
    # A check that starts with its function's name is not prefixed with it again; no closing period.
    assert [(t["name"], t["visibility"], t["status"]) for t in document["tests"]] == [
        (f"{HE} returns a dict", "after_published", "passed"),
        (f"{HE}: visible by default", "visible", "passed"),
        (f"{HE}: a hidden check", "hidden", "passed"),
    ]

    bad = tmp_path / "bad_suite"
    bad.mkdir()
    (bad / "test_bad_visibility.py").write_text(  # another module name: pytest caches imported test modules
        "import pytest\n\n"
        f"@pytest.mark.graded('{HE}', points=1, visibility='secret')\n"
        "def test_bad(learner):\n    '''bad.'''\n"
    )
    spec = dataclasses.replace(spec, suite_dir=bad)
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=extraction.cells,
        limits=spec.limits(),
        time_policy=spec.time_policy,
        spawner=warm_spawner(spec),
    )
    try:
        with pytest.raises(RuntimeError, match="visibility='secret' is not one of"):
            run_suite(spec, process)
    finally:
        process.close()


def test_the_zip_has_what_gradescope_requires_at_its_root(tmp_path):
    sys.path.insert(0, str(GRADESCOPE))
    try:
        import build_zip
    finally:
        sys.path.remove(str(GRADESCOPE))
    path = build_zip.build(A, tmp_path / "autograder.zip")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder", "assignment.txt"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert f"dlgrade/solutions/{A}.ipynb" in names and f"dlgrade/autograder/suites/{A}/assignment.toml" in names
    others = [n for n in catalogue.names() if n != A]
    assert not [n for n in names if any(f"/{other}" in n for other in others)]  # only this assignment's files


def autograder_root(tmp_path: Path, late_policy: str | None = None) -> Path:
    """A folder laid out as Gradescope's /autograder, with source/ unzipped from build_zip's zip."""
    sys.path.insert(0, str(GRADESCOPE))
    try:
        import build_zip
    finally:
        sys.path.remove(str(GRADESCOPE))
    root = tmp_path / "autograder"
    policy = None
    if late_policy:
        policy = tmp_path / "late.toml"
        policy.write_text(late_policy)
    archive = build_zip.build(A, tmp_path / "autograder.zip", policy)
    with zipfile.ZipFile(archive) as unzip:
        unzip.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir(parents=True)
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLGRADE_GRADESCOPE_ROOT": str(root), "DLGRADE_PYTHON": sys.executable}
    env.pop("DLGRADE_ROOT", None)
    return subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_autograder_grades_the_submission_into_results_json(tmp_path):
    root = autograder_root(tmp_path, late_policy="[default]\npenalty_per_day = 0.1\ngrace_minutes = 10\n")
    bug = solution_notebook(A)
    he = graded_cell(bug, HE)
    assert "np.sqrt(2 /" in he.source
    he.source = he.source.replace("np.sqrt(2 /", "np.sqrt(1 /")  # Xavier's scale, not He's
    write(bug, root / "submission" / f"{A}.ipynb")
    write(with_function(A, HE, "def nothing():\n    pass\n"), root / "submission" / f"{A}-Copy1.ipynb")
    (root / "submission_metadata.json").write_text(
        json.dumps(
            {
                "created_at": "2026-03-03T01:00:00.000000+09:00",
                "assignment": {"due_date": "2026-03-01T23:59:00.000000+09:00", "title": "Initialization"},
            }
        )
    )
    run = run_autograder(root)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    validate(document)
    spec = catalogue.load(A)
    extra = document["extra_data"]
    raw = spec.max_score - spec.points[HE]
    assert 0 < extra["functions"][HE]["score"] < spec.points[HE]
    assert extra["late"]["days_late"] == 2 and extra["late"]["raw_score"] >= raw
    assert document["score"] == pytest.approx(extra["late"]["raw_score"] - 0.2 * spec.max_score)
    assert any(f"ignored {A}-Copy1.ipynb" in note for note in extra["notes"])
    assert sum(t["max_score"] for t in document["tests"]) == spec.max_score
    assert f"graded by {root / 'source' / 'dlgrade' / 'autograder'}" in run.stdout  # the unzipped engine
    assert "late" in (root / "results" / "feedback.md").read_text()


def test_run_autograder_without_a_notebook_gives_a_zero_and_a_reason(tmp_path):
    root = autograder_root(tmp_path)
    (root / "submission" / "notes.txt").write_text("I forgot the notebook")
    run = run_autograder(root)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    validate(document)
    assert document["score"] == 0 and f"upload {A}.ipynb" in document["output"]
    assert {t["name"].split(": ")[0] for t in document["tests"]} == set(catalogue.load(A).graded_functions)
