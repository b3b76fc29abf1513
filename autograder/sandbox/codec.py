"""Plain-data encoding for everything that crosses the sandbox boundary.

Values become JSON; numpy arrays travel as dtype, shape and base64 bytes, read
back with ``np.frombuffer`` for plain numeric, bool and text dtypes only; tuples and TensorFlow values carry a type tag. Decoding
can only ever build: None, bool, int, float, str, list, tuple, dict with str
keys, numeric/bool/str numpy arrays, and :class:`TFValue`. Nothing is
unpickled, and no learner-defined class can come back, so an object whose
``__eq__`` always says True cannot reach the grader.

This module is copied into the sandbox beside ``child.py`` and must import
nothing from the ``autograder`` package (stdlib and numpy only).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass

import numpy as np

# Frames larger than this are refused: a hostile child cannot make the grader
# allocate without bound.
MAX_FRAME_BYTES = 256 * 1024 * 1024
# What a reply may decode to, in JSON values (each list, dict, string, number...):
# a frame of empty lists costs ~50x its size once decoded. Per reply and per
# submission; an assignment may set its own (assignment.toml).
MAX_REPLY_ELEMENTS = 1_000_000
MAX_SUBMISSION_ELEMENTS = 50_000_000
MAX_DEPTH = 60
# dtype kinds allowed through: bool, signed, unsigned, float, complex, str, bytes.
SAFE_DTYPE_KINDS = "biufcUS"


class EncodeError(TypeError):
    """A value cannot cross the boundary (unsupported type)."""


class DecodeError(ValueError):
    """A frame is malformed or holds something that is not plain data."""


TF_KINDS = ("EagerTensor", "Variable")


@dataclass
class TFValue:
    """A TensorFlow value as plain data: what it was, its dtype, its contents.

    ``kind`` is the Python type name on the learner's side, e.g. "EagerTensor",
    "ResourceVariable" is reported as "Variable". ``dtype`` is the TF dtype
    name ("float32"). ``value`` is a numpy array. Decoding checks that the
    dtype is the array's own; ``kind`` is what the learner's process claims.
    """

    kind: str
    dtype: str
    value: np.ndarray

    @classmethod
    def constant(cls, value, dtype: str = "float32") -> TFValue:
        return cls("EagerTensor", dtype, np.asarray(value, dtype=dtype))

    @classmethod
    def variable(cls, value, dtype: str = "float32") -> TFValue:
        return cls("Variable", dtype, np.asarray(value, dtype=dtype))

    @property
    def shape(self) -> tuple:
        return self.value.shape

    def numpy(self) -> np.ndarray:
        return self.value


# --------------------------------------------------------------------- encode


def _array_to_plain(arr: np.ndarray) -> dict:
    """dtype string, shape and base64 of the C-ordered bytes.

    Not the .npy format: its header is parsed with ast.literal_eval, which
    made decoding thousands of small arrays per submission the grader's
    largest cost.
    """
    # tobytes() is C order whatever the layout (ascontiguousarray would make 0-d arrays 1-d).
    return {
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
        "data": base64.b64encode(arr.tobytes(order="C")).decode("ascii"),
    }


def _tf_kind(value) -> str | None:
    """The TF kind of ``value`` without importing TensorFlow."""
    module = type(value).__module__ or ""
    if not module.startswith(("tensorflow", "keras")):
        return None
    name = type(value).__name__
    if "Variable" in name:
        return "Variable"
    if hasattr(value, "numpy") and hasattr(value, "dtype"):
        return name  # EagerTensor, SparseTensor is refused below
    return None


def to_plain(value, _depth: int = 0):
    """Turn ``value`` into JSON-able plain data with tags, or raise EncodeError."""
    if _depth > 50:
        raise EncodeError("value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if type(value) is int else int(value)
    if isinstance(value, float):
        return {"__float__": repr(float(value))}
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        # np.array(...) copies and drops any ndarray subclass (and its methods).
        arr = np.array(value)
        if type(arr) is not np.ndarray or arr.dtype.kind not in SAFE_DTYPE_KINDS:
            raise EncodeError(f"numpy array of dtype {arr.dtype} cannot be returned")
        return {"__nd__": _array_to_plain(arr)}
    if isinstance(value, tuple):
        return {"__tuple__": [to_plain(v, _depth + 1) for v in value]}
    if isinstance(value, list):
        return [to_plain(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodeError(f"dict keys must be strings, got {type(key).__name__}")
            out[key] = to_plain(item, _depth + 1)
        return {"__dict__": out}
    if isinstance(value, TFValue):
        return {"__tf__": {"kind": value.kind, "dtype": value.dtype, "value": to_plain(np.asarray(value.value))}}
    kind = _tf_kind(value)
    if kind is not None:
        try:
            arr = np.array(value.numpy() if kind != "Variable" else value.read_value().numpy())
            dtype = value.dtype.name
        except Exception as exc:  # symbolic tensors, sparse tensors...
            raise EncodeError(f"TensorFlow value of type {type(value).__name__} cannot be returned: {exc}")
        return {"__tf__": {"kind": kind, "dtype": dtype, "value": to_plain(arr)}}
    raise EncodeError(
        f"a value of type {type(value).__name__} cannot be returned; only numbers, strings, "
        "numpy arrays, TensorFlow tensors and lists/tuples/dicts of them are graded"
    )


# --------------------------------------------------------------------- decode


def _plain_to_array(payload) -> np.ndarray:
    """Inverse of _array_to_plain; refuses any dtype that is not plain numbers, bools or text."""
    if not isinstance(payload, dict) or set(payload) != {"dtype", "shape", "data"}:
        raise DecodeError("bad array payload")
    dtype_text, shape, data = payload["dtype"], payload["shape"], payload["data"]
    if not isinstance(dtype_text, str) or len(dtype_text) > 16 or not isinstance(data, str):
        raise DecodeError("bad array payload")
    if not isinstance(shape, list) or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        raise DecodeError("bad array shape")
    try:
        dtype = np.dtype(dtype_text)
    except TypeError as exc:
        raise DecodeError(f"bad array dtype: {exc}")
    if dtype.kind not in SAFE_DTYPE_KINDS or dtype.fields or dtype.subdtype or dtype.hasobject:
        raise DecodeError(f"array of dtype {dtype} refused")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise DecodeError(f"bad array payload: {exc}")
    count = 1
    for n in shape:
        count *= n
    if len(raw) != count * dtype.itemsize:
        raise DecodeError("array payload does not match its shape")
    # frombuffer views read-only bytes: copy so the suite gets an ordinary array.
    try:
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()
    except ValueError as exc:  # e.g. a zero-size dtype
        raise DecodeError(f"bad array payload: {exc}")


def from_plain(data, make_tf=None, _depth: int = 0):
    """Inverse of :func:`to_plain`. ``make_tf(TFValue)`` may build real TF objects.

    Raises DecodeError on anything that is not exactly the tagged format.
    """
    if _depth > MAX_DEPTH:
        raise DecodeError("value is nested too deeply")
    if data is None or isinstance(data, (bool, str)):
        return data
    if isinstance(data, int):
        return data
    if isinstance(data, list):
        return [from_plain(v, make_tf, _depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise DecodeError(f"unexpected element {type(data).__name__}")
    ((tag, payload),) = data.items()
    if tag == "__float__":
        if not isinstance(payload, str):
            raise DecodeError("bad float")
        return float(payload)
    if tag == "__nd__":
        return _plain_to_array(payload)
    if tag == "__tuple__":
        if not isinstance(payload, list):
            raise DecodeError("bad tuple")
        return tuple(from_plain(v, make_tf, _depth + 1) for v in payload)
    if tag == "__dict__":
        if not isinstance(payload, dict):
            raise DecodeError("bad dict")
        return {str(k): from_plain(v, make_tf, _depth + 1) for k, v in payload.items()}
    if tag == "__tf__":
        if not isinstance(payload, dict) or set(payload) != {"kind", "dtype", "value"}:
            raise DecodeError("bad TensorFlow value")
        value = from_plain(payload["value"], None, _depth + 1)
        if (
            not isinstance(value, np.ndarray)
            or not isinstance(payload["kind"], str)
            or not isinstance(payload["dtype"], str)
        ):
            raise DecodeError("bad TensorFlow value")
        tf_value = TFValue(payload["kind"][:64], payload["dtype"][:32], value)
        _check_tf_claims(tf_value)
        return make_tf(tf_value) if make_tf else tf_value
    raise DecodeError(f"unknown tag {tag[:40]!r}")


def scalars(value, _depth: int = 0):
    """``value`` decoded, with its 0-d arrays as numpy scalars (what a numpy scalar crossed as)."""
    if isinstance(value, np.ndarray):
        return value[()] if value.ndim == 0 else value
    if _depth > MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [scalars(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(scalars(v, _depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: scalars(v, _depth + 1) for k, v in value.items()}
    return value


# --------------------------------------------------------------------- frames


def dumps(message: dict) -> bytes:
    body = json.dumps(message, allow_nan=False).encode("utf-8")
    return struct.pack(">I", len(body)) + body


def read_exact(fd: int, n: int, read=None) -> bytes:
    import os

    read = read or os.read
    chunks, got = [], 0
    while got < n:
        chunk = read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def count_elements(body: bytes, limit: int | None = None) -> int:
    """How many JSON values (at most) a frame body decodes to; DecodeError past ``limit`` or MAX_DEPTH.

    Counted on the bytes, before ``json.loads`` builds anything: every value
    but the first is preceded by ``,`` ``[`` or ``:``. The first count
    includes those inside strings (C speed, an upper bound); only when it
    passes ``limit`` are strings skipped for an exact count. Depth: each
    ``[``/``{`` opens one level; past MAX_DEPTH the reply is refused.
    """
    rough = body.count(b",") + body.count(b"[") + body.count(b":") + 1
    count = rough
    if limit is not None and rough > limit:
        bare = _STRING.sub(b'""', body)
        count = bare.count(b",") + bare.count(b"[") + bare.count(b":") + 1
        if count > limit:
            raise DecodeError(f"the reply holds about {count:,} values, more than the {limit:,} allowed")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        depth = _max_depth(_STRING.sub(b'""', body) if b'"' in body else body)
        if depth > MAX_DEPTH + 2:  # the frame's own object and the value's tag add two levels
            raise DecodeError(f"the reply is nested {depth} levels deep, more than the {MAX_DEPTH} allowed")
    return count


def _max_depth(bare: bytes) -> int:
    """Deepest nesting of [ and { in JSON whose strings were emptied (one C-speed pass per level)."""
    depth = deepest = 0
    for opened in re.finditer(rb"[\[\]{}]", bare):
        depth += 1 if opened.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH + 2:
            break
    return deepest


def _check_tf_claims(value: TFValue) -> None:
    """A TF value's dtype is checked against its array; its kind is only a claim of the learner's process.

    The learner's process is not trusted: a look-alike object can say it is an
    EagerTensor of float32. What the grader can verify is the data: the array's
    own dtype must be the one claimed. Checks that only look at ``kind``
    ("returns a tf.Variable") test a claim and should carry few points.
    """
    if value.kind not in TF_KINDS:
        raise DecodeError(f"unknown TensorFlow kind {value.kind[:40]!r}")
    try:
        claimed = np.dtype(value.dtype)
    except TypeError:
        raise DecodeError(f"TensorFlow dtype {value.dtype!r} cannot be checked")
    if claimed != value.value.dtype or claimed.name != value.dtype:
        raise DecodeError(f"a TensorFlow value claims dtype {value.dtype} but holds {value.value.dtype.name} data")


def loads_frame_body(body: bytes) -> dict:
    try:
        message = json.loads(body.decode("utf-8"))
    except Exception as exc:
        raise DecodeError(f"frame is not JSON: {exc}")
    if not isinstance(message, dict):
        raise DecodeError("frame is not an object")
    return message


def frame_length(header: bytes) -> int:
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME_BYTES:
        raise DecodeError(f"frame of {length} bytes exceeds the limit")
    return length
