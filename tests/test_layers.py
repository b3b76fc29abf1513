"""The engine's layers and the import rule (docs/ARCHITECTURE.md).

Each folder of ``autograder/`` is a layer and may import only from the layers
below it. The learner-side modules (``sandbox/child.py`` and what it imports:
``spawn.LEARNER_SIDE_MODULES``) are copied into the sandbox and run there: they
may import nothing from ``autograder`` but each other. Imports are read with ``ast`` (every ``import``
statement, also inside functions), so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autograder"

# layer -> the layers it may import (itself included). "" is autograder/__init__.py.
ALLOWED = {
    "": {""},
    "sandbox": {"", "sandbox"},
    "grading": {"", "sandbox", "grading"},
    "course": {"", "sandbox", "grading", "course"},
    "batch": {"", "sandbox", "grading", "batch"},
    "suites": {"", "sandbox", "grading", "suites"},
    "service": {"", "sandbox", "grading", "batch", "service"},
    "cli": {"", "sandbox", "grading", "course", "batch", "service", "cli"},
}
# Run inside the sandbox: the only autograder modules they may name.
_LEARNER_MODULES = (
    "child",
    "worker",
    "zygote",
    "prepared",
    "kernel",
    "cleanup",
    "codec",
    "tf_start",
    "onednn_jit",
    "hugepages",
)
LEARNER_SIDE = {
    f"autograder.sandbox.{name}": {f"autograder.sandbox.{other}" for other in _LEARNER_MODULES}
    for name in _LEARNER_MODULES
}


def test_the_learner_side_set_is_what_the_sandbox_gets():
    """The modules copied into the sandbox are exactly the ones held to the learner-side rule."""
    from autograder.sandbox import spawn

    assert {name.removesuffix(".py") for name in spawn.LEARNER_SIDE_MODULES} == set(_LEARNER_MODULES)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    if parts[1] == "suites" and parts[-1] == "mutants":
        # suites/<name>/mutants.py declares planted bugs for `dlgrade validate --mutants`
        # (autograder.course.mutants); it is never imported by a suite or by grading.
        return "course"
    return "cli" if parts[1] == "cli" else parts[1]


def autograder_imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) for every import of an autograder module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "autograder"]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] == "autograder"
        ):
            # `from autograder.x import y` names module x.y when y is a module, else x.
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (root / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    root / Path(*candidate.split("."))
                ).is_dir()
                found.append((node.lineno, candidate if is_module else node.module))
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    problems, root = [], package.parent
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, root)
        for line, imported in autograder_imports(path, root):
            where = f"{path.relative_to(root)}:{line}: {importer} imports {imported}"
            if importer in LEARNER_SIDE:
                if imported not in LEARNER_SIDE[importer]:
                    problems.append(f"{where} (learner-side modules import nothing from autograder)")
                continue
            if layer_of(imported) not in ALLOWED[layer_of(importer)]:
                problems.append(
                    f"{where} (layer {layer_of(importer) or 'autograder'} may import only "
                    f"{', '.join(sorted(x or 'autograder' for x in ALLOWED[layer_of(importer)]))})"
                )
    return problems


def test_every_import_points_down():
    assert violations() == []


def test_every_module_is_in_a_known_layer():
    for path in PACKAGE.rglob("*.py"):
        assert layer_of(module_name(path)) in ALLOWED, f"{path}: a new top-level folder needs a layer in ALLOWED"


@pytest.mark.parametrize(
    "module, line",
    [
        ("sandbox/child.py", "from autograder.grading import plugin\n"),
        ("sandbox/zygote.py", "from autograder.sandbox import isolation\n"),
        ("sandbox/worker.py", "from autograder.sandbox import statements\n"),
        ("sandbox/codec.py", "import autograder.sandbox.isolation\n"),
        ("sandbox/spawn.py", "from autograder.grading.learner import LearnerProcess\n"),
        ("grading/checks.py", "from autograder.batch import state\n"),
        ("batch/run.py", "def f():\n    from autograder.course import release\n"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, module, line):
    """The rule is not vacuous: the same tree with one upward import added fails it."""
    copy = tmp_path / "autograder"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + "\n" + line)
    found = violations(copy)
    assert len(found) == 1 and module in found[0], found
