"""Pure builders of libvirt domain XML from the driver contract's specs.

No libvirt import and no policy here: a ``DomainSpec`` goes in, XML text comes out, so the
output can be unit-tested as text (tests/test_domain_xml.py). Elements are built with
ElementTree, which escapes names, paths and command lines for us. Specs that cannot make a
domain (no memory, a disk without a source, ...) raise ``ValueError`` before any XML exists.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .driver import DiskSpec, DomainSpec

DOMAIN_TYPES = ("qemu", "kvm", "test")
METADATA_NS = "https://eucalite.dev/xmlns/libvirt/1"     # <metadata> element of eucalite
DISK_FORMATS = ("qcow2", "raw")
NETWORK_PROTOCOLS = ("iscsi", "nbd", "rbd")
_TARGET_RE = re.compile(r"^vd[a-z]{1,2}$")
_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
# a Linux interface name that is not one of libvirt's own (vnet*, vif*, macvtap*, ...)
_TAP_RE = re.compile(r"^(?!vnet|vif|macvtap|macvlan)[A-Za-z0-9_-]{1,15}$")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """Append a child element with string attributes (and text when given)."""
    child = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        child.text = str(text)
    return child


def _to_text(element: ET.Element) -> str:
    """Serialize an element tree, indented for humans reading `virsh dumpxml`-like logs."""
    ET.indent(element, space="  ")
    return ET.tostring(element, encoding="unicode")


def validate_spec(spec: DomainSpec) -> None:
    """Raise ValueError if *spec* cannot describe a domain (checked before libvirt sees it)."""
    if not spec.instance_id or not re.fullmatch(r"[A-Za-z0-9._-]+", spec.instance_id):
        raise ValueError(f"invalid instance id {spec.instance_id!r}")
    if int(spec.vcpus) < 1:
        raise ValueError(f"{spec.name}: vcpus must be at least 1 (got {spec.vcpus})")
    if int(spec.memory_mb) < 1:
        raise ValueError(f"{spec.name}: memory_mb must be at least 1 (got {spec.memory_mb})")
    if spec.ramdisk and not spec.kernel:
        raise ValueError(f"{spec.name}: a ramdisk needs a kernel (direct kernel boot)")
    if not spec.kernel and not spec.disks:
        raise ValueError(f"{spec.name}: nothing to boot (no kernel and no disk)")
    if spec.mac is not None and not _MAC_RE.match(spec.mac):
        raise ValueError(f"{spec.name}: invalid MAC address {spec.mac!r}")
    if spec.tap is not None and not _TAP_RE.match(spec.tap):
        raise ValueError(f"{spec.name}: invalid NIC name {spec.tap!r}")
    targets = [d.target for d in spec.disks]
    if len(set(targets)) != len(targets):
        raise ValueError(f"{spec.name}: duplicate disk targets {targets}")
    for disk in spec.disks:
        validate_disk(disk)


def validate_disk(disk: DiskSpec) -> None:
    """Raise ValueError if *disk* is not a usable virtio disk description."""
    if not _TARGET_RE.match(disk.target or ""):
        raise ValueError(f"invalid disk target {disk.target!r} (expected vda, vdb, ...)")
    if disk.format not in DISK_FORMATS:
        raise ValueError(f"disk {disk.target}: format must be one of {DISK_FORMATS}")
    if (disk.path is None) == (disk.network is None):
        raise ValueError(f"disk {disk.target}: give exactly one of path or network")
    if disk.network is not None:
        net = disk.network
        if net.get("protocol") not in NETWORK_PROTOCOLS:
            raise ValueError(f"disk {disk.target}: network protocol must be one of "
                             f"{NETWORK_PROTOCOLS}, got {net.get('protocol')!r}")
        if net["protocol"] == "iscsi" and not (net.get("name") and net.get("host")):
            raise ValueError(f"disk {disk.target}: an iSCSI disk needs name (IQN/LUN) and host")
        if net["protocol"] == "nbd" and not (net.get("host") or net.get("socket")):
            raise ValueError(f"disk {disk.target}: an NBD disk needs host or socket")
        if net["protocol"] == "rbd" and not (net.get("name") and (net.get("hosts")
                                                                  or net.get("host"))):
            raise ValueError(f"disk {disk.target}: an RBD disk needs name (pool/image) and "
                             "hosts (the monitors)")


def _disk_element(disk: DiskSpec, boot_order: int | None = None) -> ET.Element:
    """The <disk> element for one DiskSpec (file or network source, always virtio)."""
    validate_disk(disk)
    kind = "file" if disk.path is not None else "network"
    el = ET.Element("disk", {"type": kind, "device": "disk"})
    _sub(el, "driver", name="qemu", type=disk.format)
    if disk.path is not None:
        _sub(el, "source", file=disk.path)
    else:
        _network_source(el, disk.network)
    _sub(el, "target", dev=disk.target, bus="virtio")
    if disk.serial:
        # EC2-style volume identification inside the guest: /sys/block/*/serial
        _sub(el, "serial", disk.serial)
    if disk.read_only:
        _sub(el, "readonly")
    if boot_order is not None:
        _sub(el, "boot", order=str(boot_order))
    return el


def _network_source(disk_el: ET.Element, net: dict) -> None:
    """Append <source protocol=...> for an iSCSI, NBD or RBD disk.

    *net* keys: ``protocol`` (iscsi|nbd|rbd), ``name`` (``IQN/LUN`` for iSCSI, export for
    NBD, ``pool/image`` for RBD), ``host`` and ``port`` (TCP), or ``hosts`` ([host, port]
    pairs: RBD's monitors), or ``socket`` (NBD over a unix socket); CHAP (iSCSI) or cephx
    (RBD) with ``username`` and ``secret_usage`` (the usage name of a libvirt iscsi or ceph
    secret; default the username) or ``secret_uuid``. ``password`` is the CHAP secret or
    the cephx key itself: it is never rendered here (domain XML is logged and readable by
    anyone with virsh) — the libvirt driver stores it in the secret ``secret_usage`` names
    (``secret_xml``) before it attaches the disk; it undefines a CHAP secret after the disk
    is detached and keeps a ceph one (one per cephx user, shared by every RBD disk).
    """
    attrs = {"protocol": net["protocol"]}
    if net.get("name"):
        attrs["name"] = str(net["name"])
    src = _sub(disk_el, "source", **attrs)
    if net.get("socket"):
        _sub(src, "host", transport="unix", socket=str(net["socket"]))
    elif net.get("hosts"):
        for host, port in net["hosts"]:
            _sub(src, "host", name=str(host), port=str(port))
    else:
        host = {"name": str(net["host"])}
        if net.get("port") is not None:
            host["port"] = str(net["port"])
        _sub(src, "host", **host)
    if net.get("username"):
        # <auth> inside <source> is libvirt's current placement (>= 3.9)
        auth = _sub(src, "auth", username=str(net["username"]))
        secret = {"type": SECRET_TYPES.get(net["protocol"], net["protocol"])}
        if net.get("secret_uuid"):
            secret["uuid"] = str(net["secret_uuid"])
        else:
            secret["usage"] = str(net.get("secret_usage") or net["username"])
        _sub(auth, "secret", **secret)


#: The libvirt secret type of each network protocol's credentials
SECRET_TYPES = {"iscsi": "iscsi", "rbd": "ceph"}
CHAP_SECRET_DESCRIPTION = "eucalite CHAP secret"
CEPH_SECRET_DESCRIPTION = "eucalite cephx key"


def chap_secret_xml(usage: str) -> str:
    """The <secret> XML of an iscsi CHAP secret with usage id *usage* (the value is set
    apart, with virSecretSetValue). Private: libvirt never hands the value back out;
    persistent: a domain restart (or libvirtd restart) still finds it."""
    return secret_xml("iscsi", usage)


def secret_xml(kind: str, usage: str) -> str:
    """The <secret> XML of a secret of type *kind* (iscsi: a CHAP password; ceph: a cephx
    key) with usage id *usage*; private and persistent as :func:`chap_secret_xml` says."""
    secret = ET.Element("secret", {"ephemeral": "no", "private": "yes"})
    description = CHAP_SECRET_DESCRIPTION if kind == "iscsi" else CEPH_SECRET_DESCRIPTION
    _sub(secret, "description", f"{description} {usage}")
    _sub(_sub(secret, "usage", type=kind), "target" if kind == "iscsi" else "name", usage)
    return _to_text(secret)


def disk_xml(disk: DiskSpec) -> str:
    """The <disk> XML for hot-plugging *disk* (attachDeviceFlags)."""
    return _to_text(_disk_element(disk))


def _console_elements(devices: ET.Element, console_log: str | None) -> None:
    """Serial port 0 plus a <console> on it: to a file when logged, else to a pty."""
    if console_log:
        serial = _sub(devices, "serial", type="file")
        # append='on' keeps earlier boots: QEMU would truncate the file on each start
        _sub(serial, "source", path=console_log, append="on")
        _sub(serial, "target", port="0")
        console = _sub(devices, "console", type="file")
        _sub(console, "source", path=console_log, append="on")
    else:
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "target", port="0")
        console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")


def domain_xml(spec: DomainSpec, domain_type: str = "qemu", arch: str = "x86_64") -> str:
    """The full <domain> XML for *spec*.

    Boots the kernel directly when ``spec.kernel`` is set (EKI/ERI + cmdline), else from
    the first disk. ``domain_type`` is libvirt's: qemu (TCG), kvm, or test (test:///).
    """
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain type must be one of {DOMAIN_TYPES}, got {domain_type!r}")
    validate_spec(spec)
    dom = ET.Element("domain", {"type": domain_type})
    _sub(dom, "name", spec.name)
    _sub(dom, "memory", str(int(spec.memory_mb)), unit="MiB")
    _sub(dom, "vcpu", str(int(spec.vcpus)))
    if spec.cloud:
        metadata = _sub(dom, "metadata")
        ET.register_namespace("eucalite", METADATA_NS)
        _sub(metadata, f"{{{METADATA_NS}}}cloud", spec.cloud)

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch=arch)
    if spec.kernel:
        _sub(os_el, "kernel", spec.kernel)
        if spec.ramdisk:
            _sub(os_el, "initrd", spec.ramdisk)
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)

    # ACPI is what lets the guest see hot-plugged disks (and answer reboot/shutdown)
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    for i, disk in enumerate(spec.disks):
        # a per-device boot order pins booting to the first disk, whatever its target
        boot = 1 if (i == 0 and not spec.kernel) else None
        devices.append(_disk_element(disk, boot_order=boot))
    if spec.network:
        iface = _sub(devices, "interface", type="network")
        if spec.mac:
            _sub(iface, "mac", address=spec.mac.lower())
        _sub(iface, "source", network=spec.network)
        if spec.tap:
            _sub(iface, "target", dev=spec.tap)
        _sub(iface, "model", type="virtio")
    _console_elements(devices, spec.console_log)
    return _to_text(dom)
