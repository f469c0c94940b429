"""Export drivers: how an EBS volume's file reaches the node whose VM attaches it.

- :class:`~.local.LocalExport` (``local``): the node is this host; the file goes straight
  into the domain.
- :class:`~.tgt.TgtExport` (``tgt``): the user-space iSCSI target tgtd, CHAP per volume
  (per node for nodes on other hosts).
- :class:`~.lio.LioExport` (``lio``): the kernel's LIO target through rtslib-fb.

:func:`choose` picks one from the config for this host's node; :func:`choose_iscsi` the
one for nodes on other hosts, which a local file cannot reach. The contract is
:class:`~.base.ExportDriver`.
"""
from __future__ import annotations

import os
from typing import Mapping

from .base import ExportDriver, ExportError, ExportUnavailable, NodeAccounts, parse_portal
from .local import LocalExport
from .lio import LioExport
from .tgt import TgtExport

__all__ = ["ExportDriver", "ExportError", "ExportUnavailable", "LocalExport", "LioExport",
           "TgtExport", "NAMES", "choose", "choose_iscsi", "make", "storage_address"]

NAMES = ("local", "tgt", "lio")
DEFAULT_DATA_DIR = "/var/lib/eucalite"


def storage_address(config: Mapping) -> str:
    """The storage host's address nodes on other hosts connect to for volumes: config
    ``storage_address``, else the iSCSI portal's address (127.0.0.1 by default, which only
    a node on this host reaches)."""
    return (config.get("storage_address") or "").strip() or \
        parse_portal(config.get("iscsi_portal") or "127.0.0.1:3260")[0]


def make(name: str, config: Mapping) -> ExportDriver:
    """The export driver *name* built from *config* (usable or not: see ``problem()``).

    Config keys (all optional): ``iscsi_portal`` (``host:port`` the nodes connect to and
    LIO listens on; default 127.0.0.1:3260), ``storage_address`` (the address nodes on
    other hosts connect to, with the portal's port: :func:`storage_address`),
    ``iscsi_initiators`` (tgt: initiator addresses allowed in, comma-separated, default
    ALL), ``iscsi_initiator_iqns`` (LIO: the nodes' initiator IQNs; default none, i.e. any
    initiator with the CHAP secret), ``data_dir`` (tgt keeps its exports' credentials under
    ``<data_dir>/exports/tgt``, both keep the nodes' CHAP accounts under
    ``<data_dir>/exports/nodes``).
    """
    portal = config.get("iscsi_portal") or "127.0.0.1:3260"
    data_dir = config.get("data_dir") or DEFAULT_DATA_DIR
    accounts = NodeAccounts(os.path.join(data_dir, "exports", "nodes"))
    if name == "local":
        return LocalExport()
    if name == "tgt":
        return TgtExport(os.path.join(data_dir, "exports", "tgt"), portal=portal,
                         initiators=config.get("iscsi_initiators") or "ALL",
                         address=storage_address(config), node_accounts=accounts)
    if name == "lio":
        return LioExport(portal=portal, initiator_iqns=config.get("iscsi_initiator_iqns"),
                         address=storage_address(config), node_accounts=accounts)
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


def choose_iscsi(config: Mapping) -> ExportDriver:
    """The export driver for volumes of instances on nodes on other hosts: the configured
    one when it is tgt or LIO, else (``auto``, ``local``) LIO when usable, else tgt;
    ExportUnavailable saying why neither can work here."""
    wanted = (config.get("ebs_export") or "auto").strip().lower()
    names = [wanted] if wanted in ("tgt", "lio") else ["lio", "tgt"]
    problems = []
    for name in names:
        driver = make(name, config)
        problem = driver.problem()
        if problem is None:
            return driver
        problems.append(f"{name}: {problem}")
    raise ExportUnavailable("volumes reach nodes on other hosts over iSCSI, and no iSCSI "
                            f"target can work here ({'; '.join(problems)})")
