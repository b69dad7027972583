#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for the `rbd` tests: one monitor and
# one OSD (bluestore over a sparse file), no manager, bound to 127.0.0.1,
# cephx on (keyrings generated per start), everything under target/ceph.
# ceph.conf names client.admin's keyring, so `ceph --conf`, `rbd --conf` and
# librados clients with CEPH_CONF connect as admin with nothing else set;
# the tests create restricted users of their own through it.
#
#   bash .ci/ceph.sh install   # apt-get the packages (root, non-interactive)
#   bash .ci/ceph.sh start     # start the cluster, create the test pools
#   bash .ci/ceph.sh stop      # stop exactly the daemons `start` started
#   bash .ci/ceph.sh env       # print `export CEPH_CONF=...`
#
# Then: CEPH_CONF=target/ceph/ceph.conf cargo test --release --features rbd
#
# Only loopback addresses are used. The ports can be moved with
# CEPH_MON_PORT (default 46789; the v2 port is CEPH_MON_PORT-1) and the OSD's
# with CEPH_OSD_PORTS (default 46800-46900) when another cluster runs here.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${CEPH_TEST_DIR:-$PWD/target/ceph}"
CONF="$DIR/ceph.conf"
MON_PORT="${CEPH_MON_PORT:-46789}"
MON_V2_PORT=$((MON_PORT - 1))
OSD_PORTS="${CEPH_OSD_PORTS:-46800-46900}"
# The pools the tests use (the conformance vectors' pools).
POOLS="volumes images images2 other secret bench"
PACKAGES="ceph-mon ceph-osd ceph-common librbd-dev librados-dev libclang-dev"

log() { echo "ceph.sh: $*" >&2; }

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
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing >/dev/null
}

ceph_() { timeout 60 ceph --conf "$CONF" "$@"; }

stop() {
    for name in osd.0 mon.a; do
        local pidfile="$DIR/run/$name.pid"
        [ -f "$pidfile" ] || continue
        local pid
        pid="$(cat "$pidfile")"
        # Only a process we started: its command line names our conf file.
        if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$CONF"; then
            log "stopping $name (pid $pid)"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

start() {
    command -v ceph-mon >/dev/null || { log "ceph-mon is not installed (bash .ci/ceph.sh install)"; exit 1; }
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon.a" "$DIR/osd.0"
    local fsid
    fsid="$(cat /proc/sys/kernel/random/uuid)"
    cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = ${OSD_PORTS%-*}
ms bind port max = ${OSD_PORTS#*-}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon mgr mkfs grace = 31536000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
mon cluster log file = $DIR/log/cluster.log
erasure code dir = /usr/lib/x86_64-linux-gnu/ceph/erasure-code
plugin dir = /usr/lib/x86_64-linux-gnu/ceph
# Clone v2 is the default once require_min_compat_client >= mimic (set
# below); the tests choose the format per connection.
rbd default clone format = auto

[mon]
mon data = $DIR/\$name
keyring = $DIR/\$name/keyring
mon initial members = a

[osd]
osd data = $DIR/\$name
keyring = $DIR/\$name/keyring
osd objectstore = bluestore
bluestore block path = $DIR/\$name.block
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
osd memory target = 1073741824
bluestore cache autotune = false
bluestore cache size = 268435456
osd max object name len = 256
osd max object namespace len = 64
osd op num shards = 2
osd op num threads per shard = 2
EOF
    local t0=$SECONDS
    # A failed start leaves nothing running.
    trap 'log "start failed; stopping what was started"; tail -n 20 "$DIR"/log/*.log >&2 || true; stop' ERR
    log "creating the keys"
    # The monitor's own key plus client.admin's, which the monitor must
    # know from the start: it is the only user that can add others.
    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/keyring" >/dev/null
    log "creating the monitor"
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]" \
        "$DIR/monmap" >/dev/null
    ceph-mon --conf "$CONF" --id a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" >/dev/null
    ceph-mon --conf "$CONF" --id a
    ceph_ osd set-require-min-compat-client mimic --yes-i-really-mean-it >/dev/null 2>&1 || true
    log "creating the OSD"
    local uuid id
    uuid="$(cat /proc/sys/kernel/random/uuid)"
    id="$(ceph_ osd new "$uuid")"
    [ "$id" = 0 ] || { log "unexpected OSD id $id"; exit 1; }
    # --mkkey writes the OSD's key to its keyring (no monitor config yet:
    # the monitor does not know the key), then the monitor learns it.
    ceph-osd --conf "$CONF" --id 0 --mkfs --mkkey --no-mon-config --osd-uuid "$uuid" >"$DIR/log/osd.0.mkfs" 2>&1
    ceph_ auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
        -i "$DIR/osd.0/keyring" >/dev/null 2>&1
    ceph_ osd crush add osd.0 1.0 host=localhost root=default >/dev/null 2>&1 || true
    ceph-osd --conf "$CONF" --id 0 2>>"$DIR/log/osd.0.stderr"
    for pool in $POOLS; do
        ceph_ osd pool create "$pool" 8 8 replicated >/dev/null 2>&1
        ceph_ osd pool set "$pool" size 1 --yes-i-really-mean-it >/dev/null 2>&1 || true
        ceph_ osd pool application enable "$pool" rbd >/dev/null 2>&1
    done
    log "waiting for the OSD"
    local ok=""
    for _ in $(seq 1 120); do
        if timeout 10 rbd --conf "$CONF" -p volumes ls >/dev/null 2>&1 \
            && timeout 10 rbd --conf "$CONF" create volumes/ceph-sh-probe --size 1M >/dev/null 2>&1; then
            timeout 10 rbd --conf "$CONF" rm volumes/ceph-sh-probe >/dev/null 2>&1 || true
            ok=1
            break
        fi
        sleep 1
    done
    if [ -z "$ok" ]; then
        log "the cluster did not become ready; status and log tails follow"
        ceph_ -s >&2 || true
        false
    fi
    trap - ERR
    log "ready in $((SECONDS - t0)) s: CEPH_CONF=$CONF"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
env) echo "export CEPH_CONF=$CONF" ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
