"""Export drivers: how an EBS volume's file reaches the node whose VM attaches it.

- :class:`~.local.LocalExport` (``local``): the node is this host; the file goes straight
  into the domain.
- :class:`~.tgt.TgtExport` (``tgt``): the user-space iSCSI target tgtd, CHAP per volume.
- :class:`~.lio.LioExport` (``lio``): the kernel's LIO target through rtslib-fb.

:func:`choose` picks one from the config; the contract is :class:`~.base.ExportDriver`.
"""
from __future__ import annotations

import os
from typing import Mapping

from .base import ExportDriver, ExportError, ExportUnavailable
from .local import LocalExport
from .lio import LioExport
from .tgt import TgtExport

__all__ = ["ExportDriver", "ExportError", "ExportUnavailable", "LocalExport", "LioExport",
           "TgtExport", "NAMES", "choose", "make"]

NAMES = ("local", "tgt", "lio")
DEFAULT_DATA_DIR = "/var/lib/eucalite"


def make(name: str, config: Mapping) -> ExportDriver:
    """The export driver *name* built from *config* (usable or not: see ``problem()``).

    Config keys (all optional): ``iscsi_portal`` (``host:port`` the nodes connect to and
    LIO listens on; default 127.0.0.1:3260), ``iscsi_initiators`` (tgt: initiator
    addresses allowed in, comma-separated, default ALL), ``iscsi_initiator_iqns`` (LIO: the
    nodes' initiator IQNs; default none, i.e. any initiator with the CHAP secret),
    ``data_dir`` (tgt keeps its exports' credentials under ``<data_dir>/exports/tgt``).
    """
    portal = config.get("iscsi_portal") or "127.0.0.1:3260"
    if name == "local":
        return LocalExport()
    if name == "tgt":
        data_dir = config.get("data_dir") or DEFAULT_DATA_DIR
        return TgtExport(os.path.join(data_dir, "exports", "tgt"), portal=portal,
                         initiators=config.get("iscsi_initiators") or "ALL")
    if name == "lio":
        return LioExport(portal=portal, initiator_iqns=config.get("iscsi_initiator_iqns"))
    raise ExportUnavailable(f"unknown ebs_export {name!r}: use auto, {', '.join(NAMES)}")


def choose(config: Mapping) -> ExportDriver:
    """The export driver config key ``ebs_export`` names: ``auto`` (default) takes LIO when
    usable, else tgt when usable, else local; a named driver that cannot work here raises
    ExportUnavailable with its ``problem()``."""
    wanted = (config.get("ebs_export") or "auto").strip().lower()
    if wanted == "auto":
        for name in ("lio", "tgt"):
            driver = make(name, config)
            if driver.problem() is None:
                return driver
        return LocalExport()
    driver = make(wanted, config)
    problem = driver.problem()
    if problem is not None:
        raise ExportUnavailable(problem)
    return driver
