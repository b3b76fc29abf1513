#!/usr/bin/env python3
"""The API calls of the course's grading jobs (examples/ci/course/), for GitHub and GitLab.

    forge.py report   --forge github|gitlab --results DIR --exit-code CODE [--min-score X] ...
    forge.py deadline --forge github|gitlab --namespace OWNER_OR_GROUP [--match REGEX] ...

report: reads DIR/results.json and DIR/feedback.md (what docker/grade.sh wrote) and grade.sh's exit
code, decides the state the learner sees, then posts on the learner's commit, with the course job's
token:
  1. a commit comment: the score and feedback.md, without control characters, cut to
     --max-comment characters (a note says so when cut);
  2. a commit status (context/name "dlgrade"), its description the score, its link the comment.
  state    when                                              exit
  success  grade.sh exited 0 and results.json holds a score: --min-score reached (without
           --min-score: full marks)                                                                0
  failure  grade.sh exited 1: graded, below --min-score (without --min-score: below full marks)    1
  error    not graded: grade.sh exited 2 or 3 (or anything else, or never ran), or no results.json 2
  (GitLab knows no `failure`/`error` state: both are posted as `failed`, the description says which.)
  A request the forge refuses: exit 4, whatever the grade (the learner would see nothing).

deadline: lists the repositories (GitHub organisation) or projects (GitLab group, subgroups
included) of --namespace whose path matches --match, reads the head of each default branch and
starts one grading run per repository: a workflow_dispatch of --workflow in --course-repo
(GitHub), a pipeline trigger of --course-project with LEARNER_PROJECT and LEARNER_SHA (GitLab).

Tokens come from the environment, never from the command line (it shows in process lists and logs):
--token-env names the variable (report and listing), --trigger-token-env the one that starts runs.
Standard library only: it runs on a bare runner.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

MAX_COMMENT = 60_000  # GitHub refuses a comment over 65,536 characters; GitLab's limit is higher
MAX_DESCRIPTION = 140  # GitHub's limit for a commit status description
READ_LIMIT = 1_000_000  # bytes read from feedback.md or results.json, whatever their size
CONTEXT = "dlgrade"
SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GITLAB_PROJECT = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
# C0 and C1 controls but tab and newline, DEL, and the bidirectional overrides and isolates that
# make text read differently from what it is.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
GITLAB_STATE = {"success": "success", "failure": "failed", "error": "failed"}
EXIT = {"success": 0, "failure": 1, "error": 2}
POST_FAILED = 4


class ForgeError(Exception):
    pass


def say(message: str) -> None:
    print(f"forge.py: {message}", file=sys.stderr)


def read_bounded(path: str, limit: int = READ_LIMIT) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return None
    return data[:limit].decode("utf-8", errors="replace")


def clean(text: str) -> str:
    return CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = f"\n\n*(feedback cut at {limit:,} characters: the full report is kept with the course's run)*\n"
    return text[: max(0, limit - len(note))] + note


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def read_score(results: str) -> tuple[float, float] | None:
    text = read_bounded(os.path.join(results, "results.json"))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    score, maximum = number(data.get("score")), number(data.get("max_score"))
    if score is None or maximum is None:
        return None
    return score, maximum


def decide(exit_code: str, score: tuple[float, float] | None, min_score: str) -> tuple[str, str]:
    """(state, description) from grade.sh's exit code and results.json."""
    needs = f" (needs {min_score})" if min_score else ""
    if exit_code in ("0", "1") and score is not None:
        shown = f"{score[0]:g}/{score[1]:g}"
        if exit_code == "0" and not min_score and score[0] < score[1]:
            return "failure", f"graded {shown}: not full marks"  # grade.sh ran without --min-score
        if exit_code == "0":
            return "success", f"graded {shown}"
        return "failure", f"graded {shown}: below the required score{needs}"
    if not exit_code or exit_code == "none":
        why = "the grading job stopped before grading"
    elif exit_code in ("0", "1"):
        why = "the grader wrote no readable results.json"
    elif exit_code == "2":
        why = "the notebook could not be graded (grade.sh exit 2)"
    elif exit_code == "3":
        why = "the grader failed (grade.sh exit 3), not the learner"
    else:
        why = f"the grading job failed (exit {clean(exit_code)[:20]})"
    return "error", f"not graded: {why}"


