"""Does a sandboxed learner's TensorFlow training step run on the GPU? And how fast, CPU against GPU?

Run by bench/gpu_check.sh (in the GPU image, or on the host with ``--host``); usable alone:

    python bench/gpu_check.py [--epochs 60] [--json out.json] [--cpu-only]

The learner is the tensorflow_intro solution notebook, run as learner code: its cells are extracted
as for grading and run in the real sandbox, forked from a zygote (bubblewrap, or setpriv), once with
the GPUs off (CUDA_VISIBLE_DEVICES empty) and once with GPU 0 on (DLGRADE_CHILD_CUDA_VISIBLE_DEVICES,
the device nodes passed through). Inside the sandbox a trusted probe (autograder/grading/probes.py's
kind: plain data back) records TensorFlow's logical devices, one training step's placement (the device
of the forward pass's output, the loss, every gradient and every variable after an Adam update, with
tf.debugging.set_log_device_placement on) and the time of the assignment's ``model`` (the notebook's
own training loop: Adam on mini-batches of the digits) for ``--epochs`` epochs, after one warm-up epoch.

Exit status: 0 the GPU run placed every tensor of the step on a GPU; 1 it did not (the report says
where they went); 4 no GPU on this machine (no /dev/nvidia[0-9]* node): nothing measured (with
``--cpu-only``: the CPU half is measured, and the exit status is 4 still).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

try:
    import autograder  # noqa: F401  (the image: PYTHONPATH=/opt/dlgrade)
except ImportError:  # a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.grading import catalogue  # noqa: E402
from autograder.grading.learner import Learner, LearnerProcess  # noqa: E402
from autograder.grading.notebook import extract, parse_code_cells, parse_notebook  # noqa: E402
from autograder.grading.time_policy import TimePolicy  # noqa: E402
from autograder.sandbox import isolation, settings, spawn  # noqa: E402

NO_GPU = 4
A = "tensorflow_intro"

PROBE = """
def probe(ns, epochs):
    import time
    import numpy as np
    import tensorflow as tf
    import tensorflow_intro_utils as utils

    x_train, y_train, x_test, y_test = utils.load_digits_split()
    X_train, X_test = (x_train / 16.0).T.astype(np.float32), (x_test / 16.0).T.astype(np.float32)
    Y_train, Y_test = np.eye(10, dtype=np.float32)[y_train].T, np.eye(10, dtype=np.float32)[y_test].T
    out = {
        "logical_devices": [d.name for d in tf.config.list_logical_devices()],
        "physical_gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
    }
    # One training step, as the notebook's model takes it, every tensor's device recorded.
    tf.debugging.set_log_device_placement(True)
    tf.keras.utils.set_random_seed(1)
    parameters = ns["initialize_parameters"]()
    variables = [parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    optimizer = tf.keras.optimizers.Adam(0.001)
    X, Y = tf.constant(X_train[:, :32]), tf.constant(Y_train[:, :32])
    with tf.GradientTape() as tape:
        Z3 = ns["forward_propagation"](X, parameters)
        loss = ns["compute_total_loss"](Z3, Y)
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    placement = {"forward_propagation output": Z3.device, "compute_total_loss output": loss.device}
    placement.update({f"gradient of {k}": g.device for k, g in zip(("W1", "b1", "W2", "b2", "W3", "b3"), grads)})
    placement.update({f"variable {k} after the update": v.device for k, v in parameters.items()})
    out["placement"] = placement
    tf.debugging.set_log_device_placement(False)
    # The assignment's model: one warm-up epoch (tracing, kernels), then the timed run.
    tf.keras.utils.set_random_seed(1)
    ns["model"](X_train, Y_train, X_test, Y_test, num_epochs=1, print_cost=False)
    tf.keras.utils.set_random_seed(1)
    start = time.perf_counter()
    parameters, costs, train_acc, test_acc = ns["model"](
        X_train, Y_train, X_test, Y_test, num_epochs=epochs, print_cost=False)
    out["model_seconds"] = time.perf_counter() - start
    out["model_device"] = parameters["W1"].device
    out["test_accuracy"] = float(test_acc[-1])
    return out
"""


def gpu_nodes() -> list[str]:
    return sorted(path for path in glob.glob("/dev/nvidia[0-9]*") if os.path.exists(path))


def run_in_sandbox(gpus: str, epochs: int) -> dict:
    """The probe in a learner forked from a zygote, with CUDA_VISIBLE_DEVICES ``gpus`` ("" = off)."""
    previous = settings.use(settings.current().but(child_cuda_devices=gpus))
    spec = catalogue.load(A)
    raw = (catalogue.root() / "solutions" / f"{A}.ipynb").read_bytes()
    nb, _ = parse_notebook(raw, f"{A}.ipynb")
    extraction = extract(nb, spec.graded_functions, spec.preamble, parse_code_cells(nb))
    try:
        spawner = spawn.ZygoteSpawner(
            f"gpu-check:{gpus}",
            spec.release_dir,
            spec.limits(),
            ["numpy", f"{A}_utils", "tensorflow"],
            preamble=spec.preamble,
        )
        process = LearnerProcess(
            preamble=spec.preamble,
            cells=extraction.cells,
            helper_dir=spec.release_dir,
            limits=spec.limits(),
            time_policy=TimePolicy(call=1800, submission=3600),
            spawner=spawner,
            stand_ins=catalogue.reference_sources(A),
        )
        try:
            process.begin_function("model")
            started = time.perf_counter()
            result = Learner(process).probe(PROBE, timeout=1800, what="model", epochs=epochs)
            result["probe_seconds"] = time.perf_counter() - started
            result["isolation"] = process.isolation_report()
            result["learner_output"] = process.events.output_head[-1500:]
            return result
        finally:
            process.close()
    finally:
        settings.use(previous)
        spawn.close_zygotes()


def on_gpu(device: str) -> bool:
    return "device:GPU:" in device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the timed model run (the notebook's 60)")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    parser.add_argument("--cpu-only", action="store_true", help="no GPU here: measure the CPU half anyway")
    args = parser.parse_args(argv)
    settings.use(settings.Settings.from_environment(os.environ))  # this process's edge (DLGRADE_SANDBOX, ...)

    nodes = gpu_nodes()
    strategy = isolation.available_strategy()
    print(f"gpu_check: sandbox {strategy}; GPU device nodes: {', '.join(nodes) or 'none'}")
    if not nodes and not args.cpu_only:
        print("gpu_check: NO GPU on this machine (no /dev/nvidia[0-9]* node): nothing measured", file=sys.stderr)
        return NO_GPU
    report: dict = {"strategy": strategy, "gpu_nodes": nodes, "epochs": args.epochs}
    report["cpu"] = cpu = run_in_sandbox("", args.epochs)
    print(
        f"CPU: model, {args.epochs} epochs: {cpu['model_seconds']:.2f} s on {cpu['model_device']}, "
        f"test accuracy {cpu['test_accuracy']:.4f}; logical devices {cpu['logical_devices']}"
    )
    status = NO_GPU
    if nodes:
        report["gpu"] = gpu = run_in_sandbox("0", args.epochs)
        print(f"GPU: logical devices inside the sandbox: {gpu['logical_devices']}")
        print(f"GPU: physical GPUs: {gpu['physical_gpus']}; built with CUDA: {gpu['built_with_cuda']}")
        print("GPU: one training step's placement, from inside the sandbox:")
        for what, device in gpu["placement"].items():
            print(f"    {what:32} {device}")
        print(
            f"GPU: model, {args.epochs} epochs: {gpu['model_seconds']:.2f} s on {gpu['model_device']}, "
            f"test accuracy {gpu['test_accuracy']:.4f}"
        )
        print(f"GPU: sandbox limits: {gpu['isolation']['limits']}")
        placed = all(on_gpu(device) for device in gpu["placement"].values()) and on_gpu(gpu["model_device"])
        speedup = cpu["model_seconds"] / gpu["model_seconds"] if gpu["model_seconds"] else float("nan")
        report["gpu_speedup"] = speedup
        print(f"CPU / GPU time for the model: {speedup:.2f}x")
        if placed:
            print("gpu_check: PASS: the sandboxed learner's training step ran on the GPU")
            status = 0
        else:
            print("gpu_check: FAIL: the sandboxed learner's training step did not run on the GPU", file=sys.stderr)
            print(gpu["learner_output"], file=sys.stderr)
            status = 1
    else:
        print("gpu_check: NO GPU on this machine: only the CPU half was measured", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
