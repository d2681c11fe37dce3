#!/usr/bin/env bash
# Sets the project up on a fresh machine: npm packages, the Temporal CLI, the Python environment
# (and the S3 test server with --for-tests), Debian's chromium for the reports. Every step is cached and skipped when current.
set -euo pipefail
cd "$(dirname "$0")/.."

node -e '
const [maj, min] = process.versions.node.split(".").map(Number);
if (maj < 20 || (maj === 20 && min < 19)) { console.error(`Node ${process.versions.node} is too old: vla-pipelines needs Node >= 20.19`); process.exit(1); }'

stamp=node_modules/.vla-lock-sha256
want=$(sha256sum package-lock.json | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing npm packages from package-lock.json (npm ci)"
  # npm ci installs exactly the lock and never writes it, so a fresh clone stays clean (and its
  # runs record a clean git revision). The lock must list every platform's optional binaries
  # (test/unit/package-lock.test.ts checks): npm install would add missing ones to the lock.
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# --npm-only: the npm packages are all the fast lane (`npm run test:unit`) needs, so `npm test` runs it
# before the slower steps (Temporal CLI, Python environment, S3 server, chromium).
if [ "${1:-}" = "--npm-only" ]; then exit 0; fi

exec node_modules/.bin/tsx infra/setup.ts "$@"
