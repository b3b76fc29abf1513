#!/bin/sh
# dlgrade container entrypoint.
#
#   (no arguments) | grade [--min-score X] [--assignment NAME]
#       grade every notebook under $DLGRADE_SUBMISSION_DIR (default /submission; a folder of
#       notebooks or nbgrader's <learner>/<assignment>/<name>.ipynb) into $DLGRADE_RESULTS_DIR
#       (default /results): results.json, junit.xml and feedback.md for a single notebook at the
#       top of /submission, <relative path without .ipynb>/... otherwise (several, or nbgrader's layout). Exit 0 when every notebook reached the
#       minimum score, 1 when one did not, 2 when there was nothing to grade, 3 on a grader error.
#   batch [dlgrade batch options]
#       dlgrade batch $DLGRADE_SUBMISSION_DIR, state and reports in $DLGRADE_STATE_DIR
#       (default /state, a volume: resumable), then a copy of the reports, gradebook.csv and
#       plots in $DLGRADE_RESULTS_DIR.
#   selfcheck
#       only the isolation checks below.
#   anything else: run as a dlgrade command (dlgrade validate, dlgrade --help, ...), as the grader.
#
# Who runs what (docker/README.md has the run lines and the reasons):
#   this script     uid 0 holding only CAP_SETUID and CAP_SETGID (--user 0:0 --cap-drop ALL
#                   --cap-add SETUID --cap-add SETGID); it never runs Python itself.
#   the grader      sandbox "bwrap" (the default): uid $GRADER_UID (dlgrade) with no capability
#                   at all; it reads /opt/dlgrade (root:dlgrade 0750) as its group and starts each
#                   learner process in bubblewrap (an unprivileged user namespace: needs the
#                   seccomp profile docker/seccomp-bwrap.json and --security-opt systempaths=unconfined).
#                   sandbox "setpriv" (the fallback, DLGRADE_SANDBOX=setpriv): uid 0 with
#                   SETUID/SETGID (+KILL), starting each learner process as a uid of its own.
#   the reports     copied out as the owner of the results folder, so they are yours on the host.
set -eu

# Resolved: in the image these are links into /mnt/dlgrade (0750), where Docker mounts them.
SUBMISSIONS=$(readlink -f "${DLGRADE_SUBMISSION_DIR:-/submission}")
RESULTS=$(readlink -f "${DLGRADE_RESULTS_DIR:-/results}")
STATE=$(readlink -f "${DLGRADE_STATE_DIR:-/state}")
PYTHON=${DLGRADE_PYTHON:-python}
ROOT=${DLGRADE_ROOT:-/opt/dlgrade}
GRADER_UID=${DLGRADE_GRADER_UID:-10001}
LEARNER_UID=65534
# How the user sees our folders (docker/grade.sh and batch.sh pass the host paths).
SHOWN_RESULTS=${DLGRADE_SHOWN_RESULTS:-results}
SHOWN_SUBMISSIONS=${DLGRADE_SHOWN_SUBMISSIONS:-$SUBMISSIONS}

say() { printf 'dlgrade-entrypoint: %s\n' "$*" >&2; }

# Run "$@" as uid $1 with no capability left (no_new_privs: nothing can give one back).
as_uid() {
    uid=$1
    gid=$2
    shift 2
    if [ "$(id -u)" = 0 ] && [ "$uid" != 0 ]; then
        setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --no-new-privs -- "$@"
    else
        "$@"
    fi
}

# Run "$@" as the owner of folder $1 (shifted); files it writes belong to that owner. With the
# grader's group as well, to pass through /mnt/dlgrade (0750) where the folders are mounted.
as_owner_of() {
    folder=$1
    shift
    uid=$(stat -c %u "$folder")
    if [ "$(id -u)" = 0 ] && [ "$uid" != 0 ]; then
        setpriv --reuid="$uid" --regid="$(stat -c %g "$folder")" --groups="$GRADER_UID" --inh-caps=-all \
            --no-new-privs -- "$@"
    else
        "$@"
    fi
}

# The grader: uid $GRADER_UID in the bwrap mode, this uid (0, with SETUID/SETGID) under setpriv.
as_grader() {
    if [ "$MODE" = bwrap ]; then as_uid "$GRADER_UID" "$GRADER_UID" "$@"; else "$@"; fi
}

# Replace this script by "$@" run as the grader: it becomes the container's process 1, so `docker stop`'s
# SIGTERM reaches it (this uid 0 has no CAP_KILL: it could not forward a signal to uid $GRADER_UID).
exec_as_grader() {
    if [ "$MODE" = bwrap ] && [ "$(id -u)" = 0 ] && [ "$GRADER_UID" != 0 ]; then
        exec setpriv --reuid="$GRADER_UID" --regid="$GRADER_UID" --clear-groups --inh-caps=-all --no-new-privs -- "$@"
    fi
    exec "$@"
}

