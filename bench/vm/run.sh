#!/bin/bash
# Times in-VM validation under whatever accelerator imagesmith picks (TCG on
# hosts where KVM does not work):
#   1. `imagesmith build examples/debian12-nginx.json` once, and from its
#      customization.log: qemu start -> agent ready, and the whole validate
#      phase (the "==== validate ====" header to "validation passed").
#   2. vm_bench on that build's disk, RUNS times (default 3): qemu start ->
#      agent ready, -> boot finished, and the whole phase with one validator.
# Prints the numbers and writes bench/vm/results.md. Run as root.
#
#   bench/vm/run.sh [BUILD_DIR] [RUNS]     # BUILD_DIR defaults to ./build
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
runs=${2:-3}
bin=$build/imagesmith
[ -x "$bin" ] && [ -x "$build/src/vm/vm_bench" ] || { echo "build imagesmith and vm_bench in $build first" >&2; exit 1; }

home=$(mktemp -d /var/tmp/imagesmith-bench-vm.XXXXXX)
trap 'rm -rf "$home"' EXIT
# Share the base image cache if there is one, so only the example is built.
if [ -d "${IMAGESMITH_BENCH_CATALOG:-$HOME/.local/share/imagesmith/catalog}" ]; then
  ln -s "${IMAGESMITH_BENCH_CATALOG:-$HOME/.local/share/imagesmith/catalog}" "$home/catalog"
fi
cd "$repo"
IMAGESMITH_HOME=$home "$bin" build examples/debian12-nginx.json > "$home/out.json"
log=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["properties"]["lastRun"]["customizationLog"])' "$home/out.json")
disk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["properties"]["lastRun"]["disk"])' "$home/out.json")
phase=$(python3 - "$log" <<'PY'
import re, sys, datetime
t = lambda l: datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f")
lines = open(sys.argv[1]).read().splitlines()
start = next(t(l) for l in lines if "==== validate ====" in l)
end = next(t(l) for l in lines if "validation passed" in l)
ready = next(re.search(r"agent ready ([0-9.]+) s", l).group(1) for l in lines if "agent ready" in l)
print(f"{ready} {(end - start).total_seconds():.1f}")
PY
)
set -- $phase
echo "example build: agent ready $1 s after qemu start; whole validate phase $2 s"
nproc=$(nproc); load=$(cut -d' ' -f1-3 /proc/loadavg)
bench=$(IMAGESMITH_AGENT=$build/imagesmith-agent "$build/src/vm/vm_bench" "$disk" uefi "$runs")
echo "$bench"
cat > "$here/results.md" <<MD
# bench/vm results

Host: $nproc CPUs, load average at the end: $load. Accelerator: as imagesmith chose
(see doc/vm.md; TCG on this host). Command: \`bench/vm/run.sh $build $runs\`.

| what | seconds |
| --- | --- |
| example build: qemu start -> agent ready | $1 |
| example build: whole validate phase (overlay, boot, wait for boot, 2 validators, power-off) | $2 |

vm_bench on the example's disk (UEFI/OVMF), $runs runs:

\`\`\`
$bench
\`\`\`
MD
