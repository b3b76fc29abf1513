"""The boundary codec: only plain data crosses, nothing is unpickled."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import pickle

import numpy as np
import pytest

from autograder.sandbox.codec import (
    MAX_DEPTH,
    DecodeError,
    EncodeError,
    TFValue,
    count_elements,
    dumps,
    frame_length,
    from_plain,
    loads_frame_body,
    read_exact,
    to_plain,
)


def roundtrip(value):
    # Through real JSON text, as on the pipe.
    return from_plain(json.loads(json.dumps(to_plain(value), allow_nan=False)))


def test_plain_values_round_trip_with_their_types():
    value = {"a": 1, "b": 2.5, "c": "x", "d": None, "e": True, "f": [1, (2, 3.0)], "g": {"h": (None,)}}
    back = roundtrip(value)
    assert back == value
    assert type(back["f"][1]) is tuple and type(back["b"]) is float and type(back["a"]) is int


def test_special_floats_survive():
    back = roundtrip([float("nan"), float("inf"), -0.0, 1e-300])
    assert math.isnan(back[0]) and back[1] == float("inf") and math.copysign(1, back[2]) == -1 and back[3] == 1e-300


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([[np.nan, np.inf]]),
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.zeros((0, 3)),
        np.int32(7),  # numpy scalars come back as 0-d arrays
        np.array(2.0),
        np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1),
        np.asfortranarray(np.ones((3, 2))),
    ],
)
def test_arrays_round_trip_exactly(arr):
    back = roundtrip(arr)
    assert type(back) is np.ndarray and back.dtype == np.asarray(arr).dtype
    assert back.shape == np.shape(arr)
    np.testing.assert_array_equal(back, np.asarray(arr))


def test_ndarray_subclass_is_flattened_to_a_plain_ndarray():
    class AlwaysEqual(np.ndarray):
        def __eq__(self, other):
            return True

    sneaky = np.zeros(3).view(AlwaysEqual)
    back = roundtrip(sneaky)
    assert type(back) is np.ndarray
    assert not np.array_equal(back, np.ones(3))


@pytest.mark.parametrize(
    "value",
    [
        object(),
        np.array([object()], dtype=object),
        np.zeros(2, dtype=[("a", "f8")]),
        {1: "int key"},
        lambda: 0,
        {1, 2},
    ],
)
def test_unsupported_values_are_refused(value):
    with pytest.raises(EncodeError):
        to_plain(value)


def test_objects_with_forged_eq_cannot_be_encoded():
    class Liar:
        def __eq__(self, other):
            return True

    with pytest.raises(EncodeError):
        to_plain({"W1": Liar()})


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "payload",
    [
        {"dtype": "|O", "shape": [1], "data": b64(pickle.dumps({"x": 1}))},  # object arrays unpickle
        {"dtype": "|V8", "shape": [1], "data": b64(b"\0" * 8)},  # raw void
        {"dtype": "[('a', '<f8')]", "shape": [1], "data": b64(b"\0" * 8)},  # structured
        {"dtype": "<M8[s]", "shape": [1], "data": b64(b"\0" * 8)},  # datetime
        {"dtype": "<f8", "shape": [3], "data": b64(b"\0" * 8)},  # size mismatch
        {"dtype": "<f8", "shape": [-1], "data": b64(b"\0" * 8)},  # negative shape
        {"dtype": "<f8", "shape": [1], "data": "not base64!"},
        {"dtype": "<U0", "shape": [10**12], "data": ""},  # zero-size items
        {"dtype": "<f8", "shape": [1], "data": b64(b"\0" * 8), "extra": 1},
    ],
)
def test_forged_array_payloads_are_refused(payload):
    with pytest.raises(DecodeError):
        from_plain({"__nd__": payload})


def test_npy_and_pickle_payloads_are_refused():
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for raw in (buf.getvalue(), pickle.dumps(os.system)):
        with pytest.raises(DecodeError):
            from_plain({"__nd__": b64(raw)})


@pytest.mark.parametrize(
    "data",
    [
        {"__class__": "os.system"},
        {"__nd__": 5},
        {"__tuple__": "ab"},
        {"__float__": 1.0},
        {"a": 1, "b": 2},  # untagged dicts never appear on the wire
        {"__tf__": {"kind": "EagerTensor", "dtype": "float32"}},
        {"__tf__": {"kind": "EagerTensor", "dtype": "float32", "value": [1, 2]}},
        3.5,  # bare floats are always tagged
    ],
)
def test_malformed_payloads_are_refused(data):
    with pytest.raises(DecodeError):
        from_plain(data)


def test_deep_nesting_is_refused_both_ways():
    value = []
    for _ in range(100):
        value = [value]
    with pytest.raises(EncodeError):
        to_plain(value)
    with pytest.raises(DecodeError):
        from_plain(json.loads(json.dumps(value)))


def test_tf_values_keep_kind_and_dtype():
    back = roundtrip({"W1": TFValue.variable(np.ones((2, 2), np.float32)), "Y": TFValue.constant([1.0])})
    assert isinstance(back["W1"], TFValue) and back["W1"].kind == "Variable" and back["W1"].dtype == "float32"
    assert back["Y"].kind == "EagerTensor" and back["Y"].shape == (1,)
    built = from_plain(to_plain(TFValue.constant([2.0])), make_tf=lambda v: ("built", v.kind))
    assert built == ("built", "EagerTensor")


def test_frames_are_length_prefixed_and_bounded():
    frame = dumps({"op": "call", "args": to_plain([np.ones(2)])})
    assert frame_length(frame[:4]) == len(frame) - 4
    assert loads_frame_body(frame[4:])["op"] == "call"
    with pytest.raises(DecodeError):
        frame_length((2**31).to_bytes(4, "big"))
    with pytest.raises(DecodeError):
        loads_frame_body(b"[1, 2]")
    with pytest.raises(DecodeError):
        loads_frame_body(b"\xff\xfe")


def test_read_exact_reassembles_short_reads_and_detects_eof():
    chunks = [b"ab", b"c", b"de"]
    assert read_exact(0, 5, read=lambda fd, n: chunks.pop(0)) == b"abcde"
    with pytest.raises(EOFError):
        read_exact(0, 3, read=lambda fd, n: b"")


# ------------------------------------------------------------------ decoded size, counted on the bytes


def forged_reply(value_json: str) -> bytes:
    """The body of a reply frame whose value is the given (hand-written) JSON."""
    return ('{"ok": true, "value": ' + value_json + "}").encode()


@pytest.mark.parametrize(
    "value_json",
    [
        "[" + ",".join(["[]"] * 300_000) + "]",  # many empty lists: ~50x their size decoded
        '{"__dict__": {' + ",".join(f'"k{i}": 0' for i in range(200_000)) + "}}",
        "[" + ",".join(["0"] * 300_000) + "]",
    ],
)
def test_replies_decoding_to_too_many_values_are_refused_before_json_builds_them(value_json):
    body = forged_reply(value_json)
    with pytest.raises(DecodeError, match="more than the 100,000 allowed"):
        count_elements(body, 100_000)


def test_commas_inside_strings_do_not_count():
    text = "," * 500_000 + "[" * 1000
    body = forged_reply(json.dumps(text))
    assert count_elements(body, 100_000) < 10
    assert loads_frame_body(body)["value"] == text


def test_a_real_reply_is_counted_close_to_its_size():
    body = dumps({"ok": True, "value": to_plain({"W1": np.ones((50, 50)), "b": [1.0, 2.0], "n": (1, 2)})})[4:]
    assert 5 < count_elements(body, 1000) < 30


@pytest.mark.parametrize("depth", [MAX_DEPTH + 3, 10_000, 200_000])
def test_deeply_nested_replies_are_refused_on_the_bytes(depth):
    body = forged_reply("[" * depth + "]" * depth)
    with pytest.raises(DecodeError, match="nested"):
        count_elements(body, 10**9)


def test_nesting_within_the_limit_passes():
    body = forged_reply("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    count_elements(body, 10**9)


def test_a_submission_has_an_element_budget_across_replies():
    """LearnerProcess passes min(per reply, what is left of the submission's) as the limit."""
    from autograder.grading import catalogue
    from autograder.grading.cells import Cell
    from autograder.grading.learner import Learner, LearnerProcess
    from autograder.grading.learner_errors import LearnerError
    from autograder.grading.time_policy import TimePolicy

    spec = catalogue.load("initialization")
    cell = Cell("c", "def initialize_parameters_zeros(n):\n    return [0] * n\n", ["initialize_parameters_zeros"])
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=[cell],
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
        max_reply_elements=1000,
        max_submission_elements=2500,
    )
    learner = Learner(process)
    try:
        assert len(learner.initialize_parameters_zeros(900)) == 900
        assert len(learner.initialize_parameters_zeros(900)) == 900
        with pytest.raises(LearnerError, match="allowed"):
            learner.initialize_parameters_zeros(900)  # 2700 > 2500 for the submission
        with pytest.raises(LearnerError, match="allowed"):
            learner.initialize_parameters_zeros(1200)  # > 1000 for one reply
    finally:
        process.close()


# ------------------------------------------------------------------ TensorFlow claims


def test_tf_dtype_claims_are_checked_against_the_array():
    forged = {"__tf__": {"kind": "EagerTensor", "dtype": "float32", "value": to_plain(np.ones(3, np.float64))}}
    with pytest.raises(DecodeError, match="claims dtype float32 but holds float64"):
        from_plain(forged)
    for dtype in ("resource", "bfloat16x", "float32 "):
        with pytest.raises(DecodeError):
            from_plain({"__tf__": {"kind": "EagerTensor", "dtype": dtype, "value": to_plain(np.ones(3, np.float32))}})
    with pytest.raises(DecodeError, match="kind"):
        from_plain({"__tf__": {"kind": "LookAlike", "dtype": "float32", "value": to_plain(np.ones(3, np.float32))}})
    honest = from_plain({"__tf__": {"kind": "Variable", "dtype": "int32", "value": to_plain(np.ones(3, np.int32))}})
    assert honest.dtype == "int32" and honest.value.dtype == np.int32
