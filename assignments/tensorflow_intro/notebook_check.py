"""The table the notebook's last cell prints: every public test, then how to submit.

``public_tests.check_all()`` calls :func:`check_all` with its own module and
the notebook's namespace. It imports nothing but the standard library, and
nothing here affects a grade.
"""

from __future__ import annotations

import contextlib
import io

SUBMIT_TEXT = """How to submit:
  1. Save the notebook (File > Save, or Ctrl+S / Cmd+S).
  2. Hand in the .ipynb file itself, as your course asks (upload it, or commit it);
     keep the names of the graded functions unchanged.
  3. The grader runs the definitions of your cells in a fresh process and calls your
     functions with more inputs than these public tests: passing here is a first check.
  To check again before you hand it in: Kernel > Restart & Run All, then read this table."""


def public_tests_of(module) -> list:
    """[(graded function name, its public test)] in the order the module defines them."""
    tests = []
    for name, value in vars(module).items():
        if name.endswith("_test") and callable(value) and getattr(value, "__module__", None) == module.__name__:
            tests.append((name[: -len("_test")], value))
    return tests


def other_functions(test, namespace: dict) -> dict:
    """The notebook's functions a public test takes besides its target, by parameter name.

    ``batchnorm_backward_test(target, batchnorm_forward=None)`` gets the notebook's
    ``batchnorm_forward``, as its test cell passes it; a parameter that names
    nothing callable in the notebook keeps its default.
    """
    import inspect

    try:
        parameters = list(inspect.signature(test).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}
    return {
        p.name: namespace[p.name]
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and callable(namespace.get(p.name))
    }


def run_public_tests(module, namespace: dict) -> list:
    """[(function, "passed" | "failed" | "not done" | "missing", first line of the reason)]."""
    rows = []
    for function, test in public_tests_of(module):
        target = namespace.get(function)
        if not callable(target):
            rows.append((function, "missing", f"{function} is not defined: run its cell (and keep its name)"))
            continue
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                test(target, **other_functions(test, namespace))
        except NotImplementedError:
            rows.append((function, "not done", "still raises NotImplementedError"))
        except AssertionError as exc:
            rows.append((function, "failed", _one_line(str(exc)) or "a check failed"))
        except Exception as exc:  # the learner's code may raise anything
            rows.append((function, "failed", f"{type(exc).__name__}: {_one_line(str(exc))}"))
        else:
            rows.append((function, "passed", ""))
    return rows


REASON_WIDTH = 72  # characters of "what to look at" per line; a longer reason goes on below, never cut


def format_table(rows: list) -> str:
    import textwrap

    width = max([len("function")] + [len(f) for f, _, _ in rows])
    lines = [f"{'function':<{width}}  result    what to look at", f"{'-' * width}  --------  ---------------"]
    for function, status, reason in rows:
        wrapped = textwrap.wrap(reason, REASON_WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
        lines.append(f"{function:<{width}}  {status:<8}  {wrapped[0]}".rstrip())
        lines += [f"{'':<{width + 12}}{more}" for more in wrapped[1:]]
    passed = sum(status == "passed" for _, status, _ in rows)
    lines.append("")
    lines.append(
        f"{passed} of {len(rows)} public tests passed."
        + ("" if passed == len(rows) else " Fix the others in their cells, rerun them, then this cell.")
    )
    return "\n".join(lines)


def check_all(module, namespace: dict) -> None:
    """Print the table of every public test, then how to submit."""
    print(format_table(run_public_tests(module, namespace)))
    print()
    print(SUBMIT_TEXT)


def _one_line(text: str) -> str:
    """The whole reason (its hint included) as one line; the table wraps it, nothing is cut."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
