#!/bin/bash
# bench/fleet: the Batch pool controller's CPU time for a 2,500-node pool
# resize with the sim node driver (issue 12). Each run makes a fresh data
# directory, a managed image from a small file, and times
#   imagesmith batch pool create --target-dedicated-nodes 2500 --node-driver sim
# which runs the controller in the foreground until the pool is steady (every
# node idle), then a resize to 3,500 (2,500 + 1,000 low-priority) and a shrink
# back to 0. Reports user + system CPU seconds of the process (the controller
# and the SQLite writes it makes), wall time, and CPU per node.
#
#   bench/fleet/batch_resize.sh [RUNS]   (default 3; needs a build in ./build)
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build/imagesmith
work=$(mktemp -d /var/tmp/imagesmith-batch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export IMAGESMITH_SIM_BOOT_MIN_MS=${IMAGESMITH_SIM_BOOT_MIN_MS:-200}
export IMAGESMITH_SIM_BOOT_MAX_MS=${IMAGESMITH_SIM_BOOT_MAX_MS:-800}
truncate -s 8M "$work/disk.raw"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
measure() {  # label, command...: prints "label cpu wall"
  local label=$1; shift
  /usr/bin/time -f "%U %S %e" -o "$work/time" "$@" >/dev/null
  read -r u s e <"$work/time"
  python3 -c "print('$label', round($u + $s, 2), $e)"
}
for i in $(seq "$runs"); do
  export IMAGESMITH_HOME=$work/home$i
  "$bin" group create -n batch -l eastus >/dev/null
  img=$("$bin" image create -g batch -n img --source "$work/disk.raw" --os-type Linux |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  c=$(measure create "$bin" batch pool create --id big --vm-size Standard_A1_v2 --image "$img" \
        --node-agent-sku-id "batch.node.debian 12" --target-dedicated-nodes 2500 --node-driver sim)
  g=$(measure grow "$bin" batch pool resize --pool-id big --target-dedicated-nodes 2500 \
        --target-low-priority-nodes 1000)
  s=$(measure shrink "$bin" batch pool resize --pool-id big --target-dedicated-nodes 0 \
        --target-low-priority-nodes 0)
  echo "run $i: $c | $g | $s | load $(cut -d' ' -f1 /proc/loadavg)"
  rm -rf "$IMAGESMITH_HOME"
done
