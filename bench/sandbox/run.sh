#!/bin/bash
# The cost of the customizer sandbox's security boundary (doc/sandbox.md):
#
#  1. examples/debian12-nginx.json built with the boundary (the default) and
#     with the old sandbox (IMAGESMITH_SANDBOX_ISOLATION=legacy: real root, host
#     network), --no-cache, interleaved, ROUNDS times each, after one warm-up
#     build that makes the Debian base. Target: at most 5% slower.
#  2. One package download (a kernel image package, ~60-70 MB, its URL taken
#     from the host's apt configuration at run time) with curl on the host
#     network and through pasta in a network namespace set up exactly as the
#     sandbox does it, interleaved, DOWNLOADS times each. Target: at most 1.2x.
#
#   bench/sandbox/run.sh            # uses $IMAGESMITH, or ./build/imagesmith
#   ROUNDS=3 DOWNLOADS=7 bench/sandbox/run.sh
#   BENCH_HOME=/var/tmp/isb-home bench/sandbox/run.sh   # keep the data directory
#   BENCH_QUICK=1 bench/sandbox/run.sh   # CI's check that it still runs: one round
#       of a small template (bench/sandbox/quick.json, one package install, no
#       validation), one download, the Debian base from $IMAGESMITH_BENCH_CATALOG,
#       results to $BENCH_RESULTS
#
# Prints a table and writes bench/sandbox/results.md. Run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { printf '[bench/sandbox] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v pasta >/dev/null || die "pasta is not installed (apt-get install passt)"

quick=${BENCH_QUICK:-0}
template=examples/debian12-nginx.json
if [ "$quick" = 1 ]; then
  ROUNDS=1 DOWNLOADS=1 template=bench/sandbox/quick.json
fi
ROUNDS=${ROUNDS:-2}
DOWNLOADS=${DOWNLOADS:-5}
SKIP_BUILDS=${SKIP_BUILDS:-0}
results=${BENCH_RESULTS:-$here/results.md}
bin=${IMAGESMITH:-${BUILD:-$repo/build}/imagesmith}
[ -x "$bin" ] || die "no imagesmith binary at $bin (build it first)"

# Short paths: the validation VM's agent socket path must fit in 107 bytes.
work=$(mktemp -d /var/tmp/isb.XXXXXX)
holder=""
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A private copy (others may rebuild build/), with the guest agent beside it.
cp "$bin" "$work/imagesmith"
agent=$(dirname "$bin")/imagesmith-agent
[ -x "$agent" ] || die "no $agent (ninja -C build imagesmith-agent)"
cp "$agent" "$work/imagesmith-agent"
bin=$work/imagesmith
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. the example build ------------------------------------------------------
new_times=() old_times=()
if [ "$SKIP_BUILDS" != 1 ]; then
  # BENCH_HOME keeps the data directory (and its Debian base) between runs.
  export IMAGESMITH_HOME=${BENCH_HOME:-$work/h}
  mkdir -p "$IMAGESMITH_HOME"
  if [ "$quick" = 1 ] && [ -n "${IMAGESMITH_BENCH_CATALOG:-}" ] && [ ! -e "$IMAGESMITH_HOME/catalog" ]; then
    mkdir -p "$IMAGESMITH_BENCH_CATALOG"
    ln -s "$IMAGESMITH_BENCH_CATALOG" "$IMAGESMITH_HOME/catalog"
    log "quick: the Debian base comes from $IMAGESMITH_BENCH_CATALOG"
  fi
  if [ "$quick" != 1 ] || [ -z "${IMAGESMITH_BENCH_CATALOG:-}" ]; then
    log "warm-up build (makes the Debian base once)"
    "$bin" build "$template" >"$work/warm.out" 2>&1 || { tail -20 "$work/warm.out"; die "warm-up build failed"; }
  fi
  for r in $(seq 1 "$ROUNDS"); do
    for mode in legacy boundary; do
      sync
      t0=$(now)
      if [ "$mode" = legacy ]; then
        IMAGESMITH_SANDBOX_ISOLATION=legacy "$bin" build --no-cache "$template" >"$work/$mode-$r.out" 2>&1 || { tail -20 "$work/$mode-$r.out"; die "$mode build $r failed"; }
      else
        "$bin" build --no-cache "$template" >"$work/$mode-$r.out" 2>&1 || { tail -20 "$work/$mode-$r.out"; die "$mode build $r failed"; }
      fi
      t=$(secs "$t0" "$(now)")
      log "round $r $mode: $t s"
      if [ "$mode" = legacy ]; then old_times+=("$t"); else new_times+=("$t"); fi
    done
  done
