"""The learner process: runs a submission's graded cells and answers calls.

Started by the grader (grading/learner.py) inside the sandbox with two
inherited pipe descriptors (``--fds IN OUT``), or forked by a zygote and handed
them (see zygote below). It reads length-prefixed JSON requests and writes replies;
every value is encoded with ``codec`` (plain data only). The learner's
stdout/stderr go to the sandbox's own pipes, never to the protocol pipe.

Requests: ``exec`` (run one cell, graded statements only), ``call`` (call a
function defined by the cells), ``probe`` (run a grader-supplied snippet
against the learner's namespace), ``seed``.

Nothing in this file is trusted by the grader: a submission can patch it at
run time, and the grader only ever receives plain data it checks itself.
"""
from __future__ import annotations

import ast
import builtins
import os
import random
import sys
import traceback

try:  # in the sandbox codec.py sits beside this file; in the grader it is a package module
    import codec
except ImportError:  # pragma: no cover - exercised when imported by the grader
    from autograder.sandbox import codec

# What runs to grade. A notebook is graded by its definitions, taken from
# every code cell in notebook order; its demos and training are never run.
# The rule (stated to learners in each notebook's first cell):
#
# - imports, ``def``/``async def`` and ``class`` statements are kept (their
#   decorators, default values and class bodies run, as in Jupyter);
# - an assignment to plain names (``x = ...``, ``a, b = ...``, ``x: T = ...``,
#   ``x += ...``) is kept when its value is *cheap*: literals, names, attribute
#   reads (``np.pi``), arithmetic, comparisons, boolean and conditional
#   expressions, lambdas, tuples/lists/sets/dicts of those, and calls of
#   CHEAP_CALLS (spelled as listed there: ``np.array``, not another alias)
#   whose arguments are cheap too;
# - when the caller knows the names that earlier kept statements bind
#   (``bound``: the grader tracks them across cells), an assignment that reads
#   any other name is skipped as well, since that name would come from code
#   that is not run (``acc = acc_l2`` after a training cell);
# - everything else is skipped: calls (``model(...)``, ``print``,
#   ``np.random.seed``), loops, ``if``/``with``/``try`` blocks, ``del``, and
#   assignments to items or attributes (``os.environ[...] = ...``).
KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

# Calls that build a small value from their arguments and touch nothing else.
CHEAP_CALLS = frozenset(
    [f"{np}.{name}" for np in ("np", "numpy") for name in (
        "array", "asarray", "zeros", "ones", "full", "eye", "identity", "arange", "linspace",
        "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "dtype",
        "random.default_rng", "random.RandomState", "random.SeedSequence")]
    + [f"tf.{name}" for name in ("constant", "random.Generator.from_seed")]
    + ["range", "list", "tuple", "dict", "set", "frozenset", "int", "float", "complex", "str", "bool",
       "abs", "min", "max", "round", "len", "math.sqrt", "math.log", "math.exp"]
)
_CHEAP_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare,
                ast.IfExp, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Call, ast.Starred, ast.keyword,
                ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
_EXPRESSION_WORDS = {
    ast.Subscript: "reads an item (x[...])", ast.ListComp: "runs a comprehension", ast.SetComp: "runs a comprehension",
    ast.DictComp: "runs a comprehension", ast.GeneratorExp: "runs a generator", ast.NamedExpr: "assigns inside an expression",
    ast.Await: "awaits", ast.Yield: "yields", ast.YieldFrom: "yields", ast.JoinedStr: "formats a string",
}
_STATEMENT_WORDS = {
    ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop", ast.If: "an if block",
    ast.With: "a with block", ast.AsyncWith: "a with block", ast.Try: "a try block", ast.Delete: "del",
    ast.Assert: "an assert", ast.Raise: "a raise", ast.Return: "a return outside a function",
}
_BUILTIN_NAMES = frozenset(dir(builtins))


def strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes, keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def dotted_name(node) -> str | None:
    """``np.random.default_rng`` for that attribute chain; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _expression_problem(node, bound) -> str | None:
    """Why evaluating ``node`` is not cheap (see the rule above), or None when it is."""
    if isinstance(node, ast.Lambda):  # its body runs only when called
        defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        return next(filter(None, (_expression_problem(d, bound) for d in defaults)), None)
    if isinstance(node, ast.Name):
        if bound is not None and node.id not in bound and node.id not in _BUILTIN_NAMES:
            return f"uses {node.id}, which only code that is not run defines"
        return None
    if isinstance(node, ast.Call):
        name = dotted_name(node.func)
        if name not in CHEAP_CALLS:
            return f"calls {name or 'a computed function'}()"
    elif not isinstance(node, _CHEAP_NODES):
        return _EXPRESSION_WORDS.get(type(node), f"evaluates a {type(node).__name__}")
    return next(filter(None, (_expression_problem(c, bound) for c in ast.iter_child_nodes(node))), None)


def _target_names(target) -> list | None:
    """The names an assignment target binds; None when it writes into an object."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names = [_target_names(t) for t in target.elts]
        return None if None in names else [n for group in names for n in group]
    return None


def bound_names(node) -> list:
    """The names a kept statement binds (``from x import *`` binds none this rule can know)."""
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [a.asname or a.name for a in node.names if a.name != "*"]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _target_names(t) or []]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return _target_names(node.target) or []
    return []


def skip_reason(node, bound: set | None = None) -> str | None:
    """Why a top-level statement is not run to grade, or None when it is kept."""
    if isinstance(node, KEPT_STATEMENTS) or isinstance(node, (ast.Pass, ast.Global, ast.Nonlocal)):
        return None
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant):   # a bare string or number: nothing runs
            return None
        if isinstance(node.value, ast.Call):
            return f"calls {dotted_name(node.value.func) or 'a function'}()"
        return "an expression statement"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(_target_names(t) is None for t in targets):
            return "assigns into an item or attribute"
        if node.value is None:
            return "an annotation without a value"
        parts = [node.value] + ([node.annotation] if isinstance(node, ast.AnnAssign) else [])
        if isinstance(node, ast.AugAssign):
            parts.append(ast.Name(id=node.target.id, ctx=ast.Load()))
        try:
            return next(filter(None, (_expression_problem(p, bound) for p in parts)), None)
        except RecursionError:
            return "an expression too deeply nested to inspect"
    return _STATEMENT_WORDS.get(type(node), f"a {type(node).__name__} statement")


def classify_statements(tree: ast.Module, bound: set | None = None) -> list:
    """[(statement, reason it is skipped or None)] for a cell's top-level statements.

    ``bound``: the names defined before this cell (preamble, earlier kept
    statements, builtins are implied); it is updated with what this cell's
    kept statements bind. None turns the name rule off.
    """
    verdicts = []
    for node in tree.body:
        reason = skip_reason(node, bound)
        if reason is None and bound is not None:
            bound.update(bound_names(node))
        verdicts.append((node, reason))
    return verdicts


def _is_constant_assignment(node, bound: set | None = None) -> bool:
    """A kept assignment: to plain names, of a cheap value (see the rule above)."""
    return isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and skip_reason(node, bound) is None


def graded_statements(tree: ast.Module, bound: set | None = None) -> tuple[list, list]:
    """Split a cell's top-level statements into (kept, skipped line numbers)."""
    kept, skipped = [], []
    for node, reason in classify_statements(tree, bound):
        if reason is None:
            kept.append(node)
        else:
            skipped.append(node.lineno)
    return kept, skipped


