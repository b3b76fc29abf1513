#!/bin/sh
# Fill docker/wheels/ with every wheel the image needs, for an offline `docker build`.
#
#   docker/wheelhouse.sh          # CPU image: the project's pinned dependencies
#   docker/wheelhouse.sh gpu      # also docker/wheels-gpu/: tensorflow[and-cuda] and NVIDIA's CUDA wheels
#
# Run it where pip reaches PyPI, with a Python of the image's minor version (3.11, x86_64):
# $PYTHON (default .venv/bin/python, else python3). Skips the download when the wheelhouse was
# made from the same constraints.txt (a stamp file records its checksum).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
python=${PYTHON:-}
[ -n "$python" ] || { [ -x .venv/bin/python ] && python=.venv/bin/python || python=python3; }
say() { printf 'wheelhouse.sh: %s\n' "$*" >&2; }

fill() {
    folder=$1
    shift
    stamp=$folder/.constraints.sha256
    want=$( { sha256sum constraints.txt pyproject.toml; echo "$*"; } | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "$folder is up to date ($(find "$folder" -name '*.whl' | wc -l) wheels)"
        return 0
    fi
    mkdir -p "$folder"
    say "downloading wheels into $folder"
    # --only-binary: the image builds from wheels, with no compiler and no network.
    "$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
        -d "$folder" -c constraints.txt "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    if ! find "$folder" -name '*.whl' | grep -q .; then say "no wheel was downloaded"; return 1; fi
    echo "$want" > "$stamp"
    say "$folder: $(find "$folder" -name '*.whl' | wc -l) wheels, $(du -sh "$folder" | cut -f1)"
}

# The project's dependencies (pip download cannot take "." with --platform: read them from pyproject).
deps=$("$python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))' \
       | grep -v "platform_machine != 'x86_64'" | sed "s/;.*//")
# shellcheck disable=SC2086  # one requirement per word
fill docker/wheels $deps setuptools wheel
case ${1:-cpu} in
    gpu)
        tf=$(sed -n 's/^tensorflow_cpu==//p' constraints.txt)
        fill docker/wheels-gpu "tensorflow[and-cuda]==$tf" ;;
esac
