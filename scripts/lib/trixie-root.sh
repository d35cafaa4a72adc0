# Shared by scripts/swift60-check.sh and scripts/aarch64-check.sh (sourced, not run).
# Creates (once) a Debian trixie root with Debian's own Swift 6.0 (`swiftlang`) and the image
# libraries, mounts what swiftc needs, and lets SwiftPM inside the root resolve github.com
# packages from this machine's local copies in /opt/swift-packages (the root has no GitHub access).
# Needs root on the host. Roots live under .roots/ in the repository (gitignored, ~2-3 GB each).

set -euo pipefail

# Debian's archive, read from the host's apt configuration (deb822 .sources files, else sources.list; the
# security archive skipped); DEBIAN_MIRROR overrides it.
host_debian_archive() {
    { grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
      grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } | grep -v -i security | head -1 || true
}
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(host_debian_archive)}"
ROOT_PACKAGES="swiftlang libpng-dev libjpeg-dev git ca-certificates"

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# qemu-user for foreign-architecture roots: register qemu-aarch64-static with the F (fix binary) flag,
# so the interpreter is opened at registration time and works inside the chroot without being copied in.
ensure_binfmt_aarch64() {
    command -v qemu-aarch64-static >/dev/null && command -v debootstrap >/dev/null \
        || apt-get install -y -q qemu-user-static debootstrap
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
            > /proc/sys/fs/binfmt_misc/register
    fi
    log "binfmt: $(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64)"
}

# mount_root ROOT: /proc (swiftc traps without it), /dev, and the local package copies.
mount_root() {
    local root="$1"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
    mkdir -p "$root/opt/swift-packages"
    mountpoint -q "$root/opt/swift-packages" || mount --bind -o ro /opt/swift-packages "$root/opt/swift-packages"
}

# unmount_root ROOT...: undo mount_root (and the ../shared bind), so that removing .roots/ can never
# reach the host's /dev or the package copies through a bind mount. The check scripts call it on exit.
unmount_root() {
    local root
    for root in "$@"; do
        for m in work/shared opt/swift-packages dev proc; do
            if mountpoint -q "$root/$m"; then umount "$root/$m" || umount -l "$root/$m"; fi
        done
    done
}

# ensure_root ARCH ROOT: debootstrap + apt install, each step skipped when already done.
ensure_root() {
    local arch="$1" root="$2"
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
    [ "$arch" = amd64 ] || ensure_binfmt_aarch64
    if [ ! -e "$root/.debootstrap-done" ]; then
        log "debootstrap trixie $arch -> $root"
        rm -rf "$root"; mkdir -p "$root"
        [ -n "$DEBIAN_MIRROR" ] || { echo "no Debian archive in /etc/apt (set DEBIAN_MIRROR)" >&2; return 1; }
        debootstrap --arch="$arch" --variant=minbase trixie "$root" "$DEBIAN_MIRROR"
        touch "$root/.debootstrap-done"
    fi
    mount_root "$root"
    # The marker holds the package list installed, so adding a package to ROOT_PACKAGES installs it.
    if [ "$(cat "$root/.packages-done" 2>/dev/null)" != "$ROOT_PACKAGES" ]; then
        log "apt-get install $ROOT_PACKAGES (in the $arch root; minutes, ~2 GB)"
        chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -q
        chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends $ROOT_PACKAGES
        echo "$ROOT_PACKAGES" > "$root/.packages-done"
    fi
    # github.com -> the bind-mounted local package copies, as on the host.
    cat > "$root/etc/gitconfig" <<'GITCONFIG'
[url "/opt/swift-packages/"]
	insteadOf = https://github.com/
[safe]
	directory = *
GITCONFIG
    log "root ready: $(chroot "$root" swift --version 2>&1 | head -1)"
}

# in_root ROOT CMD...: run a shell command inside the root as root, with a clean environment.
in_root() {
    local root="$1"; shift
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        SWIFT_BACKTRACE=enable=no /bin/bash -c "set -eo pipefail; $*"
}
