"""Probes: trusted snippets the hidden suites run against a learner's namespace.

A probe is a ``def probe(ns, **inputs)`` the grader sends to the sandboxed
learner process (``Learner.probe``); it runs there beside the learner's code
and returns plain data. The ``*_here`` twins run the same snippet in this
process against a namespace of the grader's own (the reference), so a suite
computes the expected answer the same way. Split from ``checks.py`` (the
assertions).
"""

from __future__ import annotations

import re

from autograder.grading.learner_errors import LearnerError

# Runs a suite's probe in the learner's process as a check of one graded
# function: errors are named after it, and a function the graded cells do not
# define is reported as missing, as for a plain learner call.
FUNCTION_PROBE = """
def probe(ns, function, probe_source, inputs):
    if function not in ns:
        raise NameError(function + " is not defined", name=function)
    scope = {"__name__": "probe"}
    exec(compile(probe_source, "<probe>", "exec"), scope)
    return scope["probe"](ns, **inputs)
"""


def probe_function(learner, function: str, source: str, /, timeout: float | None = None, **inputs):
    """Run the trusted ``def probe(ns, **inputs)`` of ``source`` in the learner's process, as a check of ``function``.

    ``ns`` is the learner's namespace; only plain data crosses. Use it when
    a check must look at something that cannot cross (a tape's gradients,
    which arrays share memory) or must swap functions in (see
    :func:`call_with_stand_ins`).
    """
    return learner.probe(
        FUNCTION_PROBE, timeout=timeout, what=function, function=function, probe_source=source, inputs=inputs
    )


# A GradientTape over the learner's TensorFlow ``function`` (see tape_gradients).
TAPE_PROBE = """
def probe(ns, function, args, wrt, weights):
    import tensorflow as tf
    if isinstance(args[wrt], dict):
        watched = {k: tf.Variable(v) for k, v in args[wrt].items()}
        keys = sorted(watched)
        sources = [watched[k] for k in keys]
    else:
        watched, keys = tf.Variable(args[wrt]), None
        sources = [watched]
    inputs = [watched if i == wrt else tf.constant(arg) for i, arg in enumerate(args)]
    with tf.GradientTape() as tape:
        out = ns[function](*inputs)
        objective = out if weights is None else tf.reduce_sum(tf.cast(out, tf.float32) * tf.constant(weights))
    grads = tape.gradient(objective, sources)
    grads = [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads]
    return grads[0] if keys is None else dict(zip(keys, grads))
"""


def tape_gradients(learner, function: str, args, wrt: int = 0, weights=None, timeout: float | None = None):
    """The gradient of the learner's TensorFlow ``function(*args)`` with respect to ``args[wrt]``, by a tape.

    Taken in the learner's process (:func:`probe_function`). ``args``: numpy
    arrays, passed as tf.constant, except ``args[wrt]``: passed as a
    tf.Variable, or when it is a dict of arrays as a dict of tf.Variable (same
    order). The tape differentiates the result, or with ``weights`` (an array of
    the result's shape) the float32 sum(weights * result), a fixed linear
    functional of it. Returns an array of the shape of ``args[wrt]`` (a dict of
    them, sorted by key, for a dict), None for a variable the tape lost track of.
    """
    return probe_function(
        learner, function, TAPE_PROBE, timeout=timeout, function=function, args=list(args), wrt=wrt, weights=weights
    )


def tape_gradients_here(namespace: dict, function: str, args, wrt: int = 0, weights=None):
    """:func:`tape_gradients` of a trusted namespace's function, taken here (e.g. ``vars(reference)``)."""
    return probe_here(namespace, TAPE_PROBE, function=function, args=list(args), wrt=wrt, weights=weights)


# The learner's ``function`` called with trusted stand-ins in its namespace
# (for the duration of the call only; what was there is put back), so that
# a check of ``function`` does not depend on the learner's other functions.
# The child's table of forwarders (grading/stand_ins.py: bound before the
# function's cell ran, so its definition-time bindings call them) is given
# the stand-ins too, so an alias, a default argument, a closure or a class
# attribute reaches them as a lookup by name does.
STAND_IN_PROBE = """
def probe(ns, function, stand_ins, inputs, args, kwargs):
    scope = {"__name__": "stand_ins"}
    exec(compile(stand_ins, "<stand-ins>", "exec"), scope)
    trusted = scope["stand_ins"](**inputs)
    missing = object()
    table = ns.get("__dlgrade_stand_ins__")
    table = table if isinstance(table, dict) else {}
    saved = {name: ns.get(name, missing) for name in trusted}
    held = {name: table[name] for name in trusted if name in table and name != "<forwarders>"}
    ns.update(trusted)
    table.update({name: trusted[name] for name in held})
    try:
        return ns[function](*args, **kwargs)
    finally:
        table.update(held)
        for name, value in saved.items():
            if value is missing:
                ns.pop(name, None)
            else:
                ns[name] = value
"""


