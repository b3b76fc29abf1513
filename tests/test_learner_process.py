"""The learner process (grading/learner.py): repeatable calls, prepared children, zygote replacement,
error replies classified by code, and one thread owning the process state.

An assignment's ``repeatable_calls`` (assignment.toml) lets several checks ask
a deterministic learner function the same question for the price of one
round trip: those tests count the child's real calls with a function that
returns how often it ran. The others check the zygote's prepared processes
(root while they wait, no learner pipe, every thread the learner's, replaced
when lost or when their warm-up fails) and that a closed zygote is replaced.
"""

import numpy as np
import pytest

from autograder.grading import catalogue
from autograder.grading.cells import Cell
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.learner_errors import ErrorKind, LearnerError
from autograder.grading.time_policy import TimePolicy

# Each function returns how many times the child ran it (a mutable default
# survives between calls in the same process).
COUNTING_CELL = """
import numpy as np

def update_parameters_with_gd(parameters, grads, learning_rate, _runs=[]):
    _runs.append(1)
    return np.full(2, float(len(_runs)))

def random_mini_batches(X, Y, mini_batch_size=64, seed=0, _runs=[]):
    _runs.append(1)
    return len(_runs)

def update_lr(learning_rate0, epoch_num, decay_rate):
    raise ValueError("not today")
"""


@pytest.fixture
def learner():
    spec = catalogue.load("optimization")
    cell = Cell("counting", COUNTING_CELL, ["update_parameters_with_gd", "random_mini_batches", "update_lr"])
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=[cell],
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
        repeatable=("update_parameters_with_gd", "update_lr"),
    )
    yield Learner(process)
    process.close()


def test_identical_repeatable_calls_run_once_in_the_child(learner):
    parameters, grads = {"W1": np.ones((2, 2))}, {"dW1": np.zeros((2, 2))}
    first = learner.update_parameters_with_gd(parameters, grads, 0.1)
    again = learner.update_parameters_with_gd(parameters, grads, 0.1)
    assert first.tolist() == again.tolist() == [1.0, 1.0]
    # Another argument is another question.
    assert learner.update_parameters_with_gd(parameters, grads, 0.2).tolist() == [2.0, 2.0]
    assert learner.update_parameters_with_gd({"W1": 2 * np.ones((2, 2))}, grads, 0.1).tolist() == [3.0, 3.0]


def test_reused_replies_are_decoded_afresh(learner):
    parameters, grads = {"W1": np.ones((2, 2))}, {"dW1": np.zeros((2, 2))}
    first = learner.update_parameters_with_gd(parameters, grads, 0.1)
    first[:] = -5.0  # a check that changes what it got must not change what the next check gets
    assert learner.update_parameters_with_gd(parameters, grads, 0.1).tolist() == [1.0, 1.0]


def test_other_functions_run_every_time(learner):
    X, Y = np.zeros((2, 4)), np.zeros((1, 4))
    assert [learner.random_mini_batches(X, Y, 2, 5) for _ in range(3)] == [1, 2, 3]


def test_a_repeated_error_is_reported_each_time(learner):
    for _ in range(2):
        with pytest.raises(LearnerError, match="raised ValueError: not today"):
            learner.update_lr(0.1, 1, 1.0)


# Two functions in separate cells: one slow (within its per-call limit) whose cell patches
# builtins at definition time and whose calls leave state behind; one that reports what it sees.
SLOW_CELL = """
import builtins, time
class _Patch:
    builtins.abs = lambda value: -1
def update_parameters_with_gd(parameters, grads, learning_rate):
    builtins.leftover = "from the slow function"
    time.sleep(0.6)
    return 1
"""
WITNESS_CELL = """
import builtins
def update_lr(learning_rate0, epoch_num, decay_rate):
    return [abs(-2), getattr(builtins, "leftover", None)]
"""