class Worker:
    def __init__(self, fd_in: int, fd_out: int, warmed: "WarmUp | None" = None):
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
            view = view[os.write(self.fd_out, view):]

    def serve(self) -> None:
        while True:
            try:
                request = self.read()
            except EOFError:
                return
            handler = getattr(self, "op_" + str(request.get("op")), None)
            if handler is None:
                self.write({"ok": False, "error": {"type": "ProtocolError", "message": "unknown op", "traceback": "",
                                                   "code": "protocol", "name": None}})
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
        source = strip_magics(request["source"])
        filename = f"<cell {request.get('cell', '?')}>"
        tree = ast.parse(source, filename=filename)
        kept, skipped = graded_statements(tree)
        code = compile(ast.Module(body=kept, type_ignores=[]), filename, "exec")
        _register_source(filename, source)
        exec(code, self.namespace)
        return {"ok": True, "skipped_lines": skipped}

    def op_preamble(self, request: dict) -> dict:
        # The trusted imports cell of the solution notebook, run as is (once: see warm_up).
        if self.preamble_ran is not None and request["source"] == self.preamble_ran:
            return {"ok": True}
        source = strip_magics(request["source"])
        exec(compile(source, "<imports>", "exec"), self.namespace)
        return {"ok": True}

    def op_call(self, request: dict) -> dict:
        name = request["name"]
        func = self.namespace.get(name)
        if not callable(func):
            return {"ok": False, "error": {"type": "NameError", "message": f"{name} is not defined", "traceback": "",
                                           "code": "not-defined", "name": name}}
        args = codec.from_plain(request["args"], make_tf=make_tf)
        kwargs = codec.from_plain(request["kwargs"], make_tf=make_tf)
        return self._reply(func(*args, **kwargs))

    def op_probe(self, request: dict) -> dict:
        scope = {"__name__": "probe"}
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
            return {"ok": False, "error": {"type": "UnsupportedReturn", "message": str(exc), "traceback": "",
                                           "code": "unsupported-return", "name": None}}


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the learner's cell lines."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def describe(exc: BaseException) -> dict:
    """An exception as plain data, with the traceback limited to learner cells.

    ``code`` says what the grader makes of it: "not-implemented" (a
    NotImplementedError with no message: the stub), "not-defined" (a NameError
    or KeyError raised in a probe, with ``name`` the missing name: a probe's
    ``ns[f]`` or ``f(...)`` for a function the namespace lacks), "raised"
    (anything else, ``name`` None).
    """
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell") or f.filename.endswith("_utils.py")
    ]
    lines = traceback.format_list(frames[-8:])
    message = str(exc)
    if len(message) > 2000:
        message = message[:2000] + " ..."
    code, name = "raised", None
    if isinstance(exc, NotImplementedError) and not message.strip():
        code = "not-implemented"
    elif isinstance(exc, (NameError, KeyError)):
        # Raised in a probe: the request's handler, Worker.op_probe, is on the way down.
        tb, in_probe = exc.__traceback__, False
        while tb is not None and not in_probe:
            in_probe, tb = tb.tb_frame.f_code is Worker.op_probe.__code__, tb.tb_next
        missing = (getattr(exc, "name", None) if isinstance(exc, NameError)
                   else exc.args[0] if len(exc.args) == 1 else None)
        if in_probe and isinstance(missing, str):
            code, name = "not-defined", missing
    return {"type": type(exc).__name__, "message": message, "traceback": "".join(lines)[-4000:],
            "code": code, "name": name}


def make_tf(value: "codec.TFValue"):
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
    try:
        import numpy as np

        argument = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    except ImportError:
        argument = 1.0
    reply = scratch._reply(scratch.namespace["warm_up"](argument))
    codec.from_plain(codec.loads_frame_body(codec.dumps(reply)[4:])["value"])
    import linecache

    linecache.cache.pop("<cell warm-up>", None)
    return WarmUp(worker.namespace, preamble)


