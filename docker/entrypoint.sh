#!/bin/sh
# dlgrade container entrypoint.
#
#   (no arguments) | grade [--min-score X] [--assignment NAME]
#       grade every $DLGRADE_SUBMISSION_DIR/*.ipynb (default /submission) into
#       $DLGRADE_RESULTS_DIR (default /results): results.json, junit.xml and
#       feedback.md for a single notebook, <notebook stem>/... for several.
#       Exit 0 when every notebook reached the minimum score, 1 when one did not,
#       2 when there was nothing to grade, 3 on a grader error.
#   batch [dlgrade batch options]
#       dlgrade batch $DLGRADE_SUBMISSION_DIR, state and reports in
#       $DLGRADE_STATE_DIR (default /state, a volume: resumable), then a copy of
#       the reports, gradebook.csv and plots in $DLGRADE_RESULTS_DIR.
#   selfcheck
#       only the isolation checks below.
#   anything else: run as a dlgrade command (dlgrade validate, dlgrade --help, ...).
#
# Isolation inside Docker (bubblewrap cannot run under Docker's seccomp profile):
# this script runs as uid 0 holding only CAP_SETUID and CAP_SETGID
# (--user 0:0 --cap-drop ALL --cap-add SETUID --cap-add SETGID); without
# CAP_DAC_OVERRIDE that uid 0 is bound by file permissions like anyone else.
# The grader reads the hidden suites and solutions in $DLGRADE_ROOT (root, 0700);
# the engine starts each learner process with `setpriv` as a uid of its own
# (or 65534), which cannot even list $DLGRADE_ROOT. The results are written by the owner of
# the results folder (setpriv again), so files on the host belong to the user
# who ran the container, and the learner (nobody) cannot write there.
set -eu

SUBMISSIONS=${DLGRADE_SUBMISSION_DIR:-/submission}
RESULTS=${DLGRADE_RESULTS_DIR:-/results}
STATE=${DLGRADE_STATE_DIR:-/state}
PYTHON=${DLGRADE_PYTHON:-python}
ROOT=${DLGRADE_ROOT:-/opt/dlgrade}
LEARNER_UID=65534

say() { printf 'dlgrade-entrypoint: %s\n' "$*" >&2; }
dlgrade() { "$PYTHON" -m autograder.cli "$@"; }

# Run "$@" as the owner of folder $1 (shifted) when we are root; files it writes belong to that owner.
as_owner_of() {
    folder=$1
    shift
    if [ "$(id -u)" = 0 ] && [ "$(stat -c %u "$folder")" != 0 ]; then
        setpriv --reuid="$(stat -c %u "$folder")" --regid="$(stat -c %g "$folder")" --clear-groups \
            --inh-caps=-all --no-new-privs -- "$@"
    else
        "$@"
    fi
}

selfcheck() {
    # The learner must not read what the grader reads. Checked as the learner's uid itself.
    if [ "$(id -u)" != 0 ]; then
        say "running as uid $(id -u), not 0: the learner's code cannot be run under another uid"
        say "and could read the hidden tests. Run with --user 0:0 --cap-drop ALL --cap-add SETUID --cap-add SETGID."
        return 1
    fi
    suite="$ROOT/autograder/suites/pytest.ini"
    if [ ! -r "$suite" ]; then
        say "the hidden suites are not at $suite (DLGRADE_ROOT=$ROOT)"
        return 1
    fi
    if ! setpriv --reuid=$LEARNER_UID --regid=$LEARNER_UID --clear-groups --inh-caps=-all --no-new-privs \
            -- /bin/true 2>/dev/null; then
        say "cannot switch to uid $LEARNER_UID: add --cap-add SETUID --cap-add SETGID"
        return 1
    fi
    for secret in "$suite" "$ROOT/solutions" "$ROOT/autograder/suites"; do
        if setpriv --reuid=$LEARNER_UID --regid=$LEARNER_UID --clear-groups --inh-caps=-all --no-new-privs \
                -- test -r "$secret" 2>/dev/null; then
            if [ "${DLGRADE_ALLOW_READABLE_SUITES:-0}" = 1 ]; then
                say "WARNING: uid $LEARNER_UID can read $secret (allowed by DLGRADE_ALLOW_READABLE_SUITES=1)"
            else
                say "uid $LEARNER_UID (the learner) can read $secret: refusing to grade. chmod 0700 $ROOT"
                return 1
            fi
        fi
    done
    return 0
}

