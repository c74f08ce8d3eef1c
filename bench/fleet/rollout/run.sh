#!/bin/bash
# The rollout controller's CPU time and peak memory for a 1,000-instance sim
# rollout at 0%, 10% and 30% boot failures on the new image (README.md).
# Writes bench/fleet/rollout/results.md.
#
#   bench/fleet/rollout/run.sh     # builds into build/ unless $BUILD names one
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
build=${BUILD:-$repo/build}
[ -f "$build/build.ninja" ] || cmake -S "$repo" -B "$build" -G Ninja >/dev/null
ninja -C "$build" rollout_bench >/dev/null
n=${INSTANCES:-1000}
out=$("$build/bench/fleet/rollout/rollout_bench" "$n" 0 0.10 0.30)
{
  echo "# Rollout controller cost ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "\`bench/fleet/rollout/run.sh\`: $n sim instances, default policy (20% batches,"
  echo "20% gates, 5-minute health deadline), one controller step per simulated second."
  echo "Peak RSS is the whole process's, the sim fleet included."
  echo
  echo "| failures | outcome | batches | steps | CPU s | CPU µs per instance-step | peak RSS MiB |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  while read -r line; do
    python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print("| %d%% | %s (%d ok, %d failed, %d rolled back) | %d | %d | %.2f | %.3f | %.1f |" % (
    round(r["failureRate"] * 100), r["status"], r["succeeded"], r["failed"], r["rolledBack"],
    r["batches"], r["steps"], r["cpuSeconds"], r["cpuMicrosPerInstanceStep"],
    r["peakRssKiB"] / 1024))
PY
  done <<<"$out"
} >"$here/results.md"
cat "$here/results.md"
