#!/usr/bin/env bash
# Builds the browser app into dist/ (release, wasm-opt 132 from npm).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/scripts/node_modules/.bin:$HOME/.cargo/bin:$PATH"
trunk build --release "$@"
