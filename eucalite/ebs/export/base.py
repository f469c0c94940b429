"""The export driver contract: how a volume's file on the storage host reaches a node's VM.

A volume is a sparse raw file (``<data_dir>/volumes/<vol-id>.raw``). An export driver makes
that file reachable from the node that runs the instance (an iSCSI target, or nothing at all
when the node is this host) and says how the node attaches it, as the ``DiskSpec`` the
hypervisor driver hot-plugs. Shaped after cinder's target drivers: ``create_export`` returns
a JSON-able record the caller stores with the volume (``Volume.export_json``), and every later
call gets that record back.

Export records always hold ``driver`` (the driver's name) and ``volume_id``; iSCSI records
add ``iqn``, ``lun``, ``host``, ``port``, ``username``, ``password`` (CHAP) and
``secret_usage`` (the libvirt secret the node keeps the password in).

Whose CHAP account guards a target: for the storage controller's own host's node, one
account per volume (as before nodes could join); for a node on another host
(``create_export(..., node_id=...)``), that node's one account (:class:`NodeAccounts`),
bound to exactly the targets of the volumes attached to its instances, so a node's
credential opens no other node's volumes (the account leaves the target with its last
volume; its secret stays saved for the next). Such a record also holds ``node_id``, and its
``host`` is the storage host's address nodes reach (config ``storage_address``), not the
portal the target listens on.

Also here: the iSCSI pieces tgt and LIO share (IQN naming, CHAP credentials, the per-node
accounts, the portal setting and the network ``DiskSpec``).
"""
from __future__ import annotations

import abc
import json
import os
import re
import secrets
import string
import threading
import time

from ...cluster.virt.driver import DiskSpec

#: IQNs of eucalite's targets: the prefix plus the volume id
IQN_PREFIX = "iqn.2026-11.dev.eucalite:"
DEFAULT_PORTAL = "127.0.0.1:3260"
#: libvirt secret usage names of eucalite's CHAP secrets: the prefix plus the volume id
SECRET_USAGE_PREFIX = "eucalite-chap-"
# RFC 3720 wants CHAP secrets of at least 12 bytes; 24 alphanumerics are ~143 bits and need
# no quoting anywhere (tgtadm argv, configfs, libvirt XML)
PASSWORD_LENGTH = 24
_ALNUM = string.ascii_letters + string.digits


class ExportError(Exception):
    """An export operation failed; the message says what and why, for logs and users."""


class ExportUnavailable(ExportError):
    """The chosen export driver cannot work on this host; the message is its ``problem()``
    (what is missing and how to install it). The caller turns it into an API error."""


class ExportDriver(abc.ABC):
    """Makes volume files reachable by nodes (see the module docstring)."""

    #: short name for config (``ebs_export``), records and logs: local | tgt | lio
    name = "abstract"
    #: the CHAP accounts of nodes on other hosts (iSCSI drivers); None: it serves none
    node_accounts: "NodeAccounts | None" = None

    @abc.abstractmethod
    def problem(self) -> str | None:
        """None when the driver can work on this host now, else one plain sentence saying
        why not and what to install or start."""

    @abc.abstractmethod
    def create_export(self, volume_id: str, path: str, node_id: str | None = None) -> dict:
        """Make the raw file *path* of *volume_id* reachable and return the export record
        (JSON-able; see the module docstring for its keys). *node_id*: the node on another
        host that attaches it: only that node's CHAP account may log in (None: this host's
        node, with the volume's own account). Idempotent: called again for an exported
        volume and the same node it returns an equivalent record (same credentials) and
        changes nothing; for another node the export is made anew for that one. Afterwards
        ``volume_id in exported()``. ExportError when it cannot."""

    @abc.abstractmethod
    def remove_export(self, volume_id: str, export: dict) -> None:
        """Withdraw the export *export* of *volume_id*: afterwards no initiator can reach
        the volume (open sessions are dropped) and ``volume_id not in exported()``.
        Idempotent: removing an export that is already gone is not an error."""

    @abc.abstractmethod
    def disk_spec(self, volume_id: str, export: dict, path: str, target: str) -> DiskSpec:
        """The raw disk the node hot-plugs at *target* (vdb, ...) to reach the volume,
        with the serial :func:`serial_for` gives, so the guest finds it by
        /sys/block/*/serial."""

    @abc.abstractmethod
    def exported(self) -> set[str]:
        """The volume ids that have an export now (what a reconciler compares with the
        volumes that should have one)."""


# -- the iSCSI pieces tgt and LIO share ------------------------------------------------------