def comment_body(state: str, description: str, feedback: str | None, limit: int) -> str:
    head = f"## dlgrade: {description}\n\n"
    if state == "error":
        head += "This is not a mark: the course staff see the failed run and will grade this commit again.\n\n"
    elif state == "failure":
        head += "Below the score this assignment requires: read the feedback below, fix, commit and push.\n\n"
    body = clean(feedback) if feedback else "*(no feedback was written)*\n"
    return cap(head + body, limit)


class Forge:
    def __init__(self, kind: str, api: str, token: str) -> None:
        self.kind, self.api, self.token = kind, api.rstrip("/"), token

    def headers(self) -> dict[str, str]:
        if self.kind == "github":
            return {
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        return {"PRIVATE-TOKEN": self.token}

    def request(
        self,
        method: str,
        path: str,
        payload: dict | None = None,
        *,
        form: dict | None = None,
        auth: bool = True,
    ) -> tuple[object, dict[str, str]]:
        headers = {"User-Agent": "dlgrade-ci", **(self.headers() if auth else {})}
        data = None
        if payload is not None:
            data, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read(READ_LIMIT * 20).decode("utf-8", errors="replace")
                reply = json.loads(text) if text.strip() else None
                return reply, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = clean(exc.read(2000).decode("utf-8", errors="replace"))
            raise ForgeError(f"{method} {path}: HTTP {exc.code} {detail}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ForgeError(f"{method} {path}: {exc}")


def project_path(forge: str, project: str) -> str:
    """The learner's repository as it goes in a URL: owner/name (GitHub), URL-encoded path (GitLab)."""
    pattern = GITHUB_REPOSITORY if forge == "github" else GITLAB_PROJECT
    if not pattern.match(project) or ".." in project.split("/"):
        raise ForgeError(f"not a {forge} repository path: {project!r}")
    return project if forge == "github" else urllib.parse.quote(project, safe="")


def report(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "")
    if not token:
        say(f"${args.token_env} is empty: no token to post with")
        return POST_FAILED
    if not SHA.match(args.sha):
        say(f"not a commit: {args.sha!r}")
        return POST_FAILED
    if args.namespace and not args.project.startswith(args.namespace.rstrip("/") + "/"):
        say(f"not a repository of {args.namespace}: {args.project!r}")
        return POST_FAILED
    state, description = decide(args.exit_code.strip(), read_score(args.results), args.min_score)
    description = description[:MAX_DESCRIPTION]
    body = comment_body(state, description, read_bounded(os.path.join(args.results, "feedback.md")), args.max_comment)
    print(f"{state}: {description}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if args.forge == "github" else None
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(body + "\n")
    forge = Forge(args.forge, args.api, token)
    target = args.target_url
    try:
        where = project_path(args.forge, args.project)
        if args.forge == "github":
            reply, _ = forge.request("POST", f"/repos/{where}/commits/{args.sha}/comments", {"body": body})
            if isinstance(reply, dict) and isinstance(reply.get("html_url"), str):
                target = reply["html_url"]
            status = {"state": state, "context": CONTEXT, "description": description}
            forge.request(
                "POST", f"/repos/{where}/statuses/{args.sha}", {**status, **({"target_url": target} if target else {})}
            )
        else:
            forge.request("POST", f"/projects/{where}/repository/commits/{args.sha}/comments", {"note": body})
            status = {"state": GITLAB_STATE[state], "name": CONTEXT, "description": description}
            forge.request(
                "POST",
                f"/projects/{where}/statuses/{args.sha}",
                {**status, **({"target_url": target} if target else {})},
            )
    except ForgeError as exc:
        say(f"could not report to the learner's commit: {exc}")
        return POST_FAILED
    return EXIT[state]


def pages(forge: Forge, path: str):
    """Every item of a paginated list (100 a page), GitHub or GitLab."""
    page = 1
    while True:
        separator = "&" if "?" in path else "?"
        items, _ = forge.request("GET", f"{path}{separator}per_page=100&page={page}")
        if not isinstance(items, list) or not items:
            return
        yield from items
        if len(items) < 100:
            return
        page += 1


def deadline(args: argparse.Namespace) -> int:
    token, trigger = os.environ.get(args.token_env, ""), os.environ.get(args.trigger_token_env, "")
    if not token or not trigger:
        say(f"${args.token_env} and ${args.trigger_token_env} must both be set")
        return POST_FAILED
    forge, starter = Forge(args.forge, args.api, token), Forge(args.forge, args.api, trigger)
    match = re.compile(args.match)
    started = failed = 0
    try:
        if args.forge == "github":
            listing = pages(forge, f"/orgs/{urllib.parse.quote(args.namespace, safe='')}/repos?type=all")
            projects = [(r.get("full_name"), r.get("default_branch"), r.get("archived")) for r in listing]
        else:
            group = urllib.parse.quote(args.namespace, safe="")
            listing = pages(forge, f"/groups/{group}/projects?include_subgroups=true&archived=false&simple=true")
            projects = [(p.get("path_with_namespace"), p.get("default_branch"), p.get("archived")) for p in listing]
    except ForgeError as exc:
        say(f"could not list {args.namespace}: {exc}")
        return POST_FAILED
    for name, branch, archived in projects:
        if not isinstance(name, str) or not isinstance(branch, str) or archived or not match.search(name):
            continue
        try:
            where, ref = project_path(args.forge, name), urllib.parse.quote(branch, safe="")
            if args.forge == "github":
                head, _ = forge.request("GET", f"/repos/{where}/commits/{ref}")
                sha = head.get("sha") if isinstance(head, dict) else None
            else:
                head, _ = forge.request("GET", f"/projects/{where}/repository/branches/{ref}")
                commit = head.get("commit") if isinstance(head, dict) else None
                sha = commit.get("id") if isinstance(commit, dict) else None
            if not isinstance(sha, str) or not SHA.match(sha):
                raise ForgeError(f"no commit at the head of {name} {branch}")
            if args.forge == "github":
                starter.request(
                    "POST",
                    f"/repos/{args.course_repo}/actions/workflows/{args.workflow}/dispatches",
                    {"ref": args.ref, "inputs": {"repository": name, "sha": sha}},
                )
            else:
                course = urllib.parse.quote(args.course_project, safe="")
                form = {
                    "token": trigger,
                    "ref": args.ref,
                    "variables[LEARNER_PROJECT]": name,
                    "variables[LEARNER_SHA]": sha,
                }
                starter.request("POST", f"/projects/{course}/trigger/pipeline", form=form, auth=False)
            print(f"grading {name} at {sha}")
            started += 1
        except ForgeError as exc:
            say(f"{name}: {exc}")
            failed += 1
    print(f"{started} grading run(s) started, {failed} failed")
    return POST_FAILED if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--forge", choices=("github", "gitlab"), required=True)
    common.add_argument("--api", help="API root (default: $GITHUB_API_URL or $CI_API_V4_URL)")
    common.add_argument("--token-env", required=True, help="the environment variable that holds the token")

    p = sub.add_parser("report", parents=[common], help="post the grade on the learner's commit")
    p.add_argument("--results", required=True, help="grade.sh's results folder")
    p.add_argument("--exit-code", required=True, help="grade.sh's exit status ('none': it never ran)")
    p.add_argument("--min-score", default="", help="the --min-score grade.sh was given (for the description)")
    p.add_argument("--project", required=True, help="the learner's repository: owner/name or group/.../project")
    p.add_argument("--sha", required=True)
    p.add_argument("--namespace", default="", help="refuse a repository outside this owner or group")
    p.add_argument("--target-url", default="", help="the status's link (GitHub: the comment's own page)")
    p.add_argument("--max-comment", type=int, default=MAX_COMMENT)
    p.set_defaults(func=report)

    p = sub.add_parser("deadline", parents=[common], help="start one grading run per learner repository")
    p.add_argument("--namespace", required=True, help="the course's organisation (GitHub) or group (GitLab)")
    p.add_argument("--match", default="", help="grade only repository paths this regular expression finds")
    p.add_argument("--trigger-token-env", required=True, help="the variable holding the token that starts runs")
    p.add_argument("--course-repo", help="GitHub: the course repository (owner/name) whose workflow grades")
    p.add_argument("--workflow", default="grade.yml", help="GitHub: the grading workflow's file name")
    p.add_argument("--course-project", help="GitLab: the course project (path or id) whose pipeline grades")
    p.add_argument("--ref", default="main", help="the course repository's branch to run")
    p.set_defaults(func=deadline)

    args = parser.parse_args(argv)
    if not args.api:
        args.api = os.environ.get("GITHUB_API_URL" if args.forge == "github" else "CI_API_V4_URL", "")
        if not args.api and args.forge == "github":
            args.api = "https://api.github.com"
    if not args.api:
        parser.error("--api is required (no $CI_API_V4_URL)")
    if args.command == "deadline":
        if args.forge == "github" and not args.course_repo:
            parser.error("--course-repo is required with --forge github")
        if args.forge == "gitlab" and not args.course_project:
            parser.error("--course-project is required with --forge gitlab")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
