#!/bin/bash
# The package on a machine that has never seen imagesmith's sources: makes a
# clean Debian 12 tree with mmdebstrap (variant apt, from this host's apt
# sources), installs the .deb in it with `apt-get install ./imagesmith_....deb`
# (apt fetches its Depends), then, chrooted into that tree, checks the install
# and builds the example that the package ships, validations included:
#
#   packaging/test-clean-install.sh DEB [WORK_DIR]
#
# The tree has no source or build tree of imagesmith: only what the package
# and its dependencies put there. The chroot runs in a private mount
# namespace (unshare -m) with /proc, /sys and /dev of the host, so every mount
# goes away with it. Needs root, mmdebstrap and the network to the apt
# sources. Takes ~10 minutes here (TCG, two shared cores). WORK_DIR (default:
# a temp dir under /var/tmp) is removed at the end unless KEEP=1.
set -euo pipefail
deb=$(realpath "$1")
work=${2:-$(mktemp -d /var/tmp/imagesmith-clean-install.XXXXXX)}
root=$work/root
log() { printf '[clean-install %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$deb" ] || die "no package $deb"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# The host's apt sources, as the catalog reads them (src/catalog/debian_base.cc).
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && grep -qv '^\s*\(#\|$\)' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || die "no apt sources on this host"

t0=$(date +%s)
log "mmdebstrap: a clean bookworm tree (variant apt) in $root"
mkdir -p "$work"
mmdebstrap --quiet --mode=root --format=directory --variant=apt \
  --customize-hook="copy-in $deb /root" \
  --customize-hook='chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/*.deb"' \
  bookworm "$root" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 ||
  { tail -30 "$work/mmdebstrap.log" >&2; die "mmdebstrap or apt-get install of the package failed"; }
t1=$(date +%s)
log "tree with the package and its dependencies made in $((t1 - t0)) s"
grep -E "^(Setting up|Unpacking) imagesmith " "$work/mmdebstrap.log" | head -2 >&2 || true
[ ! -e "$root/work" ] || die "the tree has a /work"

# Run a script chrooted in the tree, in a private mount namespace.
in_tree() {
  unshare --mount --propagation private sh -ec '
    root=$1; shift
    mount --bind "$root" "$root"          # pivot_root needs the root to be a mount point
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
      /bin/sh -ec "$1"' _ "$root" "$1"
}

log "checks of the installed package"
in_tree '
  command -v imagesmith
  imagesmith --version
  test -x /usr/lib/imagesmith/imagesmith-agent
  test -f /usr/share/man/man1/imagesmith-sig.1.gz
  test -f /usr/share/bash-completion/completions/imagesmith
  test -f /usr/lib/systemd/system/imagesmith.service
  dpkg-query -W -f "\${Package} \${Version}\n" imagesmith
  test ! -e /etc/systemd/system/multi-user.target.wants/imagesmith.service
  echo "the unit is installed and not enabled"
' >&2

log "imagesmith build of the shipped example (Debian base, customizers, disk, validation, VHD)"
t2=$(date +%s)
in_tree '
  cd /usr/share/doc/imagesmith/examples
  imagesmith build debian12-nginx.json > /root/build.json 2> /root/build.err
' || { tail -40 "$root/root/build.err" >&2; die "imagesmith build failed in the clean tree"; }
t3=$(date +%s)
state=$(grep -o '"runState": *"[A-Za-z]*"' "$root/root/build.json" | head -1)
log "build finished in $((t3 - t2)) s: $state"
[[ $state == *Succeeded* ]] || die "the run did not succeed: $state"
logf=$(grep -o '"customizationLog": *"[^"]*"' "$root/root/build.json" | sed 's/.*: *"//; s/"$//')
grep -E "agent ready|validate\[[0-9]\] .* ended|validation passed" "$root$logf" | sed 's/^/  /' >&2
grep -q "validation passed" "$root$logf" || die "no 'validation passed' in $logf"
vhd=$(find "$root/root/.local/share/imagesmith" -name '*.vhd' | head -1)
[ -n "$vhd" ] || die "no VHD"
log "VHD $(basename "$vhd"): $(( $(stat -c %s "$vhd") >> 20 )) MiB"
log "PASS: installed from the .deb alone and built + validated the example ($((t3 - t0)) s in all)"
