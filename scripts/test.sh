#!/usr/bin/env bash
# Runs every test: Rust unit + integration tests (parity with the official fixtures on the CPU
# and on wgpu/lavapipe, CLI), then the browser end-to-end tests on the built app, then a short
# fuzzing pass when time allows. Phases print the seconds elapsed (CI has 90 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/scripts/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "== cargo test (${SECONDS} s since the start)"
cargo test --no-run
# The browser build (a separate cargo lock: wasm32 target, release) runs beside the Rust tests,
# which leave one of two cores idle much of the time.
mkdir -p target
scripts/build-web.sh > target/build-web.log 2>&1 & web=$!
rc=0
cargo test -- --test-threads=1 || rc=$?
echo "== browser build (${SECONDS} s)"
wait $web || { tail -50 target/build-web.log; echo "the browser build failed"; exit 1; }
tail -3 target/build-web.log
[ $rc = 0 ] || { echo "cargo test failed"; exit $rc; }
echo "== browser end-to-end (${SECONDS} s)"
node tests/e2e/gemm_pool.mjs   # the CPU path's helper threads, in Node
cargo build --bin medseg   # the e2e compares the page with the native CLI (UniverSeg, volumes)
node tests/e2e/run.mjs
echo "== fuzz (every file parser, 60 s each; ${SECONDS} s)"
# Fuzzing (about 10 minutes with its set-up) runs when the tests left room for it in CI's 90
# minutes, and says so when they did not. MEDSEG_FUZZ=always|never overrides.
if [ "${MEDSEG_FUZZ:-auto}" = always ] || { [ "${MEDSEG_FUZZ:-auto}" = auto ] && [ "$SECONDS" -lt 4200 ]; }; then
  scripts/fuzz.sh 60 || { rc=$?; [ $rc = 3 ] && echo "fuzz skipped: nightly or cargo-fuzz could not be set up here" || exit $rc; }
else
  echo "fuzz skipped (${SECONDS} s elapsed; run scripts/fuzz.sh by hand)"
fi
echo "== done (${SECONDS} s)"
