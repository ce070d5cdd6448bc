#!/usr/bin/env bash
# Browser profile of the CPU-path encode (not a test): builds the app with wasm function names
# into dist-names/ (its own cargo target dir, so dist/ and target/ are untouched; the first build
# is a cold one) and runs tests/e2e/profile.mjs on it.   scripts/profile-web.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/scripts/node_modules/.bin:$HOME/.cargo/bin:$PATH"
MEDSEG_WASM_NAMES=1 CARGO_PROFILE_WEB_STRIP=false CARGO_TARGET_DIR=target/web-names \
  trunk build --release --dist dist-names
node tests/e2e/profile.mjs dist-names "${1:-2}"
