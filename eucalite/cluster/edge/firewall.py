"""A node's data plane: :class:`NftFirewall` (the kernel, through ``nft``) and
:class:`FakeFirewall` (in memory, for the fake hypervisor), behind one small protocol.

What :class:`NftFirewall` changes on the host, and nothing else:

* the tables ``bridge eucalite`` and ``ip eucalite`` (never another table);
* the instance bridge's own ``nf_call_iptables`` flag (bridged IPv4 passes the ip hooks,
  where conntrack lives) and IPv4 forwarding on the bridge and on the public interface
  (``net.ipv4.conf.<if>.forwarding``, per interface, not the global switch);
* each public IP in use on the node as a /32 on the public interface (so the host answers
  ARP for it), removed when no instance uses it any more; the addresses it added are
  listed in ``<data_dir>/edge-addresses.json`` so that only those are ever removed.

* tracked connections (conntrack) of its NAT that a new ruleset no longer stands behind,
  which it deletes (see below).

:meth:`NftFirewall.remove` undoes the tables and addresses and forgets its NAT's flows
(the interface flags stay).

An apply changes only what differs from what the firewall applied last, which it keeps
in memory: reading the tables back costs more than changing a chain, and a sync after an
API call should cost what the change costs. The kernel's tables are read back on the
first apply, on every apply asked to (*reread*: the reconciler's passes, so a rule lost
or changed by hand is repaired within a pass) and after nft refused a change worked out
from memory. This assumes one firewall object applies on a node at a time (the serving
process's node duty, under netplan's lock). After each apply the tracked connections the
new ruleset no longer stands behind are deleted (:mod:`.conntrack`: a public IP's flows
follow it when it moves).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from pathlib import Path
from typing import Protocol, Sequence

from . import conntrack, nft
from .nft import Changes, FirewallError, Installed
from .plan import NetworkPlan
from .ruleset import BRIDGE_FAMILY, IP_FAMILY, TABLE, Host, Table, render

INSTALL_HINT = "apt install nftables"

log = logging.getLogger(__name__)


class Firewall(Protocol):
    """Makes a node's data plane enforce a plan."""

    def apply(self, plan: NetworkPlan, reread: bool = False) -> Changes:
        """Afterwards exactly *plan* is enforced; returns what changed (FirewallError).
        *reread*: compare with what the kernel holds now, not with what was applied last
        (repairs changes made behind the firewall's back; costs a read of the tables)."""

    def remove(self) -> None:
        """Undo what the data plane put on the host (it enforces nothing afterwards)."""


class FakeFirewall:
    """The in-memory data plane: renders each plan (so a plan nft would refuse fails here
    too) and keeps it, for the fake hypervisor and tests."""

    def __init__(self, host: Host):
        self.host = host
        self.plan: NetworkPlan | None = None
        self.tables: list[Table] = []
        self.applied = 0
        self.rereads = 0

    def apply(self, plan: NetworkPlan, reread: bool = False) -> Changes:
        self.tables = render(plan, self.host)
        self.plan = plan
        self.applied += 1
        self.rereads += reread
        return Changes()

    def remove(self) -> None:
        self.tables, self.plan = [], None


