"""service/similarity.py on real notebooks of the optimization assignment: the solution, copies of it
with names changed, an independent correct implementation, the released stub, damaged bytes."""

from __future__ import annotations

import re

import nbformat
import pytest

from autograder.service import similarity
from autograder.service.similarity import Pair, graded_code, similar_pairs

from nbtools import graded_cell, released_path, solution_notebook, solution_path

ASSIGNMENT = "optimization"

# Another learner's correct answers, written apart from the solution: what replaces each stub's
# "# YOUR CODE HERE / raise NotImplementedError()" (indented as the stub has it).
INDEPENDENT = {
    "update_parameters_with_gd": """
        for kind in "Wb":
            name = f"{kind}{l}"
            step = grads[f"d{name}"] * learning_rate
            parameters[name] -= step
""",
    "random_mini_batches": """
        order = np.random.permutation(m)
        X_mixed, Y_mixed = X[:, order], Y[:, order].reshape(1, -1)
        start = 0
        while start < m:
            stop = min(start + mini_batch_size, m)
            mini_batches += [(X_mixed[:, start:stop], Y_mixed[:, start:stop])]
            start = stop
""",
    "initialize_velocity": """
        for kind in ("W", "b"):
            v[f"d{kind}{l}"] = np.zeros_like(parameters[f"{kind}{l}"], dtype=float)
""",
    "update_parameters_with_momentum": """
        for kind in ("W", "b"):
            g = f"d{kind}{l}"
            v[g] *= beta
            v[g] += (1.0 - beta) * grads[g]
            parameters[f"{kind}{l}"] -= learning_rate * v[g]
""",
    "initialize_rmsprop": """
        for kind in ("W", "b"):
            s[f"d{kind}{l}"] = np.zeros_like(parameters[f"{kind}{l}"], dtype=float)
""",
    "update_parameters_with_rmsprop": """
        for kind in ("W", "b"):
            g = f"d{kind}{l}"
            s[g] = s[g] * beta2 + grads[g] ** 2 * (1.0 - beta2)
            denominator = epsilon + s[g] ** 0.5
            parameters[f"{kind}{l}"] -= grads[g] * learning_rate / denominator
""",
    "initialize_adam": """
        for kind in ("W", "b"):
            zeros = np.zeros_like(parameters[f"{kind}{l}"], dtype=float)
            v[f"d{kind}{l}"], s[f"d{kind}{l}"] = zeros, zeros.copy()
""",
    "update_parameters_with_adam": """
            first = beta1 * v[key] + grads[key] * (1.0 - beta1)
            second = beta2 * s[key] + (grads[key] * grads[key]) * (1.0 - beta2)
            v[key], s[key] = first, second
            v_corrected[key] = first / (1.0 - np.power(beta1, t))
            s_corrected[key] = second / (1.0 - np.power(beta2, t))
            step = v_corrected[key] / (epsilon + np.sqrt(s_corrected[key]))
            parameters[name + str(l)] -= learning_rate * step
""",
    "update_lr": """
    learning_rate = learning_rate0 * (1.0 / (1.0 + epoch_num * decay_rate))
""",
    "schedule_lr_decay": """
    steps = epoch_num // time_interval
    learning_rate = learning_rate0 * (1.0 / (1.0 + steps * decay_rate))
""",
}

_TODO = re.compile(r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)\n", re.MULTILINE)

# The solution with its local names changed and its comments dropped: a copy, disguised.
RENAMES = [
    ("mini_batches", "batch_list"),
    ("mini_batch_X", "bx"),
    ("mini_batch_Y", "by"),
    ("shuffled_X", "Xs"),
    ("shuffled_Y", "Ys"),
    ("permutation", "idx"),
    ("num_complete_minibatches", "n_full"),
    ("learning_rate", "alpha"),
    ("parameters", "params"),
    ("grads", "gradients"),
    ("key", "k_name"),
]


def notebook_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def solution_bytes() -> bytes:
    return solution_path(ASSIGNMENT).read_bytes()


def stub_bytes() -> bytes:
    return released_path(ASSIGNMENT).read_bytes()


