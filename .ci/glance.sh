#!/usr/bin/env bash
# A throwaway Glance 33 (glance-api) and Cinder 29 API (cinder-api) for the
# `glance` tests, both real upstream code from PyPI, bound to 127.0.0.1,
# everything under target/glance. No Keystone:
#
# * glance-api runs a "trusted" paste pipeline (version negotiation, the
#   context middleware, the API): the caller states its identity in the
#   headers Keystone's middleware would otherwise set (X-Identity-Status:
#   Confirmed, X-Project-Id, X-User-Id, X-Roles, X-Service-Catalog). Stores:
#   file (uploads), http, cinder (checked against the cinder-api below) and,
#   when CEPH_CONF names a cluster (`.ci/ceph.sh`), rbd on that cluster.
#   Glance runs in single-store mode, so locations keep the URL and metadata
#   the client gave (multi-store would add a store id and rewrite cinder://
#   URLs). SQLite database.
# * cinder-api runs with auth_strategy = noauth on Cinder's schema (made by
#   `cinder-manage db sync`): in a database `cinder_glance` on the MariaDB of
#   `.ci/mariadb.sh` when that runs (as in CI), else in an SQLite file.
#   Glance's cinder store asks it for each cinder:// volume a location names.
#
#   bash .ci/glance.sh install   # venv under target/glance-venv (pip), apt for the rest
#   bash .ci/glance.sh start     # start both (after mariadb and ceph, when used)
#   bash .ci/glance.sh stop      # stop exactly the processes `start` started
#   bash .ci/glance.sh env       # print the exports the tests read
#
# Ports: GLANCE_PORT (default 49292) and CINDER_API_PORT (default 48776).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${GLANCE_TEST_DIR:-$PWD/target/glance}"
VENV="${GLANCE_VENV:-$PWD/target/glance-venv}"
GLANCE_PORT="${GLANCE_PORT:-49292}"
CINDER_API_PORT="${CINDER_API_PORT:-48776}"
# Pinned to the releases the crate models (Cinder 29 = 2026.2 with Glance 33).
PIP_PACKAGES="glance==33.0.0 cinder==29.0.0 glance-store[cinder] gunicorn pymysql"
# sqlite3: the tests write the fields Glance's API keeps read-only;
# qemu-utils: the tests make qcow2 images; python3-rados/rbd: Glance's rbd store.
APT_PACKAGES="python3-venv curl sqlite3 qemu-utils python3-rados python3-rbd"
# The project and user the tests act as (Glance checks owners against them).
PROJECT="cf-admin-project"
USER_ID="cf-admin-user"

log() { echo "glance.sh: $*" >&2; }

# A Python >= 3.11 (Glance 33's floor): Debian's own first, as its
# python3-rados / python3-rbd are built for it.
python_bin() {
    for p in /usr/bin/python3 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
            "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$p"
            return
        fi
    done
    log "no python3 >= 3.11 found"
    return 1
}

install() {
    local t0=$SECONDS missing=""
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "apt-get install$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
    if [ -x "$VENV/bin/gunicorn" ] && [ -x "$VENV/bin/glance-manage" ] && [ -x "$VENV/bin/cinder-manage" ]; then
        log "venv already installed ($VENV)"
    else
        local py
        py="$(python_bin)"
        log "creating $VENV with $py; pip install $PIP_PACKAGES"
        rm -rf "$VENV"
        "$py" -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check $PIP_PACKAGES
    fi
    # Debian's rados/rbd bindings, visible in the venv through a .pth file
    # (they are not on PyPI).
    local site
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    mkdir -p "$site/cf_debian_ceph"
    for m in rados rbd; do
        for f in /usr/lib/python3/dist-packages/$m.cpython-*.so; do
            [ -e "$f" ] && ln -sf "$f" "$site/cf_debian_ceph/"
        done
    done
    echo "$site/cf_debian_ceph" >"$site/cf_debian_ceph.pth"
    "$VENV/bin/python" -c 'import rados, rbd' 2>/dev/null || log "warning: rados/rbd bindings do not load; no rbd store"
    log "installed in $((SECONDS - t0)) s"
}

# Stops one process we started: its pid file names it, and its working
# directory is ours (gunicorn retitles its processes, so the command line
# does not say).
stop_one() {
    local name="$1" pidfile="$DIR/run/$1.pid"
    [ -f "$pidfile" ] || return 0
    local pid cwd
    pid="$(cat "$pidfile")"
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    if [ -n "$pid" ] && { [ "$cwd" = "$DIR" ] || [ "$cwd" = "$DIR (deleted)" ]; }; then
        log "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop() {
    stop_one glance-api
    stop_one cinder-api
}