def call_with_stand_ins(
    learner, function: str, stand_ins: str, inputs: dict, args=(), kwargs=None, timeout: float | None = None
):
    """Call the learner's ``function(*args, **kwargs)`` with trusted functions swapped into its namespace.

    ``stand_ins`` is the source of ``def stand_ins(**inputs)`` returning
    {name: function}; it runs in the learner's process. Errors are named
    after ``function`` (see :func:`probe_function`).
    """
    return probe_function(
        learner,
        function,
        STAND_IN_PROBE,
        timeout=timeout,
        function=function,
        stand_ins=stand_ins,
        inputs=inputs,
        args=list(args),
        kwargs=dict(kwargs or {}),
    )


def probe_here(namespace: dict, source: str, /, **inputs):
    """Run the ``def probe(ns, **inputs)`` of ``source`` on a trusted namespace here (``vars(reference)``).

    Returns what the probe returns: the reference's side of a check that runs
    the same probe on the learner's namespace with :func:`probe_function`.
    """
    scope: dict = {"__name__": "probe"}
    exec(compile(source, "<probe>", "exec"), scope)
    return scope["probe"](namespace, **inputs)


def call_with_stand_ins_here(namespace: dict, function: str, stand_ins: str, inputs: dict, args=(), kwargs=None):
    """The same call as :func:`call_with_stand_ins`, on a trusted namespace here (e.g. ``vars(reference)``)."""
    return probe_here(
        namespace,
        STAND_IN_PROBE,
        function=function,
        stand_ins=stand_ins,
        inputs=inputs,
        args=list(args),
        kwargs=dict(kwargs or {}),
    )


# Which device the learner's TensorFlow used: asked in the child of the last graded function, after
# its checks ran (their ops initialised TensorFlow's devices there), by placing one small op.
ACCELERATOR_PROBE = """
def probe(ns):
    import sys
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return {"tensorflow": False}
    gpus = tf.config.list_logical_devices("GPU")
    names = []
    for device in tf.config.list_physical_devices("GPU")[:8]:
        try:
            names.append(str(tf.config.experimental.get_device_details(device).get("device_name", "")))
        except Exception:
            names.append("")
    placed = (tf.constant([1.0]) + 1.0).device
    return {"tensorflow": True, "gpus": [d.name for d in gpus[:8]], "names": names, "placed": placed,
            "cuda": bool(tf.test.is_built_with_cuda())}
"""
_DEVICE = re.compile(r"(?:.*/)?device:(CPU|GPU):(\d{1,3})")


def _printable(text, limit: int = 60) -> str:
    """A learner-side string made safe to quote: printable ASCII, at most ``limit`` characters."""
    return "".join(c for c in str(text)[: limit * 4] if " " <= c <= "~")[:limit].strip()


def accelerator_text(reply) -> str:
    """The report's "accelerator" entry from :data:`ACCELERATOR_PROBE`'s reply.

    The reply comes from the learner's process, so it is untrusted: only the shapes this
    function expects are read (anything else is "unknown"), device names are matched against
    ``device:CPU:n``/``device:GPU:n`` and a GPU's model name is cut to printable ASCII; the text
    itself is the grader's.
    """
    if not isinstance(reply, dict):
        return "unknown (the learner's process gave no answer)"
    if reply.get("tensorflow") is False:
        return "CPU (TensorFlow not loaded)"
    gpus, names, placed = reply.get("gpus"), reply.get("names"), reply.get("placed")
    if not isinstance(gpus, list) or not isinstance(placed, str) or not isinstance(names, list):
        return "unknown (an unexpected answer)"
    visible = sum(1 for gpu in gpus[:8] if isinstance(gpu, str) and _DEVICE.fullmatch(gpu[:200]))
    match = _DEVICE.fullmatch(placed[:200])
    if match is None:
        return "unknown (an unexpected answer)"
    kind, index = match.group(1), int(match.group(2))
    if kind == "GPU":
        name = _printable(names[index]) if index < len(names) and isinstance(names[index], str) else ""
        return f"GPU:{index}" + (f" ({name})" if name else "")
    if visible:
        return f"CPU ({visible} GPU visible, but TensorFlow placed a test op on the CPU)"
    return "CPU (no GPU visible" + ("" if reply.get("cuda") is True else "; TensorFlow built without CUDA") + ")"


def accelerator_of(process, timeout: float = 20.0) -> str:
    """The device the learner's TensorFlow used, asked in its last child (see :func:`accelerator_text`)."""
    try:
        reply = process.probe_last_child(ACCELERATOR_PROBE, {}, timeout, "the accelerator check")
    except LearnerError as exc:
        return f"unknown (the accelerator check failed: {_printable(exc, 120)})"
    if reply is None:
        return "unknown (the learner's last process had ended)"
    return accelerator_text(reply)
