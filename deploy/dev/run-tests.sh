#!/usr/bin/env bash
# Runs every test of the workspace and fails if any test fails, is ignored, or if none ran. Prints
# a closing "N passed, N failed, N skipped" line over all test binaries.
#
# No test may depend on the day or the hour it runs: every test binary runs with the machine's
# clock moved to a random moment between 2026 and 2036 (deploy/dev/test-clock.sh, libfaketime),
# printed first so that a failure can be replayed with CANTEEN_TEST_CLOCK="YYYY-MM-DD HH:MM:SS"
# (the moment the tests start at, in the local time zone; CANTEEN_TEST_CLOCK=real runs on the
# machine's own clock).
set -euo pipefail

if [ -z "${CANTEEN_TEST_CLOCK:-}" ]; then
    first=$(date -d 2026-01-01 +%s)
    last=$(date -d 2037-01-01 +%s)
    CANTEEN_TEST_CLOCK=$(date -d "@$(shuf -i "$first-$last" -n 1)" '+%Y-%m-%d %H:%M:%S')
fi
if [ "$CANTEEN_TEST_CLOCK" != real ]; then
    offset=$(( $(date -d "$CANTEEN_TEST_CLOCK" +%s) - $(date +%s) ))
    if [ "$offset" -ge 0 ]; then
        offset="+$offset"
    fi
    export CANTEEN_TEST_CLOCK_OFFSET_S="$offset"
fi
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${host}_RUNNER=$(cd "$(dirname "$0")" && pwd)/test-clock.sh"
echo "tests run with the clock at: $CANTEEN_TEST_CLOCK (replay: CANTEEN_TEST_CLOCK=\"$CANTEEN_TEST_CLOCK\" make test)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

read -r passed failed ignored < <(
    grep -E '^test result: ' "$log" |
        sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' |
        awk '{ p += $1; f += $2; i += $3 } END { print p + 0, f + 0, i + 0 }'
)

echo
echo "tests: $passed passed, $failed failed, $ignored skipped (clock at $CANTEEN_TEST_CLOCK)"
if [ "$status" -ne 0 ]; then
    echo "cargo test failed (exit $status)" >&2
    exit "$status"
fi
if [ "$ignored" -ne 0 ]; then
    echo "ignored tests are not allowed: every test must run" >&2
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    echo "no test ran" >&2
    exit 1
fi