fi

# --- 2. a package download -----------------------------------------------------
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || pkg=linux-image-amd64
url=$(cd "$work" && apt-get download --print-uris "$pkg" 2>/dev/null | awk -F"'" 'NR == 1 { print $2 }')
[ -n "$url" ] || die "apt-get download --print-uris $pkg gave no URL"
# The sandbox's network: a namespace held by a capability-less process, and
# pasta with the sandbox's own options (src/sandbox/isolation.cc).
unshare --net setpriv --bounding-set -all --inh-caps -all sleep 100000 &
holder=$!
sleep 0.3
exec 3</proc/$holder/ns/net
setpriv --pdeathsig KILL -- pasta --foreground --quiet --runas 0:0 --config-net -t none -u none \
  -T none -U none --no-map-gw --netns /proc/self/fd/3 >/dev/null 2>&1 3<&3 &
pasta_pid=$!
exec 3<&-
for i in $(seq 1 500); do grep -q $'\t00000000\t' /proc/$holder/net/route 2>/dev/null && break; sleep 0.01; done
host_dl=() pasta_dl=()
bytes=0
for i in $(seq 1 "$DOWNLOADS"); do
  h=$(curl -sS -o /dev/null -w '%{time_total} %{size_download}' "$url")
  p=$(nsenter --net=/proc/$holder/ns/net curl -sS -o /dev/null -w '%{time_total} %{size_download}' "$url")
  host_dl+=("${h% *}"); pasta_dl+=("${p% *}"); bytes=${h#* }
  log "download $i: host ${h% *} s, pasta ${p% *} s ($bytes bytes)"
done
kill "$pasta_pid" "$holder" 2>/dev/null || true
holder=""

host_med=$(printf '%s\n' "${host_dl[@]}" | median)
pasta_med=$(printf '%s\n' "${pasta_dl[@]}" | median)
dl_ratio=$(awk -v a="$pasta_med" -v b="$host_med" 'BEGIN { printf "%.2f", a / b }')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# bench/sandbox results"
  echo
  echo "Measured $started_at on $(nproc) shared cores (load average $load_start at the start, $load_end at the end); binary built $(date -u -r "${IMAGESMITH:-$repo/build/imagesmith}" +%Y-%m-%dT%H:%M:%SZ)."
  echo
  if [ ${#new_times[@]} -gt 0 ]; then
    new_med=$(printf '%s\n' "${new_times[@]}" | median)
    old_med=$(printf '%s\n' "${old_times[@]}" | median)
    ratio=$(awk -v a="$new_med" -v b="$old_med" 'BEGIN { printf "%.3f", a / b }')
    echo "## $template, --no-cache, $ROUNDS rounds interleaved (target: at most 1.05x)"
    echo
    echo "| sandbox | builds (s) | median (s) |"
    echo "| --- | --- | --- |"
    echo "| old (real root, host network) | ${old_times[*]} | $old_med |"
    echo "| boundary (user namespace, seccomp, pasta) | ${new_times[*]} | $new_med |"
    echo
    echo "Ratio boundary / old: **$ratio**."
    echo
  fi
  echo "## One package download ($pkg, $bytes bytes), $DOWNLOADS interleaved (target: at most 1.2x)"
  echo
  echo "| network | downloads (s) | median (s) |"
  echo "| --- | --- | --- |"
  echo "| host | ${host_dl[*]} | $host_med |"
  echo "| pasta (the sandbox's) | ${pasta_dl[*]} | $pasta_med |"
  echo
  echo "Ratio pasta / host: **$dl_ratio**."
} | tee "$results.new"
mv "$results.new" "$results"
