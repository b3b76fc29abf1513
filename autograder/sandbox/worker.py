"""The request loop inside the sandbox: run a submission's cells and answer the grader's calls.

A :class:`Worker` reads length-prefixed requests from one pipe and writes
replies to another; every value is encoded with ``codec`` (plain data only).
The learner's stdout/stderr go to the sandbox's own pipes, never to the
protocol pipe.

Requests: ``preamble`` (the assignment's trusted imports cell), ``exec`` (run
one cell; the grader already applied the statement rule to it, see
``sandbox/statements.py``), ``call`` (call a function the cells defined),
``probe`` (run a grader-supplied snippet against the learner's namespace),
``seed``, ``forwarders`` (define the graded functions the grader runs itself:
each is a forwarder that sends a ``callback`` frame while the current request
waits for its reply, see :meth:`Worker.call_grader` and
``grading/callbacks.py``).

An error reply is ``{"ok": False, "error": {"type", "message", "traceback",
"code", "name"}}``, ``code`` one of :data:`ERROR_CODES`. Nothing here is
trusted by the grader: a submission can patch this module at run time, and
the grader checks every reply itself.
"""

from __future__ import annotations

import os
import random
import sys
import traceback

if __package__:  # imported by the grader (tests)
    from autograder.sandbox import codec
else:  # in the sandbox: the file beside this one
    import codec  # type: ignore[no-redef]

# not-defined: a name the learner's namespace lacks (``name`` says which); not-implemented: a bare
# NotImplementedError (an untouched stub); unsupported-return: a value that is not plain data;
# protocol: a request the worker does not know; raised: any other exception.
ERROR_CODES = ("not-defined", "not-implemented", "unsupported-return", "protocol", "raised")


# The child's table of stand-ins (grading/stand_ins.py): name -> what the forwarder of that name calls,
# CALL_GRADER for the grader's reference (a suite's per-call stand-in may be put there instead).
TABLE, CALL_GRADER = "__dlgrade_stand_ins__", "<grader>"


class GraderCallError(RuntimeError):
    """A graded function the grader runs itself (its reference) refused the call or failed."""


def error_reply(etype: str, message: str, code: str, name: str | None = None, trace: str = "") -> dict:
    return {"ok": False, "error": {"type": etype, "message": message, "traceback": trace, "code": code, "name": name}}


