#!/usr/bin/env bash
# Runs one test binary with the machine's clock moved by $CANTEEN_TEST_CLOCK_OFFSET_S seconds,
# through libfaketime; cargo calls it for every test binary (run-tests.sh sets it as the target's
# runner, with the offset that puts the clock at the moment it drew). The offset is the same for
# every process the test starts, the back-office and kiosk binaries included, so they agree on
# the time; monotonic clocks are left alone, so timeouts measure real time.
# Usage: test-clock.sh BINARY [ARGS...]
set -euo pipefail

if [ -z "${CANTEEN_TEST_CLOCK_OFFSET_S:-}" ]; then
    exec "$@"
fi
# The library itself rather than the `faketime` wrapper: the wrapper waits until every process
# that inherited its pipe has ended, daemons the tests restart (pcscd) included.
export LD_PRELOAD="/usr/\$LIB/faketime/libfaketime.so.1${LD_PRELOAD:+ $LD_PRELOAD}"
export FAKETIME="${CANTEEN_TEST_CLOCK_OFFSET_S}s"
export FAKETIME_DONT_FAKE_MONOTONIC=1
exec "$@"