bwrap_works() {
    # Exactly what the engine asks of bubblewrap, as the grader's uid: a user, pid and network
    # namespace and a fresh /proc.
    as_uid "$GRADER_UID" "$GRADER_UID" bwrap --unshare-all --die-with-parent --ro-bind / / \
        --proc /proc --dev /dev --tmpfs /tmp -- /bin/true 2>/dev/null
}

choose_mode() {
    case ${DLGRADE_SANDBOX:-bwrap} in
        bwrap)
            if bwrap_works; then MODE=bwrap; return 0; fi
            say "bubblewrap cannot create its sandbox in this container, so learner code cannot be isolated."
            say "Run with the seccomp profile that allows it (docker/README.md, \"Run line\"):"
            say "  --security-opt seccomp=docker/seccomp-bwrap.json --security-opt systempaths=unconfined"
            say "or, where custom profiles are refused, with the weaker setpriv sandbox:"
            say "  -e DLGRADE_SANDBOX=setpriv --cap-add KILL"
            return 1 ;;
        setpriv) MODE=setpriv ;;
        *) say "DLGRADE_SANDBOX must be bwrap or setpriv, not ${DLGRADE_SANDBOX}"; return 1 ;;
    esac
}

selfcheck() {
    # The learner must not read what the grader reads. Checked as the learner's uid itself.
    if [ "$(id -u)" != 0 ]; then
        say "running as uid $(id -u), not 0: run with --user 0:0 --cap-drop ALL --cap-add SETUID --cap-add SETGID"
        say "(this script only switches uids; the grader itself runs with no capability)"
        return 1
    fi
    if ! setpriv --reuid=$LEARNER_UID --regid=$LEARNER_UID --clear-groups --inh-caps=-all --no-new-privs \
            -- /bin/true 2>/dev/null; then
        say "cannot switch uids: add --cap-add SETUID --cap-add SETGID"
        return 1
    fi
    choose_mode || return 1
    suite="$ROOT/autograder/suites/pytest.ini"
    if ! as_grader test -r "$suite"; then
        say "the grader cannot read the hidden suites at $suite (DLGRADE_ROOT=$ROOT)"
        return 1
    fi
    for secret in "$suite" "$ROOT/solutions" "$ROOT/autograder/suites"; do
        if setpriv --reuid=$LEARNER_UID --regid=$LEARNER_UID --clear-groups --inh-caps=-all --no-new-privs \
                -- test -r "$secret" 2>/dev/null; then
            if [ "${DLGRADE_ALLOW_READABLE_SUITES:-0}" = 1 ]; then
                say "WARNING: uid $LEARNER_UID can read $secret (allowed by DLGRADE_ALLOW_READABLE_SUITES=1)"
            else
                say "uid $LEARNER_UID (the learner) can read $secret: refusing to grade. chmod -R o= $ROOT"
                return 1
            fi
        fi
    done
    return 0
}

# A private folder of the grader: HOME, Matplotlib's cache and the reports being written
# (0700, made by the grader: no learner uid can read or plant anything there).
grader_home() {
    PRIVATE=$(as_grader mktemp -d "${TMPDIR:-/tmp}/dlgrade-grader.XXXXXX")
    as_grader mkdir "$PRIVATE/home" "$PRIVATE/matplotlib" "$PRIVATE/work"
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dlgrade-entrypoint.XXXXXX")   # this script's own files
    export HOME="$PRIVATE/home" MPLCONFIGDIR="$PRIVATE/matplotlib" DLGRADE_SANDBOX="$MODE"
}

# The grader grades a private copy of the submissions, read as their owner: a notebook need not
# be readable by anyone else on the host, and no learner uid can reach the copy. tar keeps a
# symbolic link as a link, which could lead to the solutions at their fixed path in this image or to
# another learner's files: in the copy, each link is made to lead nowhere (and said), so that it
# keeps its name and the grader, which follows no link, refuses it with a zero and the reason.
copy_submissions() {
    # The copy keeps the name "submitted" when the staff gave nbgrader's submitted/ folder (batch.sh passes
    # the path they typed): the late policy trusts nbgrader's timestamp.txt only in a tree of that name.
    case $(basename "$SHOWN_SUBMISSIONS") in submitted) copy=$PRIVATE/submitted ;; *) copy=$PRIVATE/submission ;; esac
    as_grader mkdir "$copy"
    owner=$SUBMISSIONS
    if [ "$(stat -c %u "$owner")" = 0 ]; then   # one file mounted into the image's /submission
        first=$(find "$SUBMISSIONS" -maxdepth 1 -name '*.ipynb' | head -n 1)
        [ -z "$first" ] || owner=$first
    fi
    if ! as_owner_of "$owner" tar -C "$SUBMISSIONS" --exclude=.ipynb_checkpoints -cf - . \
            | as_grader tar -C "$copy" -xf - --no-same-owner; then
        say "cannot read the submissions in $SHOWN_SUBMISSIONS"
        return 2
    fi
    as_grader find "$copy" -type l -printf '%P\n' > "$SCRATCH/links"
    while IFS= read -r link; do
        say "$link is a symbolic link: not followed (the grader refuses it and says why)"
    done < "$SCRATCH/links"
    as_grader find "$copy" -type l -exec sh -c \
        'for link; do rm -f "$link" && ln -s /nonexistent/dlgrade-refused-symbolic-link "$link"; done' sh {} +
    SUBMISSIONS=$copy
}

