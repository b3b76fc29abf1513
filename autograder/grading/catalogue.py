"""The course's assignments: where their files are, their limits, their reference.

An assignment exists when ``solutions/<name>.ipynb`` and
``autograder/suites/<name>/assignment.toml`` both exist. The graded functions,
their points and the imports cell are read from the solution notebook, so the
notebook stays the one source of truth.
"""

from __future__ import annotations

import copy
import sys
import tomllib
import types
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import nbformat

from autograder.grading.notebook import MAX_NOTEBOOK_BYTES, nbgrader_meta
from autograder.grading.time_policy import ConfigError, TimePolicy  # ConfigError: also this module's
from autograder.sandbox import codec, isolation, settings
from autograder.sandbox.statements import definitions_only, parse_cell, preamble_names, strip_magics

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # autograder/
SUITES_DIR = PACKAGE_DIR / "suites"


def root() -> Path:
    """The course folder (solutions/, assignments/): the settings' root, else the checkout this package is in."""
    return settings.current().root or PACKAGE_DIR.parent


class UnknownAssignment(Exception):
    pass


@dataclass(frozen=True)
class AssignmentConfig:
    """The keys of ``autograder/suites/<name>/assignment.toml``, with the one set of defaults.

    An unknown key or a value of the wrong type is an error naming the file,
    the key and the known keys: a misspelled limit must not be silently ignored.
    """

    title: str = ""  # shown in reports; defaults to the assignment's name
    # Time (grading/time_policy.py): each graded function gets submission_timeout / n, which must
    # hold at least 3 x call_timeout; the shares sum to submission_timeout, the submission's total.
    call_timeout: float = 10.0  # seconds per learner call (and per graded cell's definitions)
    submission_timeout: float = 120.0  # seconds of learner time for one whole submission
    long_call_timeout: float = 0.0  # seconds for a call a suite marks as long (0: call_timeout); <= a share
    memory_mb: int = 2048  # resident memory of the learner process
    uses_tensorflow: bool = False  # the zygote imports TensorFlow before forking
    processes: int = 512  # RLIMIT_NPROC of the sandbox's uid: counts threads (of every sandbox if shared)
    pure_reference: tuple = ()  # reference functions whose results may be reused across submissions
    repeatable_calls: tuple = ()  # learner functions whose identical calls within one grade reuse the reply
    hints: bool = True  # show the hidden suite's hints with failed checks (false: what failed only)
    max_reply_elements: int = codec.MAX_REPLY_ELEMENTS  # JSON values one learner reply may decode to
    max_submission_elements: int = codec.MAX_SUBMISSION_ELEMENTS  # ... all replies of one submission together
    # The size of a submission the grader takes on, checked before learner code runs (over one: a zero
    # with the reason). Bytes are at most notebook.MAX_NOTEBOOK_BYTES, the cap of every read.
    max_notebook_bytes: int = 20 * 1024 * 1024  # the notebook file, outputs included
    max_code_cells: int = 1000  # code cells of the notebook
    max_statements: int = 20000  # top-level statements of all code cells together

    @classmethod
    def from_toml(cls, path: Path) -> AssignmentConfig:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{path}: cannot read: {error}") from None
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key {key!r}; known keys: {', '.join(known)}")
            default = known[key].default
            expected = type(default)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = tuple(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: {key!r} must be {_TYPE_NAMES[expected]}, not {value!r}")
            values[key] = value
        for key in ("max_notebook_bytes", "max_code_cells", "max_statements"):
            if key in values and values[key] < 1:
                raise ConfigError(f"{path}: {key!r} must be at least 1, not {values[key]!r}")
        if values.get("max_notebook_bytes", 0) > MAX_NOTEBOOK_BYTES:
            raise ConfigError(f"{path}: 'max_notebook_bytes' may be at most {MAX_NOTEBOOK_BYTES} (notebook.py's cap)")
        return cls(**values)


_TYPE_NAMES = {str: "a string", float: "a number", int: "an integer", bool: "true or false", tuple: "a list of strings"}


@dataclass
class Assignment:
    name: str
    solution_path: Path
    release_dir: Path
    suite_dir: Path
    graded_functions: list  # in notebook order
    points: dict  # function -> points (public test cell metadata)
    preamble: str  # the solution's imports cell, magics blanked
    config: AssignmentConfig

    @property
    def title(self) -> str:
        return self.config.title or self.name

    @property
    def released_notebook(self) -> Path:
        return self.release_dir / f"{self.name}.ipynb"

    @property
    def max_score(self) -> float:
        return float(sum(self.points.values()))

    @property
    def time_policy(self) -> TimePolicy:
        """The assignment's time limits (grading/time_policy.py); load() has checked that they hold."""
        return TimePolicy.from_config(
            self.config, len(self.graded_functions), source=str(self.suite_dir / "assignment.toml")
        )

    def limits(self) -> isolation.Limits:
        return isolation.Limits(
            memory_mb=self.config.memory_mb,
            # RLIMIT_AS counts virtual memory, which TensorFlow reserves ~3.7x
            # over what it uses: never below 4 GB, so TF can start.
            address_space_mb=max(4096, self.config.memory_mb),
            cpu_seconds=self.time_policy.cpu_seconds,
            processes=self.config.processes,
        )


def metadata_notebook(name: str) -> Path:
    """Where the graded functions, points and imports are read: the solution, or, where there is
    none (the learner image, docker/Dockerfile.learner), the released notebook, which nbgrader
    leaves with the same metadata."""
    solution = root() / "solutions" / f"{name}.ipynb"
    return solution if solution.exists() else root() / "assignments" / name / f"{name}.ipynb"


def names() -> list:
    found = []
    for suite in sorted(SUITES_DIR.iterdir()) if SUITES_DIR.is_dir() else []:
        if (suite / "assignment.toml").exists() and metadata_notebook(suite.name).exists():
            found.append(suite.name)
    return found


def unknown_assignment(name) -> UnknownAssignment:
    """The one message for a name that is not an assignment of this course."""
    return UnknownAssignment(f"unknown assignment {name!r}; known: {', '.join(names()) or 'none'}")


@cache
def load(name: str) -> Assignment:
    if name not in names():
        raise unknown_assignment(name)
    suite_dir = SUITES_DIR / name
    config = AssignmentConfig.from_toml(suite_dir / "assignment.toml")
    solution_path = root() / "solutions" / f"{name}.ipynb"
    nb = nbformat.read(str(metadata_notebook(name)), as_version=4)
    graded, points, preamble = [], {}, ""
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id", "")
        if meta.get("solution") and cell.cell_type == "code":
            graded.append(grade_id)
        elif meta.get("grade") and grade_id.startswith("test_"):
            points[grade_id[len("test_") :]] = float(meta.get("points", 0))
        elif grade_id == "imports":
            preamble = strip_magics(cell.source)
    # Time limits that cannot hold are a ConfigError naming the file, at once.
    TimePolicy.from_config(config, len(graded), source=str(suite_dir / "assignment.toml"))
    return Assignment(
        name=name,
        solution_path=solution_path,
        release_dir=root() / "assignments" / name,
        suite_dir=suite_dir,
        graded_functions=graded,
        points={f: points.get(f, 0.0) for f in graded},
        preamble=preamble,
        config=config,
    )


def catalogue() -> dict:
    return {name: load(name).graded_functions for name in names()}


@cache
def reference(name: str) -> types.ModuleType:
    """The solution's graded functions, executed here in the trusted process."""
    assignment = load(name)
    helper_dir = str(assignment.release_dir)
    if helper_dir not in sys.path:
        sys.path.append(helper_dir)
    module = types.ModuleType(f"dlgrade_reference_{name}")
    namespace = module.__dict__
    exec(compile(assignment.preamble, f"<{name} imports>", "exec"), namespace)
    if not assignment.solution_path.exists():
        raise FileNotFoundError(f"no solution notebook: {assignment.solution_path}")
    for source in reference_sources(name).values():
        exec(compile(source, f"<{name} solution>", "exec"), namespace)
    for function in assignment.config.pure_reference:
        namespace[function] = _memoized(namespace[function])
    return module


@cache
def reference_sources(name: str) -> dict:
    """graded function -> what runs of its solution cell (the statement rule applied), in notebook order.

    Trusted text: the reference module runs it here, and a learner child grading a
    function that calls another graded function gets the reference definitions of that
    one as source (grading/stand_ins.py). Empty where there is no solution (the learner image).
    """
    assignment = load(name)
    if not assignment.solution_path.exists():
        return {}
    nb = nbformat.read(str(assignment.solution_path), as_version=4)
    # The statement rule a submission's cells get (grading/notebook.py), names tracked from the imports cell.
    bound = preamble_names(assignment.preamble)[0]
    sources = {}
    # Every code cell binds names as it would in a submission; the solution cells are kept.
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source, tree = parse_cell(cell.source)
        rule = definitions_only(source, tree, bound)
        if nbgrader_meta(cell).get("solution"):
            sources[nbgrader_meta(cell).get("grade_id", "")] = rule.runnable
    return sources


def _memoized(function, max_entries: int = 4096):
    """Reuse the results of a pure reference function across submissions.

    Every submission's hidden suite asks the reference the same questions; for
    a deterministic function that neither draws random numbers nor changes its
    arguments (listed as ``pure_reference`` in assignment.toml) the answer is
    computed once per grading process. Keys are the arguments as plain data.
    """
    cache: dict = {}

    def call(*args, **kwargs):
        try:
            key = codec.dumps({"key": codec.to_plain([list(args), kwargs])}, sort_keys=True)
        except codec.EncodeError:
            return function(*args, **kwargs)
        if key not in cache:
            if len(cache) >= max_entries:
                cache.clear()
            cache[key] = function(*args, **kwargs)
        return copy.deepcopy(cache[key])

    call.__name__, call.__doc__ = function.__name__, function.__doc__
    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call
