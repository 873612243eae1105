#!/usr/bin/env bash
# The whole test suite: unit and integration tiers against a real QEMU and the sample guest.
# The last line is "N passed, N failed", counted from mocha's results.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bash scripts/setup.sh
say "Sample guest (built once, then cached outside the clone)"
node dist/cli.js guest build
say "Type-checking and compiling the tests (tsc, strict)"
rm -rf out test-results
node_modules/.bin/tsc -p tsconfig.json --noEmit
node_modules/.bin/tsc -p tsconfig.test.json
say "Running mocha: unit, then integration"
set +e
node_modules/.bin/mocha --reporter ./test/support/reporter.js --timeout 20000 'out/test/unit/**/*.test.js' 'out/test/integration/**/*.test.js'
status=$?
set -e
exit $status
