#!/usr/bin/env bash
# Browser benchmark: builds the app, installs onnxruntime-web (npm, into .cache/bench-web; not a
# test dependency) and times medseg's CPU path against onnxruntime-web's WASM backend (1 and 2
# threads) on the official LiteMedSAM graphs in the same headless Chromium, same run.
#   scripts/bench-web.sh [RUNS]          MODES=cpu,webgpu,ort-wasm,ort-webgpu to choose
# WebGPU here is SwiftShader (the GPU emulated on the CPU): minutes per encode, so not by default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-weights.sh
scripts/build-web.sh
ORT=.cache/bench-web
[ -f $ORT/node_modules/onnxruntime-web/dist/ort.all.min.mjs ] ||
  npm install --prefix $ORT --no-audit --no-fund --silent onnxruntime-web@1.30.0
for wasm in dist/*_bg.wasm; do
  case $wasm in *-gpu_bg.wasm) build="WebGPU build";; *) build="CPU build";; esac
  echo "wasm bundle, $build: $(stat -c %s "$wasm") bytes, gzipped (-9) $(gzip -9 -c "$wasm" | wc -c) bytes"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(/usr/bin/chromium --version)"
node tests/e2e/bench.mjs "${MODES:-peers}" "${1:-4}"
