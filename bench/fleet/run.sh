#!/bin/bash
# bench/fleet: (a) time from the qemu driver's Create of one node to its
# agent's hello, against the same disk booted by plain qemu-system-x86_64 to
# the agent's hello (the peer, booted at the same time in each run); (b) disk
# bytes per extra node after boot (the overlay's allocated bytes) against a
# full copy of the image per node. Results: bench/fleet/README.md.
#
#   bench/fleet/run.sh [RUNS]    (default 3, 1 with BENCH_QUICK=1; needs a build
#                                 in ./build or $BUILD)
# The Debian 12 base comes from $IMAGESMITH_TEST_CACHE (built there once).
# The summary lines also go to $BENCH_RESULTS when it is set (tests/bench/quick.sh).
set -euo pipefail
runs=${1:-$([ "${BENCH_QUICK:-}" = 1 ] && echo 1 || echo 3)}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
bench=$build/src/fleet/fleet_bench
export IMAGESMITH_AGENT=${IMAGESMITH_AGENT:-$build/imagesmith-agent}
cache=${IMAGESMITH_TEST_CACHE:?set IMAGESMITH_TEST_CACHE to the catalog cache of the tests}
work=$(mktemp -d /var/tmp/imagesmith-fleet-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" disk "$cache" "$work/disk.raw"
node=() peer=() overlay=()
for i in $(seq "$runs"); do
  # The peer and the node boot at the same time, so both see the same load
  # on this shared host; each run gives one ratio.
  "$bench" peer "$work/disk.raw" "$work/p$i" >"$work/p$i.out" &
  ppid=$!
  n=$("$bench" node "$work/disk.raw" "$work/n$i")
  wait $ppid
  p=$(sed -n 's/^peer ready \([0-9.]*\) s$/\1/p' "$work/p$i.out")
  echo "run $i: peer ${p} s; $n; load $(cut -d' ' -f1 /proc/loadavg)"
  peer+=("$p")
  node+=("$(sed -n 's/.*ready \([0-9.]*\) s,.*/\1/p' <<<"$n")")
  overlay+=("$(sed -n 's/.*overlay \([0-9]*\) bytes.*/\1/p' <<<"$n")")
  rm -rf "$work/p$i" "$work/n$i" "$work/p$i.out"
done
python3 - "$work/disk.raw" "${peer[*]}" "${node[*]}" "${overlay[*]}" <<'PY' | tee -a "${BENCH_RESULTS:-/dev/null}"
import os, statistics, sys
disk = sys.argv[1]
peer = [float(x) for x in sys.argv[2].split()]
node = [float(x) for x in sys.argv[3].split()]
over = [int(x) for x in sys.argv[4].split()]
st = os.stat(disk)
size, alloc = st.st_size, st.st_blocks * 512
mp, mn, mo = statistics.median(peer), statistics.median(node), statistics.median(over)
ratios = [n / p for n, p in zip(node, peer)]
print(f"boot to hello, median of {len(peer)}: peer {mp:.2f} s, node {mn:.2f} s; "
      f"per-run ratios {', '.join(f'{r:.2f}' for r in ratios)}, median "
      f"{statistics.median(ratios):.2f}x (target <= 1.2x)")
print(f"per node after boot: overlay {mo / 2**20:.1f} MiB; a full copy {size / 2**20:.0f} MiB "
      f"({alloc / 2**20:.0f} MiB allocated when sparse): {100 * mo / size:.2f}% of the image's "
      f"size, {100 * mo / alloc:.2f}% of its allocated bytes (target <= 2%)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
