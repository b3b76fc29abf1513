"""A graded function rewritten to bind the graded functions it calls when it is defined.

The reference calls another graded function by name (``batchnorm_forward(...)``
inside ``affine_bn_relu_forward``). A learner may instead bind it when the
cell runs: an alias at the top of the cell, a default argument, a closure (a
decorator's argument), a class attribute. Each is correct code, and each must
be graded with the reference in place of the function it binds, so that a bug
there costs only that function (grading/stand_ins.py). :func:`bound_source`
writes the solution's cell in one of these forms, for a suite's mutants.py
(``Mutant(..., beside={function: bound_source(...)})``) and the tests.
"""

from __future__ import annotations

import re

from autograder.course.mutants import MutantError, solution_source

FORMS = ("alias", "default_argument", "closure", "class_attribute")

CLOSURE = """
def _closing_over(dependency):
    def decorate(_):
        def call(*args, **kwargs):
            return dependency(*args, **kwargs)

        return call

    return decorate

"""


def bound_source(name: str, function: str, dependencies, form: str) -> str:
    """The solution cell of ``function`` with every call of ``dependencies`` made through a binding of ``form``.

    The binding is made when the cell runs (see the module docstring); the
    body calls it in place of the name. A str, the whole new source of the cell.
    """
    if form not in FORMS:
        raise MutantError(f"unknown binding form {form!r}; known: {', '.join(FORMS)}")
    source = solution_source(name, function)
    header = f"def {function}("
    if source.count(header) != 1:
        raise MutantError(f"{name}: the cell of {function} should define it once")
    prelude, handles = [], {}
    for dependency in dependencies:
        handles[dependency] = f"_Bound.{dependency}" if form == "class_attribute" else f"_{dependency}"
        if form == "alias":
            prelude.append(f"_{dependency} = {dependency}\n")
        elif form == "closure":
            prelude.append(f"@_closing_over({dependency})\ndef _{dependency}():\n    pass\n\n")
    if form == "closure":
        prelude.insert(0, CLOSURE)
    elif form == "class_attribute":
        prelude = ["class _Bound:\n"] + [f"    {d} = staticmethod({d})\n" for d in dependencies] + ["\n"]
    start = source.index(header)
    head, body = source[:start], source[start:]
    if form == "default_argument":
        end = body.index("):\n")
        extra = "".join(f", _{d}={d}" for d in dependencies)
        body = body[:end] + extra + body[end:]
    for dependency, handle in handles.items():
        body, count = re.subn(rf"(?<![\w.]){dependency}\(", handle + "(", body)
        if count == 0:
            raise MutantError(f"{name}: {function}'s cell never calls {dependency}")
    return head + "".join(prelude) + "\n" + body
