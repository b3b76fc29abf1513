"""Similar submissions: pairs of learners whose graded functions share most of their code.

For the course staff, as a lead to look at, never as a verdict. The comparison is the maintained
library copydetect's (winnowed fingerprints of the tokenised code, variable and function names
replaced by placeholders, comments and whitespace dropped), applied per graded function:

- :func:`graded_code` reads a notebook with the engine's own parser (grading/notebook.py): the code
  of each graded function is its last top-level ``def``, as graded; a function still identical to
  the released stub is left out, and a damaged notebook gives ``{}``.
- :func:`similar_pairs` fingerprints each learner's functions with the released stub's code of the
  same function as boilerplate (the scaffold everyone was given never counts as shared), compares
  each pair of learners on the functions both wrote beyond the stub, and aggregates per pair: the
  shared tokens of all those functions over their tokens, both sides together. A large function
  therefore weighs more than a two-line one, where every correct answer looks alike.

Nothing of a submission is ever run or evaluated: notebooks are parsed as JSON, cells with
``ast.parse``, code tokenised with Pygments. The work is bounded: notebooks over the assignment's
``max_notebook_bytes`` are skipped, each function's code is cut at :data:`MAX_CODE_CHARS`, at most
:data:`MAX_LEARNERS` learners are compared (more is a ``ValueError``: the caller chooses whom to
compare), so at most MAX_LEARNERS * (MAX_LEARNERS - 1) / 2 pairs, and the answer holds at most
:data:`MAX_PAIRS` pairs. A :class:`Pair` holds the learner ids as the caller gave them, the graded
functions' names (from the catalogue) and a number: no text taken from a submission.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MAX_CODE_CHARS = 20_000  # of one function's code: a longer one is compared on its first 20,000 characters
MAX_LEARNERS = 400  # learners compared in one call (79,800 pairs)
MAX_PAIRS = 1000  # pairs one call returns, whatever ``limit`` asks
MIN_TOKENS = 100  # filtered code characters beyond the stub, both learners together, for a pair to count
NOISE = 25  # copydetect's k: matches shorter than this many filtered characters are ignored (its default)
MIN_WRITTEN = 8  # filtered code characters a learner must add to a stub for the function to be compared
TOP_FUNCTIONS = 3  # functions named in a Pair


@dataclass(frozen=True)
class Pair:
    """Two learners of one assignment whose graded code is ``similarity`` alike (0..1).

    ``functions``: the functions whose code matched most (at most :data:`TOP_FUNCTIONS`), most
    shared code first."""

    a: str
    b: str
    similarity: float
    functions: tuple[str, ...]


# ---------------------------------------------------------------------- reading a notebook


def _graded_functions(assignment: str) -> list[str]:
    from autograder.grading import catalogue

    return list(catalogue.load(assignment).graded_functions)


def _max_bytes(assignment: str) -> int:
    from autograder.grading import catalogue

    return catalogue.load(assignment).config.max_notebook_bytes


def _definitions(raw: bytes, names: list[str]) -> tuple[dict[str, str], list]:
    """(function -> the source of its graded definition, the parsed cells), by the engine's rule:
    the last top-level ``def`` of the name in the notebook; none where that cell does not parse."""
    from autograder.grading.notebook import parse_code_cells, parse_notebook

    nb, _ = parse_notebook(raw, "submission")
    cells = parse_code_cells(nb)
    found: dict[str, str | None] = {}
    for cell in cells:
        if cell.tree is None:
            for name in cell.functions:
                if name in names:
                    found[name] = None  # a later def in a cell that does not parse: not graded
            continue
        lines = cell.source.splitlines(keepends=True)
        for node in cell.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                end = node.end_lineno or node.lineno
                found[node.name] = "".join(lines[start:end])[:MAX_CODE_CHARS]
    return {name: code for name, code in found.items() if code is not None}, cells


def graded_code(assignment: str, notebook_bytes: bytes) -> dict[str, str]:
    """Function -> the code of each graded function the learner wrote, in notebook order.

    The code is the function's graded definition (see :func:`_definitions`), cut at
    :data:`MAX_CODE_CHARS`; a function whose definition is still the released stub's (the same
    syntax tree: comments and blank lines aside) is left out. A notebook that cannot be read, is
    over the assignment's size limit, or belongs to an unknown assignment gives ``{}``: this never
    raises on a submission's bytes (an unknown ``assignment`` is the caller's error and raises
    ``catalogue.UnknownAssignment``).
    """
    from autograder.grading import catalogue
    from autograder.grading.notebook import untouched_stubs

    names = _graded_functions(assignment)
    if not isinstance(notebook_bytes, (bytes, bytearray)) or len(notebook_bytes) > _max_bytes(assignment):
        return {}
    try:
        code, cells = _definitions(bytes(notebook_bytes), names)
        untouched = untouched_stubs(cells, catalogue.load(assignment).released_notebook, names)
    except Exception:  # a damaged or hostile notebook: nothing to compare, whatever went wrong
        logging.getLogger(__name__).debug("similarity: notebook not read", exc_info=True)
        return {}
    return {name: code[name] for name in names if name in code and name not in untouched}


@cache
def _stub_code(assignment: str, released: Path, mtime_ns: int) -> dict[str, str]:
    """Function -> the released stub's code of it (``mtime_ns``: read again when the file changes)."""
    try:
        return _definitions(released.read_bytes(), _graded_functions(assignment))[0]
    except Exception:
        return {}


