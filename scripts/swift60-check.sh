#!/usr/bin/env bash
# Swift 6.0 compatibility check: builds the package and runs its tests with Debian trixie's own
# `swiftlang` (Swift 6.0.3, what a Debian/Raspberry Pi OS arm64 board installs) in an amd64 trixie root
# at native speed. The host's Swift (6.3) accepts newer APIs; this catches them.
#
#   sudo scripts/swift60-check.sh            # build + test (release), as CI does
#   sudo scripts/swift60-check.sh build      # build only
#
# First run creates .roots/trixie-amd64 (debootstrap + apt: a few minutes, ~2 GB); later runs reuse it.
# The working tree (not .git, not build folders) is copied to /work/sonoquant in the root, ../shared is
# bind-mounted beside it read-only, and github.com dependencies resolve from /opt/swift-packages.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
source scripts/lib/trixie-root.sh
mode="${1:-test}"
root="$repo/.roots/trixie-amd64"
trap 'unmount_root "$root"' EXIT

ensure_root amd64 "$root"
mkdir -p "$root/work/sonoquant" "$root/work/shared"
if [ -d "$repo/../shared" ] && ! mountpoint -q "$root/work/shared"; then
    mount --bind -o ro "$repo/../shared" "$root/work/shared"
fi
command -v rsync >/dev/null || apt-get install -y -q rsync
log "copying the working tree into the root"
rsync -a --delete --exclude '.git' --exclude '.build*' --exclude '.roots' --exclude '.swiftpm' \
    --exclude 'Package.resolved' "$repo/" "$root/work/sonoquant/"

log "swift build -c release (Swift 6.0)"
in_root "$root" 'cd /work/sonoquant && swift --version && swift build -c release 2>&1'
if [ "$mode" = test ]; then
    log "swift test -c release (Swift 6.0)"
    in_root "$root" 'cd /work/sonoquant && swift test -c release 2>&1'
fi
log "Swift 6.0 check passed"
