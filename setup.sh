#!/usr/bin/env bash
# One command to set eucalite up on a fresh machine, then serve it or test it.
#
#   ./setup.sh serve [eucalite serve options]   install into .venv and serve the cloud
#   ./setup.sh test  [pytest options]           install everything and run the whole test suite
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

install_package() {  # $1: extras, e.g. "" or "[test,bench]"
    log "installing eucalite$1 into $VENV"
    "$VENV/bin/pip" install -q -e ".$1"
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
    apt_install "the s3cmd and rclone tests" s3cmd rclone
}

ensure_libvirt_build_deps() {  # what pip needs to compile libvirt-python (the libvirt driver)
    apt_install "building libvirt-python" libvirt-dev pkg-config
}

cmd=${1:-}
shift || true
case "$cmd" in
    serve)
        ensure_python
        ensure_libvirt_build_deps
        install_package ""
        exec "$VENV/bin/eucalite" serve "$@"
        ;;
    test)
        ensure_python
        ensure_libvirt_build_deps
        install_package "[test,bench]"
        ensure_test_clients
        export PATH="$VENV/bin:$PATH"
        log "running the test suite"
        set +e
        python -m pytest "$@"
        status=$?
        set -e
        # pytest exits 5 when it collected nothing: that is a failure for CI, not a pass.
        exit $status
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
