"""Plain-data encoding for everything that crosses the sandbox boundary.

A frame is a small binary header, a JSON text and the raw bytes of the
numpy arrays it holds (see :func:`frame_body` for the layout). The JSON text
holds every value but the arrays' contents; an array is its dtype, its shape
and the index of its bytes in the frame, read back with ``np.frombuffer`` for
plain numeric, bool and text dtypes only; tuples and TensorFlow values carry
a type tag. Decoding can only ever build: None, bool, int, float, str, list,
tuple, dict with str keys, numeric/bool/str numpy arrays, and
:class:`TFValue`. Nothing is unpickled, and no learner-defined class can come
back, so an object whose ``__eq__`` always says True cannot reach the grader.

This module is copied into the sandbox beside ``child.py`` and must import
nothing from the ``autograder`` package (stdlib and numpy only).
"""

from __future__ import annotations

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
# Arrays in one frame (each has an entry of the header's table: a frame of empty arrays costs a
# Python object per 4 bytes of header and ~40 of JSON, so this only bounds the table itself).
MAX_FRAME_ARRAYS = 1_000_000
# Dimensions of an array: at most this many, each at most MAX_FRAME_BYTES (an array with a
# larger dimension holds no elements or cannot cross).
MAX_NDIM = 32
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
    """dtype string, shape and the C-ordered bytes (which :func:`dumps` moves out of the JSON text).

    Not the .npy format: its header is parsed with ast.literal_eval, which
    made decoding thousands of small arrays per submission the grader's
    largest cost.
    """
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "blob": _array_bytes(arr)}


def _array_bytes(arr: np.ndarray):
    """The array's C-ordered bytes: a view of a C-contiguous array (copied once, into the frame), else a copy.

    tobytes() is C order whatever the layout (ascontiguousarray would make 0-d arrays 1-d).
    """
    if arr.flags.c_contiguous and arr.size:
        try:
            return memoryview(arr).cast("B")  # type: ignore[arg-type]  # ndarray is a buffer
        except (TypeError, ValueError):  # a buffer format memoryview cannot cast
            pass
    return arr.tobytes(order="C")


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
    """Turn ``value`` into plain data with tags (JSON-able but for the arrays' bytes), or raise EncodeError.

    An array's bytes may be a view of the array until :func:`dumps` copies them
    into the frame: encode before changing the array.
    """
    if _depth > 50:
        raise EncodeError("value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if type(value) is int else int(value)
    if isinstance(value, float):
        return {"__float__": repr(float(value))}
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        # np.array(...) drops any ndarray subclass (and its methods); a plain array is only read: its
        # bytes are copied once, into the frame (each extra copy of 480 kB costs ~0.4 ms of page faults).
        arr = value if type(value) is np.ndarray else np.array(value)
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


def _closed_dtypes() -> dict:
    """The numeric and bool dtypes that may cross, by their ``dtype.str`` (both byte orders)."""
    out = {}
    for code in "?bBhHiIlLqQefdgFDG":
        for dtype in (np.dtype(code).newbyteorder("<"), np.dtype(code).newbyteorder(">")):
            out[dtype.str] = dtype
    return out


_NUMERIC_DTYPES = _closed_dtypes()
# Text: unicode (4 bytes a character) or bytes, at least one character a string.
_TEXT_DTYPE = re.compile(r"[<>|][US][1-9][0-9]{0,8}\Z")


def _dtype(text) -> np.dtype:
    """The dtype a payload names, if it is one of the closed set; DecodeError otherwise."""
    if not isinstance(text, str) or len(text) > 16:
        raise DecodeError("bad array dtype")
    dtype = _NUMERIC_DTYPES.get(text)
    if dtype is None:
        if not _TEXT_DTYPE.match(text):
            raise DecodeError(f"array of dtype {text!r} refused")
        dtype = np.dtype(text)
    # The closed set already excludes them; checked again on what numpy built.
    if dtype.kind not in SAFE_DTYPE_KINDS or dtype.fields or dtype.subdtype or dtype.hasobject or not dtype.itemsize:
        raise DecodeError(f"array of dtype {dtype} refused")
    return dtype


def _plain_to_array(payload) -> np.ndarray:
    """Inverse of _array_to_plain; refuses any dtype that is not plain numbers, bools or text.

    ``blob`` is the array's bytes (a view into the frame, put there by
    :func:`loads_frame_body`); everything is checked before the one
    allocation, the copy of exactly those bytes.
    """
    if not isinstance(payload, dict) or len(payload) != 3:
        raise DecodeError("bad array payload")
    try:
        dtype_text, shape, raw = payload["dtype"], payload["shape"], payload["blob"]
    except KeyError:
        raise DecodeError("bad array payload")
    if type(raw) is not memoryview and type(raw) is not bytes:
        raise DecodeError("bad array payload: no bytes of the frame")
    dtype = _dtype(dtype_text)
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(n) is int and 0 <= n <= MAX_FRAME_BYTES for n in shape)
    ):
        raise DecodeError("bad array shape")
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(raw):
        raise DecodeError("array payload does not match its shape")
    # frombuffer views the frame's read-only bytes: copy so the suite gets an ordinary array.
    try:
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()
    except ValueError as exc:
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