# The database cinder-api uses: when `.ci/mariadb.sh` runs (as in CI), a
# database `cinder_glance` of its own on that server (the sql tests clone
# `cinder` for their cases, so the rows the glance tests add for a moment
# must not be there); else an SQLite file. Either way Cinder's migrations
# make the schema.
cinder_db_url() {
    if [ -n "${CINDER_DB_URL:-}" ]; then
        echo "$CINDER_DB_URL"
        return
    fi
    local url=""
    if [ -f .ci/mariadb.sh ]; then
        url="$(bash .ci/mariadb.sh env 2>/dev/null | sed -n "s/^export CINDER_DATABASE_URL='\(.*\)'$/\1/p")"
    fi
    if [ -n "$url" ]; then
        # mysql+pymysql://USER:PW@HOST:PORT/cinder?charset=utf8
        local auth="${url#*://}" rest user pw host port
        auth="${auth%%@*}"
        rest="${url#*@}"
        user="${auth%%:*}"
        pw="${auth#*:}"
        host="${rest%%:*}"
        port="${rest#*:}"
        port="${port%%/*}"
        if MYSQL_PWD="$pw" mariadb --no-defaults -h "$host" -P "$port" -u "$user" \
            -e 'CREATE DATABASE IF NOT EXISTS cinder_glance CHARACTER SET utf8mb4' 2>/dev/null; then
            echo "$url" | sed 's|/cinder?|/cinder_glance?|; s|/cinder$|/cinder_glance|'
            return
        fi
        log "MariaDB of .ci/mariadb.sh does not answer; cinder-api uses SQLite"
    fi
    echo "sqlite:///$DIR/cinder.sqlite"
}

# Waits until URL answers while the process lives.
wait_http() {
    local name="$1" url="$2" pid
    pid="$(cat "$DIR/run/$name.pid")"
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited; log tails follow"
            tail -n 20 "$DIR/log/$name.gunicorn.log" "$DIR/log/$name.log" >&2 2>/dev/null || true
            return 1
        fi
        if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    log "$name did not answer on $url in 60 s"
    return 1
}