# ---------------------------------------------------------------- zygote
#
# A zygote imports the heavy modules once (numpy, the helper module,
# TensorFlow) and forks one fresh learner per submission. It runs no learner
# code, and as root (inside bubblewrap with a few capabilities, or the
# container's root under setpriv) so that no learner ever has its uid: a
# learner cannot signal, renice, prlimit or ptrace it. The grader sends "fork"
# over a SOCK_SEQPACKET control socket with the new learner's request and reply
# pipes and its stdout/stderr. One submission lives at a time, in the
# sandbox's cgroups (memory, pids, CPU quota).
#
# Isolation of one submission, by what the zygote can do (reported in "ready"):
# "namespace"  prepared in advance (see _prepared_submission): the zygote's
#              child (the keeper, still root) unshares pid, mount, ipc and
#              network namespaces and forks the learner, which is pid 1 of its
#              own pid namespace, mounts its own
#              /proc and a private tmpfs on /tmp and /dev/shm, then becomes
#              the learner uid. When it dies the kernel kills every process of
#              its namespace before the keeper's waitpid returns, and its tmpfs
#              goes with its mount namespace: cleanup is atomic, no sweep.
# "uid"        no namespaces (setpriv in Docker): the learner runs as the
#              sandbox's learner uid, which nothing else has. After it ends, a
#              process of that uid kill(-1)s (one atomic pass over every
#              process it may signal) and the zygote, a subreaper, reaps them,
#              checks none is left, and deletes what the uid owns in /tmp; if
#              any process survives, the zygote exits and a new sandbox (a new
#              uid) replaces it.
# "none"       not root and no namespaces (plain): a fork, nothing swept.

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
SUBMISSION_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS
# Where a learner may write: each gets a private tmpfs in namespace mode.
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _prctl(option: int, value: int) -> None:
    _libc().prctl(option, value, 0, 0, 0)


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    enc = (lambda v: v.encode() if isinstance(v, str) else v)
    _check(_libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (a no-op after setuid from root)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()
    _libc().capset(ctypes.byref(Header(0x20080522, 0)), data)


def _namespaces_work() -> bool:
    """Can this zygote give a submission its own namespaces? (Not in Docker: seccomp, no CAP_SYS_ADMIN.)"""
    pid = os.fork()
    if pid == 0:
        try:
            _check(_libc().unshare(SUBMISSION_NAMESPACES), "unshare")
            if os.fork() == 0:
                try:
                    _mount(None, "/", None, MS_REC | MS_PRIVATE)
                    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
                    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    os._exit(0)
                finally:
                    os._exit(1)
            _, status = os.wait()
            os._exit(os.waitstatus_to_exitcode(status))
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _traversable_dirs(top: str, path: str) -> None:
    """Create ``path`` below ``top`` with every new folder 0755, whatever the umask.

    The grader runs with umask 077, under which os.makedirs would make the
    parents 0700 root: the learner's uid could then not reach the Python
    installation bound below them.
    """
    current = top
    for part in os.path.relpath(path, top).split(os.sep):
        current = os.path.join(current, part)
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o755)


def _private_mounts() -> None:
    """The learner's own /proc, /tmp, /dev/shm (a fresh mount namespace, as root)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # The Python installation may live under /tmp (a checkout in /tmp): keep
    # a handle on it and bind it back onto the new tmpfs.
    kept = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)})
    for folder in WRITABLE_DIRS:
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        inside = [root for root in kept if root.startswith(folder + "/")]
        handles = [os.open(root, os.O_PATH) for root in inside]
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        for root, handle in zip(inside, handles):
            _traversable_dirs(folder, root)
            _mount(f"/proc/self/fd/{handle}", root, None, MS_BIND | MS_REC)
            os.close(handle)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Everything else read-only for this learner (a bind remount changes this namespace's view
    # only): the sandbox's root tmpfs and /dev, or the host's root under setpriv.
    for mount_point in ("/", "/dev"):
        try:
            kept = os.statvfs(mount_point).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096)
            _mount(None, mount_point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)
        except OSError:
            pass   # not a mount point of its own here: its parent's flags apply


def _become_learner(uid) -> None:
    """Drop to the learner uid (as root), then no capabilities and no way to gain any."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _serve_learner(fds: list, alive_r: int | None, parent: int, warmed: WarmUp | None = None) -> None:
    """The learner: stdout/stderr to its pipes, a new session, then the Worker loop.

    ``alive_r``: a pipe that reaches EOF when the keeper is gone (pid 1 of a namespace has no
    parent pid to compare); else ``parent`` is the zygote's pid."""
    import select
    import signal

    req_r, resp_w, out_w, err_w = fds
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (out_w, err_w):
        os.close(fd)
    try:
        os.setsid()
    except OSError:
        pass
    # After the uid change (which clears it): die with the process that waits for us.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if alive_r is None:
        if os.getppid() != parent:   # it died before we asked
            os._exit(1)
    else:
        if select.select([alive_r], [], [], 0)[0]:   # EOF: it died before we asked
            os._exit(1)
        os.close(alive_r)
    _prctl(PR_SET_DUMPABLE, 1)
    seed_everything(0)
    Worker(req_r, resp_w, warmed).serve()


def _exit_like(status: int) -> None:
    """End this process with the wait status of the one it waited for."""
    import signal

    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _run_submission(fds: list, uid, zygote_pid: int) -> None:
    """In the zygote's fresh child, without namespaces ("uid", "none"): become the learner."""
    _become_learner(uid)
    _serve_learner(fds, None, zygote_pid)


