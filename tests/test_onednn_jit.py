"""oneDNN's sgemm code generated in the zygote (sandbox/onednn_jit.py): the symbol is found in
TF's library, a wrong or crashing function is refused without harm, and a malformed library is
left alone. (That a forked child then generates no code of its own: tests/test_tf_start.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from autograder.sandbox import onednn_jit
from tests.nbtools import ROOT


def tf_folder() -> str:
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.origin is not None
    return os.path.dirname(spec.origin)


def test_the_symbol_is_one_function_in_tensorflows_library():
    address = onednn_jit.local_function(os.path.join(tf_folder(), "libtensorflow_cc.so.2"), onednn_jit.SYMBOL)
    assert isinstance(address, int) and address > 0
    # A name that is not there, and a prefix of the real one, are not found.
    assert onednn_jit.local_function(os.path.join(tf_folder(), "libtensorflow_cc.so.2"), b"dnnl_sgem") is None


def test_files_without_the_symbol_or_not_elf_give_none(tmp_path: Path):
    assert onednn_jit.local_function("/bin/true", onednn_jit.SYMBOL) is None  # stripped: no .symtab
    text = tmp_path / "libtensorflow_cc.so.2"
    text.write_bytes(b"not an ELF file at all" * 10)
    assert onednn_jit.local_function(str(text), onednn_jit.SYMBOL) is None
    # Truncated after a valid ELF header start: the warm-up refuses, it does not raise.
    text.write_bytes(b"\x7fELF\x02\x01" + b"\0" * 20)
    assert onednn_jit.warm_sgemm(str(tmp_path)) is False


def test_a_function_that_computes_nothing_is_refused():
    def writes_nothing(*args):
        return 0  # "success", C left as zeros

    assert onednn_jit.multiply(onednn_jit.SGEMM(writes_nothing), 4, 4, 4) is False


CRASHING = r"""
import os, sys
sys.path.insert(0, "autograder/sandbox")
import onednn_jit
onednn_jit.find_sgemm = lambda folder: onednn_jit.SGEMM(8)  # an address that faults
print("warm", onednn_jit.warm_sgemm("/nowhere"), "pid", os.getpid())
"""


def test_a_crashing_function_dies_in_the_probe_not_in_the_zygote():
    run = subprocess.run([sys.executable, "-c", CRASHING], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("warm False"), run.stdout


def test_the_real_function_multiplies_in_a_child():
    sgemm = onednn_jit.find_sgemm(tf_folder())
    if sgemm is None:  # this process has not loaded TF's library yet
        import tensorflow  # noqa: F401

        sgemm = onednn_jit.find_sgemm(tf_folder())
    assert sgemm is not None
    pid = os.fork()
    if pid == 0:  # in a child: this test process's own oneDNN state stays as it was
        os._exit(0 if all(onednn_jit.multiply(sgemm, *shape) for shape in onednn_jit.SHAPES) else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0, (
        f"child status {status} (signal {signal.Signals(status & 0x7F).name if status & 0x7F else None})"
    )