start() {
    [ -x "$VENV/bin/gunicorn" ] || { log "not installed (bash .ci/glance.sh install)"; exit 1; }
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR/run" "$DIR/log" "$DIR/images" "$DIR/staging" "$DIR/tasks" "$DIR/cinder" "$DIR/lock"
    local t0=$SECONDS
    trap 'log "start failed; stopping what was started"; stop' ERR

    # ---- cinder-api ----
    local cinder_db
    cinder_db="$(cinder_db_url)"
    cp "$VENV/etc/cinder/api-paste.ini" "$DIR/cinder-api-paste.ini"
    cat >"$DIR/cinder.conf" <<EOF
[DEFAULT]
debug = ${GLANCE_SH_DEBUG:-False}
auth_strategy = noauth
# Vector and test projects are not Keystone hex ids.
project_id_regex = [0-9a-zA-Z_.\-]+
api_paste_config = $DIR/cinder-api-paste.ini
state_path = $DIR/cinder
log_file = $DIR/log/cinder-api.log
transport_url = fake:/
host = cf-glance-sh
[database]
connection = $cinder_db
[oslo_concurrency]
lock_path = $DIR/lock
[coordination]
backend_url = file://$DIR/cinder
EOF
    log "cinder database: $(echo "$cinder_db" | sed 's/:[^:@]*@/:***@/')"
    echo "$cinder_db" >"$DIR/cinder-db-url"
    chmod 600 "$DIR/cinder-db-url" "$DIR/cinder.conf"
    "$VENV/bin/cinder-manage" --config-file "$DIR/cinder.conf" db sync >"$DIR/log/cinder-manage.log" 2>&1
    # cinder's WSGI module parses sys.argv with oslo.config; under gunicorn
    # that is gunicorn's command line, so a two-line entry point sets it.
    cat >"$DIR/cinder_api_wsgi.py" <<EOF
import sys
sys.argv = [sys.argv[0], "--config-file", "$DIR/cinder.conf"]
from cinder.wsgi.api import application  # noqa: E402,F401
EOF
    launch cinder-api "$CINDER_API_PORT" 4 --pythonpath "$DIR" cinder_api_wsgi:application
    wait_http cinder-api "http://127.0.0.1:$CINDER_API_PORT/"

    # ---- glance-api ----
    local stores="file,http,cinder" rbd_section=""
    if [ -n "${CEPH_CONF:-}" ]; then
        if "$VENV/bin/python" -c 'import rados, rbd' 2>/dev/null; then
            stores="$stores,rbd"
            rbd_section="rbd_store_ceph_conf = $CEPH_CONF
rbd_store_user = admin
rbd_store_pool = images"
        else
            log "CEPH_CONF is set but the rados/rbd bindings do not load: no rbd store"
        fi
    fi
    # The stock pipelines plus "trusted": identity from headers, no Keystone.
    cp "$VENV/etc/glance/glance-api-paste.ini" "$DIR/glance-api-paste.ini"
    sed -i 's/^default = .*/&\ntrusted = versionnegotiation context rootapp/' "$DIR/glance-api-paste.ini"
    printf '\n[composite:glance-api-trusted]\npaste.composite_factory = glance.api:root_app_factory\n/: api\n' \
        >>"$DIR/glance-api-paste.ini"
    cat >"$DIR/glance-api.conf" <<EOF
[DEFAULT]
debug = ${GLANCE_SH_DEBUG:-False}
show_multiple_locations = True
show_image_direct_url = False
# Hashing a location's data means reading it (attaching cinder:// volumes);
# the test locations carry no data to hash.
do_secure_hash = False
log_file = $DIR/log/glance-api.log
worker_self_reference_url = http://127.0.0.1:$GLANCE_PORT
node_staging_uri = file://$DIR/staging
[database]
connection = sqlite:///$DIR/glance.sqlite
[paste_deploy]
flavor = trusted
config_file = $DIR/glance-api-paste.ini
[task]
work_dir = $DIR/tasks
[glance_store]
stores = $stores
default_store = file
filesystem_store_datadir = $DIR/images
cinder_endpoint_template = http://127.0.0.1:$CINDER_API_PORT/v3/%(project_id)s
$rbd_section
[import_filtering_opts]
allowed_hosts = [127.0.0.1]
allowed_ports = [80,443,$GLANCE_PORT]
[oslo_concurrency]
lock_path = $DIR/lock
EOF
    "$VENV/bin/glance-manage" --config-file "$DIR/glance-api.conf" db_sync >"$DIR/log/glance-manage.log" 2>&1
    sqlite3 "$DIR/glance.sqlite" 'PRAGMA journal_mode=WAL;' >/dev/null
    export OS_GLANCE_CONFIG_DIR="$DIR"
    # One request at a time: concurrent transactions on SQLite deadlock
    # ("database is locked"); WAL lets readers run beside the one writer
    # (Glance's own task threads, the tests' direct writes).
    launch glance-api "$GLANCE_PORT" 1 glance.wsgi.api:application
    wait_http glance-api "http://127.0.0.1:$GLANCE_PORT/versions"
    trap - ERR
    log "ready in $((SECONDS - t0)) s: glance-api on 127.0.0.1:$GLANCE_PORT (stores $stores), cinder-api on 127.0.0.1:$CINDER_API_PORT"
}

# Starts gunicorn in the background in $DIR, one worker with THREADS
# threads, and records its pid; the port must be free (else a stale server
# would answer for ours).
launch() {
    local name="$1" port="$2" threads="$3"
    shift 3
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
        log "port $port is in use: another $name? (stop it, or set the port variable)"
        return 1
    fi
    (cd "$DIR" && exec "$VENV/bin/gunicorn" --bind "127.0.0.1:$port" --workers 1 --threads "$threads" \
        --no-control-socket --timeout 300 --log-level warning "$@" \
        </dev/null >>"$DIR/log/$name.gunicorn.log" 2>&1) &
    echo $! >"$DIR/run/$name.pid"
}

envs() {
    echo "export CINDER_FLOW_GLANCE_URL=http://127.0.0.1:$GLANCE_PORT"
    echo "export CINDER_FLOW_CINDER_API_URL=http://127.0.0.1:$CINDER_API_PORT"
    echo "export CINDER_FLOW_GLANCE_DB=$DIR/glance.sqlite"
    if [ -s "$DIR/cinder-db-url" ]; then
        echo "export CINDER_FLOW_CINDER_DB_URL='$(cat "$DIR/cinder-db-url")'"
    fi
    echo "export CINDER_FLOW_GLANCE_PROJECT=$PROJECT"
    echo "export CINDER_FLOW_GLANCE_USER=$USER_ID"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
env) envs ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
