#!/usr/bin/env bash
# The whole system on one machine: a back-office on SQLite seeded with a sample city (through
# the real `backoffice` commands), one kiosk enrolled at the Jaurès canteen with a simulated card
# reader, and keys to tap sample cards. The kiosk shows its touchscreen in a window when a display
# is present ($DISPLAY), or prints each decision in this terminal. Ctrl-C (or q) stops everything.
#
# Environment (all optional):
#   DEMO_BIN_DIR  where `kiosk` and `backoffice` are (default: built here with cargo)
#   DEMO_DIR      the demo's files, wiped at start (default: target/demo)
#   DEMO_PORT     the back-office's port on 127.0.0.1 (default: 8080)
#   DEMO_UI       window or text (default: window when $DISPLAY is set)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/../.." && pwd)
demo_dir="${DEMO_DIR:-$workspace/target/demo}"
port="${DEMO_PORT:-8080}"
if [ -n "${DEMO_UI:-}" ]; then
    ui="$DEMO_UI"
elif [ -n "${DISPLAY:-}" ]; then
    ui=window
else
    ui=text
fi
# How long to wait for the back-office to answer and for the kiosk's first snapshot.
start_wait_s_max=60
# How often the sync watcher reads the kiosk's state.
watch_period_s=2

if [ -n "${DEMO_BIN_DIR:-}" ]; then
    bin_dir="$DEMO_BIN_DIR"
else
    echo "building kiosk and backoffice (cargo build)..."
    (cd "$workspace" && cargo build --locked -q -p kiosk -p backoffice)
    bin_dir="$workspace/target/debug"
fi
for binary in kiosk backoffice; do
    if [ ! -x "$bin_dir/$binary" ]; then
        echo "demo: $bin_dir/$binary is missing" >&2
        exit 1
    fi
done

