#!/bin/bash
# Lints src/server/openapi.json with Redocly CLI (recommended-strict: any
# warning fails), from the project-local node_modules that ./setup.sh installs
# with `npm ci` from tests/openapi/package-lock.json. The ctest openapi.lint.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
redocly=$here/node_modules/.bin/redocly
[ -x "$redocly" ] || { echo "missing $redocly: run ./setup.sh (npm ci in tests/openapi)" >&2; exit 1; }
cd "$here"
exec "$redocly" lint --config "$here/redocly.yaml" "$repo/src/server/openapi.json"