MAGIC = b"DLG\x01"  # the format's name and version: the first bytes of every frame body
_HEAD = struct.Struct(">4sII")  # magic, the JSON text's length, how many arrays


def frame_body(text: bytes, blobs=()) -> bytes:
    """A frame's body: header, JSON text, arrays' bytes (the 4-byte length before it is not included).

    Layout (integers unsigned, big-endian)::

        magic     4 bytes   "DLG" and the version, 1 (MAGIC)
        text      u32       length of the JSON text, in bytes
        count     u32       how many arrays follow the text (at most MAX_FRAME_ARRAYS)
        lengths   count x u32  each array's length in bytes
        the JSON text (UTF-8), then each array's bytes in turn; nothing after them

    In the text an array is ``{"__nd__": {"dtype": ..., "shape": [...], "blob": i}}``:
    its bytes are the i-th after the text, and each is used exactly once.
    """
    return b"".join(_body_parts(text, blobs))


def _body_parts(text: bytes, blobs) -> list:
    lengths = [len(blob) for blob in blobs]
    return [_HEAD.pack(MAGIC, len(text), len(lengths)), struct.pack(f">{len(lengths)}I", *lengths), text, *blobs]


def dumps(message: dict, sort_keys: bool = False) -> bytes:
    """``message`` (with values from :func:`to_plain`) as a frame: its length, then :func:`frame_body`."""
    blobs: list = []

    def blob(value):  # json calls it for what it cannot write: the arrays' bytes
        if type(value) is not bytes and type(value) is not memoryview:
            raise TypeError(f"a value of type {type(value).__name__} is not plain data")
        blobs.append(value)
        return len(blobs) - 1

    text = json.dumps(message, allow_nan=False, default=blob, sort_keys=sort_keys).encode("utf-8")
    parts = _body_parts(text, blobs)
    # One join: each copy of a large array's bytes costs its page faults.
    return b"".join([struct.pack(">I", sum(len(part) for part in parts)), *parts])


class FrameArrays:
    """The arrays' bytes of a frame body: ``arrays[i]`` is a read-only view of the i-th, cut on demand.

    The header's table is read in place (a numpy view, no Python object per
    entry), so a frame of many empty arrays costs nothing until its text,
    counted first, refers to them.
    """

    def __init__(self, body: bytes, first: int, lengths: np.ndarray):
        self.body, self.first, self.lengths = body, first, lengths
        self.ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> memoryview:
        if self.ends is None:
            self.ends = self.first + np.cumsum(self.lengths, dtype=np.int64)
        end = int(self.ends[index])
        return memoryview(self.body)[end - int(self.lengths[index]) : end]


