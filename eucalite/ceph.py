"""Reaching a Ceph cluster: the rados/rbd Python bindings, a connection made from config,
the cephx key, and the monitors' addresses.

The bindings are Debian's python3-rados and python3-rbd (no PyPI wheels exist); they are
built for the system's CPython, which the venv shares, so they are imported from
``/usr/lib/python3/dist-packages`` when the venv itself lacks them. Config keys (see
:mod:`eucalite.config`): ``ceph_conf`` (the cluster's ceph.conf), ``ceph_user`` (the cephx
user, without ``client.``), ``ceph_keyring`` (that user's keyring; empty: the one ceph.conf
names).

Every failure to reach the cluster is a :class:`CephUnavailable` whose message is one
sentence saying what is missing and what to install, start or fix.
"""
from __future__ import annotations

import configparser
import os
import re
import sys
from typing import Any, Mapping

DIST_PACKAGES = "/usr/lib/python3/dist-packages"
#: How long connecting (and each monitor command of a connect) may take, in seconds: an
#: unreachable cluster must not hang a request or the server's start.
CONNECT_TIMEOUT = 5


class CephUnavailable(Exception):
    """The cluster cannot be used from here; the message says why and what to do."""


def modules():
    """(rados, rbd); CephUnavailable naming the packages to install when they are absent."""
    try:
        import rados
        import rbd
    except ImportError:
        if DIST_PACKAGES not in sys.path and os.path.isdir(DIST_PACKAGES):
            sys.path.append(DIST_PACKAGES)
        try:
            import rados
            import rbd
        except ImportError as error:
            raise CephUnavailable(f"the Ceph Python bindings are missing ({error}): install "
                                  "python3-rados and python3-rbd (apt-get install "
                                  "python3-rados python3-rbd)") from None
    return rados, rbd


def settings(config: Mapping[str, Any]) -> tuple[str, str, str]:
    """(ceph.conf path, cephx user, keyring path or "") from config."""
    return (str(config.get("ceph_conf") or "/etc/ceph/ceph.conf"),
            str(config.get("ceph_user") or "admin"), str(config.get("ceph_keyring") or ""))


def connect(config: Mapping[str, Any]):
    """A connected ``rados.Rados`` for the configured cluster and user (the caller shuts
    it down); CephUnavailable saying why when it cannot connect within CONNECT_TIMEOUT."""
    rados, _rbd = modules()
    conf, user, keyring = settings(config)
    if not os.path.isfile(conf):
        raise CephUnavailable(f"no Ceph config file {conf}: set ceph_conf to the cluster's "
                              "ceph.conf (or copy it there)")
    if keyring and not os.access(keyring, os.R_OK):
        raise CephUnavailable(f"cannot read the keyring {keyring} of client.{user}: set "
                              "ceph_keyring to a keyring this user may read")
    options = {"client_mount_timeout": str(CONNECT_TIMEOUT),
               "rados_mon_op_timeout": str(CONNECT_TIMEOUT),
               "rados_osd_op_timeout": "60"}
    if keyring:
        options["keyring"] = keyring
    try:
        cluster = rados.Rados(conffile=conf, rados_id=user, conf=options)
        cluster.connect(timeout=CONNECT_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - rados raises its own classes, and OSError
        raise CephUnavailable(f"cannot connect to the Ceph cluster of {conf} as "
                              f"client.{user}: {error or type(error).__name__}") from None
    return cluster


def cephx_key(config: Mapping[str, Any], cluster=None) -> str:
    """The configured user's cephx key (base64, as in its keyring): from ``ceph_keyring``,
    or the keyring ceph.conf names for the user (read through *cluster*, a connection)."""
    _conf, user, keyring = settings(config)
    paths = [keyring] if keyring else []
    if not paths and cluster is not None:
        paths = [p.strip() for p in re.split(r"[,;]", cluster.conf_get("keyring") or "")
                 if p.strip()]
    for path in paths:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            with open(path) as f:
                parser.read_file(f)
        except (OSError, configparser.Error):
            continue
        section = f"client.{user}"
        if parser.has_option(section, "key"):
            return parser.get(section, "key").strip()
    raise CephUnavailable(f"no cephx key of client.{user} in {', '.join(paths) or 'any keyring'}"
                          ": set ceph_keyring to the user's keyring file")


def mon_hosts(cluster) -> list[tuple[str, int]]:
    """The monitors' (host, port) pairs from the connection's ``mon_host``, one per monitor
    (its msgr1 address where it has one, as QEMU's librbd finds either), for libvirt's
    <host> elements."""
    text = cluster.conf_get("mon_host") or ""
    found: list[tuple[str, int]] = []
    for group in re.findall(r"\[[^\]]*\]|[^\s,;\[\]]+", text):
        addresses = [a for a in re.split(r"[,\s]+", group.strip("[]")) if a]
        legacy = [a for a in addresses if a.startswith("v1:")]
        chosen = (legacy or addresses)[0]
        chosen = re.sub(r"^v[12]:", "", chosen).split("/")[0]
        host, port = _host_port(chosen)
        found.append((host, port))
    return found


def _host_port(address: str) -> tuple[str, int]:
    """``ip:port``, ``[v6]:port`` or a bare host (port 6789) as (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or 6789)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, 6789
