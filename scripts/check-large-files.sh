#!/usr/bin/env bash
# Every file over 1 MB that git holds has a line in models/MANIFEST.md (deployable models, and the test
# fixtures that must be that big), so no checkpoint or log slips into the repository unlisted.
# Part of the test command; skipped outside a git checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "large files: not a git checkout, skipped"; exit 0; }
unlisted=0
while IFS= read -r -d '' file; do
    [ -f "$file" ] || continue
    size=$(stat -c %s "$file")
    if [ "$size" -gt 1048576 ] && ! grep -qF "\`$file\`" models/MANIFEST.md; then
        echo "FAIL: $file ($size bytes) is over 1 MB and not listed in models/MANIFEST.md"
        unlisted=1
    fi
done < <(git ls-files -z)
[ "$unlisted" = 0 ] && echo "large files: every file over 1 MB is listed in models/MANIFEST.md"
exit "$unlisted"
