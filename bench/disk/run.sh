#!/usr/bin/env bash
# Benchmark: imagesmith disk convert against qemu-img convert.
#
# Builds a Debian tree with mmdebstrap from the host's apt sources, puts it in
# an ext4 filesystem on a sparse 4 GiB raw disk (mke2fs -d), then converts that
# disk to raw, VHD fixed, VHD dynamic, qcow2 and compressed qcow2 with both
# tools, side by side in the same run. Reports wall time (median and range of RUNS),
# the time ratio imagesmith/qemu-img and peak RSS (from /usr/bin/time), and
# writes the table to bench/disk/results.md.
#
# Usage: bench/disk/run.sh [IMAGESMITH_BINARY]
# Environment: BENCH_DIR (work dir, default /var/tmp/imagesmith-disk-bench;
#              the Debian tree and the disk are cached there), RUNS (default 11),
#              RUNS_COMPRESS (runs for --compress, default 3; it takes ~10-20 s a run),
#              ONLY (run only the formats whose label matches this regex),
#              RESULTS (where to write the table, default bench/disk/results.md),
#              BENCH_QUICK=1 (the CI test bench.disk: a small tree of this repository's
#              sources on a 256 MiB disk instead of a Debian tree on 4 GiB, one run of
#              each, in a temp BENCH_DIR, results to a temp file unless RESULTS is set).
# Needs root (mmdebstrap in root mode), mmdebstrap, e2fsprogs, qemu-utils, time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/build/imagesmith}
work=${BENCH_DIR:-/var/tmp/imagesmith-disk-bench}
runs=${RUNS:-11}
runs_compress=${RUNS_COMPRESS:-3}
results=${RESULTS:-$here/results.md}
quick=${BENCH_QUICK:-0}
disk_size=4G
if [[ $quick == 1 ]]; then
  runs=1 runs_compress=1 disk_size=256M
  work=$(mktemp -d /var/tmp/imagesmith-disk-bench-quick.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  results=${RESULTS:-$work/results.md}
fi

for tool in mmdebstrap mke2fs qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "imagesmith binary not found: $bin" >&2; exit 1; }
mkdir -p "$work"

# 1. A Debian tree: minbase plus a kernel (its modules are most of the data),
#    about 600 MiB. Suite and mirrors come from the host's apt configuration.
tree=$work/tree
if [[ $quick == 1 ]]; then
  mkdir -p "$tree"
  cp -a "$repo/src" "$repo/doc" "$repo/examples" "$tree/"
  touch "$work/tree.done"
fi
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
  mke2fs -q -F -t ext4 -d "$tree" "$disk" "$disk_size"
  touch "$work/disk.done"
fi
data_mib=$(( $(du -k "$disk" | cut -f1) / 1024 ))
tree_mib=$(( $(du -sk "$tree" | cut -f1) / 1024 ))

# Runs one conversion: prints "total_s convert_s rss_kib". Everything dirty on
# the machine is flushed first (untimed), so no run pays for an earlier one's
# writeback. Timed: the conversion, then `sync OUT` (fsync of that one file),
# so each tool pays for getting exactly its own output to disk and for nobody
# else's dirty data. Neither tool makes its output durable by itself:
# qemu-img convert opens the target with cache=unsafe (flushes ignored; its
# only fdatasyncs are on the empty file during create), and imagesmith leaves
# durability to the caller (convert.h). convert_s is the conversion alone
# (until the process exits), the part that runs against the page cache.
measure() {
  local out=$1; shift
  local log=$work/time.log
  sync
  local t0=$EPOCHREALTIME
  /usr/bin/time -f '%M' -o "$log" "$@" >/dev/null
  local t1=$EPOCHREALTIME
  sync "$out"
  local t2=$EPOCHREALTIME
  python3 -c "print(f'{$t2-$t0:.3f} {$t1-$t0:.3f} $(tail -1 "$log")')"
}

