#!/usr/bin/env bash
# The console's first-load benchmark (bench/console/README.md): runs run.mjs
# with node. BUILD (default build/), RESULTS (default
# bench/console/results.md), RUNS (cold loads per page, default 7);
# BENCH_QUICK=1: one load each, results to a temp file unless RESULTS is set
# (the ctest bench.console.quick).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD:-$repo/build}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  export RUNS=1
  if [[ -z ${RESULTS:-} ]]; then
    tmp=$(mktemp -d /var/tmp/imagesmith-console-bench-quick.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    export RESULTS=$tmp/results.md
  fi
fi
for tool in node nginx; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
exec node "$here/run.mjs" "$build"