def test_each_function_gets_a_fresh_child_with_only_its_cells_and_its_own_budget():
    spec = catalogue.load("optimization")
    cells = [Cell("slow", SLOW_CELL, ["update_parameters_with_gd"]), Cell("witness", WITNESS_CELL, ["update_lr"])]
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=1, function=1.5, submission=100),
    )
    learner = Learner(process)
    try:
        process.begin_function("update_parameters_with_gd")
        assert learner.update_parameters_with_gd({}, {}, 0.1) == 1
        with pytest.raises(LearnerError, match="time budget") as exc:
            for _ in range(5):  # 0.6 s each, within the 1 s per call, over the function's 1.5 s
                learner.update_parameters_with_gd({}, {}, 0.1)
        assert exc.value.kind is ErrorKind.BUDGET
        process.begin_function("update_lr")
        # Its own budget, a child that never ran the slow cell's definitions nor its calls.
        assert learner.update_lr(0.1, 1, 1.0) == [2, None]
    finally:
        process.close()


def test_a_check_may_call_another_function_whose_cell_is_then_loaded():
    spec = catalogue.load("optimization")
    cells = [
        Cell("a", "def update_lr(a, b, c):\n    return 7\n", ["update_lr"]),
        Cell("b", "def schedule_lr_decay(a, b, c, d=1000):\n    return 8\n", ["schedule_lr_decay"]),
    ]
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=5, submission=100),
    )
    learner = Learner(process)
    try:
        process.begin_function("update_lr")
        assert learner.update_lr(1, 2, 3) == 7
        assert learner.schedule_lr_decay(1, 2, 3) == 8
    finally:
        process.close()


def _processes() -> dict:
    """pid -> (ppid, real uid, command line) of every process."""
    import os

    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(pid)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]), cmdline)
    return found


@pytest.mark.parametrize("way", ["direct", "keeper"])
def test_the_spare_submission_process_is_root_holds_no_learner_pipe_and_is_replaced_when_lost(way):
    """In namespace mode the zygote keeps the next submission's process ready (see sandbox/prepared.py).
    While a learner runs, the spare runs none of its code and has no uid a learner has, and neither
    holds a descriptor through which it could report its own end; killed from outside, the next
    function is graded in a freshly forked child. Both ways: "direct" (pid 1 of each submission is
    the zygote's child) and "keeper" (a keeper between them, where setns is refused)."""
    import os
    import signal
    import time

    from autograder.sandbox import isolation, settings, spawn

    if isolation.available_strategy() != "bwrap" or os.geteuid() != 0:
        pytest.skip("namespace mode with a private learner uid needs bubblewrap as root")
    spec = catalogue.load("optimization")
    cells = [
        Cell(
            "a",
            "import os\ndef update_lr(a, b, c):\n    return [os.getuid(), len(os.listdir('/proc/self/fd'))]\n",
            ["update_lr"],
        ),
        Cell(
            "b", "import os\ndef schedule_lr_decay(a, b, c, d=1000):\n    return os.getuid()\n", ["schedule_lr_decay"]
        ),
    ]
    previous = settings.use(settings.current().but(namespace_keeper=way == "keeper"))
    spawner = spawn.ZygoteSpawner(
        f"optimization:spare-{way}:{os.getpid()}",
        spec.release_dir,
        spec.limits(),
        ["numpy", "optimization_utils"],
        None,
        preamble=spec.preamble,
    )
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=cells,
        limits=spec.limits(),
        time_policy=TimePolicy(call=5, submission=100),
        spawner=spawner,
    )
    learner = Learner(process)
    try:
        process.begin_function("update_lr")
        learner_uid, _ = learner.update_lr(1, 2, 3)
        assert learner_uid != 0

        def ours(pid):  # a descendant of this test process: not another grader's zygote on the same host
            seen = set()
            while pid and pid not in seen:
                if pid == os.getpid():
                    return True
                seen.add(pid)
                pid = table.get(pid, (0, 0, ""))[0]
            return False

        def zygote_python(pid):  # this process's zygote's Python and everything forked from it (not bwrap)
            cmd = table.get(pid, (0, 0, ""))[2]
            return "--zygote" in cmd and "optimization_utils" in cmd and "python" in cmd.split()[0] and ours(pid)

        def inits_of(zygotes):  # each submission's pid 1: the zygote's children, or its keepers' children
            children = [pid for pid, (ppid, _, _) in table.items() if ppid in zygotes]
            if way == "direct":
                return {pid: pid for pid in children}
            return {pid: keeper for keeper in children for pid, (ppid, _, _) in table.items() if ppid == keeper}

        for _ in range(100):  # the spare is prepared while the learner runs: give it a moment
            table = _processes()
            zygotes = [pid for pid, (ppid, _, _) in table.items() if zygote_python(pid) and not zygote_python(ppid)]
            if len(inits_of(zygotes)) == 2:
                break
            time.sleep(0.02)
        assert len(zygotes) == 1
        inits = inits_of(zygotes)
        keepers = {keeper for init, keeper in inits.items() if keeper != init}
        assert len(keepers) == (2 if way == "keeper" else 0), (way, inits)
        uids = {init: table[init][1] for init in inits}
        spares = [init for init, uid in uids.items() if uid == 0]
        running = [init for init, uid in uids.items() if uid == learner_uid]
        assert len(running) == 1 and len(spares) == 1, uids

        def links(pid):
            return {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}

        # The spare holds a handover socket and its alive pipe, not the learner's pipes, and no
        # pidfd (the zygote's handle on the running learner).
        spare_fds, learner_fds = links(spares[0]), links(running[0])
        shared_pipes = {link for link in spare_fds & learner_fds if link.startswith("pipe:")}
        assert not shared_pipes, shared_pipes
        assert not [link for link in spare_fds | learner_fds if "pidfd" in link], (spare_fds, learner_fds)

        # The learner holds no writable end of a pipe that whoever waits for it holds (the zygote's
        # alive pipes, a keeper's status and alive pipes): it could otherwise report its own end
        # while it still runs. Not counted: the zygote's own stdout and stderr, which the spare
        # shares until it is handed its own.
        def pipes(pid, writable_only, skip=()):
            found = set()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if int(fd) in skip:
                    continue
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                        flags = int(next(line for line in handle if line.startswith("flags:")).split()[1], 8)
                except (OSError, StopIteration):
                    continue
                if link.startswith("pipe:") and (not writable_only or flags & 3):
                    found.add(link)
            return found

        held = pipes(zygotes[0], False, skip=(0, 1, 2))
        for keeper in keepers:
            held |= pipes(keeper, False, skip=(0, 1, 2))
        assert not pipes(running[0], True) & held
        assert not pipes(spares[0], True) & held
        os.kill(inits[spares[0]], signal.SIGKILL)  # lost (its keeper, or itself): the next function must not notice
        time.sleep(0.2)
        process.begin_function("schedule_lr_decay")
        assert learner.schedule_lr_decay(1, 2, 3) == learner_uid
    finally:
        process.close()
        with spawn._ZYGOTES_LOCK:  # this test's zygote only (others stay warm for the tests after it)
            zygote = spawn._ZYGOTES.pop(spawner.key, None)
        if zygote is not None:
            zygote.close()
        settings.use(previous)


