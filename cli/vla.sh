#!/usr/bin/env bash
# `vla` on PATH (npm link) or run directly: the CLI through tsx, from the repository it lives in.
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
exec "$here/node_modules/.bin/tsx" "$here/cli/main.ts" "$@"
