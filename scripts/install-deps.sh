#!/usr/bin/env bash
# Installs the system libraries SonoQuant links against (libpng, libjpeg) when they are missing.
# Debian/Ubuntu (and Raspberry Pi OS). Needs root or sudo only if something is missing.
set -euo pipefail
missing=()
for pkg in libpng-dev libjpeg-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v swift >/dev/null || { echo "swift not found: install Swift 6.0 or newer (Debian trixie: apt install swiftlang)" >&2; exit 1; }
