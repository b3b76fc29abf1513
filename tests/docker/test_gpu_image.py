"""The GPU image, built for real and graded in without a GPU: `make docker-test-gpu` (marker docker_gpu).

Opt-in, not part of `make docker-test` or .ci/run: its wheelhouse is 3.3 GB and the image 7.4 GB
(docker/README.md has the times). docker/build.sh gpu builds dlgrade:gpu from nothing (engine, local
base, wheelhouse with tensorflow[and-cuda] and NVIDIA's CUDA wheels); the tensorflow_intro example
submissions are then graded in it, without --gpus (no GPU here: TensorFlow falls back to the CPU),
with docker/grade.sh's hardened run line, in both sandboxes. Each scores exactly as graded on the host
(tensorflow-cpu), function by function, and its report says the learner's TensorFlow used the CPU,
that it is the CUDA build (no "built without CUDA"), and that GPU 0 was requested but no device node
exists. A GPU host checks the rest: bench/gpu_check.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from tests.docker.conftest import (
    DOCKER_DIR,
    built_images,
    docker,
    docker_tests_enabled,
    host_batch,
    record_time,
    script,
)
from tests.nbtools import ROOT

pytestmark = pytest.mark.docker_gpu

EXAMPLES = ROOT / "examples" / "submissions"
A = "tensorflow_intro"


@pytest.fixture(scope="module")
def gpu_env() -> dict:
    """The environment in which `docker` reaches the engine, after docker/build.sh built dlgrade:gpu."""
    if not docker_tests_enabled():
        pytest.skip("container tests run under `make docker-test-gpu` (DLGRADE_DOCKER_TESTS=1)")
    return built_images(("gpu",), timeout=3600, detail=lambda line: "built " in line or "wheels-gpu:" in line)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    """The example learners' tensorflow_intro notebooks, in nbgrader's layout."""
    folder = tmp_path_factory.mktemp("tf-submissions")
    for notebook in sorted(EXAMPLES.glob(f"*/{A}/{A}.ipynb")):
        learner = notebook.parent.parent.name
        (folder / learner / A).mkdir(parents=True)
        shutil.copy(notebook, folder / learner / A / notebook.name)
    assert len(list(folder.glob(f"*/{A}/*.ipynb"))) >= 3
    return folder


def function_scores(results, pattern: str) -> dict:
    out = {}
    for report in sorted(results.glob(pattern)):
        data = json.loads(report.read_text())
        out[report.relative_to(results).parts[0]] = {name: entry["score"] for name, entry in data["functions"].items()}
    assert out, f"no report below {results}"
    return out


@pytest.fixture(scope="module")
def host_scores(submissions, tmp_path_factory):
    """The same notebooks graded outside Docker by this checkout (tensorflow-cpu)."""
    out = tmp_path_factory.mktemp("host-batch")
    host_batch(submissions, out)
    return function_scores(out / "learners", f"*/{A}/results.json")


@pytest.mark.parametrize("sandbox", ["bwrap", "setpriv"])
def test_tensorflow_examples_grade_on_cpu_in_the_gpu_image(gpu_env, submissions, host_scores, tmp_path, sandbox):
    env = {**gpu_env, "DLGRADE_IMAGE": "dlgrade:gpu"}  # grade.sh without --gpu: no --gpus (no GPU here)
    extra = ["--setpriv"] if sandbox == "setpriv" else []
    started = time.monotonic()
    run = script(env, "grade.sh", submissions, tmp_path / "results", *extra, timeout=1800)
    seconds = time.monotonic() - started
    record_time(
        f"grading: {len(host_scores)} tensorflow_intro examples in dlgrade:gpu, no GPU ({sandbox}): {seconds:.0f} s"
    )
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    pattern = f"*/{A}/{A}/results.json"
    assert function_scores(tmp_path / "results", pattern) == host_scores
    for report in (tmp_path / "results").glob(pattern):
        data = json.loads(report.read_text())
        assert data["sandbox"] == sandbox, report
        isolation = data["isolation"]
        # The CUDA build of TensorFlow, no GPU to use: the honest fallback.
        assert isolation["accelerator"] == "CPU (no GPU visible)", isolation
        assert isolation["gpus"] == "requested (CUDA_VISIBLE_DEVICES=0), but no NVIDIA device node exists", isolation
        assert (
            "rlimit address space: none (GPUs on: CUDA reserves more address space than it uses)" in isolation["limits"]
        )
    assert "Exception ignored" not in run.stdout + run.stderr


def test_gpu_check_says_there_is_no_gpu(gpu_env, tmp_path):
    """bench/gpu_check.sh: exit 4 and a clear message without a GPU; --cpu-only runs both of its steps
    in the image (the grade and the sandboxed placement/timing probe) and still exits 4."""
    if any(name.startswith("nvidia") and name[6:].isdigit() for name in os.listdir("/dev")):
        pytest.skip("this host has a GPU: run bench/gpu_check.sh itself")
    run = subprocess.run(
        ["sh", "bench/gpu_check.sh", "--out", str(tmp_path)], cwd=ROOT, env=gpu_env, capture_output=True, text=True
    )
    assert run.returncode == 4 and "NO GPU on this host" in run.stderr, run.stderr
    started = time.monotonic()
    run = subprocess.run(
        ["sh", "bench/gpu_check.sh", "--cpu-only", "--epochs", "5", "--out", str(tmp_path / "cpu")],
        cwd=ROOT,
        env=gpu_env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    record_time(f"bench/gpu_check.sh --cpu-only --epochs 5 in dlgrade:gpu: {time.monotonic() - started:.0f} s")
    assert run.returncode == 4, run.stdout[-3000:] + run.stderr[-3000:]
    assert "accelerator: CPU (no GPU visible)" in run.stderr, run.stderr
    figures = json.loads((tmp_path / "cpu" / "gpu_check.json").read_text())
    assert figures["strategy"] == "bwrap" and figures["cpu"]["logical_devices"] == ["/device:CPU:0"]
    assert "device:CPU:0" in figures["cpu"]["placement"]["compute_total_loss output"]
    assert figures["cpu"]["built_with_cuda"] is True  # the image's TensorFlow is the CUDA build


def test_fake_gpu_nodes_reach_the_learner_in_the_container(gpu_env):
    """With Docker's --device standing in for --gpus (/dev/null as /dev/nvidia0, /dev/zero as
    /dev/nvidiactl), the grader's unprivileged bubblewrap binds the nodes into the learner's private
    /dev and the learner (uid 65534 in its namespace) opens them read-write; with GPUs off it sees none."""
    seen = {}
    for gpus in ("0", ""):
        run = docker(
            gpu_env,
            "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=1g",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--security-opt", f"seccomp={DOCKER_DIR / 'seccomp-bwrap.json'}", "--security-opt", "systempaths=unconfined",
            "--user", "10001:10001", "-e", "HOME=/tmp", "-e", f"DLGRADE_CHILD_CUDA_VISIBLE_DEVICES={gpus}",
            "--device", "/dev/null:/dev/nvidia0", "--device", "/dev/zero:/dev/nvidiactl",
            "-v", f"{ROOT / 'tests' / 'docker' / 'gpu_nodes_probe.py'}:/opt/probe.py:ro",
            "--entrypoint", "/opt/venv/bin/python", "dlgrade:gpu", "/opt/probe.py",
        )  # fmt: skip
        seen[gpus] = json.loads(run.stdout.strip().splitlines()[-1])
    on, off = seen["0"], seen[""]
    assert on["strategy"] == off["strategy"] == "bwrap"
    assert on["opened"] == {"nvidia0": "rw", "nvidiactl": "rw"} and on["uid"] == 65534, on
    assert on["report"] == "passed through: nvidia0, nvidiactl" and off["report"] == "off"
    assert off["opened"] == {} and set(on["dev"]) - set(off["dev"]) == {"nvidia0", "nvidiactl"}
