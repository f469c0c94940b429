#!/usr/bin/env bash
# One command to set eucalite up on a fresh machine, then serve it or test it.
#
#   ./setup.sh serve [eucalite serve options]   install into .venv and serve the cloud
#   ./setup.sh test  [pytest options]           install everything and run the whole test suite,
#                                               then again on PostgreSQL and Ceph (all but
#                                               real-VM tests)
#
# Installs what is missing (Python venv, the package and its test tools) and leaves the
# machine as it found it otherwise. Safe to run again: finished steps are skipped quickly.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
VENV=${EUCALITE_VENV:-$HERE/.venv}

log() { printf '\n==> %s\n' "$*" >&2; }

ensure_python() {
    if ! command -v python3 >/dev/null; then
        log "installing python3 (apt)"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv
            python3 -m venv "$VENV"
        fi
        "$VENV/bin/pip" install -q --upgrade pip
    fi
}

install_package() {  # $1: extras beyond node, lio and postgresql, e.g. "" or ",test,bench"
    # node (libvirt-python, compiled against libvirt-dev) and lio (rtslib-fb) are extras:
    # where they cannot be installed, eucalite still serves everything but that duty;
    # postgresql (psycopg's binary wheel) lets database_url name a PostgreSQL server;
    # test brings the programs the tests run from the venv, e.g. moto_server (moto[server],
    # the peer the benchmarks and the bursting tests use as another EC2)
    log "installing eucalite[node,lio,postgresql$1] into $VENV"
    if ! "$VENV/bin/pip" install -q -e ".[node,lio,postgresql$1]"; then
        log "could not install the node/lio extras: node duty will be off (see above)"
        "$VENV/bin/pip" install -q -e ".[postgresql$1]"
    fi
}

