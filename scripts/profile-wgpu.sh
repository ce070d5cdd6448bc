#!/usr/bin/env bash
# Where burn-wgpu spends LiteMedSAM's time, per kernel, on a software Vulkan driver:
#   scripts/profile-wgpu.sh lavapipe      # Mesa's lavapipe (about 1 min here)
#   scripts/profile-wgpu.sh swiftshader   # Chromium's SwiftShader, what headless Chromium's
#                                         # WebGPU runs on (about 10 min here)
# cubecl logs every kernel's duration (its profiling logger, read from ./cubecl.toml); the table
# sums the timed run (the second half of the log; the first half is the warm-up). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
driver=${1:-lavapipe}
case $driver in
  lavapipe) icd=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json ;;
  swiftshader) icd=/usr/lib/chromium/vk_swiftshader_icd.json ;;
  *) echo "usage: $0 lavapipe|swiftshader" >&2; exit 2 ;;
esac
[ -f "$icd" ] || { echo "no $icd (install mesa-vulkan-drivers / chromium)" >&2; exit 1; }
scripts/fetch-weights.sh
cargo build --release --quiet --bin medseg
model=$PWD/models/litemedsam.int8.medseg
bin=$PWD/target/release/medseg
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '[profiling.logger]\nlevel = "basic"\nstdout = true\n' > "$dir/cubecl.toml"
(cd "$dir" && XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$dir}" VK_ICD_FILENAMES=$icd \
  "$bin" bench --model "$model" --backend wgpu --runs 1 > log.txt 2>&1)
grep -E '^(encoder|decoder) median' "$dir/log.txt"
python3 - "$dir/log.txt" <<'PY'
import collections, re, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("| ")]
rows = rows[len(rows) // 2:]
unit = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}
total, calls = collections.Counter(), collections.Counter()
for row in rows:
    cells = [c.strip() for c in row.split("|")[1:]]
    m = re.match(r"([\d.]+)(ns|µs|ms|s)$", cells[0])
    name = cells[1]
    if any("Matmul" in c for c in cells[1:]):
        name = "Matmul " + cells[-1].rsplit("_", 1)[-1]
    elif len(cells) > 2:
        name = cells[1] + " " + cells[2]
    total[name] += float(m.group(1)) * unit[m.group(2)]
    calls[name] += 1
s = sum(total.values())
print(f"timed run: {s / 1e3:.1f} s in {sum(calls.values())} kernels")
for name, t in total.most_common(15):
    print(f"{t:10.1f} ms {100 * t / s:5.1f} % {calls[name]:5d}  {name[:80]}")
PY
