#!/bin/bash
# Runs one benchmark, bench/NAME/run.sh, in its quick mode (BENCH_QUICK=1:
# small inputs, one repetition) and checks that it completes and writes its
# results. The ctest tests bench.NAME.quick run this for every bench/
# directory, so a benchmark cannot stop working unnoticed.
#
#   tests/bench/quick.sh NAME BUILD_DIR
set -euo pipefail
name=$1
build=$(cd "$2" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
script=$repo/bench/$name/run.sh
[ -x "$script" ] || { echo "no executable $script" >&2; exit 1; }
out=$(mktemp -d /var/tmp/imagesmith-bench-quick.XXXXXX)
trap 'rm -rf "$out"' EXIT
export BENCH_QUICK=1 BUILD=$build
# Each bench has its own way to be told where things are.
export BENCH_RESULTS=$out/results.md RESULTS=$out/results.md
# Share the tests' Debian base (setup.sh run_tests), so no bench builds it again.
if [ -n "${IMAGESMITH_TEST_CACHE:-}" ]; then export IMAGESMITH_BENCH_CATALOG=$IMAGESMITH_TEST_CACHE; fi
start=$(date +%s)
case $name in
  vm) "$script" "$build" ;;
  disk) "$script" "$build/imagesmith" ;;
  *) "$script" ;;
esac
took=$(( $(date +%s) - start ))
[ -s "$out/results.md" ] || { echo "bench/$name/run.sh wrote no results" >&2; exit 1; }
echo "bench/$name quick run completed in ${took} s"
