#!/usr/bin/env bash
# Starts pcscd with the readers of /etc/reader.conf.d (vsmartcard's vpcd virtual readers on a
# development machine) unless it already runs, and waits until its socket accepts clients. The
# hardware tests use it, and call it again after they stop pcscd to test recovery.
# Usage: start-pcscd.sh
set -euo pipefail

socket=/run/pcscd/pcscd.comm
pid_file=/run/pcscd/pcscd.pid
# pcscd starts in well under a second; this bounds the wait on a loaded machine.
start_wait_tenths_max=100

if [ ! -x /usr/sbin/pcscd ]; then
    echo "start-pcscd.sh: /usr/sbin/pcscd is missing (run deploy/dev/install-packages.sh test)" >&2
    exit 1
fi
if [ ! -e /etc/reader.conf.d/vpcd ]; then
    echo "start-pcscd.sh: the vpcd driver is missing (install vsmartcard-vpcd)" >&2
    exit 1
fi

listening() {
    # ss lists the listening Unix socket once pcscd accepts clients on it.
    ss -xl 2>/dev/null | grep -qF "$socket"
}

running() {
    [ -f "$pid_file" ] && kill -0 "$(tr -cd 0-9 <"$pid_file")" 2>/dev/null
}

if running && listening; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
# A pcscd that died leaves its pid file and socket behind, and a new one refuses to start then.
"${sudo[@]}" rm -f "$pid_file" "$socket"
"${sudo[@]}" mkdir -p /run/pcscd
# Without systemd here, pcscd runs as its own daemon, on the machine's own clock even when a test
# that moved its clock restarts it (deploy/dev/test-clock.sh).
"${sudo[@]}" env -u LD_PRELOAD -u FAKETIME /usr/sbin/pcscd

for _ in $(seq "$start_wait_tenths_max"); do
    if running && listening; then
        exit 0
    fi
    sleep 0.1
done
echo "start-pcscd.sh: pcscd did not start listening on $socket" >&2
exit 1