def stub_code(assignment: str) -> dict[str, str]:
    """Function -> the code of the released notebook's stub of each graded function ({} without one)."""
    from autograder.grading import catalogue

    released = catalogue.load(assignment).released_notebook
    try:
        mtime = released.stat().st_mtime_ns
    except OSError:
        return {}
    return _stub_code(assignment, released, mtime)


# ---------------------------------------------------------------------- fingerprints


def _fingerprint(code: str, boilerplate: frozenset = frozenset()):
    """copydetect's CodeFingerprint of ``code`` (Python, tokenised and filtered), less ``boilerplate``.

    Every k-gram is a fingerprint (window 1: copydetect's default, guarantee = noise threshold).
    The boilerplate is taken out here rather than by CodeFingerprint, whose removal
    (``np.intersect1d(..., assume_unique=True)`` over hashes that repeat) also drops k-grams that
    merely occur twice in the learner's code."""
    from copydetect import CodeFingerprint
    from copydetect.utils import get_token_coverage

    fingerprint = CodeFingerprint("code.py", NOISE, 1, None, filter=True, language="python", fp=io.StringIO(code))
    if boilerplate:
        fingerprint.hashes = {h for h in fingerprint.hashes if h not in boilerplate}
        fingerprint.hash_idx = {h: i for h, i in fingerprint.hash_idx.items() if h not in boilerplate}
        fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, NOISE, len(fingerprint.filtered_code))
    return fingerprint


@dataclass(frozen=True)
class _Stub:
    """What the released stub of one function gives everyone: its k-gram hashes and its filtered code."""

    hashes: frozenset = frozenset()
    filtered: str = ""


def _stub(code: str) -> _Stub:
    """Every k-gram hash of the stub's code (as copydetect's CopyDetector builds its boilerplate)."""
    if not code:
        return _Stub()
    fingerprint = _fingerprint(code)
    return _Stub(frozenset(int(h) for h in fingerprint.hashes), fingerprint.filtered_code)


def _written(filtered: str, stub: _Stub) -> int:
    """Filtered characters of ``filtered`` that are not the stub's (what the learner added or changed)."""
    if not stub.filtered:
        return len(filtered)
    matcher = difflib.SequenceMatcher(None, stub.filtered, filtered, autojunk=False)
    return len(filtered) - sum(block.size for block in matcher.get_matching_blocks())


@dataclass(frozen=True, eq=False)
class _Code:
    """One learner's function, fingerprinted: where each k-gram (by its hash) starts in the filtered code."""

    positions: dict[int, tuple[int, ...]]  # hash -> starts (copydetect's hash_idx, less the stub's)
    hashes: frozenset[int]
    coverage: float  # filtered characters the k-grams cover (copydetect's token_coverage)

    @classmethod
    def of(cls, fingerprint) -> _Code:
        positions = {int(h): tuple(int(i) for i in idx) for h, idx in fingerprint.hash_idx.items()}
        return cls(positions, frozenset(positions), float(fingerprint.token_coverage))


def _shared(mine: _Code, theirs: _Code) -> int:
    """Filtered characters of ``mine`` inside k-grams that ``theirs`` has too.

    The number copydetect.compare_files gives as its token overlap (the slices of
    get_copied_slices: k-grams closer than k characters run together), computed from the hash
    sets directly: compare_files builds numpy arrays per shared hash, which makes all pairs of a few
    hundred learners take minutes (tests/test_service_similarity.py checks that both agree)."""
    shared = mine.hashes & theirs.hashes
    if not shared:
        return 0
    if len(shared) == len(mine.hashes):
        return int(mine.coverage)  # all of it: a copy
    starts = sorted(i for h in shared for i in mine.positions[h])
    covered = NOISE
    for previous, start in zip(starts, starts[1:], strict=False):
        covered += min(start - previous, NOISE)
    return covered


