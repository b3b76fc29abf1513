#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
# /autograder/source holds the zip made by build_zip.py: this script, run_autograder,
# assignment.txt (which assignment this autograder grades), an optional late.toml,
# and dlgrade/ (the engine, hidden suites, released helpers and solutions).
#
# Layout it leaves, as the Docker image does (docker/Dockerfile):
#   /opt/venv                   Python 3.11 and the pinned libraries (world-readable: the learner's process needs them)
#   /autograder/source/dlgrade  the grader, hidden suites and solutions (root, 0700: the learner's uid cannot read it)
set -euo pipefail

SOURCE=${DLGRADE_GRADESCOPE_ROOT:-/autograder}/source
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
# bubblewrap is the stronger sandbox where the container allows user namespaces;
# setpriv (util-linux) runs the learner as a uid of its own where it does not.
apt-get install -y -q --no-install-recommends bubblewrap util-linux ca-certificates
if ! command -v python3.11 >/dev/null 2>&1; then
    apt-get install -y -q --no-install-recommends software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa   # Ubuntu 22.04 ships no final 3.11
    apt-get update -q
fi
apt-get install -y -q --no-install-recommends python3.11 python3.11-venv

# The libraries only: install the pinned project, then remove the project itself, so
# no hidden suite ends up in the world-readable site-packages.
python3.11 -m venv /opt/venv
/opt/venv/bin/pip install -q --upgrade pip
/opt/venv/bin/pip install -q -c "$SOURCE/dlgrade/constraints.txt" "$SOURCE/dlgrade"
/opt/venv/bin/pip uninstall -y -q dlgrade
/opt/venv/bin/python -m compileall -q /opt/venv/lib "$SOURCE/dlgrade/autograder"

chown -R root:root "$SOURCE"
chmod -R go-rwx "$SOURCE"

# Fail the build now, not on the first learner: the solution must get full marks.
PYTHONPATH="$SOURCE/dlgrade" DLGRADE_ROOT="$SOURCE/dlgrade" MPLBACKEND=Agg \
    /opt/venv/bin/python -m autograder.cli validate "$(cat "$SOURCE/assignment.txt")"
