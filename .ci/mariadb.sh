#!/usr/bin/env bash
# A throwaway MariaDB server holding Cinder 29's own schema, for the `sql`
# tests (and for a cinder-api on the same database): one mariadbd bound to
# 127.0.0.1, data, socket, pid file and logs under target/mariadb, a
# `cinder` database and user, and the tables created by Cinder's migrations
# (`cinder-manage db sync`) from a virtualenv with cinder==29.0.0.
#
#   bash .ci/mariadb.sh install   # apt-get mariadb-server; create the venv if missing
#   bash .ci/mariadb.sh start     # start the server, create the user and the schema
#   bash .ci/mariadb.sh stop      # stop exactly the server `start` started
#   bash .ci/mariadb.sh env       # print the export lines (CINDER_DATABASE_URL, ...)
#
# Then: eval "$(bash .ci/mariadb.sh env)"
#       cargo test --release --features sql,testing --test real_cloud
#
# Overridable: MARIADB_PORT (default 43306), MARIADB_TEST_DIR (default
# target/mariadb), CINDER_VENV (default target/cinder-venv; an existing venv
# with cinder-manage is reused as it is, e.g. CINDER_VENV=/tmp/c).
#
# The `cinder` user may also create and drop databases named `cinder_*`:
# the tests give each case a database of its own, cloned from `cinder`.
# Root has no password and is reachable only through the socket file.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${MARIADB_TEST_DIR:-$PWD/target/mariadb}"
PORT="${MARIADB_PORT:-43306}"
VENV="${CINDER_VENV:-$PWD/target/cinder-venv}"
DATA="$DIR/data"
SOCK="$DIR/mariadb.sock"
PIDFILE="$DIR/mariadbd.pid"
CONF="$DIR/cinder.conf"
PWFILE="$DIR/cinder.password"
PACKAGES="mariadb-server"
# Cinder 29.0.0 (2026.2) and the MySQL driver its URL names.
PIP_PACKAGES="cinder==29.0.0 pymysql"

log() { echo "mariadb.sh: $*" >&2; }

install() {
    local missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        log "packages already installed"
    else
        log "installing$missing"
        local t0=$SECONDS
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $missing >/dev/null
        log "packages installed in $((SECONDS - t0)) s"
    fi
    venv
}

# The virtualenv with Cinder's migrations; created once, then reused.
venv() {
    if [ -x "$VENV/bin/cinder-manage" ]; then
        log "reusing the venv $VENV"
        return
    fi
    log "creating the venv $VENV ($PIP_PACKAGES)"
    local t0=$SECONDS
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check $PIP_PACKAGES
    log "venv ready in $((SECONDS - t0)) s"
}

admin_() { mariadb --no-defaults --protocol=socket --socket="$SOCK" -uroot "$@"; }

# The server is ours when its command line names our data directory.
ours() { [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "--datadir=$DATA"; }

stop() {
    [ -f "$PIDFILE" ] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if ours "$pid"; then
        log "stopping mariadbd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}

url() {
    echo "mysql+pymysql://cinder:$(cat "$PWFILE")@127.0.0.1:$PORT/cinder?charset=utf8"
}

start() {
    command -v mariadbd >/dev/null || { log "mariadbd is not installed (bash .ci/mariadb.sh install)"; exit 1; }
    [ -x "$VENV/bin/cinder-manage" ] || { log "no $VENV/bin/cinder-manage (bash .ci/mariadb.sh install)"; exit 1; }
    stop
    rm -rf "$DIR"
    mkdir -p "$DATA" "$DIR/log" "$DIR/state"
    local t0=$SECONDS
    # A failed start leaves nothing running.
    trap 'log "start failed; stopping what was started"; tail -n 20 "$DIR"/log/*.log >&2 || true; stop' ERR
    log "initialising $DATA"
    mariadb-install-db --no-defaults --datadir="$DATA" --user=root --auth-root-authentication-method=normal \
        --skip-test-db >"$DIR/log/install-db.log" 2>&1
    # --no-defaults: no system option files; --user=root: we may be root
    # (CI containers), which mariadbd otherwise refuses. A throwaway server
    # needs no durability: no flush per commit, no doublewrite, no fsync
    # (the tests commit thousands of small transactions).
    mariadbd --no-defaults --datadir="$DATA" --socket="$SOCK" --pid-file="$PIDFILE" --port="$PORT" \
        --bind-address=127.0.0.1 --user=root --skip-name-resolve --log-error="$DIR/log/mariadbd.log" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-flush-method=nosync \
        --innodb-buffer-pool-size=128M </dev/null >/dev/null 2>&1 &
    local ok=""
    for _ in $(seq 1 300); do
        if mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || { log "mariadbd did not answer"; false; }
    log "server up in $((SECONDS - t0)) s (pid $(cat "$PIDFILE"))"
    # A fresh password per start, letters and digits only (it goes into a URL).
    # (tr ends on SIGPIPE once head has its bytes; that is expected.)
    local pw
    pw="$(tr -dc 'A-Za-z0-9' </dev/urandom 2>/dev/null | head -c 24 || true)"
    [ "${#pw}" = 24 ] || { log "could not generate a password"; false; }
    printf '%s' "$pw" >"$PWFILE"
    chmod 600 "$PWFILE"
    admin_ <<EOF
CREATE DATABASE cinder CHARACTER SET utf8mb4;
CREATE USER 'cinder'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER 'cinder'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`cinder\`.* TO 'cinder'@'127.0.0.1', 'cinder'@'localhost';
GRANT ALL PRIVILEGES ON \`cinder\\_%\`.* TO 'cinder'@'127.0.0.1', 'cinder'@'localhost';
EOF
    cat >"$CONF" <<EOF
[DEFAULT]
state_path = $DIR/state
lock_path = $DIR/state
[database]
connection = $(url)
[oslo_concurrency]
lock_path = $DIR/state
EOF
    chmod 600 "$CONF"
    local t1=$SECONDS
    log "creating Cinder 29's schema (cinder-manage db sync)"
    "$VENV/bin/cinder-manage" --config-file "$CONF" db sync >"$DIR/log/db-sync.log" 2>&1
    local head
    head="$(admin_ -N -e 'SELECT version_num FROM cinder.alembic_version')"
    log "schema at alembic head $head in $((SECONDS - t1)) s"
    trap - ERR
    log "ready in $((SECONDS - t0)) s: $(url | sed 's/:[^:@]*@/:***@/')"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
env)
    [ -f "$PWFILE" ] || { log "not started (bash .ci/mariadb.sh start)"; exit 1; }
    echo "export CINDER_DATABASE_URL='$(url)'"
    echo "export CINDER_CONF=$CONF"
    echo "export CINDER_VENV=$VENV"
    echo "export MARIADB_SOCKET=$SOCK"
    ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
