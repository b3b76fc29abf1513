#!/bin/sh
# `make docker-test`: build the images on this machine from nothing and test them in real containers.
#
# Starts an engine when none answers (docker/engine.sh), makes a local base image when no
# registry answers, fills the wheelhouse, builds dlgrade:cpu and dlgrade:learner
# (docker/build.sh, inside the first test), then runs the `docker`-marked pytest tests under
# tests/docker/. Extra arguments go to pytest (e.g. -k batch). DLGRADE_DOCKER_MARKER=docker_gpu (make
# docker-test-gpu) selects the GPU image's tests instead, in the files given. Build and grading times are
# appended to .cache/docker/build-times.txt. Stops the engine it started, unless KEEP_ENGINE=1.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
python=${PYTHON:-.venv/bin/python}
started_engine=
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then started_engine=1; fi
eval "$(docker/engine.sh start)"
status=0
# DLGRADE_DOCKER_MARKER=docker_gpu: the GPU image's tests (make docker-test-gpu), given as arguments.
marker=${DLGRADE_DOCKER_MARKER:-docker}
if [ "$marker" = docker ]; then set -- tests/docker "$@"; fi
DLGRADE_DOCKER_TESTS=1 "$python" -m pytest -q -m "$marker" -p no:cacheprovider "$@" || status=$?
if [ -n "$started_engine" ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then docker/engine.sh stop; fi
exit "$status"
