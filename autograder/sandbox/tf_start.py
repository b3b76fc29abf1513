"""TensorFlow's start in each learner child, made cheaper by what the zygote may do before forking.

Runs inside the sandbox (a sibling of ``zygote.py``). Every graded function's child is forked
from a zygote that imported TensorFlow, and starts TF's runtime itself: the zygote cannot,
because a child forked after the runtime's thread pools exist hangs on its first pooled op
(``bench/bench_tf_runtime.py``). Measured per child on TF 2.21 (perf, 2026-12-07), that start
is about 80 ms of CPU: the eager context and its devices; exporting the op registry and
building the kernel registry (once per process); oneDNN generating its AVX-512 matrix-multiply
code at the first ``tf.matmul``; and every eager op wrapped in a one-op function that is
instantiated and run through the graph passes (XLA's clustering pass among them) the first time
each kind of op runs (TF's Python layer turns this on unconditionally in the version used here).

What is done here, each measured with ``python bench/bench_tf_runtime.py`` and kept only
because it is plain data or a setting, never a thread:

* :func:`prepare`, in the zygote after ``import tensorflow``: looking up an op that does not
  exist makes TF export its whole op registry, and asking for MatMul's kernels builds the
  kernel registry; both are tables in memory that every forked child then shares.
* also in :func:`prepare`: eager ops run as kernels, TF's older eager path, not wrapped in
  one-op functions (``TFE_ContextOptionsSetRunEagerOpAsFunction`` is given False when each
  child creates its context; TF's Python layer hard-codes True). Results are the same kernels'
  results; only the per-kind instantiation is gone.
* also in :func:`prepare`: oneDNN's matrix-multiply code, which TF's CPU matmul generates at its
  first call in a process, is generated here by calling oneDNN itself (``onednn_jit.py``): a
  child's TF start went from ~40 to ~28 ms of CPU.
* :data:`CHILD_ENV`, in the sandbox's environment: oneDNN's graph rewrites off
  (``TF_ENABLE_ONEDNN_OPTS=0``: TF's own Eigen kernels) and oneDNN's code generation held to
  AVX2 (``ONEDNN_MAX_CPU_ISA``): a child's first matrix multiply took 11 ms of CPU instead of 28
  (a 1000 x 1000 one runs as fast either way; SSE4.1 would cut the first to 3 ms but run 2.5
  times slower), and a learner's float32 results do not depend on whether the grading host has
  AVX-512.

Nothing here is a guarantee the grader relies on: a learner may undo any of it in its own child.
"""

from __future__ import annotations

import os

CHILD_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}

MISSING_OP = "DlgradeNoSuchOp"  # looked up to make TF export its op registry


class StartedThreads(RuntimeError):
    """Preparing TensorFlow started a thread: a child forked now could hang."""


def thread_ids() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def prepare() -> list[str]:
    """In a process that imported TensorFlow and has not started its runtime: do the plain-data
    part of each child's start once, and make each child's eager ops run unwrapped. Returns the
    steps done (a step whose TF function is gone in another TF version is left out); raises
    :class:`StartedThreads` if the process has more threads than before (do not fork then)."""
    before = thread_ids()  # by id: threads TF's import started may end meanwhile
    done = []
    try:
        from tensorflow.python.framework import op_def_registry

        op_def_registry.get(MISSING_OP)  # None; the lookup's miss exports every registered op
        done.append("op registry")
    except (ImportError, AttributeError):
        pass
    try:
        from tensorflow.python.framework import kernels

        kernels.get_registered_kernels_for_op("MatMul")
        done.append("kernel registry")
    except (ImportError, AttributeError):
        pass
    if unwrap_eager_ops():
        done.append("eager ops unwrapped")
    if warm_onednn():
        done.append("oneDNN sgemm code")
    started = thread_ids() - before
    if started:
        raise StartedThreads(f"preparing TensorFlow started {len(started)} thread(s) ({', '.join(done)})")
    return done


def warm_onednn() -> bool:
    """oneDNN's matrix-multiply code generated here once, not in each child (onednn_jit.py)."""
    if __package__:
        from autograder.sandbox import onednn_jit
    else:  # in the sandbox: the file beside this one
        import onednn_jit  # type: ignore[no-redef]
    try:
        import tensorflow
    except ImportError:
        return False
    return onednn_jit.warm_sgemm(os.path.dirname(tensorflow.__file__))


def unwrap_eager_ops() -> bool:
    """Have every eager context created from now on run ops as kernels, not one-op functions."""
    try:
        from tensorflow.python import pywrap_tfe
        from tensorflow.python.eager import context
    except ImportError:
        return False
    setter, current = getattr(pywrap_tfe, "TFE_ContextOptionsSetRunEagerOpAsFunction", None), context.context_safe()
    if setter is None or current is not None and current._initialized:
        return False
    if getattr(setter, "dlgrade_unwrapped", False):
        return True

    def run_eager_op_as_function(options, enabled):
        return setter(options, False)

    run_eager_op_as_function.dlgrade_unwrapped = True  # type: ignore[attr-defined]
    pywrap_tfe.TFE_ContextOptionsSetRunEagerOpAsFunction = run_eager_op_as_function
    return True
