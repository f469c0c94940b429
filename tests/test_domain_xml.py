"""Unit tests of the pure libvirt domain-XML builders (eucalite/cluster/virt/domain_xml.py)."""
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from eucalite.cluster.virt.domain_xml import disk_xml, domain_xml, validate_spec
from eucalite.cluster.virt.driver import DiskSpec, DomainSpec


def spec(**kw):
    base = dict(instance_id="i-0123abcd", vcpus=2, memory_mb=256,
                disks=[DiskSpec("vda", "/var/lib/eucalite/i-0123abcd/root.qcow2")])
    base.update(kw)
    return DomainSpec(**base)


def parse(text):
    return ET.fromstring(text)


def test_no_libvirt_import():
    # building XML (and importing the virt package) must never need libvirt-python
    code = ("import sys, eucalite.cluster.virt, eucalite.cluster.virt.domain_xml; "
            "assert 'libvirt' not in sys.modules, 'libvirt imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_basics_name_memory_vcpus_acpi():
    root = parse(domain_xml(spec()))
    assert root.tag == "domain" and root.get("type") == "qemu"
    assert root.findtext("name") == "eucalite-i-0123abcd"
    mem = root.find("memory")
    assert mem.get("unit") == "MiB" and mem.text == "256"
    assert root.findtext("vcpu") == "2"
    assert root.find("os/type").text == "hvm" and root.find("os/type").get("arch") == "x86_64"
    assert root.find("features/acpi") is not None     # disk hot-plug needs it


def test_domain_type_and_arch():
    root = parse(domain_xml(spec(), domain_type="kvm", arch="aarch64"))
    assert root.get("type") == "kvm" and root.find("os/type").get("arch") == "aarch64"
    with pytest.raises(ValueError):
        domain_xml(spec(), domain_type="xen")


def test_direct_kernel_boot():
    root = parse(domain_xml(spec(kernel="/img/eki", ramdisk="/img/eri",
                                 cmdline="console=ttyS0 root=/dev/vda quiet")))
    assert root.findtext("os/kernel") == "/img/eki"
    assert root.findtext("os/initrd") == "/img/eri"
    assert root.findtext("os/cmdline") == "console=ttyS0 root=/dev/vda quiet"
    assert root.find("devices/disk/boot") is None      # the kernel boots, not the disk


def test_disk_boot_when_no_kernel():
    root = parse(domain_xml(spec(disks=[DiskSpec("vda", "/a.raw", format="raw"),
                                        DiskSpec("vdb", "/b.qcow2")])))
    assert root.find("os/kernel") is None
    disks = root.findall("devices/disk")
    assert disks[0].find("boot").get("order") == "1"
    assert disks[1].find("boot") is None


def test_file_disk():
    root = parse(domain_xml(spec(disks=[DiskSpec("vda", "/a.raw", format="raw", serial="vol-1",
                                                 read_only=True)])))
    d = root.find("devices/disk")
    assert d.get("type") == "file" and d.get("device") == "disk"
    assert d.find("driver").attrib == {"name": "qemu", "type": "raw"}
    assert d.find("source").get("file") == "/a.raw"
    assert d.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert d.findtext("serial") == "vol-1"
    assert d.find("readonly") is not None


def test_iscsi_disk_with_chap():
    disk = DiskSpec("vdb", format="raw", serial="vol-9", network={
        "protocol": "iscsi", "name": "iqn.2010-10.org.eucalite:vol-9/1",
        "host": "127.0.0.1", "port": 3260, "username": "chapuser", "secret_usage": "vol-9"})
    d = parse(disk_xml(disk))
    assert d.tag == "disk" and d.get("type") == "network"
    src = d.find("source")
    assert src.attrib == {"protocol": "iscsi", "name": "iqn.2010-10.org.eucalite:vol-9/1"}
    assert src.find("host").attrib == {"name": "127.0.0.1", "port": "3260"}
    assert src.find("auth").get("username") == "chapuser"
    assert src.find("auth/secret").attrib == {"type": "iscsi", "usage": "vol-9"}
    assert d.find("target").get("dev") == "vdb"
    assert d.findtext("serial") == "vol-9"


def test_iscsi_disk_without_auth_and_nbd_socket():
    d = parse(disk_xml(DiskSpec("vdc", format="raw", network={
        "protocol": "iscsi", "name": "iqn.x:y/1", "host": "10.0.0.1"})))
    assert d.find("source/auth") is None
    assert d.find("source/host").attrib == {"name": "10.0.0.1"}
    d = parse(disk_xml(DiskSpec("vdd", format="raw", network={
        "protocol": "nbd", "socket": "/run/eucalite/vol-1.sock"})))
    assert d.find("source").get("protocol") == "nbd"
    assert d.find("source/host").attrib == {"transport": "unix",
                                            "socket": "/run/eucalite/vol-1.sock"}


def test_nic():
    root = parse(domain_xml(spec(network="eucalite-net", mac="52:54:00:AB:CD:EF")))
    iface = root.find("devices/interface")
    assert iface.get("type") == "network"
    assert iface.find("source").get("network") == "eucalite-net"
    assert iface.find("mac").get("address") == "52:54:00:ab:cd:ef"
    assert iface.find("model").get("type") == "virtio"
    assert parse(domain_xml(spec())).find("devices/interface") is None


def test_console_to_file():
    root = parse(domain_xml(spec(console_log="/var/log/eucalite/i-1.log")))
    serial = root.find("devices/serial")
    assert serial.get("type") == "file"
    assert serial.find("source").get("path") == "/var/log/eucalite/i-1.log"
    assert serial.find("target").get("port") == "0"
    console = root.find("devices/console")
    assert console.get("type") == "file"
    assert console.find("target").attrib == {"type": "serial", "port": "0"}


def test_console_to_pty():
    root = parse(domain_xml(spec()))
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console").get("type") == "pty"
    assert root.find("devices/serial/source") is None


def test_escaping():
    nasty = "/tmp/a&b<c>'\".qcow2"
    text = domain_xml(spec(kernel="/k", cmdline="x='1' y=\"2\" <&>",
                           disks=[DiskSpec("vda", nasty, serial="s&<>")]))
    assert "a&b<c>" not in text
    root = parse(text)
    assert root.find("devices/disk/source").get("file") == nasty
    assert root.findtext("devices/disk/serial") == "s&<>"
    assert root.findtext("os/cmdline") == "x='1' y=\"2\" <&>"


@pytest.mark.parametrize("bad", [
    dict(memory_mb=0), dict(vcpus=0), dict(instance_id="i-1/../x"),
    dict(disks=[]),                                          # nothing to boot
    dict(ramdisk="/r"),                                      # ramdisk without kernel
    dict(mac="not-a-mac"),
    dict(disks=[DiskSpec("vda", "/a"), DiskSpec("vda", "/b")]),
    dict(disks=[DiskSpec("sda", "/a")]),
    dict(disks=[DiskSpec("vda")]),                           # no source
    dict(disks=[DiskSpec("vda", "/a", format="vmdk")]),
    dict(disks=[DiskSpec("vda", network={"protocol": "iscsi", "host": "h"})]),
])
def test_invalid_specs_rejected(bad):
    with pytest.raises(ValueError):
        validate_spec(spec(**bad))
    with pytest.raises(ValueError):
        domain_xml(spec(**bad))


@pytest.mark.skipif(not shutil.which("virt-xml-validate"),
                    reason="virt-xml-validate not installed (apt install libvirt-clients libxml2-utils)")
def test_validates_against_libvirt_schema(tmp_path):
    # libvirt's own RelaxNG schema: catches misplaced elements the parsed-tree tests miss
    disks = [DiskSpec("vda", "/a.raw", format="raw", serial="vol-a"),
             DiskSpec("vdb", format="raw", serial="vol-b", network={
                 "protocol": "iscsi", "name": "iqn.x:y/1", "host": "127.0.0.1", "port": 3260,
                 "username": "u", "secret_usage": "vol-b"}),
             DiskSpec("vdc", format="raw", read_only=True,
                      network={"protocol": "nbd", "socket": "/run/x.sock"})]
    for i, s in enumerate([spec(disks=disks, network="n", mac="52:54:00:00:00:01"),
                           spec(kernel="/k", ramdisk="/r", console_log="/var/log/c.log")]):
        path = tmp_path / f"d{i}.xml"
        path.write_text(domain_xml(s))
        run = subprocess.run(["virt-xml-validate", str(path), "domain"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def test_owning_cloud_is_recorded_in_the_domain_metadata():
    import xml.etree.ElementTree as ET

    from eucalite.cluster.virt.domain_xml import METADATA_NS, domain_xml
    from eucalite.cluster.virt.driver import DiskSpec, DomainSpec

    spec = DomainSpec(instance_id="i-1", vcpus=1, memory_mb=64, cloud="c0ffee",
                      disks=[DiskSpec(target="vda", path="/x.qcow2")])
    root = ET.fromstring(domain_xml(spec))
    assert root.find(f"metadata/{{{METADATA_NS}}}cloud").text == "c0ffee"
    spec.cloud = None
    assert ET.fromstring(domain_xml(spec)).find("metadata") is None
