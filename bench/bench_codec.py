"""The sandbox codec's cost per message: encode on one side, count and decode on the other.

    python bench/bench_codec.py [--repeat 200]

Each case is a reply the way it crosses the pipe: ``to_plain`` and ``dumps`` in
the child, ``count_elements``, ``loads_frame_body`` and ``from_plain`` in the
grader. The median of ``--repeat`` runs, in milliseconds of CPU (process time):
encoding and decoding in turn (each message's buffers fresh, with their page
faults), then each alone (one side of the pipe, its buffers reused).
Run from another checkout (``python /path/to/checkout/bench/bench_codec.py``)
it measures that checkout's codec: its root comes first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from autograder.sandbox import codec  # noqa: E402


def cases() -> dict:
    rng = np.random.default_rng(0)
    return {
        "60,000 float64": rng.standard_normal(60_000),
        "dict of 6 arrays (2 layers)": {
            f"{k}{i}": rng.standard_normal((20, 30) if k == "W" else (20, 1)) for i in (1, 2, 3) for k in ("W", "b")
        },
        "200 small arrays in a list": [rng.standard_normal(4) for _ in range(200)],
        "plain list of 1,000 floats": [float(x) for x in rng.standard_normal(1000)],
        "None (an ok reply)": None,
    }


def one(value) -> tuple[float, float]:
    started = time.process_time()
    frame = codec.dumps({"ok": True, "value": codec.to_plain(value)})
    encoded = time.process_time()
    body = frame[4:]
    codec.count_elements(body, codec.MAX_REPLY_ELEMENTS)
    codec.from_plain(codec.loads_frame_body(body)["value"])
    return encoded - started, time.process_time() - encoded


def alone(value, repeat: int) -> tuple[float, float]:
    message = {"ok": True, "value": value}
    body = codec.dumps({"ok": True, "value": codec.to_plain(value)})[4:]

    def decode():
        codec.count_elements(body, codec.MAX_REPLY_ELEMENTS)
        codec.from_plain(codec.loads_frame_body(body)["value"])

    out = []
    for step in (lambda: codec.dumps({**message, "value": codec.to_plain(value)}), decode):
        timings = []
        for _ in range(repeat):
            started = time.process_time()
            step()
            timings.append(time.process_time() - started)
        out.append(statistics.median(timings) * 1000)
    return out[0], out[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"codec from {Path(codec.__file__).resolve()}")
    print(f"{'':32}{'in turn (ms)':>30}{'alone (ms)':>20}")
    print(f"{'reply':32}{'encode':>10}{'decode':>10}{'total':>10}{'encode':>10}{'decode':>10}{'frame bytes':>13}")
    for name, value in cases().items():
        timings = [one(value) for _ in range(args.repeat)]
        enc = statistics.median(t[0] for t in timings) * 1000
        dec = statistics.median(t[1] for t in timings) * 1000
        enc_alone, dec_alone = alone(value, args.repeat)
        size = len(codec.dumps({"ok": True, "value": codec.to_plain(value)}))
        print(f"{name:32}{enc:>10.3f}{dec:>10.3f}{enc + dec:>10.3f}{enc_alone:>10.3f}{dec_alone:>10.3f}{size:>13,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
