#!/bin/bash
# Builds examples/debian12-nginx.json with imagesmith cold and warm (only the
# last customizer edited), and the same content with mkosi cold, in one run.
# Prints a table and writes bench/build/results.md. Run as root from anywhere.
#
#   bench/build/run.sh            # installs $BUILD (default ./build) into a temp prefix
#   BENCH_QUICK=1 bench/build/run.sh
#
# imagesmith runs as installed (`cmake --install BUILD --prefix TMP`): the
# binary in TMP/bin finds its guest agent in TMP/lib/imagesmith.
#
# The example boots its image to run inVMValidations; mkosi boots nothing. So
# the build time compared with mkosi is the run without its validate phase
# (from customization.log), and boot-and-validate is reported beside it.
#
# Quick mode (BENCH_QUICK=1, the CI test bench.build): the Debian base comes
# from $IMAGESMITH_BENCH_CATALOG (a catalog directory to share, e.g. the test
# cache) when set, mkosi is left out, and the results go to $BENCH_RESULTS
# (default: a temp file, removed) instead of results.md. It checks that every
# imagesmith step still runs, not how fast.
#
# Never names an apt mirror: mkosi gets the host's from /etc/apt at run time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

log() { printf '[bench/build] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

quick=${BENCH_QUICK:-0}
[ "$(id -u)" = 0 ] || die "run as root (imagesmith and mkosi both need it)"
[ "$quick" = 1 ] || command -v mkosi >/dev/null || die "mkosi is not installed (apt-get install mkosi)"

# --- imagesmith, installed ------------------------------------------------------
build=${BUILD:-$repo/build}
if [ ! -f "$build/build.ninja" ]; then
  log "configuring $build"
  cmake -S . -B "$build" -G Ninja >/dev/null
fi
ninja -C "$build" imagesmith imagesmith-agent imagesmith_docs imagesmith_changelog >/dev/null

work=$(mktemp -d /var/tmp/imagesmith-bench-build.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
# Others rebuild build/ concurrently; time a private, installed copy.
cmake --install "$build" --prefix "$work/prefix" >/dev/null
built_at=$(date -u -r "$build/imagesmith" +%Y-%m-%dT%H:%M:%SZ)
bin=$work/prefix/bin/imagesmith
[ -x "$work/prefix/lib/imagesmith/imagesmith-agent" ] ||
  die "the install has no lib/imagesmith/imagesmith-agent"
results=${BENCH_RESULTS:-$here/results.md}
if [ "$quick" = 1 ]; then results=${BENCH_RESULTS:-$work/results.md}; fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cores=$(nproc)

# --- imagesmith cold ----------------------------------------------------------
export IMAGESMITH_HOME=$work/home
mkdir -p "$IMAGESMITH_HOME"
if [ "$quick" = 1 ] && [ -n "${IMAGESMITH_BENCH_CATALOG:-}" ]; then
  mkdir -p "$IMAGESMITH_BENCH_CATALOG"
  ln -s "$IMAGESMITH_BENCH_CATALOG" "$IMAGESMITH_HOME/catalog"
  log "quick: the Debian base comes from $IMAGESMITH_BENCH_CATALOG"
fi
log "imagesmith cold (fresh IMAGESMITH_HOME, the Debian base is built too)"
t0=$(now)
"$bin" build -n debian12-nginx examples/debian12-nginx.json >"$work/cold.json" 2>"$work/cold.err" ||
  { tail -20 "$work/cold.err" >&2; die "cold imagesmith build failed"; }
t1=$(now)
is_cold=$(secs "$t0" "$t1")
"$bin" image-template logs -g imagesmith -n debian12-nginx >"$work/cold.log"
# Only the cold run exists yet.
disk=$(find "$work/home/runs" -name disk.raw | head -1)
# The VHD is written in the staging group (doc/build.md), not in the run directory.
vhd_cold=$(find "$work/home" -name '*.vhd' | head -1)
[ -n "$disk" ] && [ -n "$vhd_cold" ] || die "cold run left no disk.raw or VHD"
size() { du --apparent-size -m "$1" | cut -f1; }
used() { du -m "$1" | cut -f1; }
# Only installNginx changes the package database, so its layer holds the final one.
is_pkgs=$(grep -c '^Package:' "$(find "$work/home/cache/steps" -path '*/var/lib/dpkg/status' | head -1)")
cold_out="$is_pkgs packages; GPT disk $(size "$disk") MiB apparent / $(used "$disk") MiB used + fixed VHD $(size "$vhd_cold") MiB"

# --- imagesmith warm: edit only the last customizer ----------------------------
mkdir -p "$work/warm"
cp -r examples/files "$work/warm/files"
echo 'echo "bench: warm rebuild"' >>"$work/warm/files/configure-nginx.sh"
old_sum=$(sha256sum examples/files/configure-nginx.sh | cut -d' ' -f1)
new_sum=$(sha256sum "$work/warm/files/configure-nginx.sh" | cut -d' ' -f1)
grep -q "$old_sum" examples/debian12-nginx.json || die "the example's last checksum is not configure-nginx.sh's"
sed "s/$old_sum/$new_sum/" examples/debian12-nginx.json >"$work/warm/debian12-nginx.json"
log "imagesmith warm (configure-nginx.sh edited, same IMAGESMITH_HOME)"
t0=$(now)
"$bin" build -n debian12-nginx "$work/warm/debian12-nginx.json" >"$work/warm.json" 2>"$work/warm.err" ||
  { tail -20 "$work/warm.err" >&2; die "warm imagesmith build failed"; }
t1=$(now)
is_warm=$(secs "$t0" "$t1")
"$bin" image-template logs -g imagesmith -n debian12-nginx >"$work/warm.log"
grep -E 'cache (hit|miss)' "$work/warm.log" | sed 's/^[^ ]* //' >&2
for step in "customize\[0\] 'installNginx'" "customize\[1\] 'dropIndexPage'"; do
  grep -q "cache hit for $step" "$work/warm.log" || die "warm run: no cache hit for $step"
done
grep -q "cache miss for customize\[2\] 'configureNginx' (Shell): scriptUri content changed" "$work/warm.log" ||
  die "warm run: customize[2] was not rebuilt"
grep -q "==== source ====" "$work/warm.log"
if grep -q "mmdebstrap" "$work/warm.log"; then die "warm run rebuilt the Debian base"; fi
unset IMAGESMITH_HOME

# Time per phase of a run, from customization.log's header timestamps (the
# last phase ends at the log's last line).
phases() {
  awk '
    function t(s,   x) { split(substr(s, 12, 12), x, ":"); return x[1] * 3600 + x[2] * 60 + x[3] }
    / ==== / {
      name = $0; sub(/^[^=]*==== /, "", name); sub(/ ====.*$/, "", name)
      if (prev != "") printf "| %s | %.1f |\n", prev, t($1) - start
      prev = name; start = t($1)
    }
    /^[0-9][0-9][0-9][0-9]-/ { last = $1 }
    END { if (prev != "") printf "| %s | %.1f |\n", prev, t(last) - start }' "$1"
}
# Seconds of the validate phase: its header's and every validator's.
validate_secs() { phases "$1" | awk -F'|' '$2 ~ /^ validate/ { s += $3 } END { printf "%.1f", s }'; }
breakdown=$(phases "$work/cold.log")
warm_breakdown=$(phases "$work/warm.log")
grep -q "validation passed" "$work/cold.log" || die "the cold run did not pass its validations"
is_cold_val=$(validate_secs "$work/cold.log")
is_warm_val=$(validate_secs "$work/warm.log")
is_cold_build=$(awk -v a="$is_cold" -v b="$is_cold_val" 'BEGIN { printf "%.1f", a - b }')
is_warm_build=$(awk -v a="$is_warm" -v b="$is_warm_val" 'BEGIN { printf "%.1f", a - b }')

if [ "$quick" = 1 ]; then
  {
    echo "# bench/build quick run, $started_at: it completes (not timed for comparison)"
    echo
    echo "| build | wall time (s) | without validation (s) | boot and validate (s) |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| imagesmith cold | $is_cold | $is_cold_build | $is_cold_val |"
    echo "| imagesmith warm | $is_warm | $is_warm_build | $is_warm_val |"
  } >"$results"
  cat "$results"
  log "quick run complete (mkosi left out)"
  exit 0
fi

# --- mkosi cold ---------------------------------------------------------------
# mkosi 14 runs debootstrap against --mirror and writes the -updates source from
# it; the -security one it hard-codes is replaced by a skeleton tree holding the
# host's (skeleton trees are copied again after those sources are written).
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || die "no $sources (deb822) to take the mirror from"
mirror=$(awk '/^URIs:/ { print $2; exit }' "$sources")
security=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && /-security/ { print u; exit }' "$sources")
[ -n "$mirror" ] && [ -n "$security" ] || die "cannot read the mirror from $sources"
mkdir -p "$work/mkosi/skel/etc/apt/sources.list.d" "$work/mkosi/cache" "$work/mkosi/out" \
  "$work/mkosi/ws"
printf 'deb %s bookworm-security main\n' "$security" \
  >"$work/mkosi/skel/etc/apt/sources.list.d/bookworm-security.list"
log "mkosi $(mkosi --version | awk '{print $2}') cold (empty package cache)"
t0=$(now)
(cd "$here/mkosi" && mkosi --force --mirror="$mirror" --skeleton-tree="$work/mkosi/skel" \
  --cache="$work/mkosi/cache" --output-dir="$work/mkosi/out" --workspace-dir="$work/mkosi/ws" \
  build) >"$work/mkosi.log" 2>&1 || { tail -30 "$work/mkosi.log" >&2; die "mkosi build failed"; }
t1=$(now)
mk_cold=$(secs "$t0" "$t1")

# --- outputs ------------------------------------------------------------------
mk_tar=$(find "$work/mkosi/out" -name image.tar)
mk_initrd=$(find "$work/mkosi/out" -name image.initrd)
mk_pkgs=$(grep -c '"name"' "$(find "$work/mkosi/out" -name image.tar.manifest)" || true)

# mkosi boots nothing: compare the builds without their validate phase.
r_cold=$(awk -v a="$is_cold_build" -v b="$mk_cold" 'BEGIN { printf "%.2f", a / b }')
r_cold_all=$(awk -v a="$is_cold" -v b="$mk_cold" 'BEGIN { printf "%.2f", a / b }')
r_warm=$(awk -v a="$is_warm_build" -v b="$is_cold_build" 'BEGIN { printf "%.3f", a / b }')
pass_cold=$(awk -v r="$r_cold" 'BEGIN { print (r <= 1.0) ? "PASS" : "FAIL" }')
pass_warm=$(awk -v r="$r_warm" 'BEGIN { print (r <= 0.15) ? "PASS" : "FAIL" }')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)


table=$(cat <<EOF
| build | build without validation (s) | boot and validate (s) | wall time (s) | output |
| --- | ---: | ---: | ---: | --- |
| imagesmith cold | $is_cold_build | $is_cold_val | $is_cold | $cold_out |
| imagesmith warm | $is_warm_build | $is_warm_val | $is_warm | same, configure-nginx.sh edited |
| mkosi cold | $mk_cold | (boots nothing) | $mk_cold | $mk_pkgs packages; tar $(size "$mk_tar") MiB + kernel + initrd $(size "$mk_initrd") MiB |

| ratio (builds without validation) | value | target | result |
| --- | ---: | ---: | --- |
| imagesmith cold / mkosi cold | $r_cold | <= 1.0 | $pass_cold |
| imagesmith warm / imagesmith cold | $r_warm | <= 0.15 | $pass_warm |

With its validation (boot and validate included), imagesmith cold / mkosi cold is $r_cold_all.
EOF
)

echo "$table"
echo
echo "imagesmith cold, by phase (s):"
echo "$breakdown"
echo "imagesmith warm, by phase (s):"
echo "$warm_breakdown"

cat >"$results" <<EOF
# bench/build results

Written by \`bench/build/run.sh\` on $started_at. See README.md for what is compared.

Machine: $cores cores, load average $load_start at the start and $load_end at the end
(others were running tests on it). $("$bin" --version), built $built_at and run
installed (\`cmake --install\` into a temp prefix); mkosi $(mkosi --version | awk '{print $2}').
The build time compared with mkosi's leaves out imagesmith's validate phase (booting the image
under qemu, TCG here, and running the example's two inVMValidations): mkosi boots nothing.

$table

## imagesmith cold, by phase

From the header timestamps in the cold run's customization.log (the source phase is the
mmdebstrap base build; the disk phase includes the boot files and mke2fs; validate is the
boot of the image and its validators; the VHD is the distribute phase).

| phase | seconds |
| --- | ---: |
$breakdown

## imagesmith warm, by phase

| phase | seconds |
| --- | ---: |
$warm_breakdown

## Warm run cache lines

\`\`\`
$(grep -E 'cache (hit|miss)' "$work/warm.log" | sed 's/^[^ ]* //')
\`\`\`
EOF
log "wrote $results"
