"""What a learner's code can do inside the real container: nothing that matters.

- a probe function, graded by docker/grade.sh, looks around from inside the learner's process
  and reports what it found through its exception message: no network, a read-only root, none
  of the grader's files, submissions or state, no grader process, and the pids and memory
  limits hold. Both sandboxes: bubblewrap (the default run line) and the setpriv fallback.
- the hostile batch of issue 11 (a notebook that ran code as the grader, listed the solutions
  and rewrote the gradebook, through modules planted where the grader imported from) gains
  nothing, and the learners graded after it score exactly as in a batch without it;
- the hostile suite (tests/test_hostile.py) and, where it exists, tests/test_attacks.py pass
  when run inside the container, as the grader's uid, with the container's seccomp profile.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid

import pytest

from tests.docker.conftest import DOCKER_DIR, docker, script
from tests.docker.test_grading import EXAMPLES, function_scores, gradebook, scores
from tests.nbtools import ROOT, with_function, write

pytestmark = pytest.mark.docker

PROBE = r"""
def initialize_parameters_zeros(layers_dims):
    import os, socket, signal, time
    found = {"uid": os.getuid()}
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=2).close()
        found["network"] = "open"
    except OSError:
        found["network"] = "none"
    try:
        socket.getaddrinfo("pypi.org", 443)
        found["dns"] = "resolves"
    except OSError:
        found["dns"] = "none"
    writable = []
    for folder in ("/", "/usr", "/opt", "/etc", "/opt/venv", "/submission", "/results", "/state"):
        try:
            with open(os.path.join(folder, "dlgrade-probe"), "w") as handle:
                handle.write("x")
            writable.append(folder)
        except OSError:
            pass
    found["writable"] = ",".join(writable) or "none"
    readable = []
    for path in ("/opt/dlgrade", "/opt/dlgrade/solutions", "/opt/dlgrade/autograder/suites",
                 "/submission", "/state", "/results", "/src", "/root"):
        try:
            os.listdir(path)
            readable.append(path)
        except OSError:
            pass
    # A name in /tmp is not a leak; a folder of the grader it can list, or a notebook it can open, is.
    for root, dirs, files in os.walk("/tmp"):
        for name in files:
            if name.endswith(".ipynb") or name.startswith("batch-state"):
                try:
                    open(os.path.join(root, name), "rb").close()
                    readable.append(os.path.join(root, name))
                except OSError:
                    pass
        own = os.path.realpath(os.getcwd())          # the learner's own work folder (its helpers)
        for name in dirs:
            path = os.path.realpath(os.path.join(root, name))
            if name.startswith("dlgrade-") and not (own + "/").startswith(path + "/"):
                try:
                    os.listdir(os.path.join(root, name))
                    readable.append(os.path.join(root, name))
                except OSError:
                    pass
    with open("/proc/self/status") as handle:
        found["caps"] = next(line.split()[1] for line in handle if line.startswith("CapEff"))
    found["readable"] = ",".join(readable) or "none"
    grader = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if b"autograder.cli" in handle.read():
                        grader.append(pid)
            except OSError:
                pass
    found["grader_processes"] = len(grader)
    children = []
    try:
        for _ in range(2000):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
        found["forks"] = "unlimited"
    except OSError:
        found["forks"] = len(children)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        block = bytearray(8 * 1024 ** 3)
        found["memory"] = "unlimited"
    except MemoryError:
        found["memory"] = "limited"
    raise RuntimeError("DLGRADE-PROBE " + " ".join(f"{k}={v}" for k, v in found.items()) + " END")
"""


def probe_findings(text: str) -> dict:
    match = re.search(r"DLGRADE-PROBE (.*?) END", text)
    assert match, text[-3000:]
    return dict(item.split("=", 1) for item in match.group(1).split())


@pytest.mark.parametrize("sandbox", ["bwrap", "setpriv"])
def test_a_learner_function_finds_nothing_to_use(docker_env, tmp_path, sandbox):
    notebook = write(
        with_function("initialization", "initialize_parameters_zeros", PROBE),
        tmp_path / "submission" / "initialization.ipynb",
    )
    extra = ["--setpriv"] if sandbox == "setpriv" else []
    run = script(docker_env, "grade.sh", notebook.parent, tmp_path / "results", *extra, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "results" / "results.json").read_text())
    assert report["sandbox"] == sandbox
    found = probe_findings(json.dumps(report))
    print(sandbox, found)
    assert found["network"] == "none" and found["dns"] == "none"
    assert found["writable"] == "none"
    # No capability at all. bubblewrap: the learner is the one uid mapped in the grader's
    # unprivileged user namespace, 65534 there (not 0: uid 0 is not mapped); setpriv: a uid of
    # its own, neither root nor the grader.
    assert found["caps"] == "0000000000000000", found
    if sandbox == "setpriv":
        assert found["uid"] not in ("0", "10001"), found
    else:
        assert found["uid"] == "65534", found
    # Not the grader's files, nor the submissions, the state or the reports (the folders exist in
    # the container; under bwrap they are not even in the learner's view of the file system).
    assert found["readable"] == "none"
    # Under setpriv the container's pid namespace is shared: the grader's command line is
    # visible (not its memory or files: another uid, no capability). bubblewrap: a pid namespace.
    if sandbox == "bwrap":
        assert found["grader_processes"] == "0", found
    assert found["forks"] != "unlimited" and int(found["forks"]) < 512
    assert found["memory"] == "limited"
    # The other functions still got their points: the probe cost only its own.
    assert report["functions"]["initialize_parameters_random"]["score"] == 4
    assert report["functions"]["initialize_parameters_zeros"]["score"] == 0


# The hostile batch of issue 11: plant code where the grader (or a later learner) might import or
# read it from, then act directly on what the grader holds. Every path is tried; none may work.
HOSTILE = r"""
def initialize_parameters_zeros(layers_dims):
    import os, glob
    payload = (
        "import os, glob\n"
        "open('/tmp/PWNED-' + str(os.getuid()), 'w').write('ran as the grader')\n"
        "for g in glob.glob('/state/gradebook.csv') + glob.glob('/tmp/*/work/gradebook.csv'):\n"
        "    open(g, 'w').write('learner,assignment,total,max\\nzz-attacker,initialization,11,11\\n')\n"
    )
    planted = []
    home = os.environ.get("HOME", "/tmp")
    targets = ["/tmp/autograder/__init__.py", "/tmp/sitecustomize.py", "/tmp/usercustomize.py",
               "/tmp/numpy.py", "/tmp/nbformat.py", "/tmp/pytest.py", "/tmp/conftest.py",
               home + "/.local/lib/python3.11/site-packages/sitecustomize.py",
               "/tmp/matplotlib/matplotlibrc", os.getcwd() + "/numpy.py"]
    for target in targets:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as handle:
                handle.write(payload)
            os.chmod(target, 0o777)
            planted.append(target)
        except OSError:
            pass
    seen = []
    for pattern in ("/opt/dlgrade/solutions/*", "/opt/dlgrade/autograder/suites/*/*.py", "/submission/*/*/*.ipynb",
                    "/state/*", "/tmp/dlgrade-grader*/*"):
        seen += glob.glob(pattern)
    try:
        open("/state/gradebook.csv", "w").write("zz-attacker,initialization,11,11\n")
        seen.append("gradebook rewritten")
    except OSError:
        pass
    try:
        os.setuid(0)
        seen.append("setuid 0")
    except OSError:
        pass
    raise RuntimeError("DLGRADE-HOSTILE planted=" + str(len(planted)) + " seen=" + repr(seen) + " END")
