#!/usr/bin/env bash
# `npm test`: build (tsc + the bundle the CLI runs from) and typecheck side by side (two cores,
# ~6 s saved), then every suite. Any failure stops it with that failure's exit code.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run -s build &
build=$!
npm run -s typecheck
typecheck=$?
wait "$build"
built=$?
if [ "$built" -ne 0 ]; then exit "$built"; fi
if [ "$typecheck" -ne 0 ]; then exit "$typecheck"; fi
exec npx vitest run "$@"
