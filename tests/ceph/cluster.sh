#!/usr/bin/env bash
# A throwaway single-host Ceph cluster for the tests and benchmarks (Debian's Ceph packages):
# one monitor, one manager, one memstore OSD (RAM, no disk), one RADOS Gateway, everything
# under DIR and nothing in /etc/ceph or systemd.
#
#   tests/ceph/cluster.sh start DIR   make and start it; writes DIR/env (EUCALITE_TEST_CEPH_*
#                                     and EUCALITE_TEST_RGW_* lines for tests/cephutil.py)
#   tests/ceph/cluster.sh stop DIR    stop every daemon of it and remove DIR
#
# In the cluster: the RBD pool eucalite-volumes, the cephx user client.eucalite limited to
# that pool (DIR/eucalite.keyring), an RGW user "eucalite" with a fresh key pair, and a
# second gateway's identity client.rgw.b for tests that start (and kill) a gateway of
# their own. Ports are free ones picked at start.
set -euo pipefail

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # $1: seconds; the rest: a command that succeeds once the thing is up
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

start() {
    local D=$1
    rm -rf "$D"; mkdir -p "$D"/{mon,osd0,mgr,rgw,run,log}
    D=$(cd "$D" && pwd)
    local fsid mon_port rgw_port C uuid id access secret
    fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    mon_port=$(free_port); rgw_port=$(free_port)
    C=$D/ceph.conf
    cat > "$C" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
keyring = $D/keyring
osd objectstore = memstore
# RAM is taken only as data arrives: 8 GiB is a ceiling the suite stays far under
memstore device bytes = ${EUCALITE_TEST_CEPH_MEMSTORE_BYTES:-8589934592}
osd data = $D/osd\$id
mon data = $D/mon
mgr data = $D/mgr
osd max object name len = 460
osd max object namespace len = 64
osd crush chooseleaf type = 0
# RGW frees a deleted object's data only after its garbage collector's wait (2 hours by
# default): a test suite that writes and deletes gigabytes would fill the OSD first
rgw gc obj min wait = 10
rgw gc processor period = 10
[client.rgw.a]
# tcp_nodelay: without it every small response waits ~40 ms (Nagle against delayed ACKs)
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $D/rgw
keyring = $D/rgw/keyring
[client.rgw.b]
rgw data = $D/rgw
keyring = $D/rgw/keyring.b
[client.eucalite]
keyring = $D/eucalite.keyring
CONF
    ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' \
        --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$D/monmap" >/dev/null
    ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
    ceph-mon -c "$C" -i a
    ceph -c "$C" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
        -o "$D/mgr/keyring"
    ceph-mgr -c "$C" -i x --keyring "$D/mgr/keyring"
    uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    id=$(ceph -c "$C" osd new "$uuid")
    ceph-osd -c "$C" -i "$id" --mkfs --mkkey --no-mon-config --osd-uuid "$uuid" \
        --keyring "$D/osd0/keyring" 2>/dev/null
    ceph -c "$C" auth add "osd.$id" osd 'allow *' mon 'allow profile osd' \
        mgr 'allow profile osd' -i "$D/osd0/keyring"
    ceph-osd -c "$C" -i "$id" --keyring "$D/osd0/keyring"
    ceph -c "$C" osd pool create eucalite-volumes 16 >/dev/null 2>&1
    rbd -c "$C" pool init eucalite-volumes
    ceph -c "$C" auth get-or-create client.eucalite mon 'profile rbd' \
        osd 'profile rbd pool=eucalite-volumes' mgr 'profile rbd pool=eucalite-volumes' \
        -o "$D/eucalite.keyring"
    ceph -c "$C" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$D/rgw/keyring"
    ceph -c "$C" auth get-or-create client.rgw.b mon 'allow rw' osd 'allow rwx' -o "$D/rgw/keyring.b"
    radosgw -c "$C" -n client.rgw.a
    access=$(python3 -c 'import secrets; print("RGW" + secrets.token_hex(8).upper())')
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
    wait_for 60 radosgw-admin -c "$C" user create --uid=eucalite --display-name=eucalite \
        --access-key="$access" --secret="$secret" \
        || { echo "radosgw-admin could not make the RGW user" >&2; return 1; }
    wait_for 60 curl -sf "http://127.0.0.1:$rgw_port/" \
        || { echo "the RADOS Gateway does not answer on port $rgw_port" >&2; return 1; }
    cat > "$D/env" <<ENV
EUCALITE_TEST_CEPH_CONF=$C
EUCALITE_TEST_CEPH_USER=eucalite
EUCALITE_TEST_CEPH_KEYRING=$D/eucalite.keyring
EUCALITE_TEST_RBD_POOL=eucalite-volumes
EUCALITE_TEST_RGW_URL=http://127.0.0.1:$rgw_port
EUCALITE_TEST_RGW_ACCESS_KEY=$access
EUCALITE_TEST_RGW_SECRET_KEY=$secret
ENV
}

stop() {
    local D=$1
    [ -f "$D/ceph.conf" ] || return 0
    D=$(cd "$D" && pwd)
    pkill -f -- "-c $D/ceph.conf" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        pgrep -f -- "-c $D/ceph.conf" >/dev/null || break
        sleep 0.2
    done
    pkill -9 -f -- "-c $D/ceph.conf" 2>/dev/null || true
    rm -rf "$D"
}

case "${1:-}" in
    start) start "${2:?usage: $0 start DIR}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