THREADS_CELL = """
import os

def linear_function():
    if "tensorflow" in __import__("sys").modules:   # TF's thread pools start with its first op
        __import__("tensorflow").constant(1.0) + 1.0
    found = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        found.append([int(fields["Uid"].split()[0]), int(fields["CapEff"], 16), int(fields["CapPrm"], 16),
                      int(fields["NoNewPrivs"])])
    return found
"""


@pytest.mark.parametrize("name", ["optimization", "tensorflow_intro"])
def test_every_thread_of_a_warmed_learner_is_the_learner(name):
    """A prepared process runs the trusted warm-up (the imports cell) as root before it becomes
    the learner: every thread the learner has (TensorFlow's pools included, and any a warm-up
    would start) has the learner's uid, no capabilities and no_new_privs. (Shown to fail when
    the uid change is made for the calling thread only and TF's pools exist before it.)"""
    import os

    from autograder.grading.grade import warm_spawner
    from autograder.sandbox import isolation

    if isolation.available_strategy() != "bwrap":
        pytest.skip("namespace mode (prepared processes) needs bubblewrap")
    spec = catalogue.load(name)
    function = "linear_function" if name == "tensorflow_intro" else "update_lr"
    cell = Cell("threads", THREADS_CELL.replace("linear_function", function), [function])
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=[cell],
        limits=spec.limits(),
        time_policy=TimePolicy(call=20, submission=100),
        spawner=warm_spawner(spec),
    )
    try:
        process.begin_function(function)
        threads = Learner(process).call(function)
        assert process.separation == "namespace"
    finally:
        process.close()
    if name == "tensorflow_intro":
        assert len(threads) > 1, threads  # TF's pools, started by the warm-up
    learner_uid = threads[0][0]
    assert learner_uid != 0 or os.geteuid() != 0
    assert all(t == [learner_uid, 0, 0, 1] for t in threads), threads


