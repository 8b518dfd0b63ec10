# pg.bash: a throw-away PostgreSQL server for end-to-end tests (Debian `postgresql`).
# Source after lib.bash. Licence: MIT.
#
#   pg_start      initdb + pg_ctl start in $tmp/pg on 127.0.0.1 and a free port, as the
#                 postgres user when run as root (CI); sets pg_url (postgresql://...) and
#                 pg_port; the server is stopped at exit (pg_stop).
#   pg_stop       stops it (fast shutdown). pg_restart: stop + start on the same port.

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pg_dir=""
pg_port=""
pg_url=""

pg_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_free_port() {
    free_port # lib.bash: below the ephemeral range, so pg_restart finds the port free
}

pg_start() {
    [ -x "$pg_bin/initdb" ] || { echo "FAIL: PostgreSQL is missing (scripts/install-deps.sh installs postgresql)"; exit 1; }
    pg_dir=$tmp/pg
    mkdir -p "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$tmp" "$pg_dir" && chmod 755 "$tmp"
    pg_as "$pg_bin/initdb" -D "$pg_dir/data" -U ns --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1 ||
        { echo "FAIL: initdb: $(tail -n 5 "$pg_dir/initdb.log")"; exit 1; }
    pg_port=$(pg_free_port)
    pg_url="postgresql://ns@127.0.0.1:$pg_port/postgres?connect_timeout=5"
    pg_run_server
    trap 'pg_stop; lib_cleanup' EXIT
}

pg_run_server() {
    pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$pg_dir -c fsync=off -c max_connections=50" \
        start >/dev/null || { echo "FAIL: pg_ctl start: $(tail -n 5 "$pg_dir/server.log")"; exit 1; }
}

pg_stop() {
    [ -n "$pg_dir" ] && [ -f "$pg_dir/data/postmaster.pid" ] &&
        pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1
    return 0
}

pg_restart() {
    pg_stop
    pg_run_server
}
