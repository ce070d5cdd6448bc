#!/usr/bin/env bash
# Sets up (once), builds and serves the app on http://127.0.0.1:8080 with LiteMedSAM embedded.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/scripts/node_modules/.bin:$HOME/.cargo/bin:$PATH"
exec trunk serve --release --address 127.0.0.1 --port "${PORT:-8080}"
