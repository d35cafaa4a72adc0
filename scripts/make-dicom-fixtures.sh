#!/usr/bin/env bash
# Runs scripts/make-dicom-fixtures.py (pydicom, numpy, Pillow) in its own virtual environment, made on first use
# in .venv-dicom/ (pydicom is only needed to write test files; SonoQuant reads DICOM without it).
#   scripts/make-dicom-fixtures.sh fixtures fixtures/dicom
#   scripts/make-dicom-fixtures.sh testset /tmp/dicom-test --data ../shared/hc18/training_set --split ../shared/hc18/splits/paper_split.csv
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DICOM_VENV:-.venv-dicom}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q pydicom==3.0.2 numpy pillow
fi
exec "$venv/bin/python" scripts/make-dicom-fixtures.py "$@"
