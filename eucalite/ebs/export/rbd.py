"""The RBD export: a volume kept as an RBD image is opened by QEMU itself, through librbd.

Nothing is exported on the storage host: any node that reaches the Ceph cluster (this
host's, or one on another host) opens the image directly, so there is no iSCSI hop. The
export record names the image (``pool``, ``image``), the monitors (``hosts``: [host, port]
pairs), the cephx ``username`` and ``secret_usage``, the usage name of the libvirt ceph
secret the node keeps the user's key in. The key itself is never in the record (nor in
the domain XML): :meth:`RbdExport.disk_spec` reads it from the keyring and hands it to the
node as the DiskSpec's ``password``, which the libvirt driver stores in that secret.
"""
from __future__ import annotations

import threading

from ...ceph import CephUnavailable
from ...cluster.virt.driver import DiskSpec
from .base import ExportDriver, ExportError, serial_for

#: libvirt ceph secret usage names: the prefix plus the cephx user ("client.eucalite"),
#: one per user on a node, defined once and kept
CEPH_SECRET_PREFIX = "eucalite ceph "


class RbdExport(ExportDriver):
    """Export records of RBD images (see the module docstring); *backing* is the
    storage controller's :class:`~eucalite.ebs.backing.RbdBacking`."""

    name = "rbd"

    def __init__(self, backing) -> None:
        self.backing = backing
        # an RBD export holds no resource: this set is all its state (see LocalExport)
        self._exported: set[str] = set()
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        return self.backing.problem()

    def create_export(self, volume_id: str, path: str, node_id: str | None = None) -> dict:
        try:
            source = self.backing.disk_source()
        except CephUnavailable as error:
            raise ExportError(f"cannot attach {volume_id}: {error}") from None
        with self._lock:
            self._exported.add(volume_id)
        record = {"driver": self.name, "volume_id": volume_id, "pool": self.backing.pool,
                  "image": volume_id, "hosts": [list(h) for h in source["hosts"]],
                  "username": source["username"],
                  "secret_usage": CEPH_SECRET_PREFIX + "client." + source["username"]}
        if node_id is not None:
            record["node_id"] = node_id
        return record

    def remove_export(self, volume_id: str, export: dict) -> None:
        with self._lock:
            self._exported.discard(volume_id)

    def disk_spec(self, volume_id: str, export: dict, path: str, target: str) -> DiskSpec:
        try:
            key = self.backing.disk_source()["key"]
        except CephUnavailable as error:
            raise ExportError(f"cannot attach {volume_id}: {error}") from None
        network = {"protocol": "rbd", "name": f"{export['pool']}/{export['image']}",
                   "hosts": [list(h) for h in export["hosts"]],
                   "username": export["username"], "secret_usage": export["secret_usage"],
                   "password": key}
        return DiskSpec(target, format="raw", serial=serial_for(volume_id), network=network)

    def exported(self) -> set[str]:
        with self._lock:
            return set(self._exported)