publish() {
    # Copy the finished reports from the private work folder to the results folder, as its owner.
    from=$1
    mkdir -p "$RESULTS" 2>/dev/null || true
    if [ ! -d "$RESULTS" ]; then
        say "no results folder $RESULTS: mount one with -v \"\$PWD/results:$RESULTS\""
        return 2
    fi
    chmod -R a+rX "$from"  # readable by the results folder's owner (work files are ours, 0700)
    if ! as_owner_of "$RESULTS" cp -R "$from/." "$RESULTS/"; then
        say "cannot write to $RESULTS (owner uid $(stat -c %u "$RESULTS")); make it writable by its owner"
        return 2
    fi
}

grade() {
    min_score=${DLGRADE_MIN_SCORE:-}
    assignment=${DLGRADE_ASSIGNMENT:-}
    while [ $# -gt 0 ]; do
        case $1 in
            --min-score) min_score=$2; shift 2 ;;
            --assignment) assignment=$2; shift 2 ;;
            *) say "unknown option $1"; return 2 ;;
        esac
    done
    set -- "$SUBMISSIONS"/*.ipynb
    if [ ! -e "$1" ]; then
        say "no notebook in $SUBMISSIONS: mount the learner's notebook with -v \"\$PWD/nb.ipynb:$SUBMISSIONS/nb.ipynb:ro\""
        return 2
    fi
    count=$#
    work=$(mktemp -d "${TMPDIR:-/tmp}/dlgrade-results.XXXXXX")  # 0700: the learner cannot touch it
    status=0
    for notebook in "$@"; do
        name=$(basename "$notebook" .ipynb)
        if [ "$count" = 1 ]; then out=$work; else out=$work/$name; fi
        set --
        [ -n "$min_score" ] && set -- "$@" --min-score "$min_score"
        [ -n "$assignment" ] && set -- "$@" --assignment "$assignment"
        code=0
        dlgrade grade "$notebook" --out "$out" "$@" || code=$?
        # Worst outcome wins: 3 (grader error) > 2 (unusable) > 1 (below the minimum).
        if [ "$code" -gt "$status" ]; then status=$code; fi
    done
    publish "$work" || status=2
    rm -rf "$work"
    return "$status"
}

batch() {
    mkdir -p "$STATE" 2>/dev/null || true
    if [ ! -d "$STATE" ] || [ ! -w "$STATE" ]; then
        say "the batch state folder $STATE is missing or not writable: mount a volume there (-v dlgrade-state:$STATE)"
        return 2
    fi
    code=0
    dlgrade batch "$SUBMISSIONS" --out "$STATE" "$@" || code=$?
    # The state stays in the volume (a killed batch resumes from it); the reports go out.
    work=$(mktemp -d "${TMPDIR:-/tmp}/dlgrade-results.XXXXXX")
    (cd "$STATE" && tar --exclude=batch-state.sqlite\* --exclude=.batch.lock -cf - .) | (cd "$work" && tar -xf -)
    publish "$work" || code=2
    rm -rf "$work"
    return "$code"
}

command=${1:-grade}
[ $# -gt 0 ] && shift
case $command in
    grade) selfcheck || exit 2; grade "$@" ;;
    batch) selfcheck || exit 2; batch "$@" ;;
    selfcheck) selfcheck && say "ok: uid $LEARNER_UID cannot read the hidden suites or solutions in $ROOT" ;;
    *) exec "$PYTHON" -m autograder.cli "$command" "$@" ;;
esac
