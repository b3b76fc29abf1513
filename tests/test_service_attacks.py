"""No submission can touch another, through dlgrade serve (principle 5).

Real hostile notebooks (test_attacks.py's: tampering with the zygote, reading protected files,
reaching the grader over the network, side effects aimed at other functions) are uploaded through the
service's API beside real victims, and graded by the service's own graders (the real engine, one warm
worker, so every victim is graded in the same worker right after its attacker). Each victim's result
must equal its grade with no attacker (test_attacks' baseline), and the attackers must gain nothing of
what the service keeps: its database, session key, other learners' blobs, the suites and solutions.
"""

from __future__ import annotations

import hashlib
import time

import nbformat
import pytest
from fastapi.testclient import TestClient

from autograder.batch.roster import parse_roster
from autograder.service.config import ServiceConfig
from autograder.service.web import create_app
from tests.nbtools import ROOT as CHECKOUT
from tests.test_attacks import (
    CROSS_FUNCTION,
    HE,
    NETWORK,
    RANDOM,
    READ,
    SETPRIV,
    SUITES_DIR,
    TAMPER,
    ZEROS,
    A,
    Listener,
    attacker_output,
    baseline,  # noqa: F401 (a fixture)
    notebook,
    solution_path,
    solution_source,
    victims,
    view,
)
from tests.test_attacks import pytestmark as _needs_a_sandbox

pytestmark = [_needs_a_sandbox]
ATTACKS = ("c1-tamper", "c2-read", "c3-network", "c6-cross")


def _bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def _attackers(course, victim_blobs: list, port: int) -> dict:
    stub_plus = lambda sources: notebook({ZEROS: solution_source(A, ZEROS), **sources})  # noqa: E731
    paths = [
        str(course / "service.sqlite"),
        str(course / "secret.key"),
        *[str(course / "blobs" / sha[:2] / sha) for sha in victim_blobs],
        str(SUITES_DIR / A / f"test_{A}.py"),
        str(CHECKOUT / "solutions" / f"{A}.ipynb"),
    ]
    return {
        "c1-tamper": stub_plus({HE: TAMPER}),
        "c2-read": stub_plus({HE: READ.replace("PATHS", repr(paths))}),
        "c3-network": stub_plus({HE: NETWORK.replace("{PORT}", "{%d}" % port)}),
        "c6-cross": notebook({RANDOM: CROSS_FUNCTION}, base=solution_path(A)),
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every attacker, each followed by the two victims, uploaded through the API; graded by the service."""
    if SETPRIV:
        pytest.skip("under setpriv the service refuses this world-readable checkout (test_attacks' readability tests)")
    course = tmp_path_factory.mktemp("course")
    listener = Listener()
    app = create_app(ServiceConfig(course=course, workers=1, rate_count=1000))
    learners = [name for attack in ATTACKS for name in (attack, f"{attack}-v1-full", f"{attack}-v2-partial")]
    victim_bytes = {name: _bytes(nb) for name, nb in victims().items()}
    shas = [hashlib.sha256(data).hexdigest() for data in victim_bytes.values()]
    attackers = {name: _bytes(nb) for name, nb in _attackers(course, shas, listener.port).items()}
    results = {}
    with TestClient(app) as client:
        store = app.state.store
        store.update_assignment(A, is_open=True)
        tokens = store.import_roster(parse_roster("learner\n" + "\n".join(learners) + "\n"))
        ids = {}
        for attack in ATTACKS:  # attacker first, then its victims: the same warm worker grades them in turn
            uploads = [(attack, attackers[attack])] + [(f"{attack}-{v}", data) for v, data in victim_bytes.items()]
            for learner, data in uploads:
                answer = client.post(
                    "/api/v1/submissions",
                    headers={"Authorization": f"Bearer {tokens[learner]}"},
                    files={"notebook": (f"{A}.ipynb", data)},
                )
                assert answer.status_code == 201, answer.text
                ids[learner] = answer.json()["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = {row.learner: row for row in store.submissions()}
            if all(rows[learner].status == "graded" for learner in ids):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the service did not grade every submission within 300 s")
        for learner, row in rows.items():
            results[learner] = {**row.result, "_id": row.id}
    return {"results": results, "course": course, "listener": listener, "victim_bytes": victim_bytes}


def _victims_untouched(served, attack: str, baseline) -> None:  # noqa: F811
    for name in baseline:
        got = view(served["results"][f"{attack}-{name}"])
        assert got["score"] == baseline[name]["score"], (attack, name)
        assert got["tests"] == baseline[name]["tests"], (attack, name)
        assert got["functions"] == baseline[name]["functions"], (attack, name)


def test_tampering_with_the_zygote_through_the_service(served, baseline):  # noqa: F811
    assert "TAMPERED" in attacker_output(served["results"]["c1-tamper"])
    _victims_untouched(served, "c1-tamper", baseline)


def test_reading_the_services_files_gains_nothing(served, baseline):  # noqa: F811
    output = attacker_output(served["results"]["c2-read"])
    assert "LEAKED" in output
    key = (served["course"] / "secret.key").read_text().strip()
    for secret in ("BEGIN SOLUTION", "def test_", "VICTIM-SECRET", "SQLite format", key):
        assert secret not in output
    _victims_untouched(served, "c2-read", baseline)


def test_the_service_port_is_not_reachable_from_a_submission(served, baseline):  # noqa: F811
    assert "REACHED []" in attacker_output(served["results"]["c3-network"])
    assert served["listener"].connections == 0
    _victims_untouched(served, "c3-network", baseline)


def test_side_effects_aimed_at_other_functions_through_the_service(served, baseline):  # noqa: F811
    attacker = served["results"]["c6-cross"]
    # the attacked functions keep their own points: only the attacking function is charged
    for function in (ZEROS, HE):
        assert attacker["functions"][function]["score"] == attacker["functions"][function]["max_score"]
    assert attacker["functions"][RANDOM]["score"] == 0
    assert "not graded anyway" in attacker_output(attacker, RANDOM)  # it ran: its hook was set
    _victims_untouched(served, "c6-cross", baseline)


def test_each_upload_is_its_own_blob_and_row(served):
    """No learner's bytes were replaced by another's: each victim's stored blob is still its own."""
    course, victim_bytes = served["course"], served["victim_bytes"]
    for data in victim_bytes.values():
        sha = hashlib.sha256(data).hexdigest()
        assert (course / "blobs" / sha[:2] / sha).read_bytes() == data
    assert len({row["_id"] for row in served["results"].values()}) == len(served["results"])
