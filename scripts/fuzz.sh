#!/usr/bin/env bash
# Fuzzes every file parser (fuzz/fuzz_targets: image, volume, dicom, model_file, checkpoint,
# zip) with cargo-fuzz for SECONDS each (default 60), two at a time on a 2-core machine; seeds
# from the bad-file corpus and the real test files. Installs nightly and cargo-fuzz if missing.
# Crashes land in fuzz/artifacts/<target>/ and fail the run (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH"
# Set-up problems (no network for the toolchain, a build failure) exit 3, which the test
# command reports as "fuzz skipped"; a crash found exits 1.
{ rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal; } || exit 3
{ cargo fuzz --version 2>/dev/null | grep -q ' 0.13.2' || cargo install cargo-fuzz --locked --version 0.13.2; } || exit 3
cd fuzz
cargo +nightly fuzz build -O || exit 3

# Seeds: each target gets the corpus files of its kind and small real files.
BAD=../tests/corpus/bad
DCM=../.cache/data/dicom
rm -rf seeds && mkdir -p seeds/{image,volume,dicom,model_file,checkpoint,zip}
cp $BAD/*.png $BAD/*.jpg ../../shared/fixtures/*.png seeds/image/ 2>/dev/null || true
cp $BAD/*.nrrd $BAD/*.nii $BAD/*.nii.gz seeds/volume/ 2>/dev/null || true
cp $DCM/pydicom/MR_small*.dcm $DCM/pydicom/CT_small.dcm $DCM/pydicom/SC_rgb_rle.dcm seeds/dicom/ 2>/dev/null || true
cp $BAD/*.medseg seeds/model_file/
cp $BAD/*.pth seeds/checkpoint/
cp $BAD/*.zip seeds/zip/

run() {
  mkdir -p "corpus/$1" logs
  local rc=0
  cargo +nightly fuzz run -O "$1" "corpus/$1" "seeds/$1" -- \
    -max_total_time="$SECS" -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1 \
    > "logs/$1.log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|SUMMARY)|^==.*ERROR|panicked|Done [0-9]+ runs" "logs/$1.log" | sed "s/^/[$1] /" || true
  return $rc
}
failed=0
targets=(image volume dicom model_file checkpoint zip)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" & a=$!
  run "${targets[i + 1]}" & b=$!
  wait $a || failed=1
  wait $b || failed=1
done
[ $failed = 0 ] && echo "fuzz: ${#targets[@]} targets × ${SECS} s, no crash" || { echo "fuzz: crash (see fuzz/artifacts)"; exit 1; }
