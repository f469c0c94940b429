"""The instance network, private part of Eucalyptus' EDGE model.

One isolated bridge per node (``instance_bridge``) on one private subnet
(``instance_subnet``): the bridge holds the subnet's first address, which guests use as
their router, plus the metadata address. Every instance gets a fixed private IP when it is
launched and the MAC derived from it (as in Eucalyptus), for which the network reserves that
address by DHCP from the start; when the instance ends its lease is released.

The seams for what comes later: security groups become filter rules keyed by the instance's
MAC/IP when it is plugged (:func:`plug`), elastic IPs NAT rules beside them; allocation
already lives in the database, so several nodes never hand out one address twice.
"""
from __future__ import annotations

import ipaddress
from typing import AbstractSet, Any, Iterator, Mapping

from ..errors.ec2 import InsufficientFreeAddressesInSubnet
from .edge.ruleset import Host
from .virt.driver import HypervisorDriver, NetworkSpec


def subnet(config: Mapping[str, Any]) -> ipaddress.IPv4Network:
    """The configured private subnet (ValueError if it is not a usable IPv4 network)."""
    net = ipaddress.ip_network(config["instance_subnet"], strict=True)
    if net.version != 4 or net.num_addresses < 8:
        raise ValueError(f"instance_subnet {net} must be an IPv4 network of at least /29")
    return net


def spec(config: Mapping[str, Any]) -> NetworkSpec:
    """The NetworkSpec every node of this cloud builds from config."""
    net = subnet(config)
    return NetworkSpec(name=config["instance_network"], bridge=config["instance_bridge"],
                       gateway=str(net.network_address + 1), prefix=net.prefixlen,
                       metadata_ip=config.get("metadata_address") or None,
                       routed=bool(config.get("public_interface")))


def edge_host(config: Mapping[str, Any]) -> Host:
    """The node's side of the EDGE data plane (bridge, subnet, gateway, metadata address,
    public interface) from config."""
    net = subnet(config)
    return Host(bridge=config["instance_bridge"], subnet=str(net),
                gateway=str(net.network_address + 1),
                metadata_ip=config.get("metadata_address") or None,
                metadata_port=int(config.get("metadata_port", 80)),
                public_interface=config.get("public_interface") or None)


def _candidates(net: ipaddress.IPv4Network, after: str | None) -> Iterator[str]:
    """Instance addresses (all hosts but the gateway), starting after *after* and wrapping
    round: addresses are reused as late as possible, so a lease a vanished guest may still
    hold in dnsmasq has long expired before its address is handed out again."""
    hosts = [str(ip) for ip in list(net.hosts())[1:]]
    start = hosts.index(after) + 1 if after in hosts else 0
    yield from hosts[start:] + hosts[:start]


def allocate(config: Mapping[str, Any], count: int, used: AbstractSet[str],
             last: str | None) -> list[str]:
    """*count* free private addresses: none of *used* (the addresses of instances that
    have not ended), starting after *last* (the address handed out most recently). The
    caller reads both inside the write transaction that records the instances
    (``write_lock`` held), so concurrent launches never share an address."""
    net = subnet(config)
    chosen = []
    for ip in _candidates(net, last):
        if ip not in used:
            chosen.append(ip)
            if len(chosen) == count:
                return chosen
    raise InsufficientFreeAddressesInSubnet(
        f"There are not enough free addresses in the instance subnet {net} "
        f"for {count} instance(s).")


def plug(driver: HypervisorDriver, config: Mapping[str, Any], mac: str, ip: str) -> str:
    """Make sure *mac* gets *ip* on the node's network (reserved already unless the MAC is
    not the address's own, or the network predates the address); returns the network's
    name for the domain's NIC."""
    name = config["instance_network"]
    if driver.dhcp_host(name, mac) != ip:
        driver.add_dhcp_host(name, mac, ip)
    return name


def unplug(driver: HypervisorDriver, config: Mapping[str, Any], mac: str, ip: str) -> None:
    """The instance ended: release its lease, so its address is free at once; the
    reservation stays for the next instance that gets the address."""
    driver.release_lease(config["instance_network"], mac, ip)
