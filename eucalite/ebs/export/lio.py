"""The LIO export: volumes served by the Linux kernel's iSCSI target, through rtslib-fb.

Per volume: a fileio backstore named after the volume on its raw file, a target
(IQN ``iqn.2026-11.dev.eucalite:<vol-id>``) with TPG 1, LUN 0, the portal, and CHAP: a
NodeACL with the volume's credentials for each configured node initiator IQN (with LUN 0
mapped), or, when no initiator is configured, generated ACLs with TPG-wide CHAP. The
credentials are the volume's own, or for a node on another host that node's pair
(:class:`~.base.NodeAccounts`), so its secret opens only its volumes' targets. Every
object is looked up by name before it is made, so a repeated ``create_export`` changes
nothing; LIO keeps the credentials in configfs, so they are read back rather than saved.

rtslib-fb is imported on first use (``pip install rtslib-fb``), never at eucalite import
time. LIO needs the kernel's configfs target (target_core_mod + iscsi_target_mod): where it
is missing ``problem()`` says so and points to tgt.
"""
from __future__ import annotations

import os

from ...cluster.virt.driver import DiskSpec
from .base import (DEFAULT_PORTAL, ExportDriver, ExportError, NodeAccounts, iqn_for,
                   iscsi_disk_spec, iscsi_record, new_chap, parse_portal, volume_of)

LUN = 0
TPG_TAG = 1
INSTALL_HINT = "pip install rtslib-fb"
NO_KERNEL_TARGET = ("LIO is not available on this host: the kernel has no configfs target "
                    "(modprobe target_core_mod; mount configfs) — use tgt")


def _import_rtslib():
    import rtslib_fb
    return rtslib_fb