# Run the grader with its stdout's private paths replaced by what the user knows. Status in $CODE.
grader() {
    CODE=0
    as_grader "$PYTHON" -m autograder.cli "$@" > "$SCRATCH/stdout" || CODE=$?
    sed -e "s|$PRIVATE/work|$SHOWN_RESULTS|g" -e "s|$STATE|$SHOWN_RESULTS|g" \
        -e "s|$PRIVATE/submission|$SHOWN_SUBMISSIONS|g" -e "s|$PRIVATE/submitted|$SHOWN_SUBMISSIONS|g" "$SCRATCH/stdout"
}

publish() {
    # Copy the finished reports from the private work folder to the results folder, as its owner.
    from=$1
    if [ ! -d "$RESULTS" ]; then
        say "no results folder $RESULTS: mount one with -v \"\$PWD/results:$RESULTS\""
        return 2
    fi
    # Readable by the results folder's owner for the copy (every learner process is gone by now).
    as_grader chmod 0711 "$PRIVATE"
    as_grader chmod -R a+rX "$from"
    if ! as_owner_of "$RESULTS" cp -R "$from/." "$RESULTS/"; then
        say "cannot write to $SHOWN_RESULTS (owner uid $(stat -c %u "$RESULTS")); make it writable by its owner"
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
    # Every notebook below the folder (a folder of notebooks, or nbgrader's layout), sorted.
    list=$SCRATCH/notebooks
    as_grader find "$SUBMISSIONS" -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -not -name '.*' 2>/dev/null \
        | LC_ALL=C sort > "$list"
    count=$(wc -l < "$list")
    if [ "$count" = 0 ]; then
        say "no notebook (*.ipynb) in $SHOWN_SUBMISSIONS: mount a notebook or a folder of them on /submission"
        return 2
    fi
    work=$PRIVATE/work
    status=0
    while IFS= read -r notebook; do
        relative=${notebook#"$SUBMISSIONS"/}
        # One notebook at the top of the mount (a file, or a folder holding just it): the reports
        # sit in the results folder itself. Otherwise they mirror the submission's layout, so a
        # folder in nbgrader's layout gives <learner>/<assignment>/ whatever the count.
        if [ "$count" = 1 ] && [ "$relative" = "${relative##*/}" ]; then out=$work; else out=$work/${relative%.ipynb}; fi
        set --
        [ -n "$min_score" ] && set -- "$@" --min-score "$min_score"
        [ -n "$assignment" ] && set -- "$@" --assignment "$assignment"
        [ "$count" = 1 ] || printf '== %s\n' "$relative"
        grader grade "$notebook" --out "$out" "$@" < /dev/null
        # Worst outcome wins: 3 (grader error) > 2 (unusable) > 1 (below the minimum).
        if [ "$CODE" -gt "$status" ]; then status=$CODE; fi
    done < "$list"
    publish "$work" || status=2
    return "$status"
}

batch() {
    if ! as_grader test -w "$STATE"; then
        say "the batch state folder $STATE is missing or not writable: mount a volume there (-v dlgrade-state:$STATE)"
        return 2
    fi
    grader batch "$SUBMISSIONS" --out "$STATE" "$@"
    code=$CODE
    # The state stays in the volume (a killed batch resumes from it); the reports go out.
    work=$PRIVATE/work
    # (tar -C as the grader: this uid 0 has no CAP_DAC_OVERRIDE, so it cannot enter the grader's 0700 folders)
    as_grader tar -C "$STATE" --exclude=batch-state.sqlite\* --exclude=.batch.lock -cf - . \
        | as_grader tar -C "$work" -xf - --no-same-owner
    publish "$work" || code=2
    return "$code"
}

command=${1:-grade}
[ $# -gt 0 ] && shift
case $command in
    grade) selfcheck || exit 2; grader_home; copy_submissions || exit 2; grade "$@" ;;
    batch) selfcheck || exit 2; grader_home; copy_submissions || exit 2; batch "$@" ;;
    selfcheck) selfcheck && say "ok: sandbox $MODE; uid $LEARNER_UID cannot read the hidden suites or solutions in $ROOT" ;;
    *) choose_mode || exit 2; grader_home; exec_as_grader "$PYTHON" -m autograder.cli "$command" "$@" ;;
esac
