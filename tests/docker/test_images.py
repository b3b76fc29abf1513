"""What the images contain, read from `docker save` (every layer, not only the final file system).

- the learner image (docker/Dockerfile.learner), meant to be published and run in jobs a learner
  controls, holds no hidden suite (autograder/suites/*/*.py), no solution notebook, and no line of
  a reference solution that the released notebook does not already show -- in ANY layer, so a file
  deleted by a later layer would still count;
- positive control: the same scan finds all of that in the grading image (dlgrade:cpu), so the
  scan can fail;
- the grading image keeps the project out of the world-readable site-packages.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile

import nbformat
import pytest

from tests.docker.conftest import docker
from tests.nbtools import ROOT

pytestmark = pytest.mark.docker

MAX_SCANNED = 8 * 1024 * 1024  # larger files are libraries (.so, wheels), not our text


def secrets() -> tuple[dict, set]:
    """(sha256 -> repository path) of every hidden suite and solution file, and the solution lines
    (stripped, >= 30 characters) that appear in no released notebook or public file."""
    files = [*sorted((ROOT / "autograder" / "suites").glob("*/*.py")), *sorted((ROOT / "solutions").glob("*"))]
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): str(p.relative_to(ROOT)) for p in files if p.is_file()}
    public = "\n".join(
        p.read_text(errors="replace")
        for p in (ROOT / "assignments").rglob("*")
        if p.is_file() and p.suffix in (".ipynb", ".py")
    )
    lines = set()
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside and len(line.strip()) >= 30 and line.strip() not in public:
                    lines.add(line.strip())
    assert hashes and lines, "nothing to look for: the scan would prove nothing"
    return hashes, lines


SUITE_PATH = re.compile(r"(^|/)autograder/suites/[^/]+/(?!assignment\.toml$)[^/]+$")
SOLUTION_PATH = re.compile(r"(^|/)solutions/[^/]+\.ipynb$")


def scan(image: str, env: dict, tmp_path, stop_when_found: bool = False) -> list[str]:
    """Every finding in every layer of ``image``: forbidden paths, files with a secret's content,
    text files with a line of a reference solution."""
    hashes, lines = secrets()
    saved = tmp_path / f"{image.replace(':', '-')}.tar"
    docker(env, "save", "-o", str(saved), image, timeout=900)
    found, kinds = [], set()
    with tarfile.open(saved) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layers = manifest[0]["Layers"]
        for layer in reversed(layers) if stop_when_found else layers:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                for member in inner:
                    if not member.isfile():
                        continue
                    name = member.name.lstrip("./")
                    if SUITE_PATH.search(name) or SOLUTION_PATH.search(name):
                        found.append(f"{layer}: path {name}")
                        kinds.add("path")
                    if member.size > MAX_SCANNED:
                        continue
                    data = inner.extractfile(member).read()
                    digest = hashlib.sha256(data).hexdigest()
                    if digest in hashes:
                        found.append(f"{layer}: {name} is {hashes[digest]}")
                        kinds.add("content")
                    if b"\0" not in data[:4096]:
                        text = data.decode("utf-8", errors="replace")
                        for line in lines:
                            if line in text:
                                found.append(f"{layer}: {name} has solution line {line!r}")
                                kinds.add("line")
                                break
                    if stop_when_found and kinds == {"path", "content", "line"}:
                        return found
    return found


def test_learner_image_has_no_suite_and_no_solution_in_any_layer(docker_env, tmp_path):
    found = scan("dlgrade:learner", docker_env, tmp_path)
    assert found == [], "\n".join(found[:40])
    print("learner image: no hidden suite, no solution file, no solution line in any layer")


def test_the_scan_finds_them_in_the_grading_image(docker_env, tmp_path):
    found = scan("dlgrade:cpu", docker_env, tmp_path, stop_when_found=True)
    text = "\n".join(found)
    assert ": path " in text and " is autograder/suites/" in text and "solution line" in text, text[:3000]


def test_grading_image_keeps_the_project_out_of_site_packages(docker_env):
    run = docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        "dlgrade:cpu",
        "-c",
        "ls /opt/venv/lib/python3*/site-packages | grep -i -e '^autograder' -e '^dlgrade'; echo ---; "
        "stat -c '%U:%G %a' /opt/dlgrade /opt/dlgrade/solutions /opt/dlgrade/autograder/suites",
    )
    packages, modes = run.stdout.split("---")
    assert packages.strip() == "", packages  # no suite reachable from site-packages
    assert modes.split("\n").count("root:dlgrade 750") == 3, modes  # closed to any other uid