children=()
stopping=0
# Stops every child (back-office, kiosk, sync watcher) and waits for each.
stop_all() {
    if [ "$stopping" = 1 ]; then
        return
    fi
    stopping=1
    exec 3>&- 2>/dev/null || true
    for pid in "${children[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${children[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "demo stopped: back-office and kiosk are down; files in $demo_dir"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

rm -rf "$demo_dir"
mkdir -p "$demo_dir"
db="sqlite://$demo_dir/backoffice.db"
backoffice() { "$bin_dir/backoffice" --db "$db" "$@"; }
kiosk() { "$bin_dir/kiosk" "$@"; }

echo "seeding the back-office: 3 canteens, 300 pupils, tariffs, services, staff, users..."
"$here/sample.sh" "$demo_dir/sample"
backoffice import "$demo_dir/sample/pupils.csv" >"$demo_dir/seed.log" 2>&1
while IFS= read -r line; do
    command="${line%%|*}"
    input=""
    if [[ "$line" == *"|"* ]]; then
        input="${line#*|}"
    fi
    # Lines are our own sample's, quoted as in a shell (names with spaces).
    eval "set -- $command"
    printf '%s\n' "$input" | backoffice "$@" >>"$demo_dir/seed.log" 2>&1 || {
        echo "demo: backoffice $command failed:" >&2
        tail -n 5 "$demo_dir/seed.log" >&2
        exit 1
    }
done <"$demo_dir/sample/commands.txt"

# The programs themselves in the background, not a shell function's subshell: the trap's
# signal must reach them.
"$bin_dir/backoffice" --db "$db" serve --listen "127.0.0.1:$port" >"$demo_dir/backoffice.log" 2>&1 &
children+=("$!")
backoffice_pid=$!

# GET PATH [USER:PASSWORD]: the body of a back-office answer, with bash's /dev/tcp alone.
http_get() {
    local authorization=""
    if [ -n "${2:-}" ]; then
        authorization="Authorization: Basic $(printf '%s' "$2" | base64 -w0)"$'\r\n'
    fi
    exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n' \
        "$1" "$authorization" >&5
    sed '1,/^\r$/d' <&5
    exec 5<&-
}

for _ in $(seq $((start_wait_s_max * 10))); do
    if http_get /healthz 2>/dev/null | grep -q '^ok'; then
        break
    fi
    if ! kill -0 "$backoffice_pid" 2>/dev/null; then
        echo "demo: the back-office stopped:" >&2
        tail -n 20 "$demo_dir/backoffice.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "enrolling a kiosk at the Jaurès canteen..."
kiosk init --data-dir "$demo_dir/kiosk" --site jaures --name "Entrée cour" \
    --backoffice "http://127.0.0.1:$port" >"$demo_dir/kiosk-init.txt"
device=$(sed -n 's/^device: *//p' "$demo_dir/kiosk-init.txt")
sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' "$demo_dir/kiosk-init.txt" >"$demo_dir/kiosk.pem"
backoffice device add --site jaures --name "$device" --public-key "$demo_dir/kiosk.pem" \
    >>"$demo_dir/seed.log" 2>&1

# The simulated reader reads `tap UID` lines from this pipe; the keys below write them.
mkfifo "$demo_dir/taps"
"$bin_dir/kiosk" run --data-dir "$demo_dir/kiosk" --reader stdin --ui "$ui" <"$demo_dir/taps" &
children+=("$!")
kiosk_pid=$!
exec 3>"$demo_dir/taps"

status_field() {
    kiosk status --json --data-dir "$demo_dir/kiosk" 2>/dev/null |
        sed -n "s/.*\"$1\":\([0-9a-z]*\).*/\1/p"
}

# The first sync brings the snapshot: balances, cards, tariffs, services.
for _ in $(seq $((start_wait_s_max * 10))); do
    version=$(status_field snapshot_version)
    if [ -n "$version" ] && [ "$version" != null ]; then
        break
    fi
    if ! kill -0 "$kiosk_pid" 2>/dev/null; then
        echo "demo: the kiosk stopped" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$version" ] || [ "$version" = null ]; then
    echo "demo: the kiosk got no snapshot from the back-office in ${start_wait_s_max}s" >&2
    tail -n 20 "$demo_dir/backoffice.log" >&2
    exit 1
fi

# Prints a line whenever the back-office acknowledges more of the kiosk's records.
watch_sync() {
    local acknowledged="" now
    while sleep "$watch_period_s"; do
        now=$(status_field acknowledged_seq)
        if [ -n "$now" ] && [ "$now" != "$acknowledged" ]; then
            echo "synced    the back-office acknowledged the kiosk's records up to no. $now" \
                "(unsynced: $(status_field unsynced_records))"
            acknowledged="$now"
        fi
    done
}
watch_sync &
children+=("$!")

balances() {
    local account body
    for account in fam-0001 fam-0002 fam-0003 fam-0004; do
        body=$(http_get "/api/v1/accounts/$account" "finance:finance-demo-2025" || true)
        echo "back-office $account balance: $(sed -n 's/.*"balance":\(-\{0,1\}[0-9]*\).*/\1/p' \
            <<<"$body") cents"
    done
}

# Finance's nightly check, run now on today's records: every signature and link, the kiosk's
# records against its day close (none yet before closing: the report says so), cash and totals.
# `backoffice reconcile` exits 2 when it lists a defect; the report is what the demo shows.
reconcile_today() {
    backoffice reconcile --date "$(TZ=Europe/Paris date +%F)" 2>>"$demo_dir/reconcile.log" |
        sed 's/^/reconcile /' || true
}

cat <<EOF

The demo is running.
  back-office   http://127.0.0.1:$port   (/healthz, /metrics, /api/openapi.json; log: $demo_dir/backoffice.log)
  sign-ins      admin / admin-demo-2025    finance / finance-demo-2025
                cantine-jaures / jaures-demo-2025 (staff of the Jaurès canteen)
  kiosk         $device at the Jaurès canteen, ui: $ui, snapshot version $version

Keys: a digit taps a sample card on the kiosk's reader, b shows the back-office's balances,
r reconciles today at the back-office, s the kiosk's state, q (or Ctrl-C) stops the demo.
EOF
sed 's/^/  /' "$demo_dir/sample/cards.txt"
echo "ready"

while true; do
    if [ -t 0 ]; then
        IFS= read -rsn1 key || break
    else
        IFS= read -r key || break
    fi
    case "$key" in
        [1-7])
            uid=$(awk -v key="$key" '$1 == key { print $2 }' "$demo_dir/sample/cards.txt")
            echo "tap       card $key ($uid)"
            echo "tap $uid" >&3
            ;;
        b) balances ;;
        r) reconcile_today ;;
        s) kiosk status --data-dir "$demo_dir/kiosk" ;;
        q) break ;;
        *) ;;
    esac
done
stop_all
