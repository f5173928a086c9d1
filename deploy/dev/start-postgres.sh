#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests, with trust auth for the
# user `postgres`. If one answers already, does nothing. Otherwise installs Debian's `postgresql`
# if missing and starts a throwaway cluster in a temporary directory (it lives until reboot or
# until its postmaster is stopped). Usage: start-postgres.sh
set -euo pipefail

host=127.0.0.1
port=5432

if command -v pg_isready >/dev/null && pg_isready -q -h "$host" -p "$port"; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "installing postgresql"
    # Debian's package would create and start its own cluster on 5432 with password auth, in
    # the way of the throwaway one: ask it not to (kept as the configuration on upgrade).
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        "${sudo[@]}" mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" |
            "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold postgresql
fi

# The newest installed major version.
bin=$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' -printf '%h\n' | sort -V | tail -n 1)

# initdb refuses to run as root: the cluster belongs to the `postgres` user Debian's package made.
as_postgres=()
if [ "$(id -u)" -eq 0 ]; then
    as_postgres=(runuser -u postgres --)
elif [ "$(id -un)" != postgres ]; then
    as_postgres=(sudo -u postgres)
fi

data=$("${as_postgres[@]}" mktemp -d /tmp/canteen-postgres.XXXXXX)
echo "starting a throwaway PostgreSQL cluster in $data on $host:$port"
"${as_postgres[@]}" "$bin/initdb" --pgdata="$data/data" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
"${as_postgres[@]}" "$bin/pg_ctl" --pgdata="$data/data" --log="$data/server.log" --wait \
    --options="-c listen_addresses=$host -c port=$port -c unix_socket_directories=$data" start
"$bin/pg_isready" -q -h "$host" -p "$port"
