"""Render a Result for people and tools: results.json, junit.xml, feedback.md, feedback.html, the terminal.

Each renderer reads the same ``Result`` (results.py) and escapes learner text
(exception messages, tracebacks, printed output, file names, notes that quote
them) for its own format, so a submission cannot forge a line of its report:

- Markdown: learner text goes in fenced code blocks whose fence is longer than
  any backtick run inside it; one-line text is backslash-escaped and has its
  HTML neutralized.
- HTML: everything through ``html.escape``.
- the terminal: ANSI escape sequences and control characters are removed.
- JUnit XML: characters XML 1.0 does not allow are removed, so the file parses.

Files are written to a temporary name and renamed into place, so a reader (or
a resumed batch) never sees half a file.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from autograder.grading.results import Result, as_result

REPORT_FILES = ("results.json", "junit.xml", "feedback.md", "feedback.html")


def atomic_write(path: Path, data) -> None:
    """Write text or bytes aside and rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


# ------------------------------------------------------------------ cleaning learner text

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character ESC sequences.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
# C0 controls but tab and newline, DEL, C1 controls, lone surrogates (unencodable), XML's non-characters,
# the Unicode line and paragraph separators (a line break to some terminals and editors), and the
# bidirectional marks, overrides and isolates that make a line display other than it reads ("Trojan Source").
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u2028\u2029{_BIDI}]")
# The same, tab and newline included: what a one-line text (a name) shows escaped.
_LINE_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u2028\u2029{_BIDI}]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def clean_text(text, *, one_line: bool = False) -> str:
    """``text`` without ANSI escapes and control characters (tab and newline kept; CRLF becomes LF).

    ``one_line``: text that must stay on one line (a learner, assignment or file name, a message that
    quotes one, a line of skipped.txt or of the terminal): every control character, tab, newline and
    escape included, is shown escaped (``\\n``, ``\\x1b``, ``\\u202e``) instead, so the text reads as
    what it is and can neither start a line nor restyle or reorder the terminal.
    """
    if one_line:
        return _LINE_CONTROL.sub(_escaped, str(text))
    text = str(text).replace("\r\n", "\n")
    return _CONTROL.sub("", _ANSI.sub("", text))


# What can start emphasis, code, links, images, tables or strikethrough anywhere in a line
# (< and > are HTML-escaped); block markers matter only at the start of the line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!])")
_MD_LINE_START = re.compile(r"^(\d*)([#+\-=>.)])")


def md_inline(text) -> str:
    """One line of untrusted text as literal Markdown (no emphasis, links, HTML, headings or line breaks)."""
    one_line = " ".join(clean_text(text).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))
    return _MD_LINE_START.sub(r"\1\\\2", escaped)


def md_code(text) -> str:
    """A short name as an inline code span (a fence of backticks longer than any run inside)."""
    one_line = " ".join(clean_text(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def md_fenced(text, info: str = "text") -> list:
    """Untrusted text as a fenced code block: its fence is longer than any backtick run inside."""
    body = clean_text(text).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *body.split("\n"), fence]


# ------------------------------------------------------------------ results.json


def results_json(result) -> str:
    """dlgrade's results.json (Result.to_dict()); JSON escapes every character itself."""
    return json.dumps(as_result(result).to_dict(), indent=2, sort_keys=False) + "\n"


def gradescope_json(result) -> str:
    return json.dumps(as_result(result).to_gradescope(), indent=2) + "\n"


# ------------------------------------------------------------------ JUnit


def xml_text(text) -> str:
    """Text XML 1.0 accepts (ElementTree escapes <, > and & itself)."""
    return clean_text(text)


def junit_xml(result) -> str:
    """One <testsuite> per submission, one <testcase> per hidden check."""
    result = as_result(result)
    failures = [t for t in result.tests if not t.passed]
    suite = ET.Element(
        "testsuite",
        {
            "name": xml_text(f"dlgrade.{result.assignment or 'unknown'}"),
            "tests": str(len(result.tests)),
            "failures": str(len(failures)),
            "errors": "0",
            "time": str(result.execution_time),
        },
    )
    props = ET.SubElement(suite, "properties")
    for key in ("score", "max_score", "assignment", "submission", "sandbox"):
        ET.SubElement(props, "property", {"name": key, "value": xml_text(getattr(result, key))})
    if result.late is not None:
        ET.SubElement(props, "property", {"name": "late", "value": xml_text(result.late.rule)})
    for test in result.tests:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": xml_text(f"{result.assignment or 'notebook'}.{test.function or 'notebook'}"),
                "name": xml_text(test.name),
                "time": "0",
            },
        )
        if not test.passed:
            output = xml_text(test.output)
            failure = ET.SubElement(case, "failure", {"message": output.split("\n")[0] if output else "failed"})
            failure.text = output
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


# ------------------------------------------------------------------ Markdown (the learner's feedback)


def _failed_by_function(result: Result) -> dict:
    """function -> its failed checks that carry points, in suite order."""
    groups: dict = {}
    for test in result.tests:
        if not test.passed and test.max_score:
            groups.setdefault(test.function, []).append(test)
    return groups


def _tracebacks(tests: list) -> list:
    """The distinct learner tracebacks of a function's failed checks: each shown once, not once per check."""
    seen = []
    for test in tests:
        if test.traceback.strip() and test.traceback not in seen:
            seen.append(test.traceback)
    return seen


def _score_line(result: Result) -> str:
    if result.late is not None and result.late.penalty:
        return (
            f"**Score: {result.score:g} / {result.max_score:g}** "
            f"({result.late.raw_score:g} before the late penalty of {result.late.penalty:g})"
        )
    return f"**Score: {result.score:g} / {result.max_score:g}**"


NOT_JUDGED = "time unknown: not judged late"


def late_sentence(result: Result) -> str:
    late = result.late
    if late is None:
        return ""
    if not late.judged:
        return f"Deadline {late.deadline}: {NOT_JUDGED} (no submission time from a source the course controls)."
    when = f"Submitted {late.submitted_at} (from {late.source}); deadline {late.deadline}"
    if late.extension:
        when += f" ({late.extension})"
    if not late.days_late:
        return f"{when}: on time."
    return f"{when}: {late.days_late} day(s) late. {late.rule}: -{late.penalty:g} point(s)."


