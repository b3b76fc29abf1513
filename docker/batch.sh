#!/bin/sh
# Grade a whole folder of submissions (dlgrade batch) in the dlgrade container, hardened.
#
#   docker/batch.sh SUBMISSIONS [RESULTS_DIR] [--state VOLUME] [--setpriv] [dlgrade batch options]
#
# SUBMISSIONS: <learner>.ipynb files, or nbgrader's <learner>/<assignment>/<name>.ipynb.
# RESULTS_DIR (default ./results) receives learners/<learner>/<assignment>/ reports, gradebook.csv and plots/.
# The batch state lives in the Docker volume VOLUME (default dlgrade-state): run the same
# command again after a crash, a `docker kill` or with new submissions and only new or
# changed notebooks are graded. `docker volume rm dlgrade-state` forgets it.
# --roster, --late-policy and --times files are mounted read-only into the container, each alone.
# Image: $DLGRADE_IMAGE (default dlgrade:cpu). Exit status: that of dlgrade batch.
set -eu

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)

[ $# -ge 1 ] || usage
source=$1
shift
results=./results
case ${1:-} in ''|-*) ;; *) results=$1; shift ;; esac
state=dlgrade-state
setpriv=
image=${DLGRADE_IMAGE:-dlgrade:cpu}
args=
mounts=
# The course's own files (--roster, --late-policy, --times) are mounted read-only, one by one, at
# /course/<option>.<ext> inside: the container sees those files and nothing else of their folder.
staff_file() { # OPTION FILE
    [ -f "$2" ] || { echo "batch.sh: $1 $2: no such file" >&2; exit 2; }
    inside=/course/${1#--}.${2##*.}
    mounts="$mounts -v $(cd "$(dirname "$2")" && pwd)/$(basename "$2"):$inside:ro"
    args="$args $1 $inside"
}
while [ $# -gt 0 ]; do
    case $1 in
        --state) [ $# -ge 2 ] || usage; state=$2; shift 2 ;;
        --setpriv) setpriv=1; shift ;;
        --roster|--late-policy|--times|--submission-times) [ $# -ge 2 ] || usage; staff_file "$1" "$2"; shift 2 ;;
        -h|--help) usage ;;
        *) args="$args $1"; shift ;;
    esac
done
[ -d "$source" ] || { echo "batch.sh: no such folder: $source" >&2; exit 2; }
shown_results=$results
mkdir -p "$results"
results=$(cd "$results" && pwd)
submissions=$(cd "$source" && pwd)

if [ -n "$setpriv" ]; then
    set -- -e DLGRADE_SANDBOX=setpriv --cap-add KILL
else
    set -- --security-opt "seccomp=$here/seccomp-bwrap.json" --security-opt systempaths=unconfined
fi

# The same hardening as docker/grade.sh, with room for a batch (docker/README.md).
# shellcheck disable=SC2086  # $args, $mounts: options and staff file paths without spaces inside them
exec docker run --rm \
    --network none \
    --read-only --tmpfs /tmp:rw,noexec,nosuid,nodev,size=2g \
    --memory 8g --memory-swap 8g --pids-limit 512 --cpus 2 \
    --cap-drop ALL --cap-add SETUID --cap-add SETGID \
    --security-opt no-new-privileges \
    "$@" \
    --user 0:0 \
    -e DLGRADE_SHOWN_RESULTS="$shown_results" -e DLGRADE_SHOWN_SUBMISSIONS="$source" \
    -v "$submissions:/submission:ro" \
    -v "$results:/results" \
    -v "$state:/state" \
    $mounts \
    "$image" batch $args
