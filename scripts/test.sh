#!/usr/bin/env bash
# Runs every test: Rust unit + integration tests (parity with the official fixtures on the CPU
# and on wgpu/lavapipe, CLI), then the browser end-to-end tests on the built app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/scripts/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "== cargo test"
cargo test -- --test-threads=1
echo "== browser end-to-end"
scripts/build-web.sh
cargo build --bin medseg   # the e2e compares the page with the native CLI (UniverSeg)
node tests/e2e/run.mjs
echo "== fuzz (every file parser, 60 s each)"
# CI has 90 minutes in all: fuzzing (about 10 minutes with its set-up) runs when the tests left
# room for it, and says so when they did not. MEDSEG_FUZZ=always|never overrides.
if [ "${MEDSEG_FUZZ:-auto}" = always ] || { [ "${MEDSEG_FUZZ:-auto}" = auto ] && [ "$SECONDS" -lt 4200 ]; }; then
  scripts/fuzz.sh 60 || { rc=$?; [ $rc = 3 ] && echo "fuzz skipped: nightly or cargo-fuzz could not be set up here" || exit $rc; }
else
  echo "fuzz skipped (${SECONDS} s elapsed; run scripts/fuzz.sh by hand)"
fi
