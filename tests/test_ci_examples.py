"""examples/ci/: the GitHub Actions workflow and the GitLab CI job grade with the CPU image,
fail below a minimum score, and publish feedback.md and junit.xml."""
from __future__ import annotations

import yaml

from tests.nbtools import ROOT

CI = ROOT / "examples" / "ci"


def test_github_workflow_grades_with_the_image_and_publishes_feedback_and_junit():
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))          # YAML 1.1 reads a bare `on` as True
    assert "push" in triggers
    assert workflow["env"]["DLGRADE_IMAGE"].endswith("dlgrade:cpu")
    min_score = float(workflow["env"]["MIN_SCORE"])
    assert min_score > 0
    steps = workflow["jobs"]["grade"]["steps"]
    grade = next(s for s in steps if "docker run" in s.get("run", ""))
    for flag in ("--network none", "--read-only", "--cap-drop ALL", "--cap-add SETUID",
                 "--security-opt no-new-privileges", "--user 0:0", "--memory 4g", "--pids-limit 256"):
        assert flag in grade["run"], flag
    assert '"$DLGRADE_IMAGE" grade --min-score "$MIN_SCORE"' in grade["run"]
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert "results/feedback.md" in summary["run"] and summary["if"] == "always()"
    junit = next(s for s in steps if "junit" in s.get("uses", ""))
    assert junit["with"]["report_paths"] == "results/junit.xml" and junit["if"] == "always()"


def test_gitlab_job_grades_with_the_image_and_reports_junit():
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["autograde"]
    assert job["image"]["name"].endswith("dlgrade:cpu") and job["image"]["entrypoint"] == [""]
    assert float(job["variables"]["MIN_SCORE"]) > 0
    script = "\n".join(job["script"])
    assert 'dlgrade-entrypoint grade --min-score "$MIN_SCORE"' in script
    assert job["variables"]["DLGRADE_RESULTS_DIR"] == "$CI_PROJECT_DIR/results"
    assert job["artifacts"]["reports"]["junit"] == "results/junit.xml"
    assert job["artifacts"]["when"] == "always" and "results/" in job["artifacts"]["paths"]


def test_both_call_the_entrypoint_the_docker_image_defines():
    entry = (ROOT / "docker" / "Dockerfile").read_text()
    assert "/usr/local/bin/dlgrade-entrypoint" in entry          # the GitLab job calls it by name
    assert "grade) selfcheck || exit 2; grade" in (ROOT / "docker" / "entrypoint.sh").read_text()
