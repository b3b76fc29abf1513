"""The reference in place of a graded function's graded dependencies, before its own cell runs.

A graded function B that calls another graded function A is graded on its own
code: a bug in A must cost only A. Swapping the reference A in by name while a
check runs is not enough, since B's cell may bind A when it is defined: an alias
at the top of the cell (``bn = batchnorm_forward``), a default argument
(``def layer(..., bn=batchnorm_forward)``), a closure (a decorator's argument), a
class attribute. So B's child is given a forwarder named A first:

- the learner's cells that B's cells reach only through A are not run (the walk
  of :func:`cells.cells_needed` stops at A), so neither A's bugs nor its
  definition-time side effects reach B's child;
- just before B's own cell, a trusted step defines, for each such A, a
  forwarder named A; every binding B's cell makes sees it;
- if a cell run after B's (one pulled in for another name, or B's own cell
  defining A too) binds A again, the step runs once more after the last cell,
  so a lookup by name finds the forwarder again.

What a forwarder calls is whatever its table (``ns[TABLE]``) holds for its
name: a suite's per-call stand-in (:func:`probes.call_with_stand_ins` puts
those in the table too, so they also reach B's definition-time bindings; they
are the suite's fixtures, not the solution, and stay in the child), else the
reference A, which runs:

- **in the grader**, for an assignment without TensorFlow (``call_back``: the
  step is the worker's ``forwarders`` request, naming A only): the forwarder
  sends A's arguments as plain data over the child's channel and the grader
  runs the reference (grading/callbacks.py, with its bounds). No reference
  source, code object or function object reaches the child, so a learner's B
  cannot read the solution of A (tests/test_callbacks.py checks it from inside
  B's child, for batch_norm, practical_setup and gradient_checking);
- **in the child**, for TensorFlow (tensorflow_intro: the step is :data:`INSTALL`,
  a probe given the solution cells' source of A and what A needs): ``model``
  calls ``forward_propagation`` (and ``initialize_parameters``,
  ``compute_total_loss``) inside a GradientTape, so the reference must run on
  the child's own tensors for the gradients to flow; plain data crossing would
  cut the tape. So in tensorflow_intro the child of ``model`` holds the
  reference ``initialize_parameters``, ``forward_propagation`` and
  ``compute_total_loss`` (code and source), and a learner's ``model`` can read
  them and print them into its feedback. No other child gets reference code.
  A way out (not built): have the grader differentiate, with the forwarder
  calling back with the tape's watched variables' values and the grader
  returning the output and, for the tape, the vector-Jacobian products through
  a ``tf.custom_gradient`` forwarder (a second callback from its gradient
  function, with the upstream gradient); it costs a round trip per forward and
  per backward pass of every training step.
"""

from __future__ import annotations

from autograder.grading.cells import Cell, cell_names, cells_needed
from autograder.sandbox import codec

TABLE = "__dlgrade_stand_ins__"  # where the child keeps name -> what the forwarder of that name calls

# Runs in the learner's child as a probe; idempotent (the second run only binds the names again).
INSTALL = """
def probe(ns, names, preamble, source):
    import sys
    table = ns.get("__dlgrade_stand_ins__")
    if not isinstance(table, dict) or "<forwarders>" not in table:
        scope = {"__name__": "reference"}
        exec(compile(preamble, "<imports>", "exec"), scope)
        exec(compile(source, "<reference>", "exec"), scope)
        table = {name: scope[name] for name in names}
        tf = sys.modules.get("tensorflow")

        def forwarder(name):
            def forward(*args, **kwargs):
                return table[name](*args, **kwargs)

            forward.__name__ = forward.__qualname__ = name
            if tf is not None:  # AutoGraph cannot read its source, and it needs no conversion
                forward = tf.autograph.experimental.do_not_convert(forward)
            return forward

        table["<forwarders>"] = {name: forwarder(name) for name in names}
        ns["__dlgrade_stand_ins__"] = table
    ns.update(table["<forwarders>"])
"""

FIRST, AGAIN = "<reference stand-ins>", "<reference stand-ins, again>"


def reference_source(sources: dict, names: frozenset | set, graded: str) -> str:
    """The solution cells that define ``names`` and those they need (never ``graded``'s own), in order."""
    cells = [Cell(function, source, [function]) for function, source in sources.items() if function != graded]
    defines, uses = cell_names(cells)
    return "\n\n".join(cell.source for cell in cells_needed(cells, defines, uses, set(names)))


def plan(
    cells: list, defines: dict, uses: dict, index: dict, name: str, sources: dict, preamble: str, call_back=False
) -> list:
    """The cells ``name``'s child runs, with the reference steps in place (see the module docstring).

    ``sources``: graded function -> its solution cell's runnable source
    (:func:`catalogue.reference_sources`; empty: no replacement, the learner's
    cells only). ``call_back``: the forwarders call the grader (no reference
    code in the child), else they call the reference defined in the child."""
    replaced = frozenset(sources) - {name}
    needed = cells_needed(cells, defines, uses, {name}, index, replaced)
    # What B's cells use, and what they define besides B (a cell defining A and B binds A again).
    reached = replaced & set().union(*(uses[cell.cell_id] | defines[cell.cell_id] for cell in needed))
    if not reached:
        return needed
    request: dict = {"op": "forwarders", "names": sorted(reached)}
    if not call_back:
        inputs = {"names": sorted(reached), "preamble": preamble, "source": reference_source(sources, reached, name)}
        request = {"op": "probe", "source": INSTALL, "inputs": codec.to_plain(inputs)}
    first = next((i for i, cell in enumerate(needed) if name in defines[cell.cell_id]), 0)
    planned = [*needed[:first], Cell(FIRST, "", [], trusted=request), *needed[first:]]
    if any(defines[cell.cell_id] & reached for cell in needed[first:]):
        planned.append(Cell(AGAIN, "", [], trusted=request))
    return planned