def feedback_markdown(result) -> str:
    """The learner's feedback, in GitHub-flavoured Markdown (a CI job summary, a PR comment)."""
    result = as_result(result)
    lines = [f"# Feedback: {md_inline(result.title or result.assignment or 'submission')}", ""]
    if result.submission:
        lines += [f"Submission: {md_inline(result.submission)}", ""]
    lines += [_score_line(result), ""]
    if result.late is not None:
        lines += [md_inline(late_sentence(result)), ""]
    if result.error:
        lines += ["Your notebook could not be graded:", "", *md_fenced(result.error), ""]
    if result.functions:
        lines += ["| function | score | checks passed |", "|---|---|---|"]
        for name, entry in result.functions.items():
            lines.append(
                f"| {md_code(name).replace('|', '&#124;')} | {entry.score:g} / {entry.max_score:g} | {entry.passed} / {entry.tests} |"
            )
        lines.append("")
    failed = _failed_by_function(result) if not result.error else {}
    if failed:
        lines += ["## What to fix", ""]
        for function, tests in failed.items():
            entry = result.functions.get(function)
            score = f" ({entry.score:g} / {entry.max_score:g})" if entry else ""
            lines += [f"### {md_code(function) if function else 'notebook'}{score}", ""]
            for test in tests:
                lines += [f"**✗ {md_inline(test.check)}** ({test.max_score:g} pt)", ""]
                if test.message:
                    lines += [*md_fenced(test.message), ""]
                if test.hint:
                    lines += [f"Hint: {md_inline(test.hint)}", ""]
            for traceback in _tracebacks(tests):
                lines += ["Traceback (from your code):", "", *md_fenced(traceback), ""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {md_inline(note)}" for note in result.capped_notes] + [""]
    if not failed and not result.error:
        lines += ["Every check passed.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ HTML (a self-contained page)

PAGE_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f8fa;border:1px solid #ddd;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.score{font-size:1.3rem;font-weight:bold}.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#666}
.bar{background:#eee;width:10rem;height:.9rem;display:inline-block;vertical-align:middle}
td.rate{white-space:nowrap}
.bar span{display:block;height:100%}
"""


def esc(text) -> str:
    return html.escape(clean_text(text))


def page(title: str, body: list) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            # Self-contained and inert: no script, no request leaves the page.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            'img-src data:">',
            f"<title>{esc(title)}</title>",
            f"<style>{PAGE_STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def feedback_html(result) -> str:
    """The learner's feedback as one self-contained HTML page."""
    result = as_result(result)
    title = f"Feedback: {result.title or result.assignment or 'submission'}"
    return page(title, [f"<h1>{esc(title)}</h1>", *feedback_body(result)])


def feedback_body(result) -> list:
    """The feedback page's body after its title, as escaped HTML lines (dlgrade serve embeds them)."""
    result = as_result(result)
    body = []
    if result.submission:
        body.append(f'<p class="muted">Submission: {esc(result.submission)}</p>')
    full = result.max_score and result.score >= result.max_score
    body.append(
        f'<p class="score {"ok" if full else "bad"}" id="score">Score: '
        f'<span data-score="{result.score:g}">{result.score:g}</span> / '
        f'<span data-max="{result.max_score:g}">{result.max_score:g}</span></p>'
    )
    if result.late is not None:
        body.append(f'<p id="late">{esc(late_sentence(result))}</p>')
    if result.error:
        body += ["<p>Your notebook could not be graded:</p>", f"<pre>{esc(result.error)}</pre>"]
    if result.functions:
        body += ['<table id="functions">', "<tr><th>function</th><th>score</th><th>checks passed</th></tr>"]
        for name, entry in result.functions.items():
            mark = "ok" if entry.max_score and entry.score >= entry.max_score else "bad"
            body.append(
                f'<tr><td><code>{esc(name)}</code></td><td class="num {mark}">{entry.score:g} / '
                f'{entry.max_score:g}</td><td class="num">{entry.passed} / {entry.tests}</td></tr>'
            )
        body.append("</table>")
    failed = _failed_by_function(result) if not result.error else {}
    if failed:
        body.append("<h2>What to fix</h2>")
        for function, tests in failed.items():
            body.append(f"<h3><code>{esc(function or 'notebook')}</code></h3>")
            for test in tests:
                body.append(f'<p class="bad">&#10007; {esc(test.check)} ({test.max_score:g} pt)</p>')
                if test.message:
                    body.append(f"<pre>{esc(test.message)}</pre>")
                if test.hint:
                    body.append(f"<p>Hint: {esc(test.hint)}</p>")
            for traceback in _tracebacks(tests):
                body += ["<p>Traceback (from your code):</p>", f"<pre>{esc(traceback)}</pre>"]
    if result.notes:
        body += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{esc(note)}</li>" for note in result.capped_notes] + ["</ul>"]
    if not failed and not result.error:
        body.append('<p class="ok">Every check passed.</p>')
    return body


# ------------------------------------------------------------------ the terminal


def terminal_summary(result) -> str:
    """What ``dlgrade grade`` prints: the score, each function, each failed check, the notes."""
    result = as_result(result)
    lines = [clean_text(result.output)]
    for name, entry in result.functions.items():
        mark = "ok" if entry.score == entry.max_score else "--"
        lines.append(f"  [{mark}] {clean_text(name):<45} {entry.score:g} / {entry.max_score:g}")
    for test in result.tests:
        if not test.passed:
            first = clean_text(test.output).split("\n")[0]
            lines.append(f"     x {clean_text(test.name)}: {first}")
    if result.late is not None:
        lines.append(f"  late: {clean_text(late_sentence(result))}")
    for note in result.capped_notes:
        lines.append(f"  note: {' '.join(clean_text(note).split())}")
    return "\n".join(lines)


def write_reports(result, out_dir: Path) -> None:
    result = as_result(result)
    out_dir = Path(out_dir)
    atomic_write(out_dir / "results.json", results_json(result))
    atomic_write(out_dir / "junit.xml", junit_xml(result))
    atomic_write(out_dir / "feedback.md", feedback_markdown(result))
    atomic_write(out_dir / "feedback.html", feedback_html(result))
