"""GPU pass-through (issue 24): the learner sees the NVIDIA device nodes when GPUs are on, none when off.

No GPU here: fake nodes made with mknod (root only) stand in for /dev/nvidia*, and the settings'
``gpu_devices`` glob (DLGRADE_GPU_DEVICES) points at them. The learner runs in the real sandbox, forked
from a zygote as when grading: under bubblewrap the nodes appear in its private /dev (``--dev-bind``)
only when GPUs are requested, and nothing else of /dev changes; under setpriv
(tests/test_setpriv_sandbox.py runs this file with DLGRADE_SANDBOX=setpriv) the learner sees the
host's /dev, and with GPUs off its namespaces cover each node with /dev/null; in the uid mode (no
namespaces, as in Docker) nothing can be covered, which the last test pins down. The report's
``accelerator`` entry is validated here against forged replies; tests/test_tensorflow_intro_suite.py
checks it says CPU on a real grade.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from autograder.grading import catalogue, probes
from autograder.grading.cells import Cell
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.time_policy import TimePolicy
from autograder.sandbox import isolation, kernel, settings, spawn
from tests.nbtools import ROOT

# (name, major, minor) of the fake nodes; nvidia-caps/ holds one more.
NODES = [("nvidiactl", 195, 255), ("nvidia0", 195, 0), ("nvidia-uvm", 235, 0), ("nvidia-uvm-tools", 235, 1)]
CAP = ("nvidia-cap1", 236, 1)

SEEN_CELL = """
import os, stat

def devices_seen(folder):
    seen = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            seen[name] = ["dir", sorted(os.listdir(path))]
        elif stat.S_ISCHR(info.st_mode):
            seen[name] = ["chr", os.major(info.st_rdev), os.minor(info.st_rdev)]
        else:
            seen[name] = ["other"]
    return {
        "seen": seen,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
    }
"""

STRATEGY = isolation.available_strategy()
NAMESPACES = settings.current().namespaces


def searchable_by_others(folder: Path) -> bool:
    """Whether a uid with no owner or group rights can walk down to ``folder`` (o+x on every folder)."""
    resolved = folder.resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [resolved, *resolved.parents])


def is_private_in_setpriv(folder: Path) -> bool:
    """Whether setpriv's namespaces give the learner its own empty copy of a folder holding ``folder``."""
    return any(folder.resolve().is_relative_to(private) for private in kernel.WRITABLE_DIRS)