"""


def test_the_hostile_batch_of_issue_11_gains_nothing(docker_env, tmp_path):
    victims = ("alice", "bob", "carol")
    clean = tmp_path / "clean"
    for learner in victims:
        shutil.copytree(EXAMPLES / learner / "initialization", clean / learner / "initialization")
    hostile = tmp_path / "hostile"
    shutil.copytree(clean, hostile)
    # Graded first (learners are sorted), by the same worker as every victim (--workers 1).
    write(
        with_function("initialization", "initialize_parameters_zeros", HOSTILE),
        hostile / "aaa-attacker" / "initialization" / "initialization.ipynb",
    )
    books = {}
    for name, folder in (("clean", clean), ("hostile", hostile)):
        volume = f"dlgrade-test-{uuid.uuid4().hex[:8]}"
        try:
            run = script(
                docker_env,
                "batch.sh",
                folder,
                tmp_path / f"results-{name}",
                "--state",
                volume,
                "--workers",
                "1",
                timeout=900,
            )
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            # The state volume itself: no planted file, no rewritten gradebook.
            listing = docker(
                docker_env,
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{volume}:/state:ro",
                "--entrypoint",
                "sh",
                "dlgrade:cpu",
                "-c",
                "ls -la /state; cat /state/gradebook.csv",
            ).stdout
            assert "zz-attacker" not in listing and "PWNED" not in listing, listing
        finally:
            docker(docker_env, "volume", "rm", "-f", volume, check=False)
        books[name] = gradebook(tmp_path / f"results-{name}" / "gradebook.csv")
    attacker = books["hostile"].pop("aaa-attacker/initialization")
    assert scores(books["hostile"]) == scores(books["clean"])
    victims_hostile = function_scores(tmp_path / "results-hostile")
    attacker_functions = victims_hostile.pop("aaa-attacker/initialization")
    assert victims_hostile == function_scores(tmp_path / "results-clean")
    # The attacker scores what its honest functions are worth (all but initialize_parameters_zeros).
    assert float(attacker["total"]) == 11 - 3 and attacker_functions["initialize_parameters_zeros"] == 0
    report = (
        tmp_path / "results-hostile" / "learners" / "aaa-attacker" / "initialization" / "results.json"
    ).read_text()
    match = re.search(r"DLGRADE-HOSTILE planted=(\d+) seen=(.*?) END", report)
    assert match, report[-2000:]
    assert match.group(2) == "[]", match.group(2)  # it saw nothing, rewrote nothing, stayed unprivileged
    for results in tmp_path.glob("results-*"):
        assert not list(results.rglob("PWNED*"))
        assert "zz-attacker" not in (results / "gradebook.csv").read_text()


def test_hostile_and_attack_suites_pass_inside_the_container(docker_env, tmp_path):
    """The repository's own hostile tests, run by the grader's uid in the grading image, with the
    seccomp profile of docker/grade.sh: the engine's guarantees hold inside Docker too."""
    suites = ["tests/test_hostile.py"] + (
        ["tests/test_attacks.py"] if (ROOT / "tests" / "test_attacks.py").exists() else []
    )
    run = docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=2g",
        "--memory",
        "8g",
        "--memory-swap",
        "8g",
        "--pids-limit",
        "1024",
        "--cpus",
        "2",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        f"seccomp={DOCKER_DIR / 'seccomp-bwrap.json'}",
        "--security-opt",
        "systempaths=unconfined",
        "--user",
        "10001:10001",
        "-e",
        "HOME=/tmp",
        "-e",
        "PYTHONPATH=/src",
        "-e",
        "DLGRADE_SANDBOX=bwrap",
        "-v",
        f"{ROOT}:/src:ro",
        "-w",
        "/src",
        "--entrypoint",
        "/opt/venv/bin/python",
        "dlgrade:cpu",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        *suites,
        check=False,
        timeout=2400,
    )
    print(run.stdout[-2000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