def _prepared_submission(handover, status_w: int, uid, zygote_pid: int, preamble: str | None) -> None:
    """In the zygote's fresh child: a submission's process made ready in advance (namespace mode).

    The keeper (this process, root, runs nothing of the learner's) unshares
    pid, mount, ipc, network and uts namespaces and forks the learner-to-be,
    pid 1 of its own pid namespace, which mounts its private /proc, /tmp and
    /dev/shm and waits, still root and running no learner code, until the
    zygote sends the submission's four pipes over ``handover``: only then does
    it become the learner uid. Before it waits it runs the trusted warm-up
    (:func:`warm_up`: the imports cell) and says "ready"; the zygote hands
    over only a ready process. The zygote prepares the next one while the
    current learner runs, so this setup (~10 ms) is not waited for.

    When the learner dies the kernel kills every process of its namespace
    before the keeper's waitpid returns; the keeper then writes the wait
    status to ``status_w`` (the learner never holds it, so it cannot forge an
    end) and the zygote carries on while the keeper itself exits.
    """
    import signal
    import socket

    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote_pid:
        os._exit(1)
    alive_r, alive_w = os.pipe()
    _check(_libc().unshare(SUBMISSION_NAMESPACES), "unshare")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    learner = os.fork()
    if learner == 0:   # pid 1 of the submission's pid namespace
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.close(alive_w)
        os.close(status_w)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)   # while it waits: die with the keeper
        _private_mounts()
        # Before the warm-up runs anything: a thread it may start inherits no_new_privs and
        # (no uid change to come, unprivileged bwrap) no capabilities. As root the uid change
        # clears every thread's capabilities (glibc applies setresuid to all of them).
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if uid is None:
            _drop_capabilities()
        try:
            warmed = warm_up(preamble)
            # "ready": the zygote hands over only a process whose warm-up went through (a
            # learner running beside it could have filled the pids cgroup or the memory).
            handover.send(b"ready")
            message, fds, _, _ = socket.recv_fds(handover, 16, 4)
        except BaseException:
            os._exit(1)
        if message != b"go" or len(fds) != 4:
            os._exit(1)
        handover.close()
        _become_learner(uid)
        _serve_learner(fds, alive_r, 0, warmed)
        return
    # The keeper: "kill" from the zygote arrives as SIGTERM.
    handover.close()
    os.close(alive_r)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(learner, signal.SIGKILL))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    # Returns once the namespace is empty: its init is reaped after all its processes.
    _, status = os.waitpid(learner, 0)
    os.write(status_w, b"%d" % status)
    _exit_like(status)


def _prepare(control, uid, zygote_pid: int, preamble: str | None):
    """A new :class:`Prepared`, or None when it cannot be made now (no pid or fd left)."""
    try:
        return Prepared(control, uid, zygote_pid, preamble)
    except OSError:
        return None


class Prepared:
    """The zygote's handle on a prepared submission process: keeper pid, handover socket, status pipe."""

    def __init__(self, control, uid, zygote_pid: int, preamble: str | None):
        import socket

        self.handover, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.status_r, status_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                control.close()
                self.handover.close()
                os.close(self.status_r)
                _prepared_submission(theirs, status_w, uid, zygote_pid, preamble)
            finally:
                os._exit(70)
        theirs.close()
        os.close(status_w)

    def hand_over(self, fds: list, ready_timeout: float = 60) -> bool:
        """Give it the submission's pipes once it is ready; False if it is not there any more
        or its warm-up failed (then discarded)."""
        import socket

        try:
            self.handover.settimeout(ready_timeout)
            if self.handover.recv(16) != b"ready":
                raise OSError("the prepared process ended before it was ready")
            self.handover.settimeout(None)
            socket.send_fds(self.handover, [b"go"], fds)
            return True
        except OSError:
            self.discard()
            return False
        finally:
            self.handover.close()

    def wait_status(self) -> int:
        """The learner's wait status, once its namespace is empty (the keeper may still be exiting)."""
        data = os.read(self.status_r, 32)
        os.close(self.status_r)
        if data:
            return int(data)
        _, status = os.waitpid(self.pid, 0)   # the keeper died first: its own status
        self.pid = None
        return status

    def reap(self, block: bool = False) -> bool:
        """Collect the exited keeper; True once it is gone."""
        if self.pid is not None:
            if os.waitpid(self.pid, 0 if block else os.WNOHANG)[0] == 0:
                return False
            self.pid = None
        return True

    def discard(self) -> None:
        import signal

        for close in (self.handover.close, lambda: os.close(self.status_r)):
            try:
                close()
            except OSError:
                pass
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)   # the keeper kills the waiting learner, then exits
            except OSError:
                pass
            self.reap(block=True)


