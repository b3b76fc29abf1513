#!/bin/sh
# A Docker engine for `make docker-test`: use the one that answers, else start our own.
#
#   eval "$(docker/engine.sh start)"   # prints DOCKER_HOST=...; starts dockerd when none answers
#   docker/engine.sh stop              # stops the engine this script started (if any)
#
# Our own engine: Debian's docker.io (installed when dockerd is missing and we are root),
# its data under /var/lib/dlgrade-engine-<clone>, its socket and runtime state under
# /run/dlgrade-engine-<clone> (outside the clone: never part of a build context). No bridge and no iptables rules:
# containers here grade with --network none, and images build with --network host.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
# Unix socket paths are limited to 108 bytes: the runtime folder is short and per clone.
tag=$(printf '%s' "$here" | cksum | cut -d' ' -f1)
run_dir=/run/dlgrade-engine-$tag
sock=$run_dir/docker.sock
data_dir=${DLGRADE_ENGINE_DATA:-/var/lib/dlgrade-engine-$tag}

say() { printf 'engine.sh: %s\n' "$*" >&2; }

answers() { docker ${1:+-H "$1"} version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
    if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
        echo "DOCKER_HOST=$DOCKER_HOST; export DOCKER_HOST"; return 0
    fi
    if [ -S "$sock" ] && answers "unix://$sock"; then
        echo "DOCKER_HOST=unix://$sock; export DOCKER_HOST"; return 0
    fi
    if [ -z "${DOCKER_HOST:-}" ] && answers ""; then
        echo "DOCKER_HOST=; unset DOCKER_HOST"; return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            say "no Docker engine answers and dockerd is not installed: install Docker (https://docs.docker.com/engine/install/)"
            return 1
        fi
        say "installing Debian's docker.io (no engine answers)"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get install -y -q docker.io >/dev/null 2>&1 ||
          { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker.io >/dev/null 2>&1; }; } || {
            say "apt-get install docker.io failed"; return 1; }
    fi
    if ! command -v docker >/dev/null 2>&1; then say "no docker client"; return 1; fi
    if [ "$(id -u)" != 0 ]; then say "no engine answers, and starting one needs root"; return 1; fi
    mkdir -p "$data_dir" "$run_dir"
    say "starting dockerd (data in $data_dir, log in $data_dir/dockerd.log)"
    # setsid: the engine outlives this script; `engine.sh stop` ends it by its pid file.
    setsid dockerd --bridge=none --iptables=false --ip-masq=false \
        --data-root "$data_dir/data" --exec-root "$run_dir/exec" \
        --pidfile "$run_dir/dockerd.pid" -H "unix://$sock" \
        >"$data_dir/dockerd.log" 2>&1 </dev/null &
    i=0
    until answers "unix://$sock"; do
        i=$((i + 1))
        if [ $i -gt 60 ]; then
            say "dockerd did not answer within 60 s; the end of its log:"
            tail -n 20 "$data_dir/dockerd.log" >&2
            return 1
        fi
        sleep 1
    done
    echo "DOCKER_HOST=unix://$sock; export DOCKER_HOST"
}

stop() {
    [ -f "$run_dir/dockerd.pid" ] || return 0
    pid=$(cat "$run_dir/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
    rm -f "$run_dir/dockerd.pid"
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    *) say "usage: engine.sh start|stop"; exit 2 ;;
esac
