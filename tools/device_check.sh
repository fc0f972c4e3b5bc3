#!/usr/bin/env bash
# One device call on a lent GPU: install the cuDNN frontend wheel carried in .whl/, run every
# @pytest.mark.gpu test, then bench/gpu.py (ember beside PyTorch) with kernel profiles of the
# bf16 and TF32 runs, then the CUDA-graph experiment (GRAPH_PROBE=0 skips it). Logs and JSON
# go to $OUT; the end of stdout is a short summary table.
#   usage (from the repository root, on the device): bash tools/device_check.sh [bench args]
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONPATH=packages/core/src:packages/vision/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m pip install --no-deps --no-index .whl/nvidia_cudnn_frontend-*.whl > "$OUT/pip.log" 2>&1 \
    || tail -3 "$OUT/pip.log"
python3 -c "import cupy, cudnn, ember; print('cupy', cupy.__version__, 'cudnn', cudnn.backend_version(), 'gpus', ember.cuda.device_count())"

start=$(date +%s)
timeout "${TEST_S:-240}" python3 -m pytest tests/core -m gpu -q -p no:cacheprovider -rf \
    > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - start )) s: $(tail -1 "$OUT/gpu_tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/gpu_tests.log" | cut -c1-220 | head -25
start=$(date +%s)
timeout "${BENCH_S:-300}" python3 bench/gpu.py --profile "${PROFILE:-bf16,tf32}" --out "$OUT/gpu.json" "$@" \
    > "$OUT/bench.log" 2>&1
echo "bench rc=$? in $(( $(date +%s) - start )) s"
awk '/^\[profile .* ember\]/{on=1; print; next} /^[\[{]/{on=0} on' "$OUT/bench.log" | cut -c1-150 | head -60
awk '/^\[host profile .* ember\]/{on=1; n=0; print; next} /^[\[{]/{on=0} on && n++ < 14' \
    "$OUT/bench.log" | cut -c1-150
grep -E "Error" "$OUT/bench.log" | grep -v "^{" | head -8
sed -n '/^cuDNN graphs refused/,$p' "$OUT/bench.log"
# the CUDA-graph experiment (bench/gpu_graph_probe.py): one line per finding
if [ "${GRAPH_PROBE:-1}" = 1 ]; then
    timeout 120 python3 bench/gpu_graph_probe.py 2>&1 | grep -v Warn | tail -12
fi
