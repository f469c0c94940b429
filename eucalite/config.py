"""Configuration: built-in defaults, then a TOML config file, then ``EUCALITE_*`` environment.

Every key has a default in :data:`DEFAULTS`; its type decides how an environment string is
read (``EUCALITE_PORT=9000`` becomes ``9000``; lists are comma-separated). The config file is
``$EUCALITE_CONFIG``, else ``<data_dir>/eucalite.toml`` if it exists, else
``/etc/eucalite/eucalite.toml`` if it exists. The data directory itself comes from
``--data-dir`` / ``EUCALITE_DATA_DIR`` and defaults to ``/var/lib/eucalite`` for root and
``~/.local/share/eucalite`` for everyone else.
"""
from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

DEFAULTS: dict[str, Any] = {
    # Where the database (SQLite by default), objects, volumes and images live.
    "data_dir": "",
    # Any SQLAlchemy URL; empty means sqlite:///<data_dir>/eucalite.db
    "database_url": "",
    "host": "127.0.0.1",
    "port": 8773,
    # Serve over TLS: PEM certificate (chain) and private key files; both empty: plain HTTP.
    "tls_cert": "",
    "tls_key": "",
    # WSGI requests running at once (a pool of threads behind the event loop).
    "threads": 16,
    # The HTTP front end's limits (eucalite.httpserver): seconds from a request's first byte
    # to the end of its head; seconds a connection may idle between requests; a request body
    # may go http_body_timeout seconds without a byte, and after that must average
    # http_min_body_rate bytes/s (else RequestTimeout); seconds a response may wait for a
    # client that does not read.
    "http_header_timeout": 10,
    "http_keepalive_timeout": 15,
    "http_body_timeout": 20,
    "http_min_body_rate": 1024,
    "http_send_timeout": 60,
    # Largest request head (request line and headers) and request target, in bytes.
    "http_max_header_bytes": 65536,
    "http_max_uri_bytes": 16384,
    # Open connections in all and per client address (more from one address: SlowDown),
    # and requests of one client address running at once (more wait their turn).
    "http_max_connections": 4096,
    "http_max_connections_per_client": 128,
    "http_max_requests_per_client": 8,
    # URL clients use to reach this cloud (printed by `eucalite credentials`);
    # empty means http://<host>:<port> with 0.0.0.0 shown as 127.0.0.1.
    "public_url": "",
    "region": "eucalyptus",
    # One availability zone per cluster.
    "zones": ["eucalyptus-1a"],
    # Virtual-host style S3: a Host of <bucket>.<s3_domain> names the bucket (empty: off).
    "s3_domain": "",
    # SSE-C (customer-provided keys) over plain HTTP from other hosts: refused as AWS does
    # (the key would cross the network in clear text) unless true. Loopback is always fine.
    "s3_sse_c_allow_http": False,
    # What a new bucket gets unless its CreateBucket says otherwise, AWS's defaults since
    # April 2023: ACLs disabled ("BucketOwnerEnforced"; "ObjectWriter" or
    # "BucketOwnerPreferred" for pre-2023 clients that send ACLs, "" for no ownership
    # controls at all) and all four Block Public Access settings on (false: none).
    "s3_default_object_ownership": "BucketOwnerEnforced",
    "s3_default_block_public_access": True,
    # Walrus' backend for new buckets' object data: "file" (segments under <data_dir>/s3)
    # or "s3": a bucket of another S3 endpoint (a Ceph RADOS Gateway, MinIO, AWS) that
    # belongs to this cloud alone holds the data, while accounts, keys, ACLs, policies,
    # versioning and listings stay in eucalite's database. Buckets keep the backend they
    # were made on.
    "s3_backend": "file",
    "s3_backend_url": "",
    "s3_backend_access_key": "",
    "s3_backend_secret_key": "",
    "s3_backend_bucket": "eucalite-walrus",
    "s3_backend_region": "us-east-1",
    # Seconds between lifecycle-expiration sweeps of every bucket.
    "lifecycle_interval": 3600,
    # CloudWatch: seconds between evaluations of every alarm (and retention sweeps of
    # metric data and alarm history), and the most alarms one account may have (AWS's
    # default quota).
    "alarm_interval": 60,
    "max_alarms": 5000,
    # CloudWatch's own metrics (eucalite/cloudwatch/collector.py): seconds between samples
    # of an instance with basic monitoring, and with detailed monitoring
    # (MonitorInstances); the collector wakes every detailed_metrics_interval.
    "metrics_interval": 60,
    "detailed_metrics_interval": 10,
    # Auto Scaling: seconds between passes that make groups' instances follow their desired
    # capacity and fire scheduled actions (a change through the API runs one at once).
    "autoscaling_interval": 10,
    # Node duty: run VMs on this host through libvirt.
    "node": True,
    # Placement policy for new instances: GREEDY | ROUNDROBIN | POWERSAVE (Eucalyptus' names).
    "scheduler": "GREEDY",
    # Overcommit (Eucalyptus' node MAX_CORES/MAX_MEM, nova's allocation ratios): a node takes
    # instances while their vCPUs stay within its cores * cpu_overcommit and their memory
    # within its RAM * memory_overcommit; disk is never overcommitted. 4 vCPUs per core lets
    # a lab run four idle small instances per core (a busy guest only slows its neighbours
    # down); memory stays 1.0, because a host out of memory kills a guest.
    "cpu_overcommit": 4.0,
    "memory_overcommit": 1.0,
    # This host's node id in the cluster; empty means its host name.
    "node_name": "",
    # This host's node's zone (one of zones); empty means the first zone.
    "node_zone": "",
    # Seconds a node may stay silent (its hypervisor or heartbeat unanswered) before it is
    # marked unreachable: no new instances there, its instances' system check impaired.
    # Three reconcile passes by default.
    "node_timeout": 90,
    # A node-only host (`eucalite join`, `eucalite serve --node-only`): the controller's
    # URL; empty means the one it joined (kept with its credentials in the data dir).
    "controller_url": "",
    # This node's IPv4 address on the lab network, which the other nodes of its zone send
    # the instance network's VXLAN (UDP 4789) to; empty: a joined node's is the address it
    # registers from, the controller's own node's the one it sends from towards its peers.
    "node_address": "",
    # The VXLAN network identifier (1..16777215) of every zone's instance network across its
    # nodes; 0: each zone's own, derived from its name.
    "vxlan_vni": 0,
    # Seconds between a joined node's heartbeats (the controller tells its nodes).
    "heartbeat_interval": 10,
    # The node's hypervisor driver: "libvirt", or "fake" (in memory, for tests and demos).
    "hypervisor": "libvirt",
    "libvirt_uri": "qemu:///system",
    # The instance network: an isolated bridge on this private subnet; the subnet's first
    # address is the bridge's (the guests' router), the rest go to instances.
    "instance_subnet": "10.211.0.0/24",
    "instance_network": "eucalite",
    "instance_bridge": "eucabr0",
    # Where guests reach the metadata service (placed on the bridge); empty turns it off.
    "metadata_address": "169.254.169.254",
    "metadata_port": 80,
    # EDGE networking (security groups, public IPs, outbound NAT), enforced on each node:
    # "nftables", "fake" (in memory, for the fake hypervisor), or "auto" (nftables where
    # guests are real, fake where the hypervisor is fake or libvirt's test driver).
    "firewall": "auto",
    # The host interface facing the lab network and the public IPs instances get there
    # (addresses, "first-last" ranges or CIDRs); empty: no public IPs and no outbound NAT.
    "public_interface": "",
    "public_ips": [],
    # Per-account limits (AWS's defaults): elastic IPs, security groups, rules per group
    # and direction, groups per instance.
    "address_limit": 5,
    "security_group_limit": 2500,
    "security_group_rule_limit": 60,
    "security_groups_per_instance": 5,
    # Size limit of each node's image cache (least recently used images are evicted).
    "image_cache_gb": 20,
    # The storage controller: how volumes reach instances ("auto": lio, else tgt, else
    # local files), the iSCSI portal targets listen on, size limits in GiB, snapshot chunks.
    "ebs_export": "auto",
    "iscsi_portal": "127.0.0.1:3260",
    # The storage host's address nodes on other hosts connect to for volumes (iSCSI, at the
    # portal's port); empty: the portal's address, which only a node on this host reaches.
    "storage_address": "",
    # Who may log in to the targets: tgt takes initiator addresses (comma-separated, or
    # ALL), LIO the nodes' initiator IQNs (empty: any initiator that has the CHAP secret).
    "iscsi_initiators": "ALL",
    "iscsi_initiator_iqns": [],
    # EBS: where new volumes' blocks live: "file" (sparse files under <data_dir>/volumes,
    # exported as ebs_export says) or "rbd" (images in the Ceph pool rbd_pool, which QEMU
    # opens itself through librbd: no iSCSI hop). Volumes keep the backend they were made on.
    "ebs_backend": "file",
    "rbd_pool": "eucalite-volumes",
    # Snapshots of RBD volumes: "ceph" (RBD snapshots kept in the pool; volumes and EBS
    # images from them are copy-on-write clones) or "objectstore" (exported incrementally
    # into the object store as chunks, as file volumes' snapshots are).
    "rbd_snapshots": "ceph",
    # The Ceph cluster RBD volumes (and any other Ceph backend) use: its config file, the
    # cephx user eucalite connects as (its id, without "client."), and that user's keyring
    # (empty: the keyring the config file names).
    "ceph_conf": "/etc/ceph/ceph.conf",
    "ceph_user": "eucalite",
    "ceph_keyring": "",
    "max_volume_gb": 1024,
    "max_total_volume_gb": 10240,
    # ModifyVolume calls one volume may take in a rolling 24 hours (AWS's limit since
    # January 2026: four); 0 for no limit.
    "volume_modifications_per_day": 4,
    "snapshot_chunk_mb": 1,
    # Seconds CreateImage (without NoReboot) gives a guest to shut down cleanly before it
    # is forced off for the copies of its volumes.
    "image_shutdown_seconds": 120,
    # Minutes a console session lasts without activity.
    "console_session_minutes": 480,
    # Seconds between passes that reconcile recorded instances with the hypervisor.
    "reconcile_interval": 30,
    # Seconds between passes that reconcile burst instances with their remote clouds
    # (eucalite/burst/reconcile.py).
    "burst_interval": 30,
    # Allowed clock difference for signed requests, in seconds (AWS: 15 minutes).
    "max_clock_skew": 900,
    # Largest Query-API (EC2/IAM) request body accepted, in bytes.
    "max_query_body": 2 * 1024 * 1024,
    "log_level": "INFO",
}

