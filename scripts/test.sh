#!/usr/bin/env bash
# `npm test`: build (tsc + the bundle the CLI runs from), then every suite with the typecheck
# running beside it (two cores; the suites mostly wait on sshd, git and bakes). Any failure stops it
# with that failure's exit code; a type error fails the run even when every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run -s build || exit $?
npm run -s typecheck > .typecheck.log 2>&1 &
typecheck=$!
npx vitest run "$@"
tested=$?
wait "$typecheck"
typed=$?
cat .typecheck.log
rm -f .typecheck.log
if [ "$tested" -ne 0 ]; then exit "$tested"; fi
exit "$typed"