class Worker:
    def __init__(self, fd_in: int, fd_out: int, warmed: WarmUp | None = None):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        # The imports cell already run before this learner existed (see warm_up): its source and namespace.
        self.preamble_ran = None
        self.grader_rng = None  # numpy's generator state as the grader's last answer left it (call_grader)
        if warmed is not None:
            self.namespace, self.preamble_ran = warmed.namespace, warmed.preamble

    # ----------------------------------------------------------- protocol
    def read(self) -> dict:
        header = codec.read_exact(self.fd_in, 4)
        return codec.loads_frame_body(codec.read_exact(self.fd_in, codec.frame_length(header)))

    def write(self, message: dict) -> None:
        data = codec.dumps(message)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view) :]

    def serve(self) -> None:
        while True:
            try:
                request = self.read()
            except EOFError:
                return
            handler = getattr(self, "op_" + str(request.get("op")), None)
            if handler is None:
                self.write(error_reply("ProtocolError", "unknown op", "protocol"))
                continue
            try:
                reply = handler(request)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                reply = {"ok": False, "error": describe(exc)}
            sys.stdout.flush()
            sys.stderr.flush()
            self.write(reply)

    # ---------------------------------------------------------------- ops
    def op_exec(self, request: dict) -> dict:
        # The grader sends what runs: the statement rule already applied, magics blanked.
        source = request["source"]
        filename = f"<cell {request.get('cell', '?')}>"
        code = compile(source, filename, "exec")
        _register_source(filename, source)
        exec(code, self.namespace)
        return {"ok": True}

    def op_preamble(self, request: dict) -> dict:
        # The trusted imports cell of the solution notebook, magics blanked (once: see warm_up).
        if self.preamble_ran is not None and request["source"] == self.preamble_ran:
            return {"ok": True}
        exec(compile(request["source"], "<imports>", "exec"), self.namespace)
        return {"ok": True}

    def op_call(self, request: dict) -> dict:
        name = request["name"]
        func = self.namespace.get(name)
        if not callable(func):
            return error_reply("NameError", f"{name} is not defined", "not-defined", name)
        args = codec.from_plain(request["args"], make_tf=make_tf)
        kwargs = codec.from_plain(request["kwargs"], make_tf=make_tf)
        return self._reply(func(*args, **kwargs))

    def op_probe(self, request: dict) -> dict:
        scope: dict = {"__name__": "probe"}
        exec(compile(request["source"], "<probe>", "exec"), scope)
        inputs = codec.from_plain(request["inputs"], make_tf=make_tf)
        return self._reply(scope["probe"](self.namespace, **inputs))

    def op_forwarders(self, request: dict) -> dict:
        # Idempotent: a second run binds the names again (grading/stand_ins.py, AGAIN).
        table = self.namespace.get(TABLE)
        if not isinstance(table, dict) or "<forwarders>" not in table:
            names = [str(name) for name in request["names"]]
            fresh: dict = {name: CALL_GRADER for name in names}
            fresh["<forwarders>"] = {name: self._forwarder(fresh, name) for name in names}
            self.namespace[TABLE] = table = fresh
        self.namespace.update(table["<forwarders>"])
        return {"ok": True}

    def _forwarder(self, table: dict, name: str):
        def forward(*args, **kwargs):
            target = table.get(name)
            if callable(target):  # a suite's per-call stand-in (probes.STAND_IN_PROBE)
                return target(*args, **kwargs)
            return self.call_grader(name, args, kwargs)

        forward.__name__ = forward.__qualname__ = name
        return forward

    def call_grader(self, name: str, args: tuple, kwargs: dict):
        """``name(*args, **kwargs)`` run by the grader, numpy's global generator and the arguments'
        changes (a dict the function fills in) carried both ways; GraderCallError if refused."""
        numpy, last, self.grader_rng = sys.modules.get("numpy"), self.grader_rng, None
        state = None if numpy is None else numpy.random.get_state()
        try:
            plain = {"name": name, "args": codec.to_plain(list(args)), "kwargs": codec.to_plain(dict(kwargs))}
            # "same": the state the grader's last answer left (grading/callbacks.py, Callbacks._generator).
            plain["rng"] = "same" if state is not None and _same_state(state, last) else codec.to_plain(state)
        except codec.EncodeError as exc:
            raise GraderCallError(f"{name} is run by the grader, so its arguments must be plain data: {exc}")
        self.write({"callback": plain})
        answer = self.read()
        if answer.get("ok") is not True:
            raise GraderCallError(f"{name}: {str(answer.get('error'))[:2000]}")
        if answer.get("rng") is not None and numpy is not None:
            state = codec.from_plain(answer["rng"])
            numpy.random.set_state(state)
        self.grader_rng = state
        if answer.get("args") is not None:
            changed = codec.scalars(codec.from_plain(answer["args"]))
            _write_back(list(args), changed["args"])
            _write_back(kwargs, changed["kwargs"])
        return codec.scalars(codec.from_plain(answer["value"]))

    def op_seed(self, request: dict) -> dict:
        seed_everything(int(request["seed"]))
        return {"ok": True}

    def _reply(self, value) -> dict:
        try:
            return {"ok": True, "value": codec.to_plain(value)}
        except codec.EncodeError as exc:
            return error_reply("UnsupportedReturn", str(exc), "unsupported-return")


def _same_state(state, other) -> bool:
    """Whether two states of numpy's global generator are the same (``other`` may be None)."""
    if other is None or tuple(state[2:]) != tuple(other[2:]):
        return False
    return bool((state[1] == other[1]).all())


def _write_back(original, changed) -> None:
    """Carry what the grader's call changed in its copy of an argument into the argument itself."""
    if isinstance(original, dict) and isinstance(changed, dict):
        for key in [key for key in original if key not in changed]:
            del original[key]
        for key, value in changed.items():
            if key in original and _in_place(original[key], value):
                _write_back(original[key], value)
            else:
                original[key] = value
    elif isinstance(original, (list, tuple)) and isinstance(changed, (list, tuple)) and len(original) == len(changed):
        for i, (before, after) in enumerate(zip(original, changed)):
            if _in_place(before, after):
                _write_back(before, after)
            elif isinstance(original, list):
                original[i] = after
    elif _in_place(original, changed) and hasattr(original, "shape"):
        import numpy as np

        if not np.array_equal(original, changed, equal_nan=original.dtype.kind in "fc"):
            original[...] = changed


