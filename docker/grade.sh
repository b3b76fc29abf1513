#!/bin/sh
# Grade one notebook (or every notebook below a folder) in the dlgrade container, hardened.
#
#   docker/grade.sh NOTEBOOK.ipynb|FOLDER [RESULTS_DIR] [--gpu] [--setpriv] [--min-score X] [--assignment NAME]
#
# Writes RESULTS_DIR (default ./results) results.json, junit.xml and feedback.md
# (below a folder: one sub-folder per notebook, its path without .ipynb). Exit status: that of the grader
# (0 ok, 1 below --min-score, 2 nothing graded, 3 grader error).
# --setpriv: the fallback sandbox, for platforms that refuse a custom seccomp profile.
# Image: $DLGRADE_IMAGE (default dlgrade:cpu, or dlgrade:gpu with --gpu).
set -eu

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)

[ $# -ge 1 ] || usage
source=$1
shift
results=./results
case ${1:-} in ''|--*) ;; *) results=$1; shift ;; esac
gpu=
setpriv=
image=${DLGRADE_IMAGE:-}
args=
while [ $# -gt 0 ]; do
    case $1 in
        --gpu) gpu=1; shift ;;
        --setpriv) setpriv=1; shift ;;
        --min-score|--assignment) [ $# -ge 2 ] || usage; args="$args $1 $2"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "grade.sh: unknown option $1" >&2; usage ;;
    esac
done
if [ -z "$image" ]; then
    if [ -n "$gpu" ]; then image=dlgrade:gpu; else image=dlgrade:cpu; fi
fi

if [ -L "$source" ]; then
    # Docker would mount what it leads to: another learner's notebook, a solution...
    echo "grade.sh: $source is a symbolic link, which is not followed: give the notebook or folder itself" >&2
    exit 2
elif [ -d "$source" ]; then
    mount="$(cd "$source" && pwd):/submission:ro"
elif [ -f "$source" ]; then
    mount="$(cd "$(dirname "$source")" && pwd)/$(basename "$source"):/submission/$(basename "$source"):ro"
else
    echo "grade.sh: no such notebook or folder: $source" >&2
    exit 2
fi
shown_results=$results
mkdir -p "$results"
results=$(cd "$results" && pwd)

# The sandbox: bubblewrap under the grader's unprivileged uid (the seccomp profile allows its
# user namespaces, systempaths=unconfined lets it mount a /proc), or the setpriv fallback.
if [ -n "$setpriv" ]; then
    set -- -e DLGRADE_SANDBOX=setpriv --cap-add KILL
else
    set -- --security-opt "seccomp=$here/seccomp-bwrap.json" --security-opt systempaths=unconfined
fi

# The hardened run line (docker/README.md explains each flag).
# shellcheck disable=SC2086  # $args holds option/value pairs without spaces inside them
exec docker run --rm \
    --network none \
    --read-only --tmpfs /tmp:rw,noexec,nosuid,nodev,size=1g \
    --memory 4g --memory-swap 4g --pids-limit 256 --cpus 2 \
    --cap-drop ALL --cap-add SETUID --cap-add SETGID \
    --security-opt no-new-privileges \
    "$@" \
    --user 0:0 \
    ${gpu:+--gpus all} \
    -e DLGRADE_SHOWN_RESULTS="$shown_results" -e DLGRADE_SHOWN_SUBMISSIONS="$source" \
    -v "$mount" \
    -v "$results:/results" \
    "$image" grade $args
