"""The program the sandbox runs: ``python child.py --fds IN OUT`` or ``--zygote FD``.

Started by the grader (``spawn.py``) inside the sandbox. With ``--fds`` it is
one learner process (a cold sandbox of its own): it serves requests on the
two inherited pipes (``worker.py``). With ``--zygote`` it is a warm process
that starts a learner per graded function (``zygote.py``).

The learner-side modules, copied into the sandbox together and importing
nothing from autograder but each other: this one, ``worker.py`` (the request
loop), ``zygote.py`` (one runner per way of keeping submissions apart),
``prepared.py`` (namespace mode's prepared processes), ``kernel.py`` (the
checked kernel calls), ``cleanup.py`` (the uid mode's sweep) and ``codec.py``
(the wire format). Nothing in them is trusted by the grader: a submission can
patch them at run time, and the grader only ever receives plain data it
checks itself.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__:  # imported by the grader (tests)
    from autograder.sandbox import worker, zygote
else:  # in the sandbox: the files beside this one (imported before the work folder joins sys.path)
    import worker  # type: ignore[no-redef]
    import zygote  # type: ignore[no-redef]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="child.py", description="dlgrade's learner-side program (in the sandbox)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--fds", nargs=2, type=int, metavar=("IN", "OUT"), help="serve one learner on these inherited pipe descriptors"
    )
    mode.add_argument("--zygote", type=int, metavar="FD", help="be a zygote on this control socket")
    parser.add_argument("--preload", default="", help="comma-separated modules the zygote imports once")
    parser.add_argument("--learner-uid", type=int, help="the uid the zygote's learners run as (root zygotes)")
    parser.add_argument("--preamble", help="a file with the assignment's imports cell, run ahead of each learner")
    parser.add_argument("--no-namespaces", action="store_true", help="use the uid mode even where namespaces work")
    parser.add_argument(
        "--keeper", action="store_true", help="namespaces through a keeper process even where setns works"
    )
    parser.add_argument(
        "--hide", action="append", default=[], metavar="PATH", help="a device node each learner's namespaces cover"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    sys.path.insert(0, os.getcwd())
    if args.zygote is not None:
        preamble = None
        if args.preamble:
            with open(args.preamble, encoding="utf-8") as handle:
                preamble = handle.read()
        zygote.zygote(
            args.zygote,
            [m for m in args.preload.split(",") if m],
            args.learner_uid,
            namespaces=not args.no_namespaces,
            keeper=args.keeper,
            preamble=preamble,
            hidden=tuple(args.hide),
        )
        return
    worker.seed_everything(0)
    worker.Worker(*args.fds).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