def _as_uid(uid: int, action) -> None:
    """Run ``action()`` in a short-lived child with ``uid`` (setuid only: what Docker's minimal caps allow)."""
    import time

    for attempt in range(50):   # EAGAIN: the pids cgroup is full of processes still exiting
        try:
            helper = os.fork()
            break
        except BlockingIOError:
            time.sleep(0.01 * (attempt + 1))
    else:
        raise OSError("cannot fork a helper to act as the learner's uid")
    if helper == 0:
        try:
            os.setresuid(uid, uid, uid)
            action()
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``: kill(-1) from that uid reaches every process it may
    signal and no other uid's, in one pass (no fork completes past a pending SIGKILL)."""
    import signal

    _as_uid(uid, lambda: os.kill(-1, signal.SIGKILL))


def _sweep_uid(uid: int, patience: float = 8.0) -> bool:
    """Kill every process of ``uid`` and delete what it owns in /tmp; False if one survives.

    The first kill(-1) dooms them all at once (see :func:`_kill_uid`); what
    follows only waits for the kernel to finish them, which for hundreds of
    processes on a loaded machine takes a while. The zygote is a child
    subreaper, so the orphans are its children, reaped here (a zombie still
    counts): this returns only once no process of ``uid`` exists, so nothing of
    a submission is left, even dying, when its grade is handed back. Only one
    that does not die within ``patience`` seconds (unkillable, in the kernel)
    makes it False, and the zygote retires its uid. Files are deleted as
    ``uid`` (root without CAP_FOWNER may not delete them from a sticky /tmp).
    """
    import time

    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        _kill_uid(uid)   # again each round: cheap, and covers a process that was mid-exec
        _reap_children()
        if not _processes_of(uid):
            break
        if time.monotonic() > deadline:
            return False
        attempt += 1
        time.sleep(min(0.002 * attempt, 0.05))
    folders = {*WRITABLE_DIRS, os.environ.get("TMPDIR") or "/tmp"}
    _as_uid(uid, lambda: [_remove_owned(folder, uid, depth=0) for folder in folders])
    return True


