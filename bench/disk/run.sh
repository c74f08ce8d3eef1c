#!/usr/bin/env bash
# Benchmark: imagesmith disk convert against qemu-img convert.
#
# Builds a Debian tree with mmdebstrap from the host's apt sources, puts it in
# an ext4 filesystem on a sparse 4 GiB raw disk (mke2fs -d), then converts that
# disk to raw, VHD fixed, VHD dynamic, qcow2 and compressed qcow2 with both
# tools, side by side in the same run. Reports wall time (median of RUNS),
# the time ratio imagesmith/qemu-img and peak RSS (from /usr/bin/time -v), and
# writes the table to bench/disk/results.md.
#
# Usage: bench/disk/run.sh [IMAGESMITH_BINARY]
# Environment: BENCH_DIR (work dir, default /var/tmp/imagesmith-disk-bench;
#              the Debian tree and the disk are cached there), RUNS (default 5).
# Needs root (mmdebstrap in root mode), mmdebstrap, e2fsprogs, qemu-utils, time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/build/imagesmith}
work=${BENCH_DIR:-/var/tmp/imagesmith-disk-bench}
runs=${RUNS:-5}
results=$here/results.md

for tool in mmdebstrap mke2fs qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "imagesmith binary not found: $bin" >&2; exit 1; }
mkdir -p "$work"

# 1. A Debian tree: minbase plus a kernel (its modules are most of the data),
#    about 600 MiB. Suite and mirrors come from the host's apt configuration.
tree=$work/tree
if [[ ! -f $work/tree.done ]]; then
  rm -rf "$tree"
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  echo "building Debian $suite tree in $tree ..." >&2
  mmdebstrap --quiet --variant=minbase --include=linux-image-amd64,systemd,systemd-sysv,udev,openssh-server,python3 \
    "$suite" "$tree" >&2
  touch "$work/tree.done"
fi

# 2. A sparse 4 GiB raw disk holding it in ext4.
disk=$work/debian.raw
if [[ ! -f $work/disk.done ]]; then
  rm -f "$disk"
  mke2fs -q -F -t ext4 -d "$tree" "$disk" 4G
  touch "$work/disk.done"
fi
data_mib=$(( $(du -k "$disk" | cut -f1) / 1024 ))
tree_mib=$(( $(du -sk "$tree" | cut -f1) / 1024 ))

# Runs one command under /usr/bin/time; prints "seconds rss_kib". Dirty pages
# left by the previous command are flushed first (untimed), so neither tool
# pays for the other's writeback.
measure() {
  local log=$work/time.log
  sync
  # Timed: the conversion plus a sync, so both tools pay for getting their
  # output to disk (qemu-img fsyncs qcow2 and vpc output itself; imagesmith
  # and qemu-img's raw output leave that to the caller).
  /usr/bin/time -v -o "$log" sh -c '"$@" && sync' sh "$@" >/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  # wall is [h:]m:ss.cc
  python3 -c "
p='$wall'.split(':'); s=0.0
for x in p: s=s*60+float(x)
print(f'{s:.3f} $rss')"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cases=("raw|raw|-O raw"
       "vhd|vhd|-O vpc -o subformat=fixed"
       "vhd-dynamic|vhd-dynamic|-O vpc -o subformat=dynamic"
       "qcow2|qcow2|-O qcow2"
       "qcow2 --compress|qcow2 --compress|-O qcow2 -c")

# Warm the page cache so both tools read the source from memory.
cat "$disk" >/dev/null

{
  echo "# imagesmith disk convert vs qemu-img convert"
  echo
  echo "Source: 4 GiB sparse raw disk, ext4 holding a Debian tree of ${tree_mib} MiB"
  echo "(${data_mib} MiB allocated in the raw file). $(nproc) CPUs, $(qemu-img --version | head -1)."
  echo "One warm-up each, then median of $runs runs each (alternating which tool goes first), warm page cache for the source, \`sync\` (untimed)"
  echo "before every run; each timed command is the conversion followed by \`sync\`, so both tools"
  echo "pay for writing their output to disk. Output on the same filesystem as the source."
  echo
  echo "| format | imagesmith s | qemu-img s | time ratio (ours/qemu) | imagesmith peak RSS MiB | qemu-img peak RSS MiB | output MiB (ours / qemu) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$results.tmp"

for c in "${cases[@]}"; do
  IFS='|' read -r label ours qemu <<<"$c"
  out_ours=$work/out.ours
  out_qemu=$work/out.qemu
  t_ours=(); t_qemu=(); r_ours=0; r_qemu=0
  run_ours() { measure "$bin" disk convert "$disk" "$out_ours" --format $ours -o none; }
  run_qemu() { measure qemu-img convert -f raw $qemu "$disk" "$out_qemu"; }
  # One untimed warm-up each, then alternate which tool goes first: on this
  # shared machine the first run after a pause is often slow whoever it is.
  rm -f "$out_ours" "$out_qemu"; run_ours >/dev/null; run_qemu >/dev/null
  for ((i = 0; i < runs; i++)); do
    rm -f "$out_ours" "$out_qemu"
    if ((i % 2 == 0)); then
      read -r t r < <(run_ours); t_ours+=("$t"); (( r > r_ours )) && r_ours=$r
      read -r t r < <(run_qemu); t_qemu+=("$t"); (( r > r_qemu )) && r_qemu=$r
    else
      read -r t r < <(run_qemu); t_qemu+=("$t"); (( r > r_qemu )) && r_qemu=$r
      read -r t r < <(run_ours); t_ours+=("$t"); (( r > r_ours )) && r_ours=$r
    fi
  done
  mo=$(median "${t_ours[@]}"); mq=$(median "${t_qemu[@]}")
  so=$(( $(du -k "$out_ours" | cut -f1) / 1024 )); sq=$(( $(du -k "$out_qemu" | cut -f1) / 1024 ))
  ratio=$(python3 -c "print(f'{$mo/$mq:.2f}')")
  line="| $label | $mo | $mq | $ratio | $((r_ours / 1024)) | $((r_qemu / 1024)) | $so / $sq |"
  echo "$line" >&2
  echo "$line" >> "$results.tmp"
  rm -f "$out_ours" "$out_qemu"
done
mv "$results.tmp" "$results"
cat "$results"
