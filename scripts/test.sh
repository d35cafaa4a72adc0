#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test in a release build (the model-sized
# tests need optimised code to finish in minutes), then checks that the binary's kernel paths stay apart
# (scripts/check-kernel-paths.sh: the portable path has no AVX instruction and runs on an emulated CPU
# without AVX), then builds the example app (Examples/SegmentApp, which uses the package as a library)
# and checks it gives `segment`'s HC (scripts/check-example-app.sh), and that every file over 1 MB in git is
# listed in models/MANIFEST.md (scripts/check-large-files.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift test -c release "$@"
scripts/check-kernel-paths.sh
scripts/check-example-app.sh
scripts/check-large-files.sh
