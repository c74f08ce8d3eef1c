#!/bin/bash
# Times in-VM validation under whatever accelerator imagesmith picks (TCG on
# hosts where KVM does not work):
#   1. `imagesmith build examples/debian12-nginx.json` RUNS times in one data
#      directory, and from each run's customization.log: qemu start -> agent
#      ready, and the whole validate phase (the "==== validate ====" header to
#      "validation passed"). The first build probes KVM while it builds; the
#      later ones reuse the verdict cached in the data directory.
#   2. vm_bench on that build's disk, RUNS times: qemu start -> agent ready,
#      -> boot finished, and the whole phase with one validator.
# Prints the numbers and writes bench/vm/results.md. Run as root, on an idle
# host: under TCG every number scales with the CPU other work leaves over.
#
#   bench/vm/run.sh [BUILD_DIR] [RUNS]     # BUILD_DIR defaults to ./build, RUNS to 3
#   BENCH_QUICK=1 bench/vm/run.sh [BUILD_DIR]
#
# Quick mode (the CI test bench.vm): one build and one boot, results to
# $BENCH_RESULTS (default: a temp file, removed) instead of results.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
runs=${2:-3}
quick=${BENCH_QUICK:-0}
[ "$quick" = 1 ] && runs=1
bin=$build/imagesmith
[ -x "$bin" ] && [ -x "$build/src/vm/vm_bench" ] || { echo "build imagesmith and vm_bench in $build first" >&2; exit 1; }

home=$(mktemp -d /var/tmp/imagesmith-bench-vm.XXXXXX)
trap 'rm -rf "$home"' EXIT
results=${BENCH_RESULTS:-$here/results.md}
if [ "$quick" = 1 ]; then results=${BENCH_RESULTS:-$home/results.md}; fi
# Share the base image cache if there is one, so only the example is built.
if [ -d "${IMAGESMITH_BENCH_CATALOG:-$HOME/.local/share/imagesmith/catalog}" ]; then
  ln -s "${IMAGESMITH_BENCH_CATALOG:-$HOME/.local/share/imagesmith/catalog}" "$home/catalog"
fi
cd "$repo"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
builds=""
for i in $(seq 1 "$runs"); do
  # Each build writes a 4 GiB VHD at its end; flush it before the next build,
  # so its writeback does not land in the next build's validation.
  sync
  IMAGESMITH_HOME=$home "$bin" build examples/debian12-nginx.json > "$home/out.json"
  log=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["properties"]["lastRun"]["customizationLog"])' "$home/out.json")
  disk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["properties"]["lastRun"]["disk"])' "$home/out.json")
  line=$(python3 - "$log" "$i" <<'PY'
import re, sys, datetime
t = lambda l: datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f")
lines = open(sys.argv[1]).read().splitlines()
start = next(t(l) for l in lines if "==== validate ====" in l)
end = next(t(l) for l in lines if "validation passed" in l)
ready = next(re.search(r"agent ready ([0-9.]+) s", l).group(1) for l in lines if "agent ready" in l)
boot = next((re.search(r"another ([0-9.]+) s", l).group(1) for l in lines if "guest boot finished" in l), "?")
print(f"build {sys.argv[2]}: agent ready {ready} s after qemu start, boot finished {boot} s later, "
      f"whole validate phase {(end - start).total_seconds():.1f} s")
PY
)
  echo "$line"
  builds+="$line"$'\n'
done
median=$(printf '%s' "$builds" | python3 -c '
import re, sys
rows = [l for l in sys.stdin.read().splitlines() if l]
ready = sorted(float(re.search(r"agent ready ([0-9.]+)", l).group(1)) for l in rows)
phase = sorted(float(re.search(r"phase ([0-9.]+)", l).group(1)) for l in rows)
m = lambda v: v[len(v) // 2]
print(f"median of {len(rows)} builds: agent ready {m(ready):.1f} s, whole validate phase {m(phase):.1f} s")')
echo "$median"
sync
bench=$(IMAGESMITH_AGENT=$build/imagesmith-agent "$build/src/vm/vm_bench" "$disk" uefi "$runs")
echo "$bench"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cat > "$results" <<MD
# bench/vm results

Host: $(nproc) CPUs; load average before: $load_before, after: $load_after. Accelerator: as
imagesmith chose (doc/vm.md; TCG on this host). Command: \`bench/vm/run.sh $build $runs\`,
$(date -u +%Y-%m-%dT%H:%MZ). Targets (issue 5): agent ready <= 15 s, whole validation phase
<= 30 s.

The example (Gen2, OVMF), built $runs times in one data directory:

\`\`\`
$builds$median
\`\`\`

vm_bench on the example's disk (UEFI/OVMF), $runs boots:

\`\`\`
$bench
\`\`\`
MD
