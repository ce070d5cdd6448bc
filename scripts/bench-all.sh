#!/usr/bin/env bash
# Every benchmark in one run, then BENCHMARKS.md's "Current results" section rewritten from it
# (scripts/bench_table.py): native LiteMedSAM and MedSAM ViT-B next to onnxruntime and PyTorch
# (scripts/bench.sh), UniverSeg at S = 1, 8, 32, 64, a GenSeg training iteration, and the browser
# (scripts/bench-web.sh: the app's CPU path next to onnxruntime-web, the bundle sizes). Not a
# test. On 2 cores about 7 minutes once the release binary, the web build and the peers' venv
# exist (building the binary without LTO adds about 8, the venv (PyTorch) is a large download),
# then WebGPU next to onnxruntime-web's WebGPU, one timed encode each after a warm-up: here that
# is SwiftShader, the GPU emulated on the CPU, minutes per encode (GPU_MODES= leaves it out).
#   scripts/bench-all.sh            RUNS (native, default 10), WEB_RUNS (default 4),
#                                   BACKENDS (native, default "cpu"; "cpu wgpu" adds lavapipe),
#                                   MODES (browser, default cpu,cpu-1,ort-wasm,ort-wasm2),
#                                   GPU_MODES (default webgpu,ort-webgpu), GPU_RUNS (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.cache/bench-all
rm -rf $OUT && mkdir -p $OUT
echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml build.rs || echo ' + local changes'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem/ {print $2}') GiB; native build: release profile, LTO ${CARGO_PROFILE_RELEASE_LTO:-as in Cargo.toml}" > $OUT/meta.txt

BACKENDS=${BACKENDS:-cpu} scripts/bench.sh 2>&1 | tee $OUT/native.txt
target/release/medseg genseg bench --runs "${RUNS:-10}" 2>&1 | tee $OUT/genseg.txt
MODES=${MODES:-cpu,cpu-1,ort-wasm,ort-wasm2} scripts/bench-web.sh "${WEB_RUNS:-4}" 2>&1 | tee $OUT/web.txt
GPU_MODES=${GPU_MODES-webgpu,ort-webgpu}
if [ -n "$GPU_MODES" ]; then
  # onnxruntime-web's WebGPU encode took 9 minutes here (session 11): each encode gets 20.
  MEDSEG_BENCH_TIMEOUT_S=${MEDSEG_BENCH_TIMEOUT_S:-1200} node tests/e2e/bench.mjs "$GPU_MODES" "${GPU_RUNS:-1}" 2>&1 | tee -a $OUT/web.txt
fi
python3 scripts/bench_table.py $OUT BENCHMARKS.md
