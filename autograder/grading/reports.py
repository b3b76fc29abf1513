"""Write a results dict as results.json, junit.xml and feedback.md.

The files are written to a temporary name and renamed into place, so a
reader (or a resumed batch) never sees half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path


def atomic_write(path: Path, data) -> None:
    """Write text or bytes aside and rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


def results_json(result: dict) -> str:
    return json.dumps(result, indent=2, sort_keys=False) + "\n"


def junit_xml(result: dict) -> str:
    """One <testsuite> per submission, one <testcase> per hidden check."""
    tests = result.get("tests", [])
    failures = [t for t in tests if t["status"] != "passed"]
    suite = ET.Element("testsuite", {
        "name": f"dlgrade.{result.get('assignment') or 'unknown'}",
        "tests": str(len(tests)),
        "failures": str(len(failures)),
        "errors": "0",
        "time": str(result.get("execution_time", 0)),
    })
    props = ET.SubElement(suite, "properties")
    for key in ("score", "max_score", "assignment", "submission", "sandbox"):
        ET.SubElement(props, "property", {"name": key, "value": str(result.get(key))})
    for test in tests:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"{result.get('assignment') or 'notebook'}.{test.get('function') or 'notebook'}",
            "name": test["name"],
            "time": "0",
        })
        if test["status"] != "passed":
            failure = ET.SubElement(case, "failure", {"message": test["output"].splitlines()[0] if test["output"] else "failed"})
            failure.text = test["output"]
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def feedback_markdown(result: dict) -> str:
    lines = [f"# Feedback: {result.get('assignment') or 'submission'}", ""]
    lines.append(f"**Score: {result['score']:g} / {result['max_score']:g}**")
    lines.append("")
    if result.get("error"):
        lines += [f"Your notebook could not be graded: {result['error']}", ""]
    functions = result.get("functions", {})
    if functions:
        lines += ["| function | score | checks passed |", "|---|---|---|"]
        for name, entry in functions.items():
            lines.append(f"| `{name}` | {entry['score']:g} / {entry['max_score']:g} | {entry['passed']} / {entry['tests']} |")
        lines.append("")
    failed = [t for t in result.get("tests", []) if t["status"] != "passed" and t.get("max_score")]
    if failed:
        lines += ["## What to fix", ""]
        for test in failed:
            lines.append(f"- **{test['name']}** ({test['max_score']:g} pt)")
            for row in test["output"].splitlines():
                lines.append(f"  {row}" if row.strip() else "")
        lines.append("")
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in result["notes"]] + [""]
    if not failed and not result.get("error"):
        lines += ["Every check passed.", ""]
    return "\n".join(lines)


def write_reports(result: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    atomic_write(out_dir / "results.json", results_json(result))
    atomic_write(out_dir / "junit.xml", junit_xml(result))
    atomic_write(out_dir / "feedback.md", feedback_markdown(result))
