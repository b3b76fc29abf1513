#!/bin/sh
# On a GPU host, one command: does a sandboxed learner's TensorFlow training step run on the GPU,
# and how long does the assignment's model take on CPU and on GPU?
#
#   bench/gpu_check.sh [--host] [--epochs N] [--cpu-only] [--out DIR]
#
# In the GPU image (default; docker/build.sh gpu builds it when missing; the host needs the NVIDIA
# Container Toolkit for `docker run --gpus all`), or with --host on this machine with the project's
# .venv (which then needs tensorflow[and-cuda], not tensorflow-cpu). Two steps, both sandboxed as
# when grading:
#   1. grade examples/submissions/alice/tensorflow_intro (docker/grade.sh --gpu, or dlgrade grade with
#      DLGRADE_CHILD_CUDA_VISIBLE_DEVICES=0): the report's isolation.accelerator must say GPU:n;
#   2. bench/gpu_check.py: TensorFlow's logical devices and one training step's placement recorded
#      inside the sandbox, and the model's time with the GPU off and on (figures in DIR/gpu_check.json).
# Exit status: 0 both show the GPU; 1 one does not; 2 cannot run (no engine, no image, no toolkit);
# 4 no GPU on this host (no /dev/nvidia[0-9]* node): nothing is measured. --cpu-only: run both steps
# without a GPU anyway (what can be checked on a machine without one), exit status 4.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf 'gpu_check.sh: %s\n' "$*" >&2; }
host=
cpu_only=
epochs=60
out=$here/bench/out/gpu_check
while [ $# -gt 0 ]; do
    case $1 in
        --host) host=1; shift ;;
        --cpu-only) cpu_only=1; shift ;;
        --epochs) epochs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- is there a GPU at all?
gpu=
if ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
    gpu=1
    if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L >&2 || say "nvidia-smi failed (going on)"; fi
fi
if [ -z "$gpu" ]; then
    say "NO GPU on this host: no /dev/nvidia[0-9]* device node$(command -v nvidia-smi >/dev/null 2>&1 || echo ', no nvidia-smi')."
    if [ -z "$cpu_only" ]; then
        say "nothing measured (exit 4). Run this on a machine with an NVIDIA GPU and its driver (and, for the image, the NVIDIA Container Toolkit)."
        exit 4
    fi
    say "--cpu-only: running both steps without a GPU (what this machine can check)"
fi
mkdir -p "$out"
notebook=examples/submissions/alice/tensorflow_intro/tensorflow_intro.ipynb
status=0

# ---------------------------------------------------------------- 1. a grade: which device did TF use?
if [ -n "$host" ]; then
    grade() { DLGRADE_CHILD_CUDA_VISIBLE_DEVICES=${gpu:+0} .venv/bin/dlgrade grade "$notebook" --out "$out/grade"; }
    check() { .venv/bin/python bench/gpu_check.py --epochs "$epochs" --json "$out/gpu_check.json" ${cpu_only:+--cpu-only}; }
else
    eval "$(docker/engine.sh start)"
    if ! docker image inspect dlgrade:gpu >/dev/null 2>&1; then
        say "building dlgrade:gpu (docker/build.sh gpu)"
        docker/build.sh gpu >/dev/null || { say "the GPU image could not be built"; exit 2; }
    fi
    gpus=${gpu:+--gpus all}
    # shellcheck disable=SC2086  # $gpus is one flag and its value, or nothing
    if [ -n "$gpu" ] && ! docker run --rm --network none $gpus --entrypoint /bin/true dlgrade:gpu 2>"$out/toolkit.err"; then
        say "docker run --gpus all failed (is the NVIDIA Container Toolkit installed?):"; cat "$out/toolkit.err" >&2
        exit 2
    fi
    # The grade: docker/grade.sh's hardened run line, --gpu adds --gpus all (without a GPU: the image, no flag).
    grade() {
        if [ -n "$gpu" ]; then docker/grade.sh "$notebook" "$out/grade" --gpu
        else DLGRADE_IMAGE=dlgrade:gpu docker/grade.sh "$notebook" "$out/grade"; fi
    }
    # gpu_check.py as the grader (uid 10001, no capability), bubblewrap with the shipped seccomp profile.
    check() {
        # shellcheck disable=SC2086  # $gpus is one flag and its value, or nothing
        docker run --rm --network none --read-only --tmpfs /tmp:rw,nosuid,nodev,size=1g \
            --memory 8g --memory-swap 8g --pids-limit 512 --cpus 2 \
            --cap-drop ALL --security-opt no-new-privileges \
            --security-opt "seccomp=$here/docker/seccomp-bwrap.json" --security-opt systempaths=unconfined \
            --user 10001:10001 -e HOME=/tmp -e MPLCONFIGDIR=/tmp $gpus \
            -v "$here/bench/gpu_check.py:/opt/gpu_check.py:ro" -v "$out:/out" \
            --entrypoint /opt/venv/bin/python dlgrade:gpu /opt/gpu_check.py \
            --epochs "$epochs" --json /out/gpu_check.json ${cpu_only:+--cpu-only}
    }
    chmod 0777 "$out"  # the grader's uid writes gpu_check.json there
fi
start=$(date +%s)
grade_status=0
grade >"$out/grade.log" 2>&1 || grade_status=$?
accelerator=$("${PYTHON:-python3}" -c 'import json,sys; r=json.load(open(sys.argv[1])); i=r.get("isolation",{}); print(r["score"], "/", r["max_score"], "| accelerator:", i.get("accelerator"), "| gpus:", i.get("gpus"))' "$out/grade/results.json" 2>/dev/null || echo "no report (exit $grade_status; see $out/grade.log)")
say "1. grade of $notebook ($(( $(date +%s) - start )) s): $accelerator"
case $accelerator in
    *"accelerator: GPU:"*) ;;
    *) [ -z "$gpu" ] || { say "   the report does not say GPU"; status=1; } ;;
esac

# ---------------------------------------------------------------- 2. placement and CPU against GPU
start=$(date +%s)
check_status=0
check || check_status=$?
say "2. placement and timing ($(( $(date +%s) - start )) s): exit $check_status; figures in $out/gpu_check.json"
if [ -z "$gpu" ]; then exit 4; fi
[ "$check_status" = 0 ] || status=1
if [ "$status" = 0 ]; then say "PASS: the sandboxed learner ran on the GPU"; else say "FAIL: see above"; fi
exit "$status"
