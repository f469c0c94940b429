"""Pure builders of libvirt network XML for the instance network (NetworkSpec in driver.py).

The network is isolated (no ``<forward>``: libvirt adds no NAT and does not turn on IP
forwarding), or, when the cloud routes instances to a public interface (``spec.routed``),
``<forward mode='open'/>``: libvirt adds no firewall rules of its own (it would reject
forwarded traffic) and eucalite's data plane does the filtering. Static DHCP only. Every instance address is reserved up front for the
MAC derived from it (:func:`mac_for`, Eucalyptus' ``d0:0d`` + the IPv4 bytes), so a launch
changes nothing in the network: a live libvirt network update costs 0.3-2 s each.
libvirt's dnsmasq gives isolated networks no router; eucalite adds the gateway as router
through dnsmasq's own options, because guests reach the metadata service (an address on
the host) by their default route, as on EC2.
"""
from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET

from .driver import NetworkSpec

DNSMASQ_NS = "http://libvirt.org/schemas/network/dnsmasq/1.0"
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")      # Linux interface names: 15 chars
MIN_PREFIX = 18         # at most 16382 reserved hosts in the network's XML and dnsmasq


def mac_for(ip: str) -> str:
    """The MAC an instance with address *ip* gets: d0:0d followed by the IPv4 bytes."""
    packed = ipaddress.IPv4Address(ip).packed
    return "d0:0d:" + ":".join(f"{byte:02x}" for byte in packed)


def instance_addresses(spec: NetworkSpec) -> list[str]:
    """Every address instances may get: the subnet's hosts but the gateway's."""
    net = ipaddress.ip_interface(f"{spec.gateway}/{spec.prefix}").network
    return [str(ip) for ip in net.hosts() if str(ip) != spec.gateway]


def validate_network(spec: NetworkSpec) -> None:
    """Raise ValueError if *spec* cannot describe a network."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", spec.name or ""):
        raise ValueError(f"invalid network name {spec.name!r}")
    if not _BRIDGE_RE.match(spec.bridge or ""):
        raise ValueError(f"invalid bridge name {spec.bridge!r} (at most 15 characters)")
    ipaddress.ip_interface(f"{spec.gateway}/{spec.prefix}")    # ValueError if malformed
    if not MIN_PREFIX <= int(spec.prefix) <= 29:
        raise ValueError(f"the instance subnet must be between /{MIN_PREFIX} and /29 "
                         f"(got /{spec.prefix})")
    if not 1 <= int(spec.lease_minutes) <= 60 * 24:
        raise ValueError("lease_minutes must be between 1 and 1440")


def network_xml(spec: NetworkSpec) -> str:
    """The <network> XML for *spec*, with a DHCP reservation for every instance address."""
    validate_network(spec)
    ET.register_namespace("dnsmasq", DNSMASQ_NS)
    net = ET.Element("network")
    ET.SubElement(net, "name").text = spec.name
    if spec.routed:
        ET.SubElement(net, "forward", mode="open")
    ET.SubElement(net, "bridge", name=spec.bridge, stp="off", delay="0")
    ip = ET.SubElement(net, "ip", address=spec.gateway, prefix=str(int(spec.prefix)))
    dhcp = ET.SubElement(ip, "dhcp")
    for address in instance_addresses(spec):
        dhcp.append(ET.fromstring(dhcp_host_xml(mac_for(address), address,
                                                spec.lease_minutes)))
    options = ET.SubElement(net, f"{{{DNSMASQ_NS}}}options")
    ET.SubElement(options, f"{{{DNSMASQ_NS}}}option",
                  value=f"dhcp-option=option:router,{spec.gateway}")
    ET.indent(net, space="  ")
    return ET.tostring(net, encoding="unicode")


def dhcp_host_xml(mac: str, ip: str, lease_minutes: int) -> str:
    """One static DHCP ``<host>`` entry, with a short lease so a released address is not
    held long by a guest that is gone."""
    ipaddress.ip_address(ip)
    host = ET.Element("host", mac=mac.lower(), ip=ip)
    ET.SubElement(host, "lease", expiry=str(int(lease_minutes)), unit="minutes")
    return ET.tostring(host, encoding="unicode")


def forward_mode(xml: str) -> str | None:
    """The ``<forward>`` mode of a libvirt network's XML (None: isolated)."""
    forward = ET.fromstring(xml).find("forward")
    return None if forward is None else forward.get("mode", "nat")


def parse_network(xml: str) -> tuple[str, str, int, dict[str, str]]:
    """(bridge, gateway, prefix, {MAC: IP}) of a libvirt network's XML."""
    root = ET.fromstring(xml)
    bridge = root.find("bridge")
    ip = root.find("ip")
    prefix = 0
    if ip is not None:
        if ip.get("prefix"):
            prefix = int(ip.get("prefix"))
        elif ip.get("netmask"):
            prefix = ipaddress.ip_network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
    hosts = {h.get("mac", "").lower(): h.get("ip", "")
             for h in root.findall("./ip/dhcp/host")}
    return (bridge.get("name", "") if bridge is not None else "",
            ip.get("address", "") if ip is not None else "", prefix, hosts)