def _processes_of(uid: int) -> list:
    """Pids of the processes whose real uid is ``uid`` (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:   # readable even for non-dumpable processes
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _remove_owned(folder: str, uid: int, depth: int) -> None:
    """Delete the entries of ``folder`` owned by ``uid``; look into world-writable subfolders."""
    import stat

    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        path = os.path.join(folder, entry)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid == uid:
            remove_tree(path)
        elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002 and depth < 2:
            _remove_owned(path, uid, depth + 1)


def remove_tree(path: str) -> None:
    """Delete a file, link or folder tree of any depth, never following links.

    Iterative and relative to open folder descriptors: a tree nested deeper
    than the recursion limit or PATH_MAX is removed too, and folders left
    unreadable (mode 000) are opened up first (the caller owns them or is root).
    """
    import stat

    parent, name = os.path.split(os.path.abspath(path))
    try:
        top = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    stack = [(top, name, None)]     # (folder fd, entry name, fd of the entry once opened)
    while stack:
        dir_fd, entry, opened = stack[-1]
        if opened is None:
            try:
                info = os.lstat(entry, dir_fd=dir_fd)
            except OSError:
                stack.pop()
                continue
            if not stat.S_ISDIR(info.st_mode):
                try:
                    os.unlink(entry, dir_fd=dir_fd)
                except OSError:
                    pass
                stack.pop()
                continue
            try:
                os.chmod(entry, 0o700, dir_fd=dir_fd, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
            try:
                opened = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError:
                stack.pop()
                continue
            stack[-1] = (dir_fd, entry, opened)
            try:
                children = os.listdir(opened)
            except OSError:
                children = []
            stack.extend((opened, child, None) for child in children)
            continue
        # All children handled (or failed): close and remove the folder itself.
        os.close(opened)
        try:
            os.rmdir(entry, dir_fd=dir_fd)
        except OSError:
            pass
        stack.pop()
    os.close(top)


def zygote(control_fd: int, preload: list[str], learner_uid, namespaces: bool = True,
           preamble: str | None = None) -> None:
    """``learner_uid``: the uid learners run as (None: the zygote's own, when not root);
    ``namespaces``: False to use the uid mode even where namespaces work; ``preamble``: the
    assignment's imports cell, run by each prepared process before its learner exists."""
    import importlib
    import select
    import signal
    import socket

    import gc

    for module in preload:
        importlib.import_module(module)
    # What the zygote holds now is every learner's: frozen, the learner's garbage collections
    # do not walk it (each walk would touch, and so copy, every page the fork shares).
    # The first np.random.seed() in a process costs ~10 ms (numpy sets up its global state):
    # paid here once, not by every learner child, which seeds again.
    seed_everything(0)
    gc.collect()
    gc.freeze()
    _prctl(PR_SET_DUMPABLE, 0)
    mode = "namespace" if namespaces and _namespaces_work() else ("uid" if learner_uid is not None else "none")
    if mode == "uid":
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a learner become ours, to be killed and reaped
    control = socket.socket(fileno=control_fd)
    control.sendall(b"ready " + mode.encode())
    zygote_pid = os.getpid()
    # Namespace mode keeps the next submission's process prepared (see _prepared_submission).
    spare = _prepare(control, learner_uid, zygote_pid, preamble) if mode == "namespace" else None
    exiting = []   # keepers that reported their namespace empty and are still exiting
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 4)
        except OSError:
            return
        if not message:
            return  # the grader went away
        if message != b"fork" or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        exiting = [keeper for keeper in exiting if not keeper.reap()]
        current = pid = None
        if mode == "namespace":
            for _ in range(2):   # a spare that is gone (killed from outside) is replaced once
                candidate, spare = spare or _prepare(control, learner_uid, zygote_pid, preamble), None
                if candidate is not None and candidate.hand_over(fds):
                    current = candidate
                    break
        else:
            pid = os.fork()
            if pid == 0:  # the submission's process
                try:
                    control.close()
                    _run_submission(fds, learner_uid, zygote_pid)
                finally:
                    os._exit(70)
        for fd in fds:
            os.close(fd)
        if mode == "namespace":
            if current is None:
                control.sendall(b"exited 70")
                continue
            # The next one's, while this one runs (it holds none of this one's pipes).
            spare = _prepare(control, learner_uid, zygote_pid, preamble)
            watched = current.status_r
        else:
            watched = os.pidfd_open(pid)
        while True:
            ready, _, _ = select.select([control, watched], [], [])
            if control in ready:
                command = control.recv(64)
                if not command:
                    for prepared in [current, spare]:
                        if prepared is not None:
                            prepared.discard()
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                    return
                if command == b"kill":
                    if mode == "namespace":
                        os.kill(current.pid, signal.SIGTERM)   # the keeper kills its namespace's init
                    elif mode == "uid":
                        _kill_uid(learner_uid)
                    else:
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except OSError:
                            os.kill(pid, signal.SIGKILL)
            if watched in ready:
                if mode == "namespace":
                    status = current.wait_status()
                    exiting.append(current)
                else:
                    os.close(watched)
                    _, status = os.waitpid(pid, 0)
                break
        clean = _sweep_uid(learner_uid) if mode == "uid" else True
        control.sendall(b"exited %d" % os.waitstatus_to_exitcode(status))
        if not clean:
            return   # a process of the learner uid survived: this sandbox (and its uid) is retired


def main(argv: list[str]) -> None:
    sys.path.insert(0, os.getcwd())
    if "--zygote" in argv:
        preload = argv[argv.index("--preload") + 1].split(",") if "--preload" in argv else []
        uid = int(argv[argv.index("--learner-uid") + 1]) if "--learner-uid" in argv else None
        preamble = None
        if "--preamble" in argv:
            with open(argv[argv.index("--preamble") + 1], encoding="utf-8") as handle:
                preamble = handle.read()
        zygote(int(argv[argv.index("--zygote") + 1]), [m for m in preload if m], uid, "--no-namespaces" not in argv,
               preamble)
        return
    fd_in, fd_out = int(argv[argv.index("--fds") + 1]), int(argv[argv.index("--fds") + 2])
    seed_everything(0)
    Worker(fd_in, fd_out).serve()


if __name__ == "__main__":
    main(sys.argv)