def test_a_prepared_process_whose_warm_up_fails_is_never_handed_a_learner(tmp_path):
    """The zygote hands over only a prepared process that said "ready" (its warm-up, run while
    the previous learner ran, went through). Here the trusted warm-up of the process prepared
    during the first function fails a second after the next function's child is asked for:
    that function is graded in a freshly prepared process, with no crash charged to it."""
    import time

    from autograder.sandbox import isolation, spawn

    if isolation.available_strategy() != "bwrap":
        pytest.skip("namespace mode (prepared processes) needs bubblewrap")
    spec = catalogue.load("optimization")
    preamble = spec.preamble + (
        "\nimport os as _os, time as _time\nif _os.path.exists('WARM_UP_FAILS'):\n"
        "    _time.sleep(1.0)\n    raise RuntimeError('warm-up failed')\n"
    )
    spawner = spawn.ZygoteSpawner(
        "optimization:warm-up-fails",
        spec.release_dir,
        spec.limits(),
        ["numpy", "optimization_utils"],
        preamble=preamble,
    )
    marker = spawner.warm().root / "work" / "WARM_UP_FAILS"
    time.sleep(0.5)  # the spare made at the zygote's start is past its check (a few ms)
    # The first function takes long enough for the spare made beside it to find the marker.
    cells = [
        Cell("a", "import time\ndef update_lr(a, b, c):\n    time.sleep(0.3)\n    return a + b + c\n", ["update_lr"]),
        Cell("b", "def schedule_lr_decay(a, b, c, d=1000):\n    return a * b\n", ["schedule_lr_decay"]),
    ]
    process = LearnerProcess(
        preamble=preamble,
        cells=cells,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=100),
        spawner=spawner,
    )
    learner = Learner(process)
    try:
        marker.touch(mode=0o644)  # the spare made when the first child is handed over fails its warm-up
        process.begin_function("update_lr")
        assert learner.update_lr(1, 2, 3) == 6
        marker.unlink()  # ... a second after being asked for; the next one is made without the marker
        process.begin_function("schedule_lr_decay")
        assert learner.schedule_lr_decay(4, 5, 6) == 20
        assert process.events.crashes == [] and process.restarts == 0
    finally:
        process.close()
        spawner.warm().close()


def test_a_closed_zygote_is_replaced_even_while_its_sandbox_is_still_dying():
    """A zygote closed because its child would not end (a TF fork bomb takes longer to tear down
    than the grader waits) is never handed the next function: before, its sandbox still looked
    alive for a while and the next spawn failed with "zygote already has a live child"."""
    from autograder.grading.grade import warm_spawner

    spec = catalogue.load("initialization")
    spawner = warm_spawner(spec, None)
    dying = spawner.warm()
    kill = dying.proc.kill
    dying.proc.kill = lambda: None  # its sandbox takes its time to die
    dying.busy = True  # with the child that would not end
    try:
        dying.close()
        assert not dying.alive()
        fresh = spawner.warm()
        assert fresh is not dying and fresh.alive()
        fresh.spawn().kill()
    finally:
        kill()


# ------------------------------------------------------------------ error replies: by code, not by text


class _NoSpawner:
    starts_in_background = False

    def spawn(self):
        raise AssertionError("no child in this test")

    def close(self):
        pass


def _decoder():
    cells = [Cell("a", "def f():\n    pass\n", ["f"]), Cell("b", "def g():\n    pass\n", ["g"])]
    return LearnerProcess(
        preamble="",
        cells=cells,
        limits=catalogue.load("optimization").limits(),
        time_policy=TimePolicy(call=1, submission=3),
        spawner=_NoSpawner(),
    )


def _error(**fields) -> dict:
    return {
        "ok": False,
        "error": {"type": "NameError", "message": "", "traceback": "", "code": "raised", "name": None, **fields},
    }


def _decoded(process, reply, name="f", called=None) -> LearnerError:
    with pytest.raises(LearnerError) as error:
        process._decode(reply, name, called=called)
    return error.value


