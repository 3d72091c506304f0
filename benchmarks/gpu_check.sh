#!/usr/bin/env bash
# Everything GPU-side in one run of under 8 minutes on one H100/H200, from a bare machine that has torch:
#   1. install   the package from this checkout, without touching the torch that is there
#   2. tests     the cuda tests (pytest -m cuda tests/test_cuda.py)
#   3. gpu_train benchmarks/gpu_train.py: trainer vs DataLoader loop vs bare step, ResNet-18 and VGG-16, epochs of
#                100 batches, 2 rounds; the EL2N query stage with 1 init
#   4. sweep     benchmarks/sweep_throughput.py: aggregate epochs/s at K = 1, 2, 4, 8 runs per GPU, and the
#                projected GPU-hours of the CIFAR-100 grid
#   5. stream    benchmarks/stream_gpu.py: ImageNet-sized batches streamed from an image store (page cache and disk)
#                against a ResNet-50 bf16 channels_last step, the trainer on the store, GPU JPEG decoding
# Each step has a time limit (the five add up to 9 min 10 s) and a failed step does not stop the next.
#
# Usage: benchmarks/gpu_check.sh OUT [--cpu-smoke]
#   OUT receives env.txt (machine, versions), one <step>.log per step, sweep_throughput.json and summary.txt (each
#   step's exit status and seconds; 124 = stopped at its limit). The exit status is 1 if any step failed.
#   --cpu-smoke: the same steps at tiny sizes on the CPU (about a minute), to know the script runs before a GPU does.
#   $PYTHON is the interpreter (default python3).
set -u

OUT=""
SMOKE=0
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) SMOKE=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
        *) OUT=$arg ;;
    esac
done
if [ -z "$OUT" ]; then
    echo "usage: $0 OUT [--cpu-smoke]   (OUT: the folder that receives the results)" >&2
    exit 2
fi
PY=${PYTHON:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO" || exit 2
# The checkout's code in this and every worker process, whatever the install step manages.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
: > "$OUT/summary.txt"
FAILED=0

step() {  # NAME LIMIT_S COMMAND...: run it under a time limit into OUT/NAME.log (also shown), record status and time
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "=== $name (limit ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || FAILED=1
    printf '%-10s exit %3d  %4d s  (limit %d s)\n' "$name" "$status" $((SECONDS - start)) "$limit" \
        | tee -a "$OUT/summary.txt"
}

install() {  # the package from this checkout; pip may fetch only what is missing, and never another torch
    "$PY" -c "import torch" || { echo "no torch in $PY: install the torch build for this machine first"; return 1; }
    if "$PY" -c "import numpy, scipy, sklearn, matplotlib, tqdm, pytest, hypothesis"; then
        # All there (GPU images often have no network): the package alone, built with the setuptools present.
        "$PY" -m pip install --no-index --no-deps --no-build-isolation -q -e "$REPO"
    else
        local pin
        pin=$(mktemp)
        "$PY" -c "import torch; print('torch==' + torch.__version__)" > "$pin"
        "$PY" -m pip install -q -e "$REPO[dev]" -c "$pin"
    fi || echo "pip could not install the package: the steps use the checkout through PYTHONPATH"
    "$PY" -c "import deep, toy, numpy, scipy, sklearn, tqdm, pytest, hypothesis; print('deep from', deep.__file__)"
}

{
    echo "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit    $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "mode      $([ "$SMOKE" -eq 1 ] && echo 'CPU smoke run (tiny sizes, goals not judged)' || echo GPU check)"
    echo "cpu       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(getconf _NPROCESSORS_ONLN) cores"
    "$PY" -c "import platform, torch; print('python   ', platform.python_version(), '| torch', torch.__version__,
'| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version())"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null \
        || echo "nvidia-smi: not available"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [ "$SMOKE" -eq 1 ]; then
    SIZE=(--device cpu --quick)
    TRAIN=("${SIZE[@]}")
else
    SIZE=(--device cuda)
    TRAIN=("${SIZE[@]}" --max-batches 100 --rounds 2 --query-inits 1)
fi
export -f install  # run by `timeout`, which takes programs, hence through bash
export PY REPO
step install 30 bash -c install
step tests 150 "$PY" -m pytest -m cuda -p no:cacheprovider -v -ra tests/test_cuda.py  # without a GPU: all skipped
step gpu_train 140 "$PY" benchmarks/gpu_train.py "${TRAIN[@]}"
step sweep 140 "$PY" benchmarks/sweep_throughput.py "${SIZE[@]}" --json "$OUT/sweep_throughput.json"
step stream 90 "$PY" benchmarks/stream_gpu.py "${SIZE[@]}"
echo "=== summary (also in $OUT/summary.txt)"
cat "$OUT/summary.txt"
exit "$FAILED"
