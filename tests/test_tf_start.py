"""TensorFlow's start in each learner child (sandbox/tf_start.py): what the zygote prepares is
plain data (no thread), the children it forks run eager ops unwrapped, and a real sandboxed
TF child has the settings and gives the same results.

The fork test runs in a fresh process: it needs TensorFlow imported and its runtime not
started, as in a zygote (this test process may have started it in another test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from autograder.grading import catalogue
from autograder.grading.cells import Cell
from autograder.grading.grade import warm_spawner
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.time_policy import TimePolicy
from autograder.sandbox import tf_start
from tests.nbtools import ROOT

FORKS = r"""
import json, os, sys
sys.path.insert(0, "autograder/sandbox")
import tf_start
os.environ.update(tf_start.CHILD_ENV)  # as in the sandbox, where oneDNN reads it
import tensorflow as tf

def code_mappings():  # executable memory not from a file: what a JIT generated
    return sum(1 for line in open("/proc/self/maps") if "x" in line.split()[1] and len(line.split()) == 5)

def wrapped_names_in_a_child():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        from tensorflow.python.eager import context
        code = code_mappings()
        product = tf.matmul(tf.ones((3, 4)), tf.ones((4, 2))).numpy()
        wrapped = sorted(n for n in context.context().list_function_names() if n.startswith("__wrapped__"))
        os.write(write_end, json.dumps([wrapped, product.tolist(), code_mappings() - code]).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    return json.loads(os.read(read_end, 100000))

before = wrapped_names_in_a_child()
threads = tf_start.thread_ids()
steps = tf_start.prepare()
print(json.dumps({"before": before, "steps": steps, "new threads": sorted(tf_start.thread_ids() - threads),
                  "after": wrapped_names_in_a_child()}))
"""


def test_prepare_is_plain_data_and_children_run_eager_ops_unwrapped():
    run = subprocess.run(
        [sys.executable, "-c", FORKS], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["steps"] == ["op registry", "kernel registry", "eager ops unwrapped", "oneDNN sgemm code"]
    assert seen["new threads"] == [], "prepare() started a thread: a forked child could hang"
    # Without prepare(), TF 2.21 wraps each eager op in a one-op function (the check can fail) ...
    assert any("MatMul" in name for name in seen["before"][0]), seen["before"][0]
    # ... after it, a child forked from the same process runs the kernel itself, with the same result.
    assert seen["after"][0] == []
    assert seen["after"][1] == seen["before"][1] == [[4.0, 4.0]] * 3
    # Without prepare(), a child's first matmul makes oneDNN generate code (new executable memory);
    # after it, the child uses the zygote's (onednn_jit.py).
    assert seen["before"][2] > 0
    assert seen["after"][2] == 0


def test_prepare_refuses_when_a_step_starts_a_thread(monkeypatch):
    import tensorflow  # noqa: F401  (as in the zygote: imported before prepare(); its import starts threads)

    release = threading.Event()

    def starts_a_thread():
        threading.Thread(target=release.wait, daemon=True).start()
        return True

    monkeypatch.setattr(tf_start, "unwrap_eager_ops", starts_a_thread)
    try:
        with pytest.raises(tf_start.StartedThreads, match="started 1 thread"):
            tf_start.prepare()
    finally:
        release.set()


SEEN_CELL = """
import os
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

def code_mappings():
    return sum(1 for line in open("/proc/self/maps") if "x" in line.split()[1] and len(line.split()) == 5)

def tf_start_seen(a, b):
    code = code_mappings()
    product = tf.matmul(tf.constant(a), tf.constant(b)).numpy()
    wrapped = sorted(n for n in context.context().list_function_names() if n.startswith("__wrapped__"))
    return {"env": {k: os.environ.get(k) for k in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")},
            "wrapped": wrapped, "product": product, "new code": code_mappings() - code}
"""


def test_a_sandboxed_tensorflow_child_has_the_settings_and_the_same_results():
    spec = catalogue.load("tensorflow_intro")
    process = LearnerProcess(
        preamble="",
        cells=[Cell("seen", SEEN_CELL, ["tf_start_seen"])],
        limits=spec.limits(),
        time_policy=TimePolicy(call=60, submission=120),
        spawner=warm_spawner(spec),  # the zygote grading uses, TensorFlow imported and prepared
    )
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 64)).astype(np.float32), rng.standard_normal((64, 25)).astype(np.float32)
    try:
        seen = Learner(process).tf_start_seen(a, b)
    finally:
        process.close()
    assert seen["env"] == tf_start.CHILD_ENV
    assert seen["wrapped"] == []
    assert seen["new code"] == 0, "the child generated oneDNN's matmul code itself: the zygote's was not there"
    np.testing.assert_allclose(seen["product"], a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
