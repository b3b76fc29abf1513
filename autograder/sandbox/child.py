"""The learner process: runs a submission's graded cells and answers calls.

Started by the oracle inside the sandbox with two inherited pipe descriptors
(``--fds IN OUT``). It reads length-prefixed JSON requests and writes replies;
every value is encoded with ``codec`` (plain data only). The learner's
stdout/stderr go to the sandbox's own pipes, never to the protocol pipe.

Requests: ``exec`` (run one cell, graded statements only), ``call`` (call a
function defined by the cells), ``probe`` (run a grader-supplied snippet
against the learner's namespace), ``seed``.

Nothing in this file is trusted by the oracle: a submission can patch it at
run time, and the oracle only ever receives plain data it checks itself.
"""
from __future__ import annotations

import ast
import os
import random
import sys
import traceback

try:  # in the sandbox codec.py sits beside this file; in the oracle it is a package module
    import codec
except ImportError:  # pragma: no cover - exercised when imported by the oracle
    from autograder.sandbox import codec

# Top-level statements of a graded cell that are executed. Everything else
# (demo calls, prints, training runs, monkeypatching) is skipped: the grade
# depends on the functions, not on the notebook's side effects.
KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def strip_magics(source: str) -> str:
    """Blank out IPython magics and shell escapes, keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def _is_constant_assignment(node) -> bool:
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if all(isinstance(t, ast.Name) for t in targets):
            try:
                ast.literal_eval(node.value)
                return True
            except ValueError:
                return False
    return False


def graded_statements(tree: ast.Module) -> tuple[list, list]:
    """Split a cell's top-level statements into (kept, skipped line numbers)."""
    kept, skipped = [], []
    for node in tree.body:
        if isinstance(node, KEPT_STATEMENTS) or _is_constant_assignment(node):
            kept.append(node)
        else:
            skipped.append(node.lineno)
    return kept, skipped


class Worker:
    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}

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
                self.write({"ok": False, "error": {"type": "ProtocolError", "message": "unknown op"}})
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
        # The trusted imports cell of the solution notebook, run as is.
        source = strip_magics(request["source"])
        exec(compile(source, "<imports>", "exec"), self.namespace)
        return {"ok": True}

    def op_call(self, request: dict) -> dict:
        name = request["name"]
        func = self.namespace.get(name)
        if not callable(func):
            return {"ok": False, "error": {"type": "NameError", "message": f"{name} is not defined", "traceback": ""}}
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
            return {"ok": False, "error": {"type": "UnsupportedReturn", "message": str(exc), "traceback": ""}}


def _register_source(filename: str, source: str) -> None:
    """Let tracebacks show the learner's cell lines."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def describe(exc: BaseException) -> dict:
    """An exception as plain data, with the traceback limited to learner cells."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell") or f.filename.endswith("_utils.py")
    ]
    lines = traceback.format_list(frames[-8:])
    message = str(exc)
    if len(message) > 2000:
        message = message[:2000] + " ..."
    return {"type": type(exc).__name__, "message": message, "traceback": "".join(lines)[-4000:]}


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


# ---------------------------------------------------------------- zygote
#
# A zygote imports the heavy modules once (numpy, the helper module,
# TensorFlow) and forks one fresh child per submission. The oracle sends
# "fork" over a SOCK_SEQPACKET control socket with four descriptors: the new
# child's request and reply pipes and its stdout/stderr. Only one child lives
# at a time; when it ends, every other process of the sandbox is killed and
# /tmp is emptied (bwrap), or every process of the zygote's private uid is
# killed and the files it owns in /tmp deleted (setpriv), so nothing of one
# submission survives into the next.

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _sweep(keep: int) -> None:
    """Kill every process of the sandbox but ``keep``, and empty /tmp.

    Only called inside bubblewrap, where /proc shows the sandbox's own pid
    namespace and /tmp is the sandbox's own tmpfs; elsewhere it would reach
    the host's processes and files.
    """
    import shutil
    import signal
    import time

    for _ in range(5):  # a fork bomb may still be forking during the first pass
        others = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (keep, 1)]
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not others:
            break
        time.sleep(0.01)
    # The Python installation may live under /tmp (a checkout in /tmp): it is
    # read-only-bound over the tmpfs and must be kept, with the directories
    # leading to it; everything else the submission wrote there goes.
    kept = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    _empty_dir("/tmp", kept, shutil)


