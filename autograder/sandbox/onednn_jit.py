"""oneDNN's matrix-multiply kernels generated once, in the zygote, for every child it forks.

Runs inside the sandbox (a sibling of ``tf_start.py``, which calls :func:`warm_sgemm`).
TensorFlow's CPU matmul (Eigen's contraction) calls oneDNN's ``dnnl_sgemm``, whose first call in
a process generates its machine code: every kernel of its tables at once, behind a
``std::call_once``. Each graded function's child paid that again: ~12 ms of its ~40 ms TF start
(perf: Xbyak's code generator and ``xbyak_gemm_t``, 2026-12-07). The zygote cannot run a TF op
(that starts TF's thread pools, and a child forked after them hangs), but it can call
``dnnl_sgemm`` itself: plain code on this thread, whose tables and generated code every forked
child then shares.

``dnnl_sgemm`` is oneDNN's public C function (its signature is the same since oneDNN 1.0), but
TF's library keeps it local: it is found in the library's ELF symbol table, not its dynamic one.
The call is first made in a throwaway child, which must return oneDNN's success and products
equal to numpy's and start no thread; only then is it made in the zygote, and checked again.
Anything unexpected (another TF build, no symbol table, a crash in the probe) leaves the zygote
as it was: each child then generates the code itself, as before. The environment's
``ONEDNN_MAX_CPU_ISA`` (``tf_start.CHILD_ENV``) holds for the zygote and children alike.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import struct
from collections.abc import Callable

import numpy as np

SYMBOL = b"dnnl_sgemm"
STT_FUNC, SHT_SYMTAB = 2, 2
SYM = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"), ("size", "<u8")])
# dnnl_status_t dnnl_sgemm(char transa, char transb, dim M, dim N, dim K, float alpha, const float *A,
#                          dim lda, const float *B, dim ldb, float beta, float *C, dim ldc)  (row-major)
SGEMM = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_char,
    ctypes.c_char,
    *(ctypes.c_int64,) * 3,
    ctypes.c_float,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_float,
    ctypes.c_void_p,
    ctypes.c_int64,
)
SHAPES = ((4, 4, 4), (300, 300, 300))  # M, N, K: a small product and one large enough to pack
PROBE_SECONDS = 20


def local_function(path: str, name: bytes) -> int | None:
    """The file-relative address of the function ``name`` in the ELF symbol table of the 64-bit
    little-endian shared library ``path`` (local symbols included); None when there is not
    exactly one such function."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as image:
        if image[:6] != b"\x7fELF\x02\x01":
            return None
        (shoff,) = struct.unpack_from("<Q", image, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", image, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize) for i in range(shnum)]
        tables = [section for section in sections if section[1] == SHT_SYMTAB]
        if len(tables) != 1 or not 0 <= tables[0][6] < shnum:
            return None
        symtab, strtab = tables[0], sections[tables[0][6]]
        start, end = strtab[4], strtab[4] + strtab[5]
        names, found = [], image.find(b"\0" + name + b"\0", start, end)
        while found >= 0:
            names.append(found + 1 - start)
            found = image.find(b"\0" + name + b"\0", found + 1, end)
        if not names or symtab[5] % SYM.itemsize:
            return None
        symbols = np.frombuffer(image, SYM, symtab[5] // SYM.itemsize, symtab[4])
        hits = symbols[np.isin(symbols["name"], names) & (symbols["info"] & 0xF == STT_FUNC) & (symbols["size"] > 0)]
        address = int(hits["value"][0]) if len(hits) == 1 else None
        del symbols, hits  # no view of the mapping may outlive it
        return address


def load_base(path: str, maps: str = "/proc/self/maps") -> int | None:
    """Where ``path`` is loaded in this process: the start of its mapping at file offset 0."""
    real = os.path.realpath(path)
    with open(maps, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and int(fields[2], 16) == 0 and fields[5].strip() == real:
                return int(fields[0].split("-")[0], 16)
    return None


def find_sgemm(folder: str) -> Callable[..., int] | None:
    """``dnnl_sgemm`` in the TF library of ``folder`` loaded in this process, or None."""
    for library in ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2"):
        path = os.path.join(folder, library)
        base = load_base(path) if os.path.exists(path) else None
        address = local_function(path, SYMBOL) if base is not None else None
        if base is not None and address is not None:
            return SGEMM(base + address)
    return None


def multiply(sgemm, m: int, n: int, k: int) -> bool:
    """One product through ``sgemm``; True when oneDNN says success and it equals numpy's."""
    rng = np.random.default_rng(m)
    a, b = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
    c = np.zeros((m, n), np.float32)
    status = sgemm(b"N", b"N", m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 0.0, c.ctypes.data, n)
    rows = min(m, 4)  # checked without numpy's matmul, whose BLAS may start threads of its own
    expected = (a[:rows, :, None].astype(np.float64) * b[None, :, :]).sum(axis=1)
    return status == 0 and bool(np.allclose(c[:rows], expected, rtol=1e-4, atol=1e-4 * k))


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def warm_sgemm(folder: str) -> bool:
    """Generate oneDNN's sgemm code in this process (see the module's text); True when done."""
    try:
        sgemm = find_sgemm(folder)
    except Exception:  # an unreadable or malformed library (or a view left on its mapping): left alone
        return False
    if sgemm is None:
        return False
    probe = os.fork()
    if probe == 0:
        try:
            signal.alarm(PROBE_SECONDS)  # a hung probe is killed
            before = threads()  # a forked child has one; the zygote may have more (TF's import)
            ok = all(multiply(sgemm, *shape) for shape in SHAPES) and threads() == before
            os._exit(0 if ok else 1)
        finally:
            os._exit(1)
    _, status = os.waitpid(probe, 0)
    if status != 0:
        return False
    return all(multiply(sgemm, *shape) for shape in SHAPES)
