#!/usr/bin/env bash
# The whole test suite: build, unit and integration tests (the CLI run as a process against
# VMware's simulator and a real OpenSSH server), then line coverage that counts the CLI
# processes the integration tests start (NODE_V8_COVERAGE is inherited by every child).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
npm run build
npm run typecheck
npm run lint
rm -rf coverage
mkdir -p coverage/raw
NODE_V8_COVERAGE="$PWD/coverage/raw" npx vitest run \
  --coverage.enabled --coverage.provider=v8 --coverage.include='src/**' \
  --coverage.reporter=json --coverage.reportsDirectory=coverage/in-process "$@"
node scripts/coverage.mjs