def _compare(first: _Code, second: _Code) -> tuple[int, int]:
    """(shared filtered characters of ``first``, of ``second``)."""
    return _shared(first, second), _shared(second, first)


# ---------------------------------------------------------------------- pairs


def similar_pairs(
    assignment: str, submissions: list[tuple[str, bytes]], *, threshold: float = 0.8, limit: int = 50
) -> list[Pair]:
    """The pairs of learners whose graded code is at least ``threshold`` alike, most alike first.

    ``submissions``: (learner id, notebook bytes), one per learner (a learner given twice: the
    last one counts). At most ``limit`` pairs (and never over :data:`MAX_PAIRS`). Only the
    functions both learners wrote beyond the stub are compared; a pair sharing fewer than
    :data:`MIN_TOKENS` filtered characters of such code in all is never reported (short answers
    look alike whoever wrote them). Raises ``ValueError`` over :data:`MAX_LEARNERS` learners.
    """
    latest = dict(submissions)
    if len(latest) > MAX_LEARNERS:
        raise ValueError(f"similar_pairs compares at most {MAX_LEARNERS} learners at once, not {len(latest)}")
    limit = max(0, min(int(limit), MAX_PAIRS))
    if not limit:
        return []
    stubs = {name: _stub(code) for name, code in stub_code(assignment).items()}
    prints: dict[str, dict] = {}  # learner -> function -> its code beyond the stub, fingerprinted
    for learner, raw in latest.items():
        functions = _learner_code(assignment, raw, stubs)
        if functions:
            prints[str(learner)] = functions
    order = {name: i for i, name in enumerate(_graded_functions(assignment))}
    learners = sorted(prints)
    found = []
    for i, a in enumerate(learners):
        for b in learners[i + 1 :]:
            pair = _pair(a, b, prints[a], prints[b], order, threshold)
            if pair is not None and pair.similarity >= threshold:
                found.append(pair)
    found.sort(key=lambda p: (-p.similarity, p.a, p.b))
    return found[:limit]


_CACHE: OrderedDict = OrderedDict()  # (assignment, stubs' digest, notebook's sha256) -> _learner_code's answer
CACHE_SIZE = 2 * MAX_LEARNERS


def _learner_code(assignment: str, raw: bytes, stubs: dict) -> dict[str, _Code]:
    """Function -> the fingerprint of each graded function the learner wrote beyond the stub (at
    least :data:`MIN_WRITTEN` filtered characters of their own), remembered for the next call
    by the notebook's digest (the service asks again each time a page is drawn)."""
    try:
        key = (assignment, hash(tuple(sorted((n, s.filtered) for n, s in stubs.items()))), hashlib.sha256(raw).digest())
    except TypeError:  # not bytes: graded_code says {}
        return {}
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    functions = {}
    for name, code in graded_code(assignment, raw).items():
        stub = stubs.get(name, _Stub())
        try:
            fingerprint = _fingerprint(code, stub.hashes)
        except Exception:  # the tokeniser on odd text: that function is not compared
            continue
        if fingerprint.hashes and _written(fingerprint.filtered_code, stub) >= MIN_WRITTEN:
            functions[name] = _Code.of(fingerprint)
    _CACHE[key] = functions
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return functions


def _pair(a: str, b: str, mine: dict, theirs: dict, order: dict, threshold: float = 0.0) -> Pair | None:
    """The Pair of learners ``a`` and ``b`` (their fingerprints per function), None when they share
    too little code to judge (under MIN_TOKENS between them), nothing at all, or cannot reach
    ``threshold``: a first pass bounds the shared code by the shared k-grams (k characters each
    at most), so most pairs are ruled out without the exact count."""
    common = sorted(mine.keys() & theirs.keys(), key=lambda n: order.get(n, len(order)))
    bound = total = 0.0
    for name in common:
        first, second = mine[name], theirs[name]
        most = len(first.hashes & second.hashes) * NOISE
        bound += min(first.coverage, most) + min(second.coverage, most)
        total += first.coverage + second.coverage
    if total < MIN_TOKENS or not bound or bound / total < threshold:
        return None
    shared = total = 0.0
    per_function = []
    for name in common:
        first, second = mine[name], theirs[name]
        size = first.coverage + second.coverage
        if not size:
            continue
        covered = sum(_compare(first, second))
        shared += covered
        total += size
        if covered:
            per_function.append((covered, covered / size, name))
    if total < MIN_TOKENS or not shared:
        return None
    per_function.sort(key=lambda f: (-f[0], -f[1], order.get(f[2], len(order))))
    return Pair(a, b, round(min(1.0, shared / total), 4), tuple(name for _, _, name in per_function[:TOP_FUNCTIONS]))