class NftFirewall:
    """The kernel's data plane on this host (or inside a network namespace: *prefix* is
    put before every command, e.g. ``("ip", "netns", "exec", "ns1")``). *state_dir* holds
    the list of public addresses it added."""

    def __init__(self, host: Host, state_dir: Path, prefix: Sequence[str] = ()):
        self.host = host
        self.prefix = tuple(prefix)
        self.addresses_file = Path(state_dir) / "edge-addresses.json"
        # what the last apply left installed (tables by ref; public /32s); None: unknown
        self._tables: dict[str, Installed | None] | None = None
        self._public: set[str] | None = None

    # -- start-up ---------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why nft cannot be used here (not installed, not permitted), or None."""
        try:
            nft.run_nft(self.prefix, ["list", "tables"])
        except FirewallError as error:
            return f"nft does not work here: {error} ({INSTALL_HINT}; eucalite must run as root)"
        return None

    def global_forwarding(self) -> str:
        """The host's global IPv4 forwarding switch now ("0" or "1")."""
        return self._run(["sysctl", "-n", "net.ipv4.ip_forward"]).strip()

    def prepare(self, global_forwarding: str | None = None) -> None:
        """Set the host's interface flags the data plane needs (idempotent). A routed
        libvirt network turns the global forwarding switch on as it starts: pass what it
        was before (*global_forwarding*) and a "0" is put back first, so only the bridge
        and the public interface forward."""
        if global_forwarding == "0" and self.global_forwarding() == "1":
            self._run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])
        if self.host.public_interface:
            self._run(["ip", "link", "show", "dev", self.host.public_interface])
        self._run(["ip", "link", "set", self.host.bridge, "type", "bridge",
                   "nf_call_iptables", "1"])
        for interface in filter(None, (self.host.bridge, self.host.public_interface)):
            self._run(["sysctl", "-qw", f"net/ipv4/conf/{interface}/forwarding=1"])

    # -- applying ---------------------------------------------------------------------------

    def apply(self, plan: NetworkPlan, reread: bool = False) -> Changes:
        tables = render(plan, self.host)
        remembered = None if reread else self._tables
        self._tables = None                 # unknown until this apply has worked
        before = remembered if remembered is not None else self.installed()
        try:
            changes = nft.apply_tables(self.prefix, tables, before)
        except FirewallError:
            if remembered is None:
                raise
            before = self.installed()       # changed behind our back: work from the kernel
            changes = nft.apply_tables(self.prefix, tables, before)
        self._tables = {table.ref: nft.installed_after(table) for table in tables}
        self._forget_flows(before, tables)
        if self.host.public_interface:
            self._sync_addresses({port.public_ip for port in plan.ports if port.public_ip},
                                 reread)
        return changes

    def remove(self) -> None:
        """Delete eucalite's tables, the public addresses it added and the tracked
        connections its NAT made (they would go on being NATed without the tables)."""
        before = self.installed()
        self._tables = None
        nft.remove_tables(self.prefix, [(BRIDGE_FAMILY, TABLE), (IP_FAMILY, TABLE)])
        self._forget_flows(before, render(NetworkPlan(), self.host))
        if self.host.public_interface:
            self._sync_addresses(set(), reread=True)

    def _forget_flows(self, before: dict[str, Installed | None], tables: list[Table]) -> None:
        """Delete the tracked connections the new tables no longer stand behind (logged,
        not raised, when that fails: the tables are in place and stale flows end by
        themselves once idle)."""
        after = next(table for table in tables if table.family == IP_FAMILY)
        try:
            conntrack.forget(self.prefix, conntrack.stale_flows(before[after.ref], after))
        except FirewallError as error:
            log.warning("established flows of a moved or released address may keep their "
                        "old NAT until idle: %s", error)

    def installed(self) -> dict[str, nft.Installed | None]:
        """eucalite's tables as installed now ("bridge eucalite", "ip eucalite")."""
        return {f"{family} {TABLE}": nft.read_installed(self.prefix, family, TABLE)
                for family in (BRIDGE_FAMILY, IP_FAMILY)}

    # -- public addresses on the public interface -------------------------------------------

    def _sync_addresses(self, wanted: set[str], reread: bool) -> None:
        """Make the public interface hold exactly the /32s of *wanted* among those eucalite
        added (the interface is listed again only with *reread* or after a change)."""
        if not reread and wanted == self._public:
            return
        self._public = None
        interface = self.host.public_interface
        present = self._addresses(interface)
        added = self._added()
        commands = [f"address add {ip}/32 dev {interface}" for ip in sorted(wanted - present)]
        commands += [f"address del {ip}/32 dev {interface}"
                     for ip in sorted((added & present) - wanted)]
        if commands:
            self._save_added(added | (wanted - present))    # before: a failure leaks none
            self._run(["ip", "-batch", "-"], "\n".join(commands) + "\n")
        self._save_added((added | (wanted - present)) & wanted)
        self._public = set(wanted)

    def _addresses(self, interface: str) -> set[str]:
        out = self._run(["ip", "-j", "address", "show", "dev", interface])
        return {info["local"] for link in json.loads(out or "[]")
                for info in link.get("addr_info", [])
                if info.get("family") == "inet" and info.get("prefixlen") == 32}

    def _added(self) -> set[str]:
        try:
            return set(json.loads(self.addresses_file.read_text()))
        except (FileNotFoundError, ValueError):
            return set()

    def _save_added(self, added: set[str]) -> None:
        if not added and not self.addresses_file.exists():
            return
        partial = self.addresses_file.with_suffix(".partial")
        partial.write_text(json.dumps(sorted(added, key=ipaddress.IPv4Address)))
        partial.replace(self.addresses_file)

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        full = [*self.prefix, *argv]
        try:
            done = subprocess.run(full, input=stdin, capture_output=True, text=True,
                                  timeout=30)
        except FileNotFoundError as exc:
            raise FirewallError(f"{full[0]} is not installed") from exc
        if done.returncode != 0:
            raise FirewallError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout
