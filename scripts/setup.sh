#!/usr/bin/env bash
# Installs everything medseg needs to build, serve and test, skipping what is already present at
# the right version: the wasm target, trunk, wasm-bindgen-cli, npm tools (wasm-opt, playwright),
# Debian's chromium + chromedriver and Mesa's lavapipe (Vulkan on the CPU), and the weights.
set -euo pipefail
cd "$(dirname "$0")/.."
TRUNK=0.21.14
WASM_BINDGEN=0.2.130

log() { echo "[setup] $*"; }

rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || {
  log "adding rust target wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }

# Build tools compile from source: without their TLS stacks (nothing is downloaded: Trunk.toml
# pins the tools found here) and, for trunk, without its fat LTO in one codegen unit, which took
# 9 of CI's 90 minutes on 2 cores. Both only orchestrate; their speed does not matter.
if ! trunk --version 2>/dev/null | grep -q "$TRUNK"; then
  log "installing trunk $TRUNK (a few minutes)"
  CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install --locked --no-default-features "trunk@$TRUNK"
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN"
  # --locked fails on its webpki-roots lock
  cargo install --no-default-features "wasm-bindgen-cli@$WASM_BINDGEN"
fi

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
ldconfig -p | grep -q libvulkan.so.1 || need_apt+=(libvulkan1)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x scripts/node_modules/.bin/wasm-opt ] || { log "npm: binaryen (wasm-opt 132)"; (cd scripts && npm ci --no-audit --no-fund --silent); }
[ -d tests/e2e/node_modules/playwright-core ] || { log "npm: playwright-core, pngjs"; (cd tests/e2e && npm ci --no-audit --no-fund --silent); }

scripts/fetch-weights.sh  # fetches the scans too: they calibrate the int8 model
log "ready"