apt_install() {  # $1: what the packages are for; the rest: packages to install if missing
    local purpose=$1 missing=()
    shift
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        log "not installing ${missing[*]} (no apt-get): $purpose will not work"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            log "not installing ${missing[*]} (not root, no sudo): $purpose will not work"
            return 0
        fi
    fi
    log "installing ${missing[*]} (apt) for $purpose"
    if [ -z "${APT_UPDATED:-}" ]; then
        ${sudo[@]+"${sudo[@]}"} apt-get update -qq
        APT_UPDATED=1
    fi
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_test_clients() {  # S3 clients the black-box tests drive (tests/test_s3_clients.py)
    apt_install "the s3cmd and rclone tests, and the credentials zip test (unzip)" s3cmd rclone unzip
    # the console's browser tests (Playwright drives Debian's chromium, not its own download)
    apt_install "the console's browser tests" chromium
    # virt-xml-validate (libvirt-clients) checks domain XML by running xmllint, which no
    # other package pulls in (tests/test_domain_xml.py)
    apt_install "validating domain XML against libvirt's schema" libxml2-utils
    # bench/bench_s3.py's load generator for small objects (C, so it leaves the CPU to the
    # server) and its concurrent large streams
    apt_install "bench/bench_s3.py's wrk and curl rows" wrk curl
}

ensure_libvirt_build_deps() {  # what pip needs to compile libvirt-python (the libvirt driver)
    apt_install "building libvirt-python" libvirt-dev pkg-config
}

ensure_node_packages() {  # what node duty needs to run real VMs (see README "Node duty")
    # qemu-utils brings qemu-img and qemu-io (the tests read volumes with it); the guest
    # builder's mkfs.ext4 is e2fsprogs, in Debian's base image; `aws` is the test extra's
    # awscli in the venv. tests/test_packaging.py keeps the full table.
    # named even where another package pulls them in: libvirtd (libvirt-daemon) runs
    # dnsmasq and iptables for the instance network; tests/test_packaging.py keeps the
    # list complete
    apt_install "node duty (real VMs through libvirt)" qemu-system-x86 qemu-utils \
        qemu-block-extra libvirt-daemon-system libvirt-daemon libvirt-clients dnsmasq-base \
        dnsmasq-utils iptables iproute2 busybox-static
    apt_install "security groups and public IPs (the EDGE data plane)" nftables conntrack
}

ensure_storage_packages() {  # the iSCSI target volumes are exported with (README "Volumes")
    apt_install "iSCSI volume exports (tgt)" tgt qemu-block-extra
}

ensure_ceph_packages() {  # the throwaway Ceph the tests run Walrus and EBS against
    # (tests/ceph/cluster.sh): monitor, manager, OSD, RADOS Gateway, the ceph/rbd/
    # radosgw-admin tools, the Python bindings eucalite's RBD backend imports (Debian's
    # only: no PyPI wheels) and QEMU's RBD driver (block-rbd.so, in qemu-block-extra)
    apt_install "the Ceph tests (Walrus on RGW, EBS on RBD)" ceph-mon ceph-osd ceph-mgr \
        ceph-base radosgw ceph-common python3-rados python3-rbd qemu-block-extra
}

CEPH_DIR=
start_test_ceph() {  # a private single-host cluster in a temporary directory; exports its
    # EUCALITE_TEST_CEPH_* / EUCALITE_TEST_RGW_* settings (tests/cephutil.py reads them)
    command -v ceph-mon >/dev/null && command -v radosgw >/dev/null || {
        log "Ceph is not installed: the Ceph tests will skip"; return 0; }
    CEPH_DIR=$(mktemp -d /tmp/eucalite-ceph.XXXXXX)
    log "starting a throwaway Ceph cluster (mon, mgr, memstore OSD, RGW) in $CEPH_DIR"
    if ! tests/ceph/cluster.sh start "$CEPH_DIR" >"$CEPH_DIR.log" 2>&1; then
        cat "$CEPH_DIR.log" >&2
        log "could not start the test Ceph cluster: the Ceph tests will skip"
        stop_test_ceph; return 0
    fi
    set -a; . "$CEPH_DIR/env"; set +a
}

stop_test_ceph() {  # stop the private cluster (if started) and remove its directory
    [ -n "$CEPH_DIR" ] || return 0
    log "stopping the throwaway Ceph cluster"
    tests/ceph/cluster.sh stop "$CEPH_DIR" || true
    rm -rf "$CEPH_DIR" "$CEPH_DIR.log"
    CEPH_DIR=
}

tgt_answers() { tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1; }

ensure_tgtd() {  # start the user-space iSCSI target unless running; remember we did
    [ "$(id -u)" -eq 0 ] && command -v tgtd >/dev/null || return 0
    tgt_answers && return 0
    if [ -d /run/systemd/system ]; then
        systemctl start tgt >/dev/null 2>&1 || true
    else
        log "starting tgtd (iSCSI target on ${EUCALITE_ISCSI_PORTAL:-127.0.0.1:3260})"
        tgtd --iscsi "portal=${EUCALITE_ISCSI_PORTAL:-127.0.0.1:3260}" && STARTED_DAEMONS+=(tgtd)
    fi
    local i
    for i in $(seq 1 20); do tgt_answers && return 0; sleep 0.5; done
    log "tgtd does not answer: volumes will be exported as local files only"
}

stop_tgtd() {  # tgtd ignores SIGTERM while targets exist: remove them, then the daemon
    local tid
    for tid in $(tgtadm --lld iscsi --op show --mode target 2>/dev/null \
                 | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
        tgtadm --lld iscsi --op delete --mode target --tid "$tid" --force || true
    done
    tgtadm --lld iscsi --op delete --mode system >/dev/null 2>&1 || true
}

STARTED_DAEMONS=()
ensure_libvirtd() {  # start virtlogd + libvirtd unless running; remember what we started
    [ "$(id -u)" -eq 0 ] && command -v libvirtd >/dev/null || return 0
    if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
        # otherwise libvirt re-probes QEMU on every call (define takes ~40 s, not ~0.02 s)
        chgrp kvm /dev/kvm && chmod 660 /dev/kvm || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl start virtlogd libvirtd >/dev/null 2>&1 || true
    else
        if ! pgrep -x virtlogd >/dev/null; then
            log "starting virtlogd"; virtlogd -d && STARTED_DAEMONS+=(virtlogd)
        fi
        if ! pgrep -x libvirtd >/dev/null; then
            log "starting libvirtd"; libvirtd -d && STARTED_DAEMONS+=(libvirtd)
        fi
    fi
    local i
    for i in $(seq 1 60); do
        virsh -c qemu:///system version >/dev/null 2>&1 && return 0
        sleep 1
    done
    log "libvirtd does not answer on qemu:///system: node duty will be off"
}

stop_started_daemons() {  # stop, newest first, only the daemons ensure_libvirtd started
    local i name pid
    for ((i = ${#STARTED_DAEMONS[@]} - 1; i >= 0; i--)); do
        name=${STARTED_DAEMONS[$i]}
        if [ "$name" = tgtd ]; then
            log "stopping tgtd (started by this command)"; stop_tgtd; continue
        fi
        pid=$(cat "/run/$name.pid" 2>/dev/null || pgrep -x "$name" || true)
        if [ -n "$pid" ]; then
            log "stopping $name (started by this command)"
            kill $pid 2>/dev/null || true
        fi
    done
}

ensure_postgresql() {  # Debian 12's server, for the suite's PostgreSQL pass (not started here)
    apt_install "the tests' PostgreSQL pass" postgresql-15
}

PG_DIR=
start_test_postgres() {  # a private server: its own data directory and unix socket in a
    # temporary directory, no TCP port, fsync off (a test database is thrown away); sets
    # EUCALITE_TEST_DATABASE_URL. initdb refuses root, so as root it runs as `postgres`.
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        log "PostgreSQL is not installed: no PostgreSQL pass"; return 1
    fi
    local as=()
    PG_DIR=$(mktemp -d /tmp/eucalite-pg.XXXXXX)
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            log "no postgres user to run PostgreSQL as: no PostgreSQL pass"; return 1
        fi
        chown postgres "$PG_DIR"
        as=(runuser -u postgres --)
    fi
    log "starting a private PostgreSQL server in $PG_DIR"
    "${as[@]+"${as[@]}"}" "$bin/initdb" -D "$PG_DIR/data" -U eucalite -A trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    PG_CTL=("${as[@]+"${as[@]}"}" "$bin/pg_ctl" -D "$PG_DIR/data")
    "${PG_CTL[@]}" -l "$PG_DIR/server.log" -w -t 60 start -o "-k $PG_DIR -c listen_addresses='' \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
    export EUCALITE_TEST_DATABASE_URL="postgresql://eucalite@/postgres?host=$PG_DIR"
}

stop_test_postgres() {  # stop the private server (if started) and remove its directory
    [ -n "$PG_DIR" ] || return 0
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        log "stopping the private PostgreSQL server"
        "${PG_CTL[@]}" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}

cleanup_test() {  # on any exit of the test command
    stop_test_ceph
    stop_test_postgres
    stop_started_daemons
}

build_test_guest() {  # the tiny guest the real-VM tests boot (cached between runs)
    local dir=${EUCALITE_TEST_GUEST_DIR:-/var/tmp/eucalite-guest}
    if "$VENV/bin/eucalite" guest build --out "$dir" >/dev/null; then
        export EUCALITE_TEST_GUEST_DIR=$dir
        export EUCALITE_TEST_GUEST_KERNEL=$dir/vmlinuz EUCALITE_TEST_GUEST_RAMDISK=$dir/initrd.gz
    else
        log "could not build the tiny guest: the real-VM tests will fail and say why"
    fi
}

unpack_cloud_init() {  # Debian's cloud-init, unpacked (never installed: it would run at
    # boot) for tests/test_cloud_init.py, which runs its EC2 datasource against eucalite
    local dir=${EUCALITE_TEST_CLOUD_INIT_DIR:-/var/tmp/eucalite-cloud-init}
    local lib=$dir/root/usr/lib/python3/dist-packages
    if [ ! -d "$lib/cloudinit" ] && command -v apt-get >/dev/null; then
        mkdir -p "$dir"
        if ! (cd "$dir" && apt-get download cloud-init >/dev/null 2>&1); then
            [ "$(id -u)" -eq 0 ] && apt-get update -qq && (cd "$dir" && apt-get download cloud-init >/dev/null 2>&1) || true
        fi
        (cd "$dir" && ls cloud-init_*.deb >/dev/null 2>&1 && dpkg-deb -x cloud-init_*.deb root) \
            || log "could not unpack cloud-init: tests/test_cloud_init.py will skip"
    fi
    [ -d "$lib/cloudinit" ] && export EUCALITE_TEST_CLOUD_INIT=$lib
    return 0
}

cmd=${1:-}
shift || true
case "$cmd" in
    serve)
        ensure_python
        ensure_libvirt_build_deps
        ensure_node_packages
        ensure_storage_packages
        ensure_libvirtd
        ensure_tgtd
        install_package ""
        exec "$VENV/bin/eucalite" serve "$@"
        ;;
    test)
        ensure_python
        ensure_libvirt_build_deps
        install_package ",test,bench"
        ensure_test_clients
        ensure_node_packages
        ensure_storage_packages
        ensure_postgresql
        ensure_ceph_packages
        unpack_cloud_init
        trap cleanup_test EXIT
        ensure_libvirtd
        ensure_tgtd
        start_test_ceph
        export PATH="$VENV/bin:$PATH"
        if [ "$(id -u)" -eq 0 ] && virsh -c qemu:///system version >/dev/null 2>&1; then
            # the real-VM tests (tests/test_node_real.py, the driver contract on qemu)
            export EUCALITE_TEST_LIBVIRT_URI=qemu:///system
            build_test_guest
        fi
        # two workers (EUCALITE_TEST_WORKERS): a 2-core machine spends much of the suite
        # waiting (servers' timeouts, guests booting); tests/conftest.py keeps the files
        # that use the host's libvirtd, tgtd and metadata address in one worker
        workers=${EUCALITE_TEST_WORKERS:-2}
        log "running the test suite ($workers workers)"
        set +e
        python -m pytest -n "$workers" --dist loadfile "$@"
        status=$?
        set -e
        # pytest exits 5 when it collected nothing: that is a failure for CI, not a pass.
        # Then every test but the real-VM ones once more with PostgreSQL as the database
        # (tests/conftest.py gives each test its own; EUCALITE_TEST_POSTGRESQL=0 skips it),
        # and with Walrus' data in the Ceph cluster's RGW and EBS volumes in its RBD pool,
        # so both suites run once against Ceph too.
        if [ "${EUCALITE_TEST_POSTGRESQL:-1}" != 0 ]; then
            if start_test_postgres; then
                log "running the test suite again on PostgreSQL ($workers workers)"
                set +e
                SECONDS=0
                env -u EUCALITE_TEST_LIBVIRT_URI EUCALITE_TEST_WALRUS_ON_CEPH=1 \
                    EUCALITE_TEST_EBS_ON_CEPH=1 \
                    python -m pytest -n "$workers" --dist loadfile "$@"
                pg_status=$?
                set -e
                log "PostgreSQL pass: exit $pg_status after $((SECONDS / 60)) min $((SECONDS % 60)) s"
                [ "$status" -ne 0 ] || status=$pg_status
            else
                log "could not start PostgreSQL: the PostgreSQL pass did not run (EUCALITE_TEST_POSTGRESQL=0 skips it)"
                [ "$status" -ne 0 ] || status=1
            fi
        fi
        exit $status
        ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
