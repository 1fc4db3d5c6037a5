#!/usr/bin/env bash
# Installs what is missing, builds ceso and the bundled simulator, and runs a real job against it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build >/dev/null
bash test/testbed/build.sh
node scripts/run-ts.mjs scripts/demo.ts