def independent_bytes() -> bytes:
    """The released stub with every graded function answered by INDEPENDENT."""
    nb = nbformat.read(str(released_path(ASSIGNMENT)), as_version=4)
    for function, body in INDEPENDENT.items():
        cell = graded_cell(nb, function)
        match = _TODO.search(cell.source)
        assert match, f"the stub of {function} has no YOUR CODE HERE block"
        block = _reindent(body, match.group(1))
        cell.source = cell.source[: match.start()] + block + cell.source[match.end() :]
    return notebook_bytes(nb)


def _reindent(body: str, indent: str) -> str:
    lines = body.strip("\n").splitlines()
    base = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "".join(indent + line[base:] + "\n" if line.strip() else "\n" for line in lines)


def renamed_solution_bytes() -> bytes:
    nb = solution_notebook(ASSIGNMENT)
    for function in similarity._graded_functions(ASSIGNMENT):
        cell = graded_cell(nb, function)
        source = re.sub(r"(?m)^[ \t]*#.*\n", "", cell.source)  # comment lines
        source = re.sub(r"(?m)  # .*$", "", source)  # trailing comments
        for old, new in RENAMES:
            source = re.sub(rf"\b{old}\b", new, source)
        cell.source = source
    return notebook_bytes(nb)


def test_graded_code_is_each_written_function_and_not_the_stub():
    code = graded_code(ASSIGNMENT, solution_bytes())
    assert list(code) == similarity._graded_functions(ASSIGNMENT)
    assert code["update_lr"].startswith("def update_lr(")
    assert "learning_rate0 / (1 + decay_rate * epoch_num)" in code["update_lr"]
    assert graded_code(ASSIGNMENT, stub_bytes()) == {}
    assert similarity.stub_code(ASSIGNMENT).keys() == code.keys()


def test_graded_code_keeps_the_last_definition_and_caps_its_size():
    nb = solution_notebook(ASSIGNMENT)
    cell = graded_cell(nb, "update_lr")
    filler = "\n".join(f"    x{i} = {i}" for i in range(3000))
    cell.source += f"\n\ndef update_lr(learning_rate0, epoch_num, decay_rate):\n{filler}\n    return 1\n"
    code = graded_code(ASSIGNMENT, notebook_bytes(nb))["update_lr"]
    assert "x0 = 0" in code and "learning_rate0 / (1" not in code
    assert len(code) == similarity.MAX_CODE_CHARS


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"cells": 5}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"cells": [{"cell_type": "code", "source": "def update_lr(:\\n", "metadata": {}}], "nbformat": 4}',
    ],
)
def test_damaged_bytes_give_no_code_and_no_pair(raw):
    assert graded_code(ASSIGNMENT, raw) == {}
    assert similar_pairs(ASSIGNMENT, [("x", raw), ("y", raw), ("sol", solution_bytes())], threshold=0.0) == []


def test_a_copy_with_names_changed_is_a_pair_and_the_stub_is_not():
    pairs = similar_pairs(
        ASSIGNMENT,
        [("ann", solution_bytes()), ("bob", renamed_solution_bytes()), ("cy", stub_bytes()), ("dee", stub_bytes())],
    )
    assert len(pairs) == 1, pairs
    pair = pairs[0]
    assert (pair.a, pair.b) == ("ann", "bob")
    assert pair.similarity >= 0.95
    assert 1 <= len(pair.functions) <= similarity.TOP_FUNCTIONS
    assert set(pair.functions) <= set(similarity._graded_functions(ASSIGNMENT))


def stub_with_pass_bytes() -> bytes:
    """The stub with each ``raise NotImplementedError()`` turned into ``pass``: nothing written."""
    return stub_bytes().replace(b"raise NotImplementedError()", b"pass")


def test_stub_only_notebooks_are_never_a_pair_whatever_the_threshold():
    assert set(graded_code(ASSIGNMENT, stub_with_pass_bytes())) == set(similarity._graded_functions(ASSIGNMENT))
    submissions = [(name, stub_bytes()) for name in ("a", "b", "c")] + [("sol", solution_bytes())]
    submissions += [("pass1", stub_with_pass_bytes()), ("pass2", stub_with_pass_bytes())]
    assert similar_pairs(ASSIGNMENT, submissions, threshold=0.0) == []