# Summaries of a list of numbers.
stats() { printf '%s\n' "$@" | python3 -c '
import sys, statistics as st
v = [float(x) for x in sys.stdin.read().split()]
print(f"{st.median(v):.3f} {min(v):.3f} {max(v):.3f}")'; }

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
  echo "Source: $disk_size sparse raw disk, ext4 holding a tree of ${tree_mib} MiB"
  echo "(${data_mib} MiB allocated in the raw file). $(nproc) CPUs, $(qemu-img --version | head -1)."
  echo "Output on the same filesystem as the source; warm page cache for the source."
  echo "One untimed warm-up each, then $runs runs each ($runs_compress for --compress), alternating which"
  echo "tool goes first. Before every run \`sync\` (untimed). Timed: the conversion followed by"
  echo "\`sync OUT\` (fsync of the output alone), so both tools pay for getting their own output"
  echo "to disk. Times are median [min-max] in seconds. \"paired\" is the median over runs of"
  echo "ours/qemu within the same pair (adjacent in time, so load changes hit both)."
  echo "\"convert only\" is the same runs timed until the process exits, before the fsync."
  echo
  echo "| format | imagesmith s | qemu-img s | ratio (medians) | ratio (paired) | convert only: ours / qemu s (paired ratio) | peak RSS MiB ours / qemu | output MiB ours / qemu |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$results.tmp"

for c in "${cases[@]}"; do
  IFS='|' read -r label ours qemu <<<"$c"
  [[ -n ${ONLY:-} && ! $label =~ $ONLY ]] && continue
  out_ours=$work/out.ours
  out_qemu=$work/out.qemu
  n=$runs
  [[ $label == *compress* ]] && n=$runs_compress
  t_ours=(); t_qemu=(); c_ours=(); c_qemu=(); pair=(); cpair=(); r_ours=0; r_qemu=0
  run_ours() { measure "$out_ours" "$bin" disk convert "$disk" "$out_ours" --format $ours -o none; }
  run_qemu() { measure "$out_qemu" qemu-img convert -f raw $qemu "$disk" "$out_qemu"; }
  # One untimed warm-up each, then alternate which tool goes first: on this
  # shared machine the first run after a pause is often slow whoever it is.
  rm -f "$out_ours" "$out_qemu"; run_ours >/dev/null; run_qemu >/dev/null
  for ((i = 0; i < n; i++)); do
    rm -f "$out_ours" "$out_qemu"
    if ((i % 2 == 0)); then
      read -r to co ro < <(run_ours); read -r tq cq rq < <(run_qemu)
    else
      read -r tq cq rq < <(run_qemu); read -r to co ro < <(run_ours)
    fi
    t_ours+=("$to"); c_ours+=("$co"); t_qemu+=("$tq"); c_qemu+=("$cq")
    (( ro > r_ours )) && r_ours=$ro; (( rq > r_qemu )) && r_qemu=$rq
    pair+=("$(python3 -c "print($to/$tq)")"); cpair+=("$(python3 -c "print($co/$cq)")")
    echo "  $label run $i: ours $to s (convert $co), qemu $tq s (convert $cq)" >&2
  done
  read -r mo lo ho < <(stats "${t_ours[@]}"); read -r mq lq hq < <(stats "${t_qemu[@]}")
  read -r cmo _ _ < <(stats "${c_ours[@]}"); read -r cmq _ _ < <(stats "${c_qemu[@]}")
  read -r pr plo phi < <(stats "${pair[@]}"); read -r cpr _ _ < <(stats "${cpair[@]}")
  so=$(( $(du -k "$out_ours" | cut -f1) / 1024 )); sq=$(( $(du -k "$out_qemu" | cut -f1) / 1024 ))
  ratio=$(python3 -c "print(f'{$mo/$mq:.2f}')")
  line="| $label | $mo [$lo-$ho] | $mq [$lq-$hq] | $ratio | $(printf '%.2f [%.2f-%.2f]' "$pr" "$plo" "$phi") | $cmo / $cmq ($(printf '%.2f' "$cpr")) | $((r_ours / 1024)) / $((r_qemu / 1024)) | $so / $sq |"
  echo "$line" >&2
  echo "$line" >> "$results.tmp"
  rm -f "$out_ours" "$out_qemu"
done
mv "$results.tmp" "$results"
cat "$results"