@pytest.fixture(scope="module")
def fake_nodes():
    """A folder of fake NVIDIA nodes, 0666 like the driver's; outside /tmp (private under setpriv's namespaces)."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    cache = ROOT / ".cache"
    if not cache.exists():
        cache.mkdir()
        cache.chmod(0o755)  # not mkdir's mode: an in-process dlgrade run leaves the umask at 0o077
    # The checkout's .cache, unless the learner's uid cannot reach it (a folder on the way is not
    # searchable by others, as a .cache made under umask 0o077 by an earlier run) or setpriv's
    # namespaces make it private (a clone in /tmp/check): then /var/lib.
    candidates = [cache, Path("/var/lib")]
    usable = [d for d in candidates if searchable_by_others(d) and not is_private_in_setpriv(d)]
    if not usable:
        pytest.fail(f"no folder for the fake nodes that another uid can reach: tried {candidates}")
    parent = usable[0]
    folder = Path(tempfile.mkdtemp(prefix="fake-gpu-", dir=parent))
    folder.chmod(0o755)
    for name, major, minor in NODES:
        os.mknod(folder / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        (folder / name).chmod(0o666)
    (folder / "nvidia-caps").mkdir()
    (folder / "nvidia-caps").chmod(0o755)  # not mkdir's mode: the umask of an in-process dlgrade run (0o077) applies
    os.mknod(folder / "nvidia-caps" / CAP[0], 0o444 | stat.S_IFCHR, os.makedev(CAP[1], CAP[2]))
    (folder / "nvidia-caps" / CAP[0]).chmod(0o444)
    (folder / "not-a-gpu").write_text("")  # a regular file matching no glob below
    (folder / "nvidia-link").symlink_to("nvidia0")  # a link is never passed through
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def seen_in_sandbox(fake_nodes: Path, gpus: str, folder: str) -> dict:
    """What a learner forked from a zygote sees in ``folder``, with CUDA_VISIBLE_DEVICES ``gpus``."""
    previous = settings.use(settings.current().but(child_cuda_devices=gpus, gpu_devices=f"{fake_nodes}/nvidia*"))
    spec = catalogue.load("initialization")
    try:
        spawner = spawn.ZygoteSpawner(f"gpu-test:{gpus}", spec.release_dir, spec.limits(), ["numpy"])
        process = LearnerProcess(
            preamble="",
            cells=[Cell("seen", SEEN_CELL, ["devices_seen"])],
            limits=spec.limits(),
            time_policy=TimePolicy(call=20, submission=60),
            spawner=spawner,
        )
        try:
            return Learner(process).devices_seen(folder)
        finally:
            process.close()
    finally:
        settings.use(previous)
        spawn.close_zygotes()


EXPECTED = {name: ["chr", major, minor] for name, major, minor in NODES} | {"nvidia-caps": ["dir", [CAP[0]]]}


def test_the_glob_finds_nodes_and_folders_only(fake_nodes):
    found = isolation.gpu_device_nodes(f"{fake_nodes}/nvidia*")
    assert [Path(p).name for p in found] == sorted(EXPECTED)  # no link, no regular file


def test_bwrap_gets_a_dev_bind_per_node_only_when_gpus_are_on(fake_nodes):
    previous = settings.use(settings.current().but(child_cuda_devices="", gpu_devices=f"{fake_nodes}/nvidia*"))
    try:
        assert isolation.gpu_binds() == []
        for off in ("", "-1", " "):
            settings.use(settings.current().but(child_cuda_devices=off))
            assert "--dev-bind" not in isolation.bwrap_command(fake_nodes, fake_nodes)
        settings.use(settings.current().but(child_cuda_devices="0"))
        command = isolation.bwrap_command(fake_nodes, fake_nodes)
        binds = [command[i + 1 : i + 3] for i, arg in enumerate(command) if arg == "--dev-bind"]
        assert binds == [[str(fake_nodes / name), f"/dev/{name}"] for name in sorted(EXPECTED)]
        # After the private /dev, which would hide them.
        assert command.index("--dev-bind") > command.index("--dev")
    finally:
        settings.use(previous)


@pytest.mark.skipif(STRATEGY != "bwrap", reason="bubblewrap's private /dev")
def test_bwrap_learner_sees_the_nodes_when_gpus_are_on_and_none_when_off(fake_nodes):
    off = seen_in_sandbox(fake_nodes, "", "/dev")
    on = seen_in_sandbox(fake_nodes, "0", "/dev")
    assert not [name for name in off["seen"] if name.startswith("nvidia")], off
    assert {name: on["seen"][name] for name in on["seen"] if name.startswith("nvidia")} == EXPECTED
    # Nothing else of /dev is exposed.
    assert set(on["seen"]) - set(off["seen"]) == set(EXPECTED)
    assert (off["cuda"], on["cuda"]) == ("", "0")
    assert (off["growth"], on["growth"]) == (None, "true")  # learners of parallel workers share a GPU


@pytest.mark.skipif(STRATEGY != "setpriv" or not NAMESPACES, reason="setpriv with namespaces (test_setpriv_sandbox)")
def test_setpriv_learner_sees_the_nodes_when_on_and_dev_null_when_off(fake_nodes):
    on = seen_in_sandbox(fake_nodes, "0", str(fake_nodes))
    off = seen_in_sandbox(fake_nodes, "", str(fake_nodes))
    assert {name: on["seen"][name] for name in EXPECTED} == EXPECTED
    null = os.stat("/dev/null").st_rdev
    covered = ["chr", os.major(null), os.minor(null)]
    assert {name: off["seen"][name] for name in EXPECTED} == {name: covered for name, *_ in NODES} | {
        "nvidia-caps": ["dir", []]
    }


@pytest.mark.skipif(STRATEGY != "setpriv" or NAMESPACES, reason="setpriv's uid mode (test_setpriv_sandbox)")
def test_setpriv_uid_mode_cannot_cover_the_nodes(fake_nodes):
    """The uid mode (Docker) has no mount namespace: the nodes stay visible with GPUs off, and only
    CUDA_VISIBLE_DEVICES keeps TensorFlow off them; in Docker they exist only when --gpus was given."""
    off = seen_in_sandbox(fake_nodes, "", str(fake_nodes))
    assert {name: off["seen"][name] for name in EXPECTED} == EXPECTED
    assert off["cuda"] == ""


def test_the_report_names_the_nodes_and_those_the_learner_cannot_open(fake_nodes):
    previous = settings.use(settings.current().but(child_cuda_devices="", gpu_devices=f"{fake_nodes}/nvidia*"))
    try:
        assert isolation.gpu_report("bwrap") == "off"
        settings.use(settings.current().but(child_cuda_devices="0"))
        assert isolation.gpu_report("bwrap") == f"passed through: {', '.join(sorted(EXPECTED))}"
        (fake_nodes / "nvidia0").chmod(0o660)  # e.g. root:video 0660: the learner's uid has no group
        assert isolation.gpu_report("setpriv").endswith(
            "not openable by the learner's uid (mode without o+rw): nvidia0"
        )
        settings.use(settings.current().but(gpu_devices=f"{fake_nodes}/none*"))
        assert "no NVIDIA device node exists" in isolation.gpu_report("bwrap")
    finally:
        (fake_nodes / "nvidia0").chmod(0o666)
        settings.use(previous)


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (
            {"tensorflow": True, "gpus": [], "names": [], "placed": "/job:localhost/replica:0/task:0/device:CPU:0"},
            "CPU (no GPU visible; TensorFlow built without CUDA)",
        ),
        (
            {"tensorflow": True, "gpus": [], "names": [], "placed": "/device:CPU:0", "cuda": True},
            "CPU (no GPU visible)",
        ),
        (
            {
                "tensorflow": True,
                "gpus": ["/device:GPU:0"],
                "names": ["NVIDIA H100 80GB HBM3"],
                "placed": "/job:localhost/replica:0/task:0/device:GPU:0",
                "cuda": True,
            },
            "GPU:0 (NVIDIA H100 80GB HBM3)",
        ),
        (
            {"tensorflow": True, "gpus": ["/device:GPU:0"], "names": [], "placed": "/device:CPU:0", "cuda": True},
            "CPU (1 GPU visible, but TensorFlow placed a test op on the CPU)",
        ),
        ({"tensorflow": False}, "CPU (TensorFlow not loaded)"),
        # Forged or broken answers: never quoted.
        ("GPU:0", "unknown (the learner's process gave no answer)"),
        ({"gpus": [], "names": [], "placed": "TPU:0 \x1b[31m"}, "unknown (an unexpected answer)"),
        ({"gpus": {}, "names": [], "placed": "/device:GPU:0"}, "unknown (an unexpected answer)"),
        ({"gpus": [], "names": [], "placed": "/device:GPU:0\nscore: 100"}, "unknown (an unexpected answer)"),
        (
            {"gpus": [], "names": ["\x1b[2J" + "A" * 500 + "\n"], "placed": "/device:GPU:0"},
            "GPU:0 ([2J" + "A" * 57 + ")",  # the escape character dropped, the rest cut to 60
        ),
        ({"gpus": [], "names": [7], "placed": "/device:GPU:3"}, "GPU:3"),
    ],
)
def test_the_accelerator_entry_is_the_graders_text(reply, text):
    assert probes.accelerator_text(reply) == text


def test_gpus_lift_the_address_space_cap_only():
    """CUDA's reservations exceed any sane RLIMIT_AS: with GPUs on it is not set (the memory cgroup stays)."""
    limits = catalogue.load("tensorflow_intro").limits()
    previous = settings.use(settings.current().but(child_cuda_devices=""))
    try:
        assert f"--as={limits.address_space_mb * 1024 * 1024}" in isolation.rlimit_prefix(limits)
        settings.use(settings.current().but(child_cuda_devices="0"))
        prefix = isolation.rlimit_prefix(limits)
        assert "--as=unlimited" in prefix and f"--cpu={limits.cpu_seconds}" in prefix
    finally:
        settings.use(previous)


def test_covering_a_node_fails_closed():
    """A node that cannot be covered stops the prepared process before any learner code (kernel.py)."""
    from autograder.sandbox import kernel

    with pytest.raises(kernel.SandboxSetupError, match="mount /nonexistent/nvidia0 failed"):
        kernel.hide("/nonexistent/nvidia0")
