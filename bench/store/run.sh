#!/bin/bash
# The store against casync on the same work, in one run (README.md):
#  1. ingest a built Debian 12 image: PutTree of its tree vs `casync make` of
#     the same image's raw disk;
#  2. v2 = v1 + `apt-get install -y curl`: new bytes stored for v2 and bytes
#     copied to a second region for v2, next to casync's new-chunk bytes for
#     the v2 disk (shared --store) and the installed size of the added
#     packages (dpkg Installed-Size, v2 minus v1).
# Writes bench/store/results.md. Run as root from anywhere:
#
#   bench/store/run.sh        # builds into build/ unless $BUILD names a build dir
#   BENCH_QUICK=1 bench/store/run.sh
#
# Quick mode (the CI test bench.store): v1 is a trimmed copy of the base
# (no docs, man pages, locales, kernel modules), the data directory is a temp
# one whose catalog is $IMAGESMITH_BENCH_CATALOG when set, and the results go
# to $BENCH_RESULTS (default: a temp file, removed) instead of results.md.
#
# Never names an apt mirror: the chroot uses the tree's own apt sources, which
# the catalog took from the host.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

log() { printf '[bench/store] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (overlay mounts, chroot, mke2fs -d of root-owned trees)"
command -v casync >/dev/null || die "casync is not installed (apt-get install casync)"

build=${BUILD:-$repo/build}
if [ ! -x "$build/bench/store/store_bench" ] || [ ! -x "$build/imagesmith" ]; then
  cmake -S . -B "$build" -G Ninja >/dev/null
fi
ninja -C "$build" imagesmith store_bench >/dev/null

work=$(mktemp -d /var/tmp/imagesmith-bench-store.XXXXXX)
merged=$work/v2
cleanup() {
  for m in "${resolv_mount:-/nonexistent}" "$merged/run" "$merged/dev" "$merged/proc" "$merged"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
cp "$build/imagesmith" "$build/bench/store/store_bench" "$work/"
bin=$work/imagesmith
drv=$work/store_bench

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$2"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- v1: the catalog's Debian 12 base tree --------------------------------------
data=${IMAGESMITH_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/imagesmith}
quick=${BENCH_QUICK:-0}
results=${BENCH_RESULTS:-$here/results.md}
if [ "$quick" = 1 ]; then
  results=${BENCH_RESULTS:-$work/results.md}
  data=$work/home
  mkdir -p "$data"
  if [ -n "${IMAGESMITH_BENCH_CATALOG:-}" ]; then
    mkdir -p "$IMAGESMITH_BENCH_CATALOG"
    ln -s "$IMAGESMITH_BENCH_CATALOG" "$data/catalog"
  fi
fi
log "v1: the catalog's Debian 12 base (built with mmdebstrap if missing; data dir $data)"
IMAGESMITH_HOME=$data "$bin" vm image build --urn Debian:debian-12:12-gen2 --if-missing >/dev/null
v1=$(ls -d "$data"/catalog/debian-12/*/rootfs | sort -V | tail -1)
[ -d "$v1/usr" ] || die "no base tree under $data/catalog/debian-12"
if [ "$quick" = 1 ]; then
  log "quick: v1 is a trimmed copy of the base"
  cp -a "$v1" "$work/v1"
  v1=$work/v1
  rm -rf "$v1"/usr/share/doc/* "$v1"/usr/share/man/* "$v1"/usr/share/locale/* "$v1"/usr/lib/modules/*/kernel
fi

# --- v2: v1 + curl, on an overlay, in a chroot with the host network -------------
log "v2: apt-get install -y curl on an overlay of v1"
mkdir -p "$work/upper" "$work/ovl" "$merged"
mount -t overlay overlay -o "lowerdir=$v1,upperdir=$work/upper,workdir=$work/ovl" "$merged"
mount -t proc proc "$merged/proc"
mount --bind /dev "$merged/dev"
# The host's resolver for the install only, without changing the tree: /run
# is a tmpfs for the chroot, and resolv.conf (or what its symlink names under
# /run) is bound or copied there.
mount -t tmpfs tmpfs "$merged/run"
made_resolv=0
if [ -L "$merged/etc/resolv.conf" ]; then
  target=$(readlink "$merged/etc/resolv.conf")
  case "$target" in
    /run/*|../run/*) rel=${target#*run/} ;;
    *) die "/etc/resolv.conf in the base tree links to $target, outside /run" ;;
  esac
  mkdir -p "$merged/run/$(dirname "$rel")"
  cp /etc/resolv.conf "$merged/run/$rel"
  mount --bind "$merged/run/$rel" "$merged/run/$rel"  # a mount point, so cleanup finds it
  resolv_mount=$merged/run/$rel
else
  if [ ! -e "$merged/etc/resolv.conf" ]; then
    touch "$merged/etc/resolv.conf"
    made_resolv=1
  fi
  mount --bind /etc/resolv.conf "$merged/etc/resolv.conf"
  resolv_mount=$merged/etc/resolv.conf
fi
chroot "$merged" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq curl' >"$work/apt.log" 2>&1 ||
  { tail -20 "$work/apt.log" >&2; die "apt-get install curl failed"; }
# What the build's generalization cleans (kDefaultDeprovision): apt lists and
# caches, logs of the install.
chroot "$merged" /bin/sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
  rm -f /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log'
umount "$resolv_mount" "$merged/run" "$merged/dev" "$merged/proc"
[ "$made_resolv" = 0 ] || rm -f "$merged/etc/resolv.conf"
installed_kib() { dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Installed-Size}\n' | awk '{ s += $1 } END { print s }'; }
added_pkgs=$(comm -13 <(dpkg-query --admindir="$v1/var/lib/dpkg" -W -f='${Package}\n' | sort) \
                      <(dpkg-query --admindir="$merged/var/lib/dpkg" -W -f='${Package}\n' | sort) | tr '\n' ' ')
added_bytes=$(( ($(installed_kib "$merged") - $(installed_kib "$v1")) * 1024 ))
log "added packages: $added_pkgs($(mib "$added_bytes") MiB installed)"

# --- disks for casync: catalog::MakeBootableDisk of copies of both trees ---------
log "making both raw disks (MakeBootableDisk, fixed config)"
cp -a "$v1" "$work/t1"
cp -a "$merged/." "$work/t2"
"$drv" disk "$work/t1" "$work/disk1.raw" >/dev/null
"$drv" disk "$work/t2" "$work/disk2.raw" >/dev/null
disk_mib=$(( $(stat -c %s "$work/disk1.raw") >> 20 ))
disk_used_mib=$(( $(du -k "$work/disk1.raw" | cut -f1) >> 10 ))
tree_mib=$(( $(du -sk --apparent-size "$v1" | cut -f1) >> 10 ))
tree_files=$(find "$v1" | wc -l)

# --- 1. ingest v1 ---------------------------------------------------------------
sync
cat "$work/disk1.raw" >/dev/null  # both read from a warm page cache
find "$v1" -type f -exec cat {} + >/dev/null
log "1. ingest v1: imagesmith PutTree (tree) vs casync make (disk)"
"$drv" put-tree "$work/store" eastus "$v1" >"$work/put1.json"
is_ingest=$(field seconds "$work/put1.json")
v1_image=$(field image "$work/put1.json")
t0=$(now)
casync make --store="$work/castore" "$work/disk1.caibx" "$work/disk1.raw" >/dev/null
t1=$(now)
ca_ingest=$(secs "$t0" "$t1")
chunk_bytes() { find "$work/castore" -name '*.cacnk' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
ca_v1_bytes=$(chunk_bytes)
is_v1_bytes=$(field newBytes "$work/put1.json")

# --- 2. v2: what is new, what is copied -------------------------------------------
log "2. v2: new bytes, replication, casync new chunks"
"$drv" put-tree "$work/store" eastus "$merged" >"$work/put2.json"
v2_image=$(field image "$work/put2.json")
is_v2_new=$(field newBytes "$work/put2.json")
"$drv" replicate "$work/store" eastus westus2 "$v1_image" >"$work/rep1.json"
"$drv" replicate "$work/store" eastus westus2 "$v2_image" >"$work/rep2.json"
is_v2_copied=$(field copiedBytes "$work/rep2.json")
casync make --store="$work/castore" "$work/disk2.caibx" "$work/disk2.raw" >/dev/null
ca_v2_new=$(( $(chunk_bytes) - ca_v1_bytes ))
"$drv" put-tree "$work/store" eastus "$merged" >"$work/put2b.json"  # idempotent: nothing new
[ "$(field newBytes "$work/put2b.json")" = 0 ] || die "re-putting v2 stored new bytes"

finished_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
casync_version=$(casync --version | head -1)

{
  echo "# imagesmith store vs casync"
  echo
  echo "Run $started_at .. $finished_at on $(nproc) CPUs; $casync_version (its defaults: no --digest,"
  echo "--compression or --chunk-size given). imagesmith: SHA-256, zstd level 3, 4 MiB file chunks,"
  echo "2 threads. Both read from a warm page cache; both write to the same filesystem."
  echo "Load average (1/5/15 min) at the start: $load_start; at the end: $load_end (the machine"
  echo "is shared with other builds and VMs, which slows both tools alike)."
  echo
  echo "v1: the catalog's Debian 12 base tree ($tree_files entries, $tree_mib MiB of files);"
  echo "its raw GPT disk from catalog::MakeBootableDisk is $disk_mib MiB ($disk_used_mib MiB allocated)."
  echo "v2: v1 + \`apt-get install -y curl\`, apt lists/caches/logs cleaned. Added packages:"
  echo "$added_pkgs"
  echo
  echo "## 1. Ingest v1"
  echo
  echo "| | seconds | stored MiB |"
  echo "| --- | ---: | ---: |"
  echo "| imagesmith PutTree (tree) | $is_ingest | $(mib "$is_v1_bytes") |"
  echo "| casync make (raw disk) | $ca_ingest | $(mib "$ca_v1_bytes") |"
  echo
  echo "Time ratio imagesmith / casync: **$(ratio "$is_ingest" "$ca_ingest")** (target <= 0.20)."
  echo
  echo "## 2. v2 = v1 + curl"
  echo
  echo "| | bytes | MiB | / installed size |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| installed size of the added packages (dpkg) | $added_bytes | $(mib "$added_bytes") | 1.00 |"
  echo "| imagesmith: new bytes stored for v2 | $is_v2_new | $(mib "$is_v2_new") | **$(ratio "$is_v2_new" "$added_bytes")** |"
  echo "| imagesmith: bytes copied to westus2 for v2 | $is_v2_copied | $(mib "$is_v2_copied") | **$(ratio "$is_v2_copied" "$added_bytes")** |"
  echo "| casync: new chunk bytes for the v2 disk | $ca_v2_new | $(mib "$ca_v2_new") | $(ratio "$ca_v2_new" "$added_bytes") |"
  echo
  echo "Target: imagesmith <= 1.5x the installed size. Re-putting v2 stored 0 new bytes."
} >"$results"
cat "$results"
