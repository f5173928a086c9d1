#!/usr/bin/env bash
# Runs every test of the workspace and fails if any test fails, is ignored, or if none ran. Prints
# a closing "N passed, N failed, N skipped" line over all test binaries.
set -euo pipefail

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
echo "tests: $passed passed, $failed failed, $ignored skipped"
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
