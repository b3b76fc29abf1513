#!/bin/sh
# Build the dlgrade images on this machine, from nothing: engine, base image, wheelhouse, image.
#
#   docker/build.sh [cpu] [learner] [gpu]     # default: cpu learner
#
# 1. a Docker engine: the one that answers, else our own (docker/engine.sh);
# 2. the base image: the Dockerfiles' default (python:3.11.7-slim-bookworm) when a registry
#    answers; else a local Debian bookworm with python3, venv and bubblewrap, made with
#    debootstrap and `docker import` (cached as .cache/docker/base-bookworm.tar), passed as
#    --build-arg BASE=dlgrade-base:bookworm. $DLGRADE_BASE forces a base image.
# 3. the wheelhouse docker/wheels/ (docker/wheelhouse.sh; pip inside a build may not reach PyPI);
# 4. docker build, timed. Prints DOCKER_HOST=... for the caller to eval.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cache=$here/.cache/docker
# A fresh clone has no .cache/; the build logs go here even when the base image is already loaded.
mkdir -p "$cache"
say() { printf 'build.sh: %s\n' "$*" >&2; }
now() { date +%s; }

eval "$(docker/engine.sh start)"

base_image() {
    if [ -n "${DLGRADE_BASE:-}" ]; then echo "$DLGRADE_BASE"; return 0; fi
    upstream=$(sed -n 's/^ARG BASE=//p' docker/Dockerfile)
    if docker image inspect "$upstream" >/dev/null 2>&1 || timeout 60 docker pull -q "$upstream" >/dev/null 2>&1; then
        echo "$upstream"; return 0
    fi
    local_base=dlgrade-base:bookworm
    if docker image inspect "$local_base" >/dev/null 2>&1; then echo "$local_base"; return 0; fi
    if [ -f "$cache/base-bookworm.tar" ]; then
        say "no registry answers: loading the local base image from $cache/base-bookworm.tar"
        docker load -q -i "$cache/base-bookworm.tar" >&2
        echo "$local_base"; return 0
    fi
    say "no registry answers ($upstream): making a local base image with debootstrap (about 2 minutes)"
    if ! command -v debootstrap >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1; } ||
            { say "cannot install debootstrap; pass a base image with DLGRADE_BASE=..."; return 1; }
    fi
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    if ! debootstrap --variant=minbase --include=python3,python3-venv,bubblewrap bookworm "$rootfs" \
            "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$cache/debootstrap.log" 2>&1; then
        say "debootstrap failed; the end of $cache/debootstrap.log:"; tail -n 15 "$cache/debootstrap.log" >&2
        rm -rf "$rootfs"; return 1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$local_base" >/dev/null
    rm -rf "$rootfs"
    docker save -o "$cache/base-bookworm.tar" "$local_base"
    echo "$local_base"
}

# BuildKit (cached, and it reads <Dockerfile>.dockerignore) when the client has it: buildx, or
# the built-in BuildKit of a Docker 20.10 client; else the classic builder (it reads /.dockerignore).
build="docker build"
if docker buildx version >/dev/null 2>&1; then
    build="docker buildx build --load"
else
    for client in docker /usr/bin/docker; do
        version=$("$client" version --format '{{.Client.Version}}' 2>/dev/null || true)
        case $version in 18.09*|19.*|20.*|21.*|22.*) build="env DOCKER_BUILDKIT=1 $client build"; break ;; esac
    done
fi

base=$(base_image)
say "base image: $base"
targets=${*:-cpu learner}
case " $targets " in *" gpu "*) docker/wheelhouse.sh gpu ;; *) docker/wheelhouse.sh ;; esac

for target in $targets; do
    case $target in
        cpu) file=docker/Dockerfile; tag=dlgrade:cpu ;;
        gpu) file=docker/Dockerfile.gpu; tag=dlgrade:gpu ;;
        learner) file=docker/Dockerfile.learner; tag=dlgrade:learner ;;
        *) say "unknown image $target (cpu, learner, gpu)"; exit 2 ;;
    esac
    start=$(now)
    say "building $tag from $file"
    if ! $build -q --network host -f "$file" --build-arg "BASE=$base" -t "$tag" . > "$cache/build-$target.log" 2>&1; then
        say "docker build of $tag failed; the end of $cache/build-$target.log:"
        tail -n 25 "$cache/build-$target.log" >&2
        exit 1
    fi
    size=$(docker image inspect -f '{{.Size}}' "$tag")
    say "built $tag in $(( $(now) - start )) s, $(( size / 1000000 )) MB"
done
echo "DOCKER_HOST=${DOCKER_HOST:-}; export DOCKER_HOST"