def test_a_missing_function_is_told_by_the_replys_code_and_name():
    p = _decoder()
    # The code and a graded function's name: missing, whatever the text says.
    error = _decoded(p, _error(code="not-defined", name="g", message="whatever"))
    assert str(error) == "g is not defined by the graded cells of the notebook" and error.kind is ErrorKind.MISSING
    # A call's own name is believed (the grader asked for it), graded or not.
    error = _decoded(p, _error(code="not-defined", name="nowhere"), name="nowhere", called="nowhere")
    assert str(error) == "nowhere is not defined by the graded cells of the notebook"
    # Its cell failed before the definition ran: said so.
    p.events.cell_errors["b"] = "ZeroDivisionError: division by zero\n  File ..."
    error = _decoded(p, _error(code="not-defined", name="g"))
    assert str(error).startswith(
        "g is not defined: its cell stopped with an error before the definition ran "
        "(ZeroDivisionError: division by zero)"
    )


@pytest.mark.parametrize(
    "fields",
    [
        dict(code="not-defined", name="os"),  # not a graded function, not what was called
        dict(code="not-defined", name=["g"]),  # not a string
        dict(code="not-defined", name="g" * 5000),  # no name is that long
        dict(code="not-defined"),  # no name at all
        dict(code="no-such-code", name="g"),  # an unknown code
        dict(code=["not-defined"], name="g"),  # a code that is not a string
        dict(message="name 'g' is not defined"),  # the old text, with code "raised": the text decides nothing
    ],
)
def test_a_forged_or_unknown_error_reply_reads_as_raised(fields):
    error = _decoded(_decoder(), _error(**fields))
    assert error.kind is ErrorKind.ERROR and str(error).startswith("f raised NameError: ")


def test_the_other_codes_and_the_caps():
    p = _decoder()
    error = _decoded(p, _error(type="NotImplementedError", code="not-implemented"))
    assert str(error) == "f is not implemented yet (raise NotImplementedError)" and error.kind is ErrorKind.ERROR
    # An empty NotImplementedError's type and text, without the code: an error like any other.
    assert str(_decoded(p, _error(type="NotImplementedError"))) == "f raised NotImplementedError: "
    error = _decoded(p, _error(type="UnsupportedReturn", code="unsupported-return", message="a generator"))
    assert str(error) == "f: a generator" and error.kind is ErrorKind.UNSUPPORTED
    assert (
        str(_decoded(p, _error(type="ProtocolError", code="protocol", message="unknown op")))
        == "f raised ProtocolError: unknown op"
    )
    error = _decoded(p, _error(type="T" * 1000, message="m" * 10_000, traceback="t" * 10_000))
    assert str(error) == "f raised " + "T" * 80 + ": " + "m" * 500 and len(error.traceback) == 3000
    assert str(_decoded(p, {"ok": False, "error": "not a dict"})) == "f raised Error: "


def test_error_kinds_are_a_closed_set():
    assert {kind.value for kind in ErrorKind} == {"error", "missing", "timeout", "budget", "crash", "unsupported"}
    assert LearnerError("x", "missing").kind is ErrorKind.MISSING
    with pytest.raises(ValueError):
        LearnerError("x", "misssing")


def _serve(requests: list) -> list:
    """The replies of an in-process child Worker to ``requests`` (the learner side of the protocol)."""
    import os

    from autograder.sandbox import codec, worker

    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    for request in requests:
        os.write(req_w, codec.dumps(request))
    os.close(req_w)
    worker.Worker(req_r, resp_w).serve()
    os.close(req_r)
    os.close(resp_w)
    replies = []
    with os.fdopen(resp_r, "rb") as pipe:
        while header := pipe.read(4):
            replies.append(codec.loads_frame_body(pipe.read(codec.frame_length(header))))
    return replies


CODES_CELL = """
def stub():
    raise NotImplementedError()

def told():
    raise NotImplementedError("numpy on a symbolic tensor")

def uses_missing():
    return helper_nobody_defined()

def looks_up():
    return {}["key"]

def odd():
    return object()
"""


