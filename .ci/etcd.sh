#!/usr/bin/env bash
# A throwaway single-member etcd for the `etcd` feature's tests: one etcd
# bound to 127.0.0.1, data, pid file and log under target/etcd.
#
#   bash .ci/etcd.sh install   # apt-get etcd-server (and protoc, which etcd-client's build needs)
#   bash .ci/etcd.sh start     # start the server and wait until it answers
#   bash .ci/etcd.sh stop      # stop exactly the server `start` started (by its PID)
#   bash .ci/etcd.sh env       # print the export lines the tests read
#
# Then: eval "$(bash .ci/etcd.sh env)"
#       cargo test --release --features etcd,sql,testing --test etcd_real
#
# Overridable: ETCD_CLIENT_PORT (default 42379), ETCD_PEER_PORT (default
# 42380), ETCD_TEST_DIR (default target/etcd). The defaults stay clear of
# etcd's own 2379/2380 and of the ports .ci/ceph.sh (46788-46900),
# .ci/mariadb.sh (43306) and .ci/glance.sh (49292, 48776) use.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${ETCD_TEST_DIR:-$PWD/target/etcd}"
CLIENT_PORT="${ETCD_CLIENT_PORT:-42379}"
PEER_PORT="${ETCD_PEER_PORT:-42380}"
DATA="$DIR/data"
PIDFILE="$DIR/etcd.pid"
LOG="$DIR/etcd.log"
# etcd-server: the etcd binary (Debian's, 3.4 in bookworm); etcd-client:
# etcdctl, to wait for it to answer; protobuf-compiler
# and libprotobuf-dev: protoc and the well-known types, which etcd-client's
# build script compiles its gRPC API with.
PACKAGES="etcd-server etcd-client protobuf-compiler libprotobuf-dev"

log() { echo "etcd.sh: $*" >&2; }

install() {
    local missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        log "packages already installed"
        return
    fi
    log "installing$missing"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing >/dev/null
    # Debian's package starts a system etcd on 2379; ours does not use it,
    # and it is left as the package manager set it up.
    log "packages installed in $((SECONDS - t0)) s"
}

# The server is ours when its command line names our data directory.
ours() { [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "--data-dir $DATA"; }

stop() {
    [ -f "$PIDFILE" ] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if ours "$pid"; then
        log "stopping etcd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}

client_url() { echo "http://127.0.0.1:$CLIENT_PORT"; }

start() {
    command -v etcd >/dev/null || { log "etcd is not installed (bash .ci/etcd.sh install)"; exit 1; }
    stop
    rm -rf "$DIR"
    mkdir -p "$DATA"
    chmod 700 "$DATA"
    local t0=$SECONDS
    trap 'log "start failed; stopping what was started"; tail -n 20 "$LOG" >&2 || true; stop' ERR
    # A new single-member cluster on loopback only. The lock tests take
    # leases of a few seconds; nothing here needs durability across a crash,
    # but etcd 3.4 has no switch for fsync, so the data sits on the disk
    # target/ is on.
    etcd --name cinder-flow-test --data-dir "$DATA" \
        --listen-client-urls "$(client_url)" --advertise-client-urls "$(client_url)" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "cinder-flow-test=http://127.0.0.1:$PEER_PORT" \
        --initial-cluster-state new --initial-cluster-token "cinder-flow-$$" \
        </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    local ok=""
    for _ in $(seq 1 100); do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            log "etcd exited"
            false
        fi
        if ETCDCTL_API=3 etcdctl --endpoints "$(client_url)" --dial-timeout 1s endpoint health >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || { log "etcd did not answer"; false; }
    trap - ERR
    log "ready in $((SECONDS - t0)) s at $(client_url) (pid $(cat "$PIDFILE"))"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
env)
    [ -f "$PIDFILE" ] || { log "not started (bash .ci/etcd.sh start)"; exit 1; }
    echo "export CINDER_FLOW_ETCD_ENDPOINTS=$(client_url)"
    # The test that restarts an etcd starts one of its own with this binary.
    echo "export CINDER_FLOW_ETCD_BIN=$(command -v etcd)"
    ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
