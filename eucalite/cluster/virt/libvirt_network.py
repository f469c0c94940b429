"""The instance network of the libvirt driver: its libvirt network and DHCP host entries.

:class:`LibvirtNetworks` does the network half of ``HypervisorDriver`` (ensure_network, the
DHCP host entries and leases) over the driver's :class:`~.libvirt_conn.LibvirtConnection`;
:class:`~.libvirt_driver.LibvirtDriver` hands those calls to it. Network XML comes from the
pure builders in network_xml.py.
"""
from __future__ import annotations

import shutil
import subprocess

from . import network_xml as nx
from .driver import DriverError, NetworkSpec
from .libvirt_conn import LibvirtConnection


class LibvirtNetworks:
    """The instance networks of one libvirt connection. *on_this_host*: whether libvirt's
    bridges are this host's interfaces (so `ip` and `dhcp_release` here can touch them;
    not for a remote libvirt or the test driver)."""

    def __init__(self, connection: LibvirtConnection, on_this_host: bool):
        self._connection = connection
        self._lv = connection.lv
        self._on_this_host = on_this_host
        self._lease_minutes: dict[str, int] = {}     # network -> DHCP lease of new hosts

    def _network(self, name: str):
        """The virNetwork *name*, or None."""
        try:
            return self._connection.get().networkLookupByName(name)
        except self._lv.libvirtError as exc:
            if self._connection.code(exc) == self._lv.VIR_ERR_NO_NETWORK:
                return None
            raise self._connection.error(f"looking up network {name}", exc) from exc

    def ensure_network(self, spec: NetworkSpec) -> None:
        try:
            xml = nx.network_xml(spec)
        except ValueError as exc:
            raise DriverError(f"cannot make network {spec.name}: {exc}") from exc
        net = self._network(spec.name)
        try:
            if net is None:
                net = self._connection.get().networkDefineXML(xml)
            else:
                bridge, gateway, prefix, _hosts = nx.parse_network(net.XMLDesc(0))
                if (bridge, gateway, prefix) != (spec.bridge, spec.gateway, spec.prefix):
                    raise DriverError(
                        f"libvirt network {spec.name} exists with bridge {bridge} and "
                        f"address {gateway}/{prefix}, not {spec.bridge} {spec.gateway}/"
                        f"{spec.prefix}: remove it (virsh net-destroy {spec.name}; virsh "
                        f"net-undefine {spec.name}) or change eucalite's network settings")
                if nx.forward_mode(net.XMLDesc(0)) != ("open" if spec.routed else None):
                    net = self._redefine(net, xml)
            if not net.isActive():
                net.create()
            self._reserve_missing(net, spec)
            try:
                net.setAutostart(1)
            except self._lv.libvirtError:
                pass            # the test driver keeps no autostart; nothing depends on it
        except self._lv.libvirtError as exc:
            raise self._connection.error(f"cannot start network {spec.name}", exc) from exc
        self._lease_minutes[spec.name] = spec.lease_minutes
        if spec.metadata_ip and self._on_this_host:
            self._run(["ip", "address", "replace", f"{spec.metadata_ip}/32", "dev",
                       spec.bridge], f"cannot put {spec.metadata_ip} on {spec.bridge}")

    def _redefine(self, net, xml: str):
        """Replace the network's definition by *xml* (routed <-> isolated), restarting it
        so the change takes effect (guests running meanwhile keep a NIC on no bridge until
        they are restarted: change public_interface while none run)."""
        # the same network (its uuid), or libvirt refuses a second one of that name
        xml = xml.replace("<name>", f"<uuid>{net.UUIDString()}</uuid><name>", 1)
        if net.isActive():
            net.destroy()
        return self._connection.get().networkDefineXML(xml)

    def remove_network(self, name: str) -> None:
        """Stop and undefine the network *name* (for tests and benchmarks that made their
        own). Idempotent."""
        net = self._network(name)
        if net is None:
            return
        try:
            if net.isActive():
                net.destroy()
            net.undefine()
        except self._lv.libvirtError as exc:
            raise self._connection.error(f"cannot remove network {name}", exc) from exc

    def _reserve_missing(self, net, spec: NetworkSpec) -> None:
        """Add the reservations a network made by an older eucalite lacks (once, live)."""
        hosts = nx.parse_network(net.XMLDesc(0))[3]
        taken = set(hosts.values())
        for address in nx.instance_addresses(spec):
            mac = nx.mac_for(address)
            if mac not in hosts and address not in taken:
                self._update_host(net, self._lv.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                                  nx.dhcp_host_xml(mac, address, spec.lease_minutes))

    @staticmethod
    def _run(argv: list[str], what: str) -> None:
        try:
            subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
        except FileNotFoundError as exc:
            raise DriverError(f"{what}: {argv[0]} is not installed") from exc
        except subprocess.CalledProcessError as exc:
            raise DriverError(f"{what}: {exc.stderr.strip() or exc}") from exc

    def _update_host(self, net, command: int, entry: str) -> None:
        lv = self._lv
        flags = lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG if net.isPersistent() else 0
        if net.isActive():
            flags |= lv.VIR_NETWORK_UPDATE_AFFECT_LIVE
        net.update(command, lv.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, entry, flags)

    def add_dhcp_host(self, network: str, mac: str, ip: str) -> None:
        mac = mac.lower()
        net = self._network(network)
        if net is None:
            raise DriverError(f"no libvirt network {network}")
        try:
            hosts = nx.parse_network(net.XMLDesc(0))[3]
            if hosts.get(mac) == ip:
                return
            for old_mac, old_ip in hosts.items():
                if old_mac == mac or old_ip == ip:
                    self._update_host(net, self._lv.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                                      f"<host mac='{old_mac}' ip='{old_ip}'/>")
            self._update_host(net, self._lv.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                              nx.dhcp_host_xml(mac, ip, self._lease_minutes.get(network, 10)))
        except (self._lv.libvirtError, ValueError) as exc:
            raise DriverError(f"cannot add DHCP host {mac} {ip} to {network}: {exc}") from exc

    def remove_dhcp_host(self, network: str, mac: str) -> None:
        mac = mac.lower()
        net = self._network(network)
        if net is None:
            return
        try:
            bridge, _gw, _prefix, hosts = nx.parse_network(net.XMLDesc(0))
            ip = hosts.get(mac)
            if ip is None:
                return
            # release first: dnsmasq ignores a release for a host it no longer knows
            self._release_lease(bridge, mac, ip)
            self._update_host(net, self._lv.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                              f"<host mac='{mac}' ip='{ip}'/>")
        except self._lv.libvirtError as exc:
            raise self._connection.error(f"cannot remove DHCP host {mac} from {network}",
                                         exc) from exc

    def release_lease(self, network: str, mac: str, ip: str) -> None:
        net = self._network(network)
        if net is not None:
            try:
                self._release_lease(nx.parse_network(net.XMLDesc(0))[0], mac.lower(), ip)
            except self._lv.libvirtError:
                pass            # the network went away: so did its leases

    def _release_lease(self, bridge: str, mac: str, ip: str) -> None:
        """Make dnsmasq forget the lease now (dnsmasq-utils' dhcp_release, as nova did), so
        the address is free at once; without the tool the lease just expires."""
        if not (self._on_this_host and shutil.which("dhcp_release")):
            return
        try:
            subprocess.run(["dhcp_release", bridge, ip, mac], capture_output=True,
                           timeout=10, check=False)
        except OSError:
            pass

    def dhcp_hosts(self, network: str) -> dict[str, str]:
        net = self._network(network)
        if net is None:
            return {}
        try:
            return nx.parse_network(net.XMLDesc(0))[3]
        except self._lv.libvirtError as exc:
            raise self._connection.error(f"cannot read network {network}", exc) from exc

    def dhcp_leases(self, network: str) -> dict[str, str]:
        net = self._network(network)
        if net is None:
            return {}
        try:
            return {lease["mac"].lower(): lease["ipaddr"] for lease in net.DHCPLeases()}
        except self._lv.libvirtError:
            return {}           # the test driver keeps no leases
