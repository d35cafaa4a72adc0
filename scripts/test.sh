#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test in a release build
# (the model-sized tests need optimised code to finish in minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift test -c release "$@"
