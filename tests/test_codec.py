"""The boundary codec: only plain data crosses, nothing is unpickled."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct

import numpy as np
import pytest

from autograder.sandbox.codec import (
    MAX_DEPTH,
    MAX_FRAME_ARRAYS,
    MAX_FRAME_BYTES,
    DecodeError,
    EncodeError,
    TFValue,
    count_elements,
    dumps,
    frame_body,
    frame_length,
    from_plain,
    loads_frame_body,
    read_exact,
    split_body,
    to_plain,
)


def roundtrip(value):
    # Through a real frame, as on the pipe.
    body = dumps({"value": to_plain(value)})[4:]
    count_elements(body, 10**6)
    return from_plain(loads_frame_body(body)["value"])


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


@pytest.mark.parametrize(
    "payload",
    [
        {"dtype": "|O", "shape": [1], "blob": pickle.dumps({"x": 1})},  # object arrays unpickle
        {"dtype": "|O8", "shape": [1], "blob": b"\0" * 8},
        {"dtype": "O", "shape": [1], "blob": b"\0" * 8},
        {"dtype": "|V8", "shape": [1], "blob": b"\0" * 8},  # raw void
        {"dtype": "[('a', '<f8')]", "shape": [1], "blob": b"\0" * 8},  # structured
        {"dtype": "(2,)<f4", "shape": [1], "blob": b"\0" * 8},  # sub-array
        {"dtype": "<M8[s]", "shape": [1], "blob": b"\0" * 8},  # datetime
        {"dtype": "<m8", "shape": [1], "blob": b"\0" * 8},  # timedelta
        {"dtype": "float64", "shape": [1], "blob": b"\0" * 8},  # names are not in the closed set
        {"dtype": "<f8", "shape": [3], "blob": b"\0" * 8},  # size mismatch
        {"dtype": "<f8", "shape": [1, 2], "blob": b"\0" * 8},
        {"dtype": "<f8", "shape": [-1], "blob": b"\0" * 8},  # negative shape
        {"dtype": "<f8", "shape": [-1, -1], "blob": b"\0" * 8},  # negative dims whose product is right
        {"dtype": "<f8", "shape": [2**64 + 1], "blob": b"\0" * 8},  # overflows an intp
        {"dtype": "<f8", "shape": [0, 2**40], "blob": b""},  # a dimension no frame can hold
        {"dtype": "<f8", "shape": [1] * 33, "blob": b"\0" * 8},  # too many dimensions
        {"dtype": "<f8", "shape": [1.0], "blob": b"\0" * 8},
        {"dtype": "<f8", "shape": [True], "blob": b"\0" * 8},
        {"dtype": "<f8", "shape": 1, "blob": b"\0" * 8},
        {"dtype": "<f8", "shape": [1], "blob": "AAAAAAAAAAA="},  # base64 text is not the array's bytes
        {"dtype": "<f8", "shape": [1], "blob": 0},  # an index no frame resolved
        {"dtype": "<U0", "shape": [10**12], "blob": b""},  # zero-size items
        {"dtype": "|S0", "shape": [10**12], "blob": b""},
        {"dtype": "<f8", "shape": [1], "blob": b"\0" * 8, "extra": 1},
        {"dtype": "<f8", "shape": [1]},
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
            from_plain({"__nd__": raw})
        with pytest.raises(DecodeError):
            from_plain({"__nd__": {"dtype": "|O", "shape": [1], "blob": raw}})
        with pytest.raises(DecodeError):  # as a whole frame body, or as the bytes of one
            loads_frame_body(raw)
        text = b'{"value": {"__nd__": {"dtype": "|O", "shape": [1], "blob": 0}}}'
        with pytest.raises(DecodeError, match="refused"):
            from_plain(loads_frame_body(frame_body(text, [raw]))["value"])


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
    with pytest.raises(DecodeError, match="not an object"):
        loads_frame_body(frame_body(b"[1, 2]"))
    with pytest.raises(DecodeError, match="not JSON"):
        loads_frame_body(frame_body(b"\xff\xfe"))


def test_read_exact_reassembles_short_reads_and_detects_eof():
    chunks = [b"ab", b"c", b"de"]
    assert read_exact(0, 5, read=lambda fd, n: chunks.pop(0)) == b"abcde"
    with pytest.raises(EOFError):
        read_exact(0, 3, read=lambda fd, n: b"")


# ------------------------------------------------------------------ decoded size, counted on the bytes


def forged_reply(value_json: str, blobs=()) -> bytes:
    """The body of a reply frame whose value is the given (hand-written) JSON."""
    return frame_body(('{"ok": true, "value": ' + value_json + "}").encode(), blobs)


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


# ------------------------------------------------------------------ the binary header


def header(text_length: int, lengths, magic: bytes = b"DLG\x01") -> bytes:
    return struct.pack(">4sII", magic, text_length, len(lengths)) + struct.pack(f">{len(lengths)}I", *lengths)


ONE_ARRAY = b'{"value": {"__nd__": {"dtype": "<f8", "shape": [2], "blob": 0}}}'


def test_a_frame_is_a_small_header_then_the_text_then_the_raw_bytes():
    arr = np.arange(60_000, dtype=np.float64)
    frame = dumps({"value": to_plain(arr)})
    body = frame[4:]
    text, blobs = split_body(body)
    assert body[:4] == b"DLG\x01" and frame_length(frame[:4]) == len(body)
    assert body.endswith(arr.tobytes()) and len(blobs) == 1 and bytes(blobs[0]) == arr.tobytes()
    assert len(body) - arr.nbytes < 100  # no base64: the header and text are all the overhead
    assert json.loads(text) == {"value": {"__nd__": {"dtype": "<f8", "shape": [60_000], "blob": 0}}}
    back = from_plain(loads_frame_body(body)["value"])
    assert back.flags.writeable and back.flags.owndata
    np.testing.assert_array_equal(back, arr)


def test_many_arrays_empty_ones_and_tf_values_cross_in_one_frame():
    value = {
        "arrays": [np.full(i, i, np.int16) for i in range(50)],
        "empty": np.zeros((0, 3)),
        "text": np.array([["a", "bc"], ["", "d"]]),
        "bytes": np.array([b"x", b""]),
        "tf": TFValue.variable(np.ones((2, 2), np.float32)),
        "scalar": np.float16(1.5),
    }
    back = roundtrip(value)
    for i, arr in enumerate(back["arrays"]):
        np.testing.assert_array_equal(arr, np.full(i, i, np.int16))
    assert back["empty"].shape == (0, 3) and back["text"][1, 1] == "d" and back["bytes"].dtype == "S1"
    assert back["tf"].kind == "Variable" and back["tf"].value.dtype == np.float32
    assert back["scalar"].dtype == np.float16 and back["scalar"][()] == 1.5


@pytest.mark.parametrize(
    "value",
    [
        {"__nd__": {"dtype": "<f8", "shape": [1], "blob": 0}},
        {"dtype": "<f8", "shape": [1], "blob": 0},
        [{"__nd__": {"blob": 1}}, np.ones(2)],
    ],
)
def test_learner_dicts_shaped_like_an_array_payload_stay_dicts(value):
    back = roundtrip(value)
    if isinstance(value, list):
        assert back[0] == value[0]
        np.testing.assert_array_equal(back[1], np.ones(2))
    else:
        assert back == value


@pytest.mark.parametrize(
    "body, match",
    [
        (b"", "truncated"),
        (b"DLG\x01\x00\x00", "truncated"),  # shorter than the fixed header
        (header(0, [])[:-1], "truncated"),
        (header(10, []) + b"{}", "truncated"),  # the text's length lies
        (header(2, [8]) + b"{}" + b"\0" * 7, "do not match"),  # an array's length lies
        (header(2, [8, 8]) + b"{}" + b"\0" * 8, "do not match"),
        (header(2, []) + b"{}" + b"\0", "do not match"),  # trailing bytes
        (header(2, [0]) + b"{}" + b"\0", "do not match"),
        (header(2, [], magic=b"DLG\x02") + b"{}", "not a frame"),  # another version
        (b'{"ok": true, "value": 1}', "not a frame"),  # the old JSON-only frame
        (header(2, []) + b"{}"[:1], "truncated"),
    ],
)
def test_forged_headers_are_refused(body, match):
    for decode in (loads_frame_body, lambda b: count_elements(b, 10**6), split_body):
        with pytest.raises(DecodeError, match=match):
            decode(body)


def test_header_counts_and_lengths_are_checked_before_anything_is_built():
    import tracemalloc

    forged = [
        struct.pack(">4sII", b"DLG\x01", 2, MAX_FRAME_ARRAYS + 1) + b"{}",  # over the cap
        struct.pack(">4sII", b"DLG\x01", 2, MAX_FRAME_ARRAYS) + b"{}",  # within it, but the table is not there
        struct.pack(">4sII", b"DLG\x01", 2**32 - 1, 0) + b"{}",  # a text of 4 GB
        header(2, [2**32 - 1] * 4) + b"{}",  # arrays of 16 GB
        header(len(b'{"value": {"__nd__": {"dtype": "<f8", "shape": [100000000], "blob": 0}}}'), [8])
        + b'{"value": {"__nd__": {"dtype": "<f8", "shape": [100000000], "blob": 0}}}'
        + b"\0" * 8,  # a shape of 800 MB on 8 bytes
    ]
    tracemalloc.start()
    try:
        for body in forged:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            with pytest.raises(DecodeError):
                from_plain(loads_frame_body(body)["value"])
            assert tracemalloc.get_traced_memory()[1] - before < 64 * 1024, body[:40]
    finally:
        tracemalloc.stop()


def test_a_frame_claiming_gigabytes_is_refused_on_its_length():
    for length in (MAX_FRAME_BYTES + 1, 2**31, 2**32 - 1):
        with pytest.raises(DecodeError, match="exceeds the limit"):
            frame_length(struct.pack(">I", length))
    assert frame_length(struct.pack(">I", MAX_FRAME_BYTES)) == MAX_FRAME_BYTES


@pytest.mark.parametrize(
    "text, blobs, match",
    [
        (ONE_ARRAY, [b"\0" * 16, b"\0" * 16], "no array refers to"),  # an unused array
        (
            b'{"a": {"__nd__": {"dtype": "<f8", "shape": [2], "blob": 0}}, '
            b'"b": {"__nd__": {"dtype": "<f8", "shape": [2], "blob": 0}}}',
            [b"\0" * 16],
            "another's",
        ),  # reused
        (ONE_ARRAY.replace(b'"blob": 0', b'"blob": 1'), [b"\0" * 16], "does not hold"),
        (ONE_ARRAY.replace(b'"blob": 0', b'"blob": -1'), [b"\0" * 16], "does not hold"),
        (ONE_ARRAY.replace(b'"blob": 0', b'"blob": true'), [b"\0" * 16], "does not hold"),
        (ONE_ARRAY.replace(b'"blob": 0', b'"blob": "0"'), [b"\0" * 16], "does not hold"),
        (ONE_ARRAY.replace(b'"blob": 0', b'"blob": 0.0'), [b"\0" * 16], "does not hold"),
    ],
)
def test_array_references_are_each_used_once(text, blobs, match):
    with pytest.raises(DecodeError, match=match):
        loads_frame_body(frame_body(text, blobs))


@pytest.mark.parametrize(
    "dtype, shape, raw",
    [
        ("|O", [1], pickle.dumps(os.system)),  # object dtype: never
        ("|O8", [2], b"\0" * 16),
        ("<M8[s]", [2], b"\0" * 16),
        ("|V16", [1], b"\0" * 16),
        ("<f8", [3], b"\0" * 16),  # the shape's product disagrees with the bytes
        ("<f8", [1], b"\0" * 16),
        ("<f4", [2, 3], b"\0" * 16),
        ("<f8", [-2], b"\0" * 16),
        ("<f8", [-1, -2], b"\0" * 16),
        ("<f8", [2**63, 2**63, 0], b""),  # dimensions overflowing an intp, whose product is 0
        ("<f8", [2**64 + 2], b"\0" * 16),
        ("<U0", [2**40], b""),
    ],
)
def test_forged_arrays_in_a_frame_are_refused(dtype, shape, raw):
    text = json.dumps({"ok": True, "value": {"__nd__": {"dtype": dtype, "shape": shape, "blob": 0}}}).encode()
    body = frame_body(text, [raw])
    count_elements(body, 100)  # well formed, and small
    with pytest.raises(DecodeError):
        from_plain(loads_frame_body(body)["value"])


def test_nesting_over_the_cap_is_refused_in_a_binary_frame():
    text = "[" * (MAX_DEPTH + 3) + '{"__nd__": {"dtype": "<f8", "shape": [2], "blob": 0}}' + "]" * (MAX_DEPTH + 3)
    body = forged_reply(text, [b"\0" * 16])
    with pytest.raises(DecodeError, match="nested"):
        count_elements(body, 10**9)
    with pytest.raises(DecodeError, match="nested"):
        from_plain(loads_frame_body(body)["value"])


def test_the_arrays_bytes_are_not_counted_as_json():
    arr = np.frombuffer(b",[:" * 40_000, dtype=np.uint8)  # bytes that would count as 120,000 values
    body = dumps({"ok": True, "value": to_plain(arr)})[4:]
    assert count_elements(body, 1000) < 20


def test_callback_frames_are_recognised_by_their_text():
    from autograder.grading.callbacks import is_callback

    assert is_callback(dumps({"callback": {"name": "f", "args": to_plain([np.ones(2)])}})[4:])
    assert not is_callback(dumps({"ok": True, "value": to_plain(b"{}".decode())})[4:])
    with pytest.raises(DecodeError):
        is_callback(b'{"callback": {}}')  # text without its header


def test_a_table_of_many_empty_arrays_costs_nothing_until_referred_to():
    import tracemalloc

    count = MAX_FRAME_ARRAYS
    body = struct.pack(">4sII", b"DLG\x01", 2, count) + bytes(4 * count) + b"{}"
    tracemalloc.start()
    try:
        assert count_elements(body, 10) == 1
        with pytest.raises(DecodeError, match="no array refers to"):
            loads_frame_body(body)
        assert tracemalloc.get_traced_memory()[1] < 256 * 1024
    finally:
        tracemalloc.stop()
