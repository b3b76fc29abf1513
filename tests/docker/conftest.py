"""Fixtures of the container tests (tests/docker/): a Docker engine and the images, built for real.

These tests run only under `make docker-test` (docker/test.sh sets DLGRADE_DOCKER_TESTS=1 and
selects the `docker` marker): they start an engine when none answers, build the base image,
the wheelhouse and the images (docker/build.sh), and grade in real containers with exactly the
run lines of docker/grade.sh and docker/batch.sh.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.nbtools import ROOT

DOCKER_DIR = ROOT / "docker"
BUILD_TIMES = ROOT / ".cache" / "docker" / "build-times.txt"


def docker_tests_enabled() -> bool:
    return os.environ.get("DLGRADE_DOCKER_TESTS") == "1"


def built_images(kinds: tuple, *, timeout: float, detail=lambda line: "built " in line) -> dict:
    """docker/build.sh KINDS, timed into build-times.txt (with its stderr lines ``detail`` keeps): the
    environment in which `docker` reaches the engine it used."""
    started = time.monotonic()
    build = subprocess.run(
        [str(DOCKER_DIR / "build.sh"), *kinds], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    print(build.stderr)
    assert build.returncode == 0, build.stderr[-4000:]
    record_time(
        f"build.sh {' '.join(kinds)}: {time.monotonic() - started:.0f} s",
        *(line for line in build.stderr.splitlines() if detail(line)),
    )
    host = re.search(r"DOCKER_HOST=([^;]*);", build.stdout)
    env = dict(os.environ)
    if host and host.group(1):
        env["DOCKER_HOST"] = host.group(1)
    return env


def host_batch(submissions: Path, out: Path) -> None:
    """`dlgrade batch` outside Docker, by this checkout's engine: what the containers' grades must equal."""
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", str(submissions), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


@pytest.fixture(scope="session")
def docker_env() -> dict:
    """The environment in which `docker` reaches the engine, after docker/build.sh built the images."""
    if not docker_tests_enabled():
        pytest.skip("container tests run under `make docker-test` (DLGRADE_DOCKER_TESTS=1)")
    return built_images(("cpu", "learner"), timeout=3000)


def record_time(line: str, *details: str) -> None:
    """Append a dated line (and its detail lines) to .cache/docker/build-times.txt."""
    BUILD_TIMES.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_TIMES, "a") as record:
        record.write(f"{time.strftime('%F %T')} {line}\n" + "".join(detail + "\n" for detail in details))


def docker(env: dict, *args, timeout: float = 900, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def script(env: dict, name: str, *args, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """docker/grade.sh or docker/batch.sh, exactly as documented."""
    return subprocess.run(
        ["sh", str(DOCKER_DIR / name), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )


# What each container test guarantees, printed with its outcome at the end of `make docker-test`.
GUARANTEES = {
    "test_batch_sh_trusts_nbgrader_times_in_a_submitted_folder": "nbgrader's submitted/ tree keeps its name in the "
    "container: its timestamp.txt is trusted there as on the host, and nowhere else",
    "test_batch_sh_takes_the_course_files_roster_policy_and_times": "docker/batch.sh takes --roster, --late-policy "
    "and --times (each file mounted alone, read-only): every roster learner has a row, Canvas ids, staff times",
    "test_examples_score_the_same_in_the_container": "the example submissions score exactly as outside Docker, function by function (docker/batch.sh)",
    "test_grade_sh_single_notebook_folder_and_nbgrader_layout": "docker/grade.sh grades a notebook, a folder and nbgrader's layout; exit codes; the user's paths in messages",
    "test_container_refuses_without_a_sandbox_it_can_build": "with Docker's default seccomp profile the grader refuses (exit 2) and says which flags to add",
    "test_entrypoint_refuses_without_setuid_and_when_the_learner_could_read_the_suites": "no grading without CAP_SETUID, nor when the learner's uid could read the suites or solutions",
    "test_reports_belong_to_the_owner_of_the_results_folder": "reports are written as the owner of the results folder",
    "test_batch_resumes_after_docker_kill": "a batch killed with `docker kill` resumes from its state volume and grades each notebook once",
    "test_learner_image_has_no_suite_and_no_solution_in_any_layer": "the learner image holds no hidden suite and no solution, in any layer (docker save scan)",
    "test_the_scan_finds_them_in_the_grading_image": "the layer scan finds the suites and solutions in the grading image (it can fail)",
    "test_grading_image_keeps_the_project_out_of_site_packages": "the grading image installs the engine outside site-packages (nothing importable by a learner)",
    "test_a_learner_function_finds_nothing_to_use": "from inside a learner function: no network or DNS, read-only root, no capability, no grader file, "
    "submission, state or report readable, no grader process visible (bwrap), pids and memory limits hold",
    "test_the_hostile_batch_of_issue_11_gains_nothing": "a hostile notebook in a batch plants nothing, reads nothing, stays unprivileged, and its victims score "
    "exactly as in a batch without it",
    "test_service_graders_in_a_container_keep_the_course_folder": "dlgrade serve's graders in a container "
    "(--grader-only, the grading image's run line): a hostile upload beside victims plants nothing, reads nothing "
    "of the course folder (database, session key, other blobs), and the victims score exactly as graded on the host",
    "test_tensorflow_examples_grade_on_cpu_in_the_gpu_image": "make docker-test-gpu: the GPU image (tensorflow[and-cuda]) "
    "grades the tensorflow_intro examples without a GPU exactly as the host does, and each report says the CPU was used",
    "test_fake_gpu_nodes_reach_the_learner_in_the_container": "make docker-test-gpu: device nodes given to the GPU "
    "image (--device, standing in for --gpus) reach the learner through the grader's unprivileged bubblewrap and open "
    "read-write; with GPUs off the learner sees none",
    "test_gpu_check_says_there_is_no_gpu": "make docker-test-gpu: bench/gpu_check.sh exits 4 with a clear message on a "
    "host without a GPU; --cpu-only runs its grade and sandboxed placement/timing steps in the GPU image",
    "test_hostile_and_attack_suites_pass_inside_the_container": "tests/test_hostile.py and tests/test_attacks.py pass inside the grading image, as the grader's uid",
}
_OUTCOMES: dict = {}


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::")[-1]
    base = name.split("[")[0]
    if base in GUARANTEES and (report.when == "call" or report.outcome != "passed"):
        previous = _OUTCOMES.get(name)
        if previous is None or previous == "passed":
            _OUTCOMES[name] = report.outcome


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    terminalreporter.section("guarantees checked in real containers")
    for name, outcome in _OUTCOMES.items():
        base, _, variant = name.partition("[")
        label = GUARANTEES[base] + (f" [{variant.rstrip(']')}]" if variant else "")
        terminalreporter.write_line(f"{outcome.upper():8} {label}")
    if BUILD_TIMES.exists():
        # This run's lines: from its build (the first container test builds) to the end.
        lines = BUILD_TIMES.read_text().splitlines()
        builds = [i for i, line in enumerate(lines) if " build.sh " in line]
        terminalreporter.write_line("times: " + "; ".join(lines[builds[-1] if builds else -3 :]))