def serial_for(volume_id: str) -> str:
    """The disk serial the guest sees for a volume: its id without the dash, as EC2's Nitro
    hosts show it (``vol0123456789abcdef0``): virtio-blk serials hold only 20 bytes, one
    fewer than a volume id."""
    return volume_id.replace("-", "", 1)[:20]


def iqn_for(volume_id: str) -> str:
    """The target IQN of *volume_id*'s export."""
    return IQN_PREFIX + volume_id


def volume_of(iqn: str) -> str | None:
    """The volume id an IQN of ours names, or None for someone else's target."""
    return iqn[len(IQN_PREFIX):] if iqn.startswith(IQN_PREFIX) else None


def new_chap() -> tuple[str, str]:
    """A fresh random CHAP (username, password) pair for one volume."""
    user = "euca" + secrets.token_hex(6)
    password = "".join(secrets.choice(_ALNUM) for _ in range(PASSWORD_LENGTH))
    return user, password


#: CHAP user names of the per-node accounts: the prefix plus the node id
NODE_USER_PREFIX = "eucanode-"
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


class NodeAccounts:
    """One CHAP account (user, password) per node on another host, made on first use and
    kept (0600) in ``<state_dir>/<node id>.json``, so the same node gets the same secret
    after a restart of the storage controller or of the target daemon (but not a node
    that joined again under the same name: :meth:`renew_if_older`)."""

    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self._lock = threading.Lock()

    def credentials(self, node_id: str) -> tuple[str, str, bool]:
        """*node_id*'s (user, password, made now): made now is True when the pair was
        just created (an account of that user left on the target has another secret)."""
        if not _NODE_ID.match(node_id or ""):
            raise ExportError(f"invalid node id {node_id!r}")
        path = os.path.join(self.state_dir, f"{node_id}.json")
        with self._lock:
            try:
                with open(path) as f:
                    saved = json.load(f)
                return saved["username"], saved["password"], False
            except (OSError, ValueError, KeyError, TypeError):
                pass
            user = NODE_USER_PREFIX + node_id
            password = new_chap()[1]
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"node_id": node_id, "username": user, "password": password,
                           "made_at": time.time()}, f)
            os.replace(path + ".part", path)
            return user, password, True

    def renew_if_older(self, node_id: str, joined_at: float) -> bool:
        """Forget *node_id*'s pair if it was made before *joined_at* (UNIX time of the
        node's latest join), so the next export makes a new one: a node removed and joined
        again under the same name is another host, which must not share a secret with the
        one that left. True when it was forgotten."""
        path = os.path.join(self.state_dir, f"{node_id}.json")
        with self._lock:
            try:
                with open(path) as f:
                    made_at = float(json.load(f).get("made_at", 0))
            except (OSError, ValueError, TypeError, AttributeError):
                return False
            if made_at >= joined_at:
                return False
            os.unlink(path)
            return True


def parse_portal(portal: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host for port 3260) as (host, port)."""
    portal = (portal or DEFAULT_PORTAL).strip()
    if portal.startswith("["):
        host, _, rest = portal[1:].partition("]")
        port = rest.lstrip(":") or "3260"
    elif portal.count(":") == 1:
        host, port = portal.split(":")
    else:
        host, port = portal, "3260"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid iSCSI portal {portal!r}: the port is not a number") from None
    if not host or not 0 < number < 65536:
        raise ValueError(f"invalid iSCSI portal {portal!r} (expected host:port)")
    return host, number


def iscsi_record(driver: str, volume_id: str, lun: int, portal: tuple[str, int],
                 username: str, password: str, **extra) -> dict:
    """The export record of an iSCSI export (keys listed in the module docstring); *portal*
    is where the node connects."""
    return {"driver": driver, "volume_id": volume_id, "iqn": iqn_for(volume_id), "lun": lun,
            "host": portal[0], "port": portal[1], "username": username,
            "password": password, "secret_usage": SECRET_USAGE_PREFIX + volume_id, **extra}


def iscsi_disk_spec(volume_id: str, export: dict, target: str) -> DiskSpec:
    """The network DiskSpec for an iSCSI export record: QEMU's own initiator logs in with
    CHAP; the node keeps the password in the libvirt secret ``secret_usage`` (never in
    the domain XML)."""
    network = {"protocol": "iscsi", "name": f"{export['iqn']}/{export['lun']}",
               "host": export["host"], "port": export["port"],
               "username": export["username"], "password": export["password"],
               "secret_usage": export["secret_usage"]}
    return DiskSpec(target, format="raw", serial=serial_for(volume_id), network=network)