def _sweep_own_uid() -> None:
    """Kill every other process of this uid and delete what it owns in /tmp.

    For the setpriv strategy, where there is no pid namespace: the zygote
    runs as a uid no other process has (sandbox.private_uid), so kill(-1),
    which reaches every process we may signal but never ourselves, reaches
    exactly what the ended child left behind. The zygote is a child
    subreaper, so those orphans are its children and are reaped here (a
    zombie would still count as a process for kill).
    """
    import shutil
    import signal
    import time

    uid = os.getuid()
    for _ in range(50):  # one pass should do (fork fails once SIGKILL is pending); a bomb gets more
        try:
            os.kill(-1, signal.SIGKILL)   # processes of other uids refuse it silently (EPERM)
        except OSError:
            pass
        time.sleep(0.002)
        _reap_children()
        if not _processes_of(uid):
            break
    for folder in {"/tmp", "/var/tmp", "/dev/shm", os.environ.get("TMPDIR") or "/tmp"}:
        _remove_owned(folder, uid, shutil, depth=0)


def _processes_of(uid: int) -> list:
    """Pids of the processes whose real uid is ``uid``, but ours (zombies included)."""
    found, me = [], os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
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


def _remove_owned(folder: str, uid: int, shutil, depth: int) -> None:
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
        is_dir = stat.S_ISDIR(info.st_mode)
        if info.st_uid == uid:
            _remove(path, is_dir, shutil)
        elif is_dir and info.st_mode & 0o002 and depth < 2:
            _remove_owned(path, uid, shutil, depth + 1)


def _remove(path: str, is_dir: bool, shutil) -> None:
    """Delete a file, link or folder tree (``is_dir``: a real folder, not a link to one).

    A submission may leave folders it made unreadable (mode 000) so that they
    survive for the next one: we own them, so open them up first.
    """
    if is_dir:
        try:
            os.chmod(path, 0o700)
            for root, dirs, _ in os.walk(path):
                for name in dirs:
                    sub = os.path.join(root, name)
                    if not os.path.islink(sub):
                        os.chmod(sub, 0o700)
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def _empty_dir(folder: str, kept: set, shutil) -> None:
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if path in kept:
            continue
        if any(root.startswith(path + "/") for root in kept):
            _empty_dir(path, kept, shutil)
        else:
            _remove(path, os.path.isdir(path) and not os.path.islink(path), shutil)


def zygote(control_fd: int, preload: list[str], sweep: str | None) -> None:
    """sweep: "namespace" (bwrap: the sandbox's own pid namespace and /tmp), "uid" (setpriv:
    the zygote's own uid) or None (plain: nothing can be swept safely)."""
    import importlib
    import select
    import signal
    import socket

    for module in preload:
        importlib.import_module(module)
    # Not ptrace-able (nor /proc/<pid>/mem-readable) by the children, which share its uid.
    _prctl(PR_SET_DUMPABLE, 0)
    if sweep == "uid":
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a child become ours, to be killed and reaped
    control = socket.socket(fileno=control_fd)
    control.sendall(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 4)
        except OSError:
            return
        if not message:
            return  # the oracle went away
        if message != b"fork" or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        req_r, resp_w, out_w, err_w = fds
        pid = os.fork()
        if pid == 0:  # the child: a fresh learner process
            try:
                control.close()
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                for fd in (out_w, err_w):
                    os.close(fd)
                os.setsid()
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                _prctl(PR_SET_DUMPABLE, 1)
                seed_everything(0)
                Worker(req_r, resp_w).serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        while True:
            ready, _, _ = select.select([control, pidfd], [], [])
            if control in ready:
                command = control.recv(64)
                if not command:
                    os.kill(pid, signal.SIGKILL)
                    return
                if command == b"kill":
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        os.kill(pid, signal.SIGKILL)
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                break
        os.close(pidfd)
        if sweep == "namespace":
            _sweep(keep=os.getpid())
        elif sweep == "uid":
            _sweep_own_uid()
        code = os.waitstatus_to_exitcode(status)
        control.sendall(b"exited %d" % code)


def main(argv: list[str]) -> None:
    sys.path.insert(0, os.getcwd())
    if "--zygote" in argv:
        preload = argv[argv.index("--preload") + 1].split(",") if "--preload" in argv else []
        sweep = argv[argv.index("--sweep") + 1] if "--sweep" in argv else None
        zygote(int(argv[argv.index("--zygote") + 1]), [m for m in preload if m], sweep)
        return
    fd_in, fd_out = int(argv[argv.index("--fds") + 1]), int(argv[argv.index("--fds") + 2])
    seed_everything(0)
    Worker(fd_in, fd_out).serve()


if __name__ == "__main__":
    main(sys.argv)