def split_body(body: bytes) -> tuple[bytes, FrameArrays]:
    """A frame body's JSON text and its arrays' bytes (views of ``body``).

    Every length in the header is checked against the bytes actually received
    before anything is built from it: a truncated header, a count over
    MAX_FRAME_ARRAYS or over what the body can hold, a text or arrays longer
    than the body, and bytes left over after them are all refused.
    """
    if len(body) < _HEAD.size:
        raise DecodeError("truncated frame header")
    magic, text_length, count = _HEAD.unpack_from(body)
    if magic != MAGIC:
        raise DecodeError("not a frame of this format")
    if count > MAX_FRAME_ARRAYS:
        raise DecodeError(f"a frame of {count:,} arrays, more than the {MAX_FRAME_ARRAYS:,} allowed")
    start = _HEAD.size + 4 * count
    end = start + text_length
    if end > len(body):
        raise DecodeError("truncated frame: its header claims more than it holds")
    lengths = np.frombuffer(body, dtype=">u4", count=count, offset=_HEAD.size)
    if end + int(lengths.sum(dtype=np.uint64)) != len(body):
        raise DecodeError("the frame's arrays do not match its length (truncated, or bytes after them)")
    return body[start:end], FrameArrays(body, end, lengths)


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

    The header is checked (:func:`split_body`) and its JSON text counted, on
    the bytes, before ``json.loads`` builds anything (an array counts as the
    few values of its dtype, shape and index; its bytes are bounded by the
    frame's length and copied once, by exactly that length): every value
    but the first is preceded by ``,`` ``[`` or ``:``. The first count
    includes those inside strings (C speed, an upper bound); only when it
    passes ``limit`` are strings skipped for an exact count. Depth: each
    ``[``/``{`` opens one level; past MAX_DEPTH the reply is refused.
    """
    return _count_text(split_body(body)[0], limit)


def _count_text(body: bytes, limit: int | None) -> int:
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


_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _max_depth(bare: bytes) -> int:
    """Deepest nesting of [ and { in JSON whose strings were emptied (one C-speed pass per level).

    Only the brackets are kept, and each pass removes the innermost pairs; a
    balanced text is empty after as many passes as it is deep. One that stops
    shrinking is not JSON (``json.loads`` refuses it).
    """
    brackets = bare.translate(_BRACKETS, _NOT_BRACKETS)
    depth = 0
    while brackets and depth <= MAX_DEPTH + 2:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, depth = shorter, depth + 1
    return depth


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
    """The message of a frame body (header checked first), its arrays' payloads holding their bytes."""
    text, blobs = split_body(body)
    used: set = set()

    def attach(obj: dict):
        # {"__nd__": {..., "blob": i}}: i becomes the i-th array's bytes, each taken once (a frame
        # cannot make the grader copy one array's bytes twice). Learner dicts are always inside a
        # "__dict__" tag, so an honest frame has no other object of this shape.
        if len(obj) == 1:
            payload = obj.get("__nd__")
            if type(payload) is dict and "blob" in payload:
                index = payload["blob"]
                if type(index) is not int or not 0 <= index < len(blobs) or index in used:
                    raise DecodeError("an array refers to bytes the frame does not hold, or to another's")
                used.add(index)
                payload["blob"] = blobs[index]
        return obj

    try:
        message = json.loads(text.decode("utf-8"), object_hook=attach if blobs else None)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"frame is not JSON: {exc}")
    if not isinstance(message, dict):
        raise DecodeError("frame is not an object")
    if len(used) != len(blobs):
        raise DecodeError("the frame holds bytes that no array refers to")
    return message


def frame_length(header: bytes) -> int:
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME_BYTES:
        raise DecodeError(f"frame of {length} bytes exceeds the limit")
    return length