def test_the_child_sends_a_code_and_a_name_with_each_error():
    from autograder.sandbox import codec

    def call(name):
        return {"op": "call", "name": name, "args": codec.to_plain([]), "kwargs": codec.to_plain({})}

    def probe(body):
        return {"op": "probe", "source": "def probe(ns):\n    " + body + "\n", "inputs": codec.to_plain({})}

    replies = _serve(
        [
            {"op": "exec", "cell": "c", "source": CODES_CELL},
            call("nowhere"),
            call("stub"),
            call("told"),
            call("uses_missing"),
            call("looks_up"),
            call("odd"),
            probe("return nowhere()"),
            probe("return ns['nowhere']"),
            probe("raise NameError('nowhere is not defined', name='nowhere')"),
            probe("raise NameError('nowhere is not defined')"),  # no name=: nothing says which
            probe("return ns['stub']()"),
            {"op": "unknown"},
        ]
    )
    assert replies[0]["ok"]
    got = [(r["error"]["code"], r["error"]["name"]) for r in replies[1:]]
    assert got == [
        ("not-defined", "nowhere"),  # a call of a name the namespace lacks
        ("not-implemented", None),
        ("raised", None),  # NotImplementedError with a message
        ("raised", None),  # a NameError inside a called function is the function's error
        ("raised", None),  # ... and so is a KeyError
        ("unsupported-return", None),
        ("not-defined", "nowhere"),  # in a probe: Python's NameError,
        ("not-defined", "nowhere"),  # ns['f']'s KeyError,
        ("not-defined", "nowhere"),  # a suite's NameError(..., name=f),
        ("raised", None),  # but not one that names nothing
        ("not-implemented", None),
        ("protocol", None),
    ]
    assert all(set(r["error"]) == {"type", "message", "traceback", "code", "name"} for r in replies[1:])


# ------------------------------------------------------------------ threads


def test_only_the_main_thread_writes_the_process_state():
    """The prestart thread (a zygote's child started while the grader works) hands back what it did;
    the main thread installs it. Every write of an attribute of the process, or of its events
    (but the drainer's output fields), happens on the main thread, while starts, cell errors,
    bad cells and restarts do happen in the prestart thread."""
    import threading

    from autograder.grading.connection import ProcessEvents
    from autograder.grading.grade import warm_spawner

    main = threading.current_thread()
    writes, starts = [], []

    class WatchedEvents(ProcessEvents):
        def __setattr__(self, name, value):
            if name not in ("output_bytes", "output_head"):
                writes.append((f"events.{name}", threading.current_thread()))
            super().__setattr__(name, value)

    class Watched(LearnerProcess):
        def __setattr__(self, name, value):
            writes.append((name, threading.current_thread()))
            if name == "events":
                value = WatchedEvents(**vars(value))
            super().__setattr__(name, value)

        def _start(self, *args):
            starts.append(threading.current_thread().name)
            return super()._start(*args)

    spec = catalogue.load("optimization")
    cells = [
        Cell("a", "def update_lr(a, b, c):\n    return a + b + c\n", ["update_lr"]),
        Cell("b", "x = 1 / 0\ndef schedule_lr_decay(a, b, c, d=1000):\n    return 1\n", ["schedule_lr_decay"]),
        Cell("d", "def initialize_adam(p, _=__import__('os')._exit(3)):\n    return 1\n", ["initialize_adam"]),
    ]
    process = Watched(
        preamble=spec.preamble,
        cells=cells,
        limits=spec.limits(),
        time_policy=TimePolicy(call=5, submission=60),
        spawner=warm_spawner(spec),
    )
    learner = Learner(process)
    try:
        process.begin_function("update_lr")
        assert learner.update_lr(1, 2, 3) == 6
        process.begin_function("schedule_lr_decay")
        with pytest.raises(LearnerError, match="its cell stopped with an error before the definition ran"):
            learner.schedule_lr_decay(1, 2, 3)
        process.begin_function("initialize_adam")
        with pytest.raises(LearnerError, match="initialize_adam is not defined"):
            learner.initialize_adam({})
    finally:
        process.close()
    assert "dlgrade-prestart" in starts  # the starts did run in the helper thread
    assert "b" in process.events.cell_errors and "d" in process.bad_cells and process.restarts >= 1
    assert {name for name, thread in writes if thread is not main} == set()
