"""The local export: the node is this host, so the volume file goes straight into the domain.

No target, no network, no credentials: libvirt opens the file itself (and relabels it for
QEMU). The right choice for a single-host cloud; it cannot serve a node on another host.
"""
from __future__ import annotations

import os
import threading

from ...cluster.virt.driver import DiskSpec
from .base import ExportDriver, ExportError, serial_for


class LocalExport(ExportDriver):
    """Exports that are only a record of the file's path."""

    name = "local"

    def __init__(self) -> None:
        # A local export holds no resource, so this set is all its state; forgetting it on
        # restart loses nothing (a reconciler's create_export is a cheap no-op).
        self._exported: set[str] = set()
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        return None

    def create_export(self, volume_id: str, path: str, node_id: str | None = None) -> dict:
        if node_id is not None:
            raise ExportError(f"cannot export {volume_id} to node {node_id} on another "
                              "host as a local file: that needs iSCSI (tgt or LIO)")
        if not os.path.isfile(path):
            raise ExportError(f"cannot export {volume_id}: no volume file {path}")
        with self._lock:
            self._exported.add(volume_id)
        return {"driver": self.name, "volume_id": volume_id, "path": path}

    def remove_export(self, volume_id: str, export: dict) -> None:
        with self._lock:
            self._exported.discard(volume_id)

    def disk_spec(self, volume_id: str, export: dict, path: str, target: str) -> DiskSpec:
        return DiskSpec(target, path=export.get("path") or path, format="raw",
                        serial=serial_for(volume_id))

    def exported(self) -> set[str]:
        with self._lock:
            return set(self._exported)
