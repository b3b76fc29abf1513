"""What TensorFlow's runtime costs each child forked from a process that imported it, and why the
zygote cannot start it for them.

    python bench/bench_tf_runtime.py [--children 4]

``fresh``: the parent only imported TensorFlow (the zygote's state before tf_start.py); each
forked child starts the eager context, its pools and the first kernels of a constant, an add, a
matmul, a variable and a GradientTape step (CPU and wall per child). ``prepared``: as a zygote
does now (autograder/sandbox/tf_start.py), the parent imported TensorFlow with the children's
settings in its environment (``tf_start.CHILD_ENV``) and ran ``tf_start.prepare()`` before
forking. ``parent-warmed``: the parent ran the same ops, and reset its eager context, before
forking: each child's first matmul waits on the parent's pool threads, which do not exist in the
child; a child still running after ``--hang`` seconds is killed and reported as hung. (The reset
does not end the runtime's threads: tf_Compute and tf_graph_runner stay.)
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import time
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "autograder" / "sandbox"  # tf_start.py's folder


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def first_ops(tf, np) -> None:
    (tf.constant(1.0) + 1).numpy()
    a = tf.constant(np.ones((4, 4), np.float32))
    tf.matmul(a, a).numpy()
    v = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        y = v * v
    tape.gradient(y, v).numpy()


def child(tf, np, report: int) -> None:
    started, cpu_before = time.perf_counter(), cpu_seconds()
    first_ops(tf, np)
    a = tf.constant(np.ones((300, 300), np.float32))  # large enough for the intra-op pool
    tf.matmul(a, a).numpy()
    line = f"{1000 * (time.perf_counter() - started):.0f} {1000 * (cpu_seconds() - cpu_before):.0f}\n"
    os.write(report, line.encode())


def run(mode: str, children: int, hang: float) -> None:
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.eager import context

    if mode == "prepared":
        import tf_start  # on sys.path from main(), as the sandbox imports it: a sibling of zygote.py

        print(f"{mode:14} prepare(): {', '.join(tf_start.prepare())}")
    if mode == "parent-warmed":
        first_ops(tf, np)
        context._reset_context()
    walls, cpus, hung = [], [], 0
    for _ in range(children):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            signal.alarm(int(hang))
            child(tf, np, write_end)
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        answer = os.read(read_end, 100).split()
        os.close(read_end)
        if status != 0 or len(answer) != 2:
            hung += 1
            continue
        walls.append(float(answer[0]))
        cpus.append(float(answer[1]))
    threads = len(os.listdir("/proc/self/task"))
    if walls:
        print(
            f"{mode:14} per child: wall {sorted(walls)[len(walls) // 2]:.0f} ms, CPU {sorted(cpus)[len(cpus) // 2]:.0f} ms"
        )
    print(f"{mode:14} {len(walls)} of {children} children finished, {hung} hung; parent threads {threads}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--hang", type=float, default=10.0, help="seconds before a child counts as hung")
    parser.add_argument("--mode", choices=["fresh", "prepared", "parent-warmed"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(SANDBOX_DIR))
    if args.mode:
        run(args.mode, args.children, args.hang)
        return 0
    import subprocess

    import tf_start

    for mode in ("fresh", "prepared", "parent-warmed"):  # one process each: a warmed runtime cannot be undone
        command = [sys.executable, __file__, "--mode", mode, "--children", str(args.children)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"} | (tf_start.CHILD_ENV if mode == "prepared" else {})
        subprocess.run([*command, "--hang", str(args.hang)], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
