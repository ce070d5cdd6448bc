#!/usr/bin/env bash
# Fetches the real test scans: the pyradiomics 3.1.0 source archive from PyPI (sha256-checked),
# whose data/ holds CT and MR volumes with tumour masks as NRRD. Idempotent. Data only: nothing
# is installed and nothing is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/data
SHA=24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4
URL=https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/pyradiomics-3.1.0.tar.gz
TGZ=$DIR/pyradiomics-3.1.0.tar.gz
mkdir -p "$DIR"
[ -f "$DIR/pyradiomics/lung2_image.nrrd" ] && exit 0
if [ ! -f "$TGZ" ] || [ "$(sha256sum "$TGZ" | cut -d' ' -f1)" != "$SHA" ]; then
  echo "fetching test scans (PyPI pyradiomics==3.1.0 source archive, 34.5 MB)"
  curl -sSfL -o "$TGZ" "$URL"
fi
echo "$SHA  $TGZ" | sha256sum --check --quiet || { echo "pyradiomics archive checksum mismatch" >&2; exit 1; }
mkdir -p "$DIR/pyradiomics"
tar -xzf "$TGZ" -C "$DIR/pyradiomics" --strip-components=2 --wildcards 'pyradiomics-3.1.0/data/*.nrrd'