class LioExport(ExportDriver):
    """Volumes exported by the kernel's LIO target, one target per volume."""

    name = "lio"

    def __init__(self, portal: str = DEFAULT_PORTAL,
                 initiator_iqns: str | list[str] | None = None, address: str | None = None,
                 node_accounts: NodeAccounts | None = None):
        self.portal = parse_portal(portal)
        #: the storage host's address nodes on other hosts connect to (default: the portal's)
        self.address = address or self.portal[0]
        self.node_accounts = node_accounts
        if isinstance(initiator_iqns, str):
            initiator_iqns = initiator_iqns.split(",")
        self.initiator_iqns = [i.strip() for i in initiator_iqns or () if i.strip()]

    # -- rtslib --------------------------------------------------------------------------

    def problem(self) -> str | None:
        try:
            rtslib = _import_rtslib()
        except ImportError:
            return f"LIO needs rtslib-fb, which is not installed: {INSTALL_HINT}"
        try:
            rtslib.RTSRoot()
        except Exception as exc:    # noqa: BLE001 - rtslib raises OSError, RTSLibError, ...
            return f"{NO_KERNEL_TARGET} ({exc})"
        return None

    def _rts(self):
        """(rtslib module, RTSRoot); ExportUnavailable-style ExportError when absent."""
        try:
            rtslib = _import_rtslib()
        except ImportError as exc:
            raise ExportError(f"LIO needs rtslib-fb: {INSTALL_HINT}") from exc
        try:
            return rtslib, rtslib.RTSRoot()
        except Exception as exc:    # noqa: BLE001
            raise ExportError(f"{NO_KERNEL_TARGET} ({exc})") from exc

    @staticmethod
    def _find(objects, **attrs):
        """The first of *objects* whose attributes equal *attrs*, or None."""
        for obj in objects:
            if all(getattr(obj, k) == v for k, v in attrs.items()):
                return obj
        return None

    # -- the contract --------------------------------------------------------------------

    def create_export(self, volume_id: str, path: str, node_id: str | None = None) -> dict:
        if not os.path.isfile(path):
            raise ExportError(f"cannot export {volume_id}: no volume file {path}")
        if node_id is not None and self.node_accounts is None:
            raise ExportError(f"cannot export {volume_id} to node {node_id}: no place to "
                              "keep nodes' CHAP accounts was configured")
        rtslib, root = self._rts()
        try:
            return self._create(rtslib, root, volume_id, path, node_id)
        except ExportError:
            raise
        except Exception as exc:    # noqa: BLE001 - RTSLibError, OSError from configfs
            raise ExportError(f"cannot export {volume_id} with LIO: {exc}") from exc

    def _create(self, rtslib, root, volume_id: str, path: str, node_id: str | None) -> dict:
        iqn = iqn_for(volume_id)
        so = self._find(root.storage_objects, name=volume_id)
        if so is not None and so.udev_path != path:
            so.delete()             # a stale backstore on another file: also drops its LUNs
            so = None
        if so is None:
            so = rtslib.FileIOStorageObject(volume_id, dev=path, size=os.path.getsize(path))
        target = rtslib.Target(rtslib.FabricModule("iscsi"), iqn, mode="any")
        tpg = rtslib.TPG(target, TPG_TAG, mode="any")
        lun = self._find(tpg.luns, lun=LUN)
        if lun is not None and lun.storage_object.name != volume_id:
            lun.delete()
            lun = None
        if lun is None:
            lun = rtslib.LUN(tpg, LUN, so)
        rtslib.NetworkPortal(tpg, self.portal[0], self.portal[1], mode="any")
        tpg.set_attribute("authentication", "1")
        if node_id is not None:
            # the node's own pair: the target opens to that node's secret only
            user, password, _made_now = self.node_accounts.credentials(node_id)
        else:
            user, password = self._credentials(tpg) or new_chap()
        if self.initiator_iqns:
            self._node_acls(rtslib, tpg, lun, user, password)
        else:
            # any initiator may log in, but only with the volume's CHAP secret
            tpg.set_attribute("generate_node_acls", "1")
            tpg.set_attribute("demo_mode_write_protect", "0")
            tpg.chap_userid, tpg.chap_password = user, password
        tpg.enable = True
        if node_id is None:
            return iscsi_record(self.name, volume_id, LUN, self.portal, user, password,
                                initiator_iqns=list(self.initiator_iqns))
        return iscsi_record(self.name, volume_id, LUN, (self.address, self.portal[1]), user,
                            password, initiator_iqns=list(self.initiator_iqns),
                            node_id=node_id)

    def _credentials(self, tpg) -> tuple[str, str] | None:
        """The CHAP pair an existing export of *tpg* uses, or None for a new one."""
        holders = list(tpg.node_acls) if self.initiator_iqns else [tpg]
        for holder in holders:
            if holder.chap_userid and holder.chap_password:
                return holder.chap_userid, holder.chap_password
        return None

    def _node_acls(self, rtslib, tpg, lun, user: str, password: str) -> None:
        """Exactly the configured initiators get in, each with CHAP and LUN 0 mapped."""
        tpg.set_attribute("generate_node_acls", "0")
        wanted = set(self.initiator_iqns)
        for acl in list(tpg.node_acls):
            if acl.node_wwn not in wanted:
                acl.delete()        # a node no longer configured
        for wwn in self.initiator_iqns:
            acl = rtslib.NodeACL(tpg, wwn, mode="any")
            acl.chap_userid, acl.chap_password = user, password
            if self._find(acl.mapped_luns, mapped_lun=LUN) is None:
                rtslib.MappedLUN(acl, LUN, lun)

    def remove_export(self, volume_id: str, export: dict) -> None:
        rtslib, root = self._rts()
        iqn = iqn_for(volume_id)
        try:
            for target in list(root.targets):
                if target.wwn == iqn:
                    target.delete()     # TPGs, LUNs, ACLs, portals; sessions are dropped
            for so in list(root.storage_objects):
                if so.name == volume_id:
                    so.delete()
        except Exception as exc:    # noqa: BLE001
            raise ExportError(f"cannot remove the LIO export of {volume_id}: {exc}") from exc

    def disk_spec(self, volume_id: str, export: dict, path: str, target: str) -> DiskSpec:
        return iscsi_disk_spec(volume_id, export, target)

    def exported(self) -> set[str]:
        _rtslib, root = self._rts()
        return {vol for vol in (volume_of(t.wwn) for t in root.targets) if vol}
