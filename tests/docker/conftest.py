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
import time
from pathlib import Path

import pytest

from tests.nbtools import ROOT

DOCKER_DIR = ROOT / "docker"
BUILD_TIMES = ROOT / ".cache" / "docker" / "build-times.txt"


def docker_tests_enabled() -> bool:
    return os.environ.get("DLGRADE_DOCKER_TESTS") == "1"


@pytest.fixture(scope="session")
def docker_env() -> dict:
    """The environment in which `docker` reaches the engine, after docker/build.sh built the images."""
    if not docker_tests_enabled():
        pytest.skip("container tests run under `make docker-test` (DLGRADE_DOCKER_TESTS=1)")
    started = time.monotonic()
    build = subprocess.run([str(DOCKER_DIR / "build.sh"), "cpu", "learner"], cwd=ROOT, capture_output=True,
                           text=True, timeout=3000)
    print(build.stderr)
    assert build.returncode == 0, build.stderr[-4000:]
    BUILD_TIMES.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_TIMES, "a") as record:
        record.write(f"{time.strftime('%F %T')} build.sh cpu learner: {time.monotonic() - started:.0f} s\n"
                     + "".join(line + "\n" for line in build.stderr.splitlines() if "built " in line))
    host = re.search(r"DOCKER_HOST=([^;]*);", build.stdout)
    env = dict(os.environ)
    if host and host.group(1):
        env["DOCKER_HOST"] = host.group(1)
    return env


def docker(env: dict, *args, timeout: float = 900, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def script(env: dict, name: str, *args, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """docker/grade.sh or docker/batch.sh, exactly as documented."""
    return subprocess.run(["sh", str(DOCKER_DIR / name), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kwargs)