def test_independent_implementations_score_clearly_lower_than_a_copy():
    independent = independent_bytes()
    assert set(graded_code(ASSIGNMENT, independent)) == set(INDEPENDENT)
    submissions = [("ann", solution_bytes()), ("bob", renamed_solution_bytes()), ("eve", independent)]
    assert [(p.a, p.b) for p in similar_pairs(ASSIGNMENT, submissions)] == [("ann", "bob")]
    every = {(p.a, p.b): p.similarity for p in similar_pairs(ASSIGNMENT, submissions, threshold=0.0)}
    copy, apart = every[("ann", "bob")], max(every.get(("ann", "eve"), 0.0), every.get(("bob", "eve"), 0.0))
    assert apart < 0.5, every
    assert copy - apart > 0.4, every


def test_only_functions_both_wrote_are_compared():
    # ann wrote update_lr only (the rest is the stub), bob the whole solution: compared on update_lr
    # alone, which is too short to report (MIN_TOKENS) however alike.
    nb = nbformat.read(str(released_path(ASSIGNMENT)), as_version=4)
    graded_cell(nb, "update_lr").source = graded_cell(solution_notebook(ASSIGNMENT), "update_lr").source
    only_lr = notebook_bytes(nb)
    assert list(graded_code(ASSIGNMENT, only_lr)) == ["update_lr"]
    assert similar_pairs(ASSIGNMENT, [("ann", only_lr), ("bob", solution_bytes())], threshold=0.0) == []
    # With one long function in common, the pair is found and names it.
    nb = nbformat.read(str(released_path(ASSIGNMENT)), as_version=4)
    solution = solution_notebook(ASSIGNMENT)
    graded_cell(nb, "update_parameters_with_adam").source = graded_cell(solution, "update_parameters_with_adam").source
    pairs = similar_pairs(ASSIGNMENT, [("ann", notebook_bytes(nb)), ("bob", solution_bytes())])
    assert [(p.a, p.b, p.functions) for p in pairs] == [("ann", "bob", ("update_parameters_with_adam",))]


def test_output_is_bounded_ordered_and_plain():
    solution = solution_bytes()
    submissions = [(f"learner{i:02}", solution) for i in range(6)] + [("same", solution), ("same", stub_bytes())]
    pairs = similar_pairs(ASSIGNMENT, submissions, limit=4)
    assert len(pairs) == 4
    assert all(isinstance(p, Pair) and p.a < p.b and type(p.similarity) is float and p.similarity == 1 for p in pairs)
    assert [(p.a, p.b) for p in pairs] == sorted((p.a, p.b) for p in pairs)
    assert "same" not in {p.a for p in pairs} | {p.b for p in pairs}  # its last submission is the stub
    assert similar_pairs(ASSIGNMENT, submissions, limit=0) == []
    with pytest.raises(ValueError, match="at most"):
        similar_pairs(ASSIGNMENT, [(str(i), b"") for i in range(similarity.MAX_LEARNERS + 1)])


def test_learner_code_is_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').write('x')"
    nb = solution_notebook(ASSIGNMENT)
    cell = graded_cell(nb, "update_lr")
    cell.source = f"{payload}\n__import__('os').system('touch {marker}')\n" + cell.source.replace(
        "learning_rate = learning_rate0", f"learning_rate = ({payload}) or learning_rate0"
    )
    raw = notebook_bytes(nb)
    assert "update_lr" in graded_code(ASSIGNMENT, raw)
    similar_pairs(ASSIGNMENT, [("a", raw), ("b", raw)])
    assert not marker.exists()


def test_the_shared_code_is_copydetects_token_overlap():
    from copydetect import compare_files

    stubs = {name: similarity._stub(code) for name, code in similarity.stub_code(ASSIGNMENT).items()}
    learners = [
        graded_code(ASSIGNMENT, raw) for raw in (solution_bytes(), renamed_solution_bytes(), independent_bytes())
    ]
    checked = 0
    for name, stub in stubs.items():
        prints = [similarity._fingerprint(code[name], stub.hashes) for code in learners]
        for first, second in [(0, 1), (0, 2), (1, 2)]:
            overlap, (similarity1, similarity2), _ = compare_files(prints[first], prints[second])
            ours = similarity._compare(similarity._Code.of(prints[first]), similarity._Code.of(prints[second]))
            assert ours == (
                round(similarity1 * prints[first].token_coverage),
                round(similarity2 * prints[second].token_coverage),
            )
            assert ours[0] == overlap
            checked += bool(overlap)
    assert checked > 10
