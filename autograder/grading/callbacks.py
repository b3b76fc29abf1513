"""The grader's side of a child's forwarders: a graded function's graded dependencies run here.

A graded function B that calls another graded function A is graded with the
reference A (grading/stand_ins.py). For an assignment without TensorFlow, B's
child holds no reference code: each A there is a forwarder
(``worker.Worker.call_grader``) that, while the grader waits for the reply of
the current request, sends a ``callback`` frame (A's name, its arguments and
numpy's global generator's state, in the codec's plain types) and blocks for
the answer. :meth:`Callbacks.answer` is what the grader does with such a frame
(:meth:`connection.Connection.request` hands it over): the name must be one of
the forwarders this child was given (``allow``, when the ``forwarders``
request is sent), the frame is counted before it is decoded, the arguments
decoded like any reply, the reference A (``catalogue.reference``) run here with
the child's generator state swapped in, and the value, the arguments' changes
(a ``bn_param`` the function fills in) and the generator's new state sent back.
A refusal or the reference's own error goes back as an error the child raises
(``GraderCallError``) in the learner's function: never a grader crash, and the
time all this takes is the request's, charged to the function's share.

A suite's per-call stand-ins (``probes.call_with_stand_ins``: a known cost's
forward and backward functions) stay in the child: they are the suite's test
fixtures, not the solution (their source already goes to the child with the
probe that installs them), and a gradient check calls them many times.

Bounds, per request (one check's call or probe): :data:`MAX_CALLBACKS`,
:data:`MAX_ELEMENTS`, :data:`MAX_BYTES`, and :data:`MAX_INT` on integer
arguments. The reference runs in this process on the learner's arguments, so
what those bound is what the arguments hold, not everything the reference
could make of them (two arrays that broadcast to a huge one): a reference
worker of its own (a sandbox with no learner code) would bound that too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from autograder.sandbox import codec

PREFIX = b'{"callback": '  # how a callback frame's text starts (Worker.call_grader writes it with codec.dumps)

# The suites' most in one check: random_search's 200 trials, a sampler of each kind per trial (400);
# each costs a round trip (a fraction of a millisecond) beside the reference's own work.
MAX_CALLBACKS = 2000
# What the callback frames of one request may decode to, in JSON values: the same bound as one reply.
MAX_ELEMENTS = codec.MAX_REPLY_ELEMENTS
# Their bytes, together: arrays count as a few values each, so their size is bounded here (the suites'
# largest is a few kilobytes per call; the generator's state is 3.4 kB of it).
MAX_BYTES = 64 * 1024 * 1024
# An integer argument is at most this, in absolute value: a count the reference allocates for
# (sample_betas(n)); the suites' largest is 1.
MAX_INT = 10**6

# One reference call at a time in this process: numpy's global generator is swapped around it. Between
# the callbacks of one request it holds the child's state (the grader's own is put back when the request
# ends: Callbacks.end), so grader code that draws from numpy's global generator while another thread
# waits for a child's reply would draw from the child's. Grading is one thread per process
# (batch/pool.py), and the suites draw from generators of their own (checks.seeded_rng) or seed the
# global one around a reference call (regularization), between requests; the one overlap left is a
# background start (LearnerProcess.start_in_background) whose cells call a forwarder when they are
# defined (a default argument's value), beside a suite drawing from the global generator.
_LOCK = threading.Lock()


class Refused(Exception):
    """A callback frame the grader does not run."""


class Callbacks:
    """One child's callbacks: the names it may call back for, the reference, what its request used.

    ``reference``: a function giving the reference's namespace (loaded on the
    first callback), or None: every callback is refused.
    """

    def __init__(self, reference: Callable[[], Mapping] | None = None):
        self.reference = reference
        self.allowed: set = set()
        self.saved: Any = None  # the grader's own generator state while a request's callbacks hold the child's
        self.state: Any = None  # the child's generator state as the last answer left it
        self.begin()

    def allow(self, names) -> None:
        """The forwarders a trusted request gives the child (``{"op": "forwarders", "names": ...}``)."""
        self.allowed |= {name for name in names if isinstance(name, str)}

    def begin(self) -> None:
        """A new request: its callbacks start from nothing used."""
        self.calls = self.elements = self.bytes = 0

    def end(self) -> None:
        """The request is over: numpy's global generator is the grader's own again."""
        if self.saved is not None:
            with _LOCK:
                np.random.set_state(self.saved)
                self.saved = None

    def _generator(self, sent):
        """Put the child's generator state in numpy's global generator (the grader's own is saved until
        :meth:`end`); return it, or None if the child has no numpy.

        ``sent``: the child's state, or "same": the state the last answer gave it (it has not drawn
        since), which the global generator still holds within one request, so the state is sent and
        set only when the child drew numbers of its own: 4 of every 5 get/set_state calls of a
        callback are saved that way (each copies the 2.5 kB state: 70 us on a loaded machine)."""
        if sent is None:
            return None
        if sent == "same":
            if self.state is None:
                raise Refused("the generator state it refers to was never sent")
            state = self.state
        else:
            state = codec.from_plain(sent)
        if self.saved is None:
            self.saved = np.random.get_state()
        elif sent == "same":
            return state  # the global generator holds it since the last call of this request
        try:
            np.random.set_state(state)
        except (TypeError, ValueError, IndexError) as exc:
            raise Refused(f"not a state of numpy's generator ({str(exc)[:200]})")
        return state

    def answer(self, body: bytes) -> tuple[bytes, int]:
        """The framed answer to a callback frame's body, and how many elements it was counted as."""
        counted = 0
        try:
            counted = self._count(body)
            reply = self._run(codec.loads_frame_body(body))
        except Refused as exc:
            reply = {"ok": False, "error": f"the grader refused the call: {exc}"}
        except codec.DecodeError as exc:
            reply = {"ok": False, "error": f"the grader refused the call: its arguments are not plain data ({exc})"}
        try:
            return codec.dumps(reply), counted
        except (TypeError, ValueError) as exc:
            return codec.dumps({"ok": False, "error": f"the grader could not send the result back: {exc}"}), counted

    def _count(self, body: bytes) -> int:
        """Count the frame against the request's bounds before anything is decoded."""
        self.calls += 1
        self.bytes += len(body)
        if self.calls > MAX_CALLBACKS:
            raise Refused(f"more than {MAX_CALLBACKS} calls of functions the grader runs, in one check")
        if self.bytes > MAX_BYTES:
            raise Refused(f"the arguments of one check's calls exceed {MAX_BYTES // (1024 * 1024)} MB")
        try:
            counted = codec.count_elements(body, MAX_ELEMENTS - self.elements)
        except codec.DecodeError as exc:
            raise Refused(f"the arguments of one check's calls are too large ({exc})")
        self.elements += counted
        return counted

    def _run(self, message: dict) -> dict:
        call = message.get("callback")
        if not isinstance(call, dict) or set(call) != {"name", "args", "kwargs", "rng"} or len(message) != 1:
            raise Refused("a malformed call")
        name = call["name"]
        if not isinstance(name, str) or name not in self.allowed or self.reference is None:
            raise Refused(f"{str(name)[:80]!r} is not a function the grader runs for this check")
        function = self.reference().get(name)
        if not callable(function):
            raise Refused(f"{name!r} is not a function the grader runs for this check")
        args, kwargs = codec.scalars(codec.from_plain(call["args"])), codec.scalars(codec.from_plain(call["kwargs"]))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise Refused("a malformed call")
        _check_integers([args, kwargs])
        with _LOCK:
            before = self._generator(call["rng"])
            self.state = None  # unknown until the call returns (an error may leave it half drawn)
            try:
                value = function(*args, **kwargs)
            except Exception as exc:  # the reference's own error on these arguments
                return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            self.state = after = np.random.get_state() if before is not None else None
        try:
            changed = codec.to_plain({"args": args, "kwargs": kwargs})
            return {
                "ok": True,
                "value": codec.to_plain(value),
                # Only what changed crosses back: the arguments the child's call gave, as they are now.
                "args": None if changed == {"__dict__": {"args": call["args"], "kwargs": call["kwargs"]}} else changed,
                "rng": None if after is None or _same_state(after, before) else codec.to_plain(after),
            }
        except codec.EncodeError as exc:
            return {"ok": False, "error": f"the grader could not send the result back: {exc}"}


def is_callback(body: bytes) -> bool:
    """Whether a frame body is a callback (its JSON text starts with PREFIX); DecodeError if it is no frame."""
    return codec.split_body(body)[0].startswith(PREFIX)


def _check_integers(value, depth: int = 0) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_integers(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_integers(item, depth + 1)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and abs(int(value)) > MAX_INT:
        raise Refused(f"an integer argument above {MAX_INT:,} (a size the grader would allocate for)")


def _same_state(after, before) -> bool:
    return tuple(after[2:]) == tuple(before[2:]) and bool(np.array_equal(after[1], before[1]))
