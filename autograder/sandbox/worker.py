"""The request loop inside the sandbox: run a submission's cells and answer the grader's calls.

A :class:`Worker` reads length-prefixed requests from one pipe and writes
replies to another; every value is encoded with ``codec`` (plain data only).
The learner's stdout/stderr go to the sandbox's own pipes, never to the
protocol pipe.

Requests: ``preamble`` (the assignment's trusted imports cell), ``exec`` (run
one cell; the grader already applied the statement rule to it, see
``sandbox/statements.py``), ``call`` (call a function the cells defined),
``probe`` (run a grader-supplied snippet against the learner's namespace),
``seed``.

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


def error_reply(etype: str, message: str, code: str, name: str | None = None, trace: str = "") -> dict:
    return {"ok": False, "error": {"type": etype, "message": message, "traceback": trace, "code": code, "name": name}}


class Worker:
    def __init__(self, fd_in: int, fd_out: int, warmed: WarmUp | None = None):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        # The imports cell already run before this learner existed (see warm_up): its source and namespace.
        self.preamble_ran = None
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

    def op_seed(self, request: dict) -> dict:
        seed_everything(int(request["seed"]))
        return {"ok": True}

    def _reply(self, value) -> dict:
        try:
            return {"ok": True, "value": codec.to_plain(value)}
        except codec.EncodeError as exc:
            return error_reply("UnsupportedReturn", str(exc), "unsupported-return")


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