ENV_PREFIX = "EUCALITE_"
#: Settings that are ratios: positive numbers, read as floats.
RATIOS = ("cpu_overcommit", "memory_overcommit")


def default_data_dir() -> Path:
    """``/var/lib/eucalite`` for root, ``$XDG_DATA_HOME/eucalite`` (or ~/.local/share) else."""
    if os.geteuid() == 0:
        return Path("/var/lib/eucalite")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "eucalite"


def _coerce(key: str, value: Any) -> Any:
    """Read *value* (a string from the environment, or a TOML value) as DEFAULTS[key]'s type."""
    default = DEFAULTS.get(key)
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{key.upper()}: expected a boolean, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{key.upper()}: expected an integer, got {value!r}")
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{key.upper()}: expected a number, got {value!r}")
    if isinstance(default, list):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _config_file(data_dir: Path, environ: Mapping[str, str]) -> Path | None:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (data_dir / "eucalite.toml", Path("/etc/eucalite/eucalite.toml")):
        if candidate.is_file():
            return candidate
    return None


_HOST_NAME = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")


def _is_address(text: str) -> bool:
    """Whether *text* is an IP address or a host name (nothing else: no port, no path)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(text))


def load(overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the effective configuration.

    Precedence, lowest first: DEFAULTS, config file, environment, *overrides* (command-line
    options and test settings). Unknown keys in the file are an error, so a typo is not
    silently ignored. ``data_dir`` and ``database_url`` are always filled in.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    config = dict(DEFAULTS)

    data_dir = overrides.get("data_dir") or environ.get(ENV_PREFIX + "DATA_DIR") \
        or str(default_data_dir())
    path = _config_file(Path(data_dir).expanduser(), environ)
    if path is not None:
        with open(path, "rb") as handle:
            from_file = tomllib.load(handle)
        unknown = sorted(set(from_file) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"{path}: unknown setting(s): {', '.join(unknown)}")
        config.update({key: _coerce(key, value) for key, value in from_file.items()})
    for key in DEFAULTS:
        value = environ.get(ENV_PREFIX + key.upper())
        if value is not None and value != "":
            config[key] = _coerce(key, value)
    config.update({key: value for key, value in overrides.items() if value is not None})

    for key in RATIOS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{key}: expected a number above 0 (1.0: no overcommit), "
                             f"got {value!r}")
        config[key] = float(value)
    if config["node_zone"] and config["node_zone"] not in config["zones"]:
        raise ValueError(f"node_zone: {config['node_zone']!r} is not one of zones "
                         f"({', '.join(config['zones'])})")
    if isinstance(config["node_timeout"], bool) or \
            not isinstance(config["node_timeout"], (int, float)) or config["node_timeout"] <= 0:
        raise ValueError(f"node_timeout: expected seconds above 0, got "
                         f"{config['node_timeout']!r}")
    address = config["storage_address"]
    if not isinstance(address, str) or (address.strip() and not _is_address(address.strip())):
        raise ValueError(f"storage_address: expected a host name or IP address (no port: "
                         f"it is iscsi_portal's), got {address!r}")
    config["storage_address"] = address.strip()
    if config["node_address"]:
        try:
            ipaddress.IPv4Address(str(config["node_address"]))
        except ValueError:
            raise ValueError(f"node_address: {config['node_address']!r} is not an IPv4 "
                             "address") from None
    if isinstance(config["vxlan_vni"], bool) or not isinstance(config["vxlan_vni"], int) \
            or not 0 <= config["vxlan_vni"] < 2 ** 24:
        raise ValueError(f"vxlan_vni: expected 1 to 16777215 (0: one per zone, derived from "
                         f"its name), got {config['vxlan_vni']!r}")
    if config["s3_default_object_ownership"] not in ("", "BucketOwnerEnforced",
                                                     "BucketOwnerPreferred", "ObjectWriter"):
        raise ValueError("s3_default_object_ownership: expected BucketOwnerEnforced, "
                         "BucketOwnerPreferred, ObjectWriter or empty, got "
                         f"{config['s3_default_object_ownership']!r}")
    _check_storage_backends(config)
    if bool(config["tls_cert"]) != bool(config["tls_key"]):
        raise ValueError("tls_cert and tls_key go together: give both (TLS) or neither")
    for key in ("tls_cert", "tls_key"):
        if config[key]:
            config[key] = str(Path(config[key]).expanduser().resolve())
    config["data_dir"] = str(Path(config["data_dir"] or data_dir).expanduser().resolve())
    if not config["database_url"]:
        config["database_url"] = "sqlite:///" + str(Path(config["data_dir"]) / "eucalite.db")
    return config


def _check_storage_backends(config: dict[str, Any]) -> None:
    """The backend names are known ones and an s3 backend says where it is and how to sign
    in (a Ceph cluster that cannot be reached is not a config error: the service says so
    at start and in its API errors)."""
    choices = {"s3_backend": ("file", "s3"), "ebs_backend": ("file", "rbd"),
               "rbd_snapshots": ("ceph", "objectstore")}
    for key, allowed in choices.items():
        value = str(config[key] or "").strip().lower()
        if value not in allowed:
            raise ValueError(f"{key}: expected {' or '.join(allowed)}, got {config[key]!r}")
        config[key] = value
    if config["s3_backend"] == "s3":
        missing = [key for key in ("s3_backend_url", "s3_backend_access_key",
                                   "s3_backend_secret_key", "s3_backend_bucket")
                   if not str(config[key] or "").strip()]
        if missing:
            raise ValueError(f"s3_backend = \"s3\" needs {', '.join(missing)} (the S3 "
                             "endpoint, e.g. a Ceph RADOS Gateway, and its user's keys)")


SERVED_FILE = "served-url"


def remember_served_url(config: Mapping[str, Any]) -> None:
    """Record the URL `eucalite serve` listens on, so `eucalite credentials` run later with
    the same data directory prints it even when --port/--host were given on the command line."""
    path = Path(config["data_dir"]) / SERVED_FILE
    path.write_text(public_url(config) + "\n")


def public_url(config: Mapping[str, Any], *, use_served: bool = False) -> str:
    """The base URL clients should use, without a trailing slash.

    ``public_url`` from config wins; with *use_served*, the URL the last ``eucalite serve``
    on this data directory recorded comes next; else it is built from host and port.
    """
    if config.get("public_url"):
        return str(config["public_url"]).rstrip("/")
    if use_served and config.get("data_dir"):
        served = Path(config["data_dir"]) / SERVED_FILE
        if served.is_file() and served.read_text().strip():
            return served.read_text().strip().rstrip("/")
    scheme = "https" if config.get("tls_cert") else "http"
    host = config["host"]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{config['port']}"


def endpoints(config: Mapping[str, Any], *, use_served: bool = False) -> dict[str, str]:
    """Service endpoint URLs, as Eucalyptus lays them out on one port.

    S3 sits at the root so path-style clients (s3cmd, rclone) need only host and port.
    """
    base = public_url(config, use_served=use_served)
    return {
        "ec2": base + "/services/compute",
        "s3": base,
        "iam": base + "/services/Euare",
        "sts": base + "/services/Tokens",
        "cloudwatch": base + "/services/CloudWatch",
        "autoscaling": base + "/services/AutoScaling",
    }