def _in_place(before, after) -> bool:
    """Whether ``before`` can take ``after``'s contents in place (same kind of container, same array shape)."""
    if isinstance(before, (dict, list, tuple)):
        return type(after) in (dict, list, tuple) and isinstance(after, dict) == isinstance(before, dict)
    shape = getattr(before, "shape", None)
    return (
        type(before).__name__ == "ndarray"
        and getattr(after, "shape", None) == shape
        and getattr(after, "dtype", None) == before.dtype
        and before.flags.writeable
    )


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the learner's cell lines."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def describe(exc: BaseException) -> dict:
    """An exception as plain data, with the traceback limited to learner cells.

    ``code`` says what the grader makes of it: "not-implemented" (a
    NotImplementedError with no message: the stub), "not-defined" (a NameError
    or KeyError raised in a probe, with ``name`` the missing name), "raised"
    (anything else, ``name`` None).
    """
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith("<cell") or f.filename.endswith("_utils.py")
    ]
    lines = traceback.format_list(frames[-8:])
    message = str(exc)
    if len(message) > 2000:
        message = message[:2000] + " ..."
    code, name = "raised", None
    if isinstance(exc, NotImplementedError) and not message.strip():
        code = "not-implemented"
    elif isinstance(exc, (NameError, KeyError)):
        # Raised in a probe (Worker.op_probe on the way down): a probe's ns[f] or f(...) for a
        # function the namespace lacks. The same error inside a learner's call is the learner's.
        tb, in_probe = exc.__traceback__, False
        while tb is not None and not in_probe:
            in_probe, tb = tb.tb_frame.f_code is Worker.op_probe.__code__, tb.tb_next
        missing = (
            getattr(exc, "name", None) if isinstance(exc, NameError) else exc.args[0] if len(exc.args) == 1 else None
        )
        if in_probe and isinstance(missing, str):
            code, name = "not-defined", missing
    return {
        "type": type(exc).__name__,
        "message": message,
        "traceback": "".join(lines)[-4000:],
        "code": code,
        "name": name,
    }


def make_tf(value: codec.TFValue):
    import tensorflow as tf

    dtype = tf.as_dtype(value.dtype)
    if value.kind == "Variable":
        return tf.Variable(value.value, dtype=dtype)
    return tf.constant(value.value, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)


class WarmUp:
    """What a prepared submission process did before its learner existed (see warm_up)."""

    def __init__(self, namespace: dict, preamble: str | None):
        self.namespace, self.preamble = namespace, preamble


WARM_UP_CELL = "def warm_up(x, scale=2.0):\n    return {'y': x * scale, 'total': [float(x.sum())]}\n"


def warm_up(preamble: str | None) -> WarmUp:
    """Trusted work a prepared process does while the previous learner still runs.

    A child forked from the zygote pays, on its first requests, for the pages
    it copies (every object it touches). Done here, before any learner code
    exists in this process: the assignment's imports cell (trusted: the
    solution's), one cell compiled and run the way op_exec runs them, one
    call's reply encoded and decoded. What it defined is removed; the
    learner's seeds are set after this (``_serve_learner``).

    Not TensorFlow's runtime (its start and first kernels cost each TF child
    40-100 ms): tried, and a TF grade took 1.6 times as long. The prepared
    process shares the sandbox's CPU quota (one CPU) with the running learner,
    so its ~130 ms of TF start-up was throttled beside the learner's own work
    instead of hidden, and each next child waited for it.
    """
    worker = Worker(-1, -1)
    if preamble:
        worker.op_preamble({"source": preamble})
    scratch = Worker(-1, -1)
    scratch.namespace = dict(worker.namespace)
    scratch.op_exec({"cell": "warm-up", "source": WARM_UP_CELL})
    argument: object = 1.0
    try:
        import numpy as np

        argument = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    except ImportError:
        pass
    warm_up_function = scratch.namespace["warm_up"]
    assert callable(warm_up_function)
    reply = scratch._reply(warm_up_function(argument))
    codec.from_plain(codec.loads_frame_body(codec.dumps(reply)[4:])["value"])
    import linecache

    linecache.cache.pop("<cell warm-up>", None)
    return WarmUp(worker.namespace, preamble)
