"""The tiny guest builder (eucalite/cluster/guest.py): its newc cpio writer, the generated
/init and udhcpc scripts, and one real build from the Debian kernel package.

The real build downloads ~27 MB with apt-get (a few seconds here). It is cached for the
session under $EUCALITE_TEST_GUEST_DIR when set (read at import: conftest clears
EUCALITE_* during tests), else in a pytest temp dir; it is skipped, with the reason, only
where apt-get/dpkg-deb are missing or the download fails.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import struct

import pytest
from click.testing import CliRunner

from eucalite.cluster import guest

GUEST_DIR = os.environ.get("EUCALITE_TEST_GUEST_DIR")


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """A minimal newc reader: {name: (mode, data, (rdevmajor, rdevminor))} up to the
    trailer; asserts the format's magic and 4-byte alignment on the way."""
    members, offset = {}, 0
    while True:
        assert data[offset:offset + 6] == b"070701", f"bad magic at {offset}"
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmajor, rminor, namesize = (fields[1], fields[6], fields[9], fields[10],
                                                fields[11])
        name_start = offset + 110
        name = data[name_start:name_start + namesize - 1].decode()
        assert data[name_start + namesize - 1] == 0
        body = name_start + namesize + (-(110 + namesize) % 4)
        assert body % 4 == 0
        if name == "TRAILER!!!":
            assert len(data) == body
            return members
        members[name] = (mode, data[body:body + size], (rmajor, rminor))
        offset = body + size + (-size % 4)


# --- cpio writer -------------------------------------------------------------------------

def test_newc_round_trip_keeps_names_modes_contents_symlinks_and_devices():
    entries = [guest.directory("bin"), guest.regular("bin/tool", b"12345", 0o755),
               guest.symlink("bin/sh", "tool"), guest.char_device("dev/console", 5, 1),
               guest.regular("/etc/empty", b""), guest.regular("abc", b"x" * 7)]
    out = io.BytesIO()
    guest.write_newc(entries, out)

    members = read_newc(out.getvalue())

    assert list(members) == ["bin", "bin/tool", "bin/sh", "dev/console", "etc/empty", "abc"]
    assert members["bin"][0] == stat.S_IFDIR | 0o755
    assert members["bin/tool"][:2] == (stat.S_IFREG | 0o755, b"12345")
    assert members["bin/sh"][:2] == (stat.S_IFLNK | 0o777, b"tool")
    assert members["dev/console"][0] == stat.S_IFCHR | 0o600
    assert members["dev/console"][2] == (5, 1)
    assert members["etc/empty"][1] == b"" and members["abc"][1] == b"xxxxxxx"


def test_newc_output_is_deterministic():
    def archive() -> bytes:
        out = io.BytesIO()
        guest.write_newc([guest.regular("a", b"data")], out)
        return out.getvalue()
    assert archive() == archive()


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_busybox_cpio_lists_what_we_wrote(tmp_path):
    import subprocess

    out = io.BytesIO()
    guest.write_newc([guest.directory("d"), guest.regular("d/f", b"hi\n"),
                      guest.symlink("d/l", "f")], out)
    listing = subprocess.run(["busybox", "cpio", "-tv"], input=out.getvalue(),
                             capture_output=True, check=True).stdout.decode()
    assert "d/f" in listing and "d/l -> f" in listing and listing.startswith("d")


def test_initramfs_holds_init_busybox_applets_modules_and_console(tmp_path):
    module = tmp_path / "virtio_blk.ko"
    module.write_bytes(b"\x7fELF module")

    members = read_newc(gzip.decompress(guest.initramfs(b"BUSYBOX", [("virtio_blk", module)])))

    assert members["init"][0] == stat.S_IFREG | 0o755
    assert members["init"][1].decode() == guest.init_script()
    assert members["bin/busybox"][1] == b"BUSYBOX"
    for applet in ("sh", "udhcpc", "nc", "wget", "timeout", "md5sum", "insmod"):
        assert members[f"bin/{applet}"][:2] == (stat.S_IFLNK | 0o777, b"busybox")
    assert members["lib/modules/virtio_blk.ko"][1] == b"\x7fELF module"
    assert members["etc/udhcpc.script"][1].decode() == guest.udhcpc_script()
    assert members["dev/console"][2] == (5, 1)


# --- generated scripts ------------------------------------------------------------------

def test_init_script_talks_imdsv2_and_prints_the_markers():
    script = guest.init_script()

    assert script.startswith("#!/bin/busybox sh\n")
    assert "PUT /latest/api/token HTTP/1.0\\r\\n" in script
    assert "X-aws-ec2-metadata-token-ttl-seconds: 300" in script
    assert '--header "X-aws-ec2-metadata-token: $TOKEN"' in script
    assert "nc 169.254.169.254 80" in script
    assert "http://169.254.169.254/latest/$1" in script
    assert "get meta-data/instance-id" in script and "get user-data" in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert "timeout 10 wget" in script and not any("wget -T" in line for line in code)
    assert "udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 10" in script
    assert "ip route add 169.254.169.254 dev eth0" in script
    for marker in ("mark boot", "mark token=ok", "mark token=none",
                   'mark "instance-id=', "mark user-data-begin", "mark user-data-end",
                   "mark user-data=none", "mark ready", 'mark "ip=',
                   'mark "disk name=$name serial=$serial size=$size md5=$md5"',
                   'mark "disk-gone name='):
        assert marker in script, marker
    assert 'mark() { echo "EUCALITE-GUEST $*"; }' in script
    assert "/sys/block/vd*" in script and "bs=1048576 count=1" in script


def test_init_script_loads_modules_in_dependency_order():
    script = guest.init_script()
    assert ("for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev "
            "virtio_pci failover net_failover virtio_net virtio_blk evdev button; do") in script
    assert "insmod /lib/modules/$m.ko" in script
    # mounts come first, the never-ending disk loop last
    assert script.index("mount -t devtmpfs") < script.index("insmod") \
        < script.index("mark boot") < script.index("mark ready")
    assert script.rstrip().endswith("while :; do sleep 3600; done")


def test_init_script_powers_off_cleanly_at_the_acpi_power_button():
    """The evdev device of the "Power Button" is watched once the modules are in; a press
    syncs before powering off (what CreateImage's clean shutdown relies on)."""
    script = guest.init_script()
    watch = script.index('= "Power Button"')
    assert script.index("insmod") < watch < script.index("mark ready")
    assert "dd if=/dev/input/${e##*/} bs=24 count=1" in script
    assert script.index("mark power-button", watch) < script.index("sync", watch) \
        < script.index("poweroff -f", watch)


def test_udhcpc_script_sets_address_route_and_prints_lease():
    script = guest.udhcpc_script()
    assert 'ifconfig "$interface" "$ip" netmask' in script
    assert 'ip route add default via "$gw" dev "$interface"' in script
    assert 'echo "EUCALITE-GUEST lease ip=$ip' in script


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_generated_scripts_parse_in_busybox_sh(tmp_path):
    import subprocess

    for name, text in (("init", guest.init_script()), ("udhcpc", guest.udhcpc_script())):
        path = tmp_path / name
        path.write_text(text)
        subprocess.run(["busybox", "sh", "-n", str(path)], check=True)


# --- helpers ----------------------------------------------------------------------------

def test_parse_kernel_depends_finds_the_versioned_package():
    text = ("linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n"
            "  Depends: <linux-image-6.1.0-9-cloud-amd64-unsigned>\n  Recommends: foo\n")
    assert guest.parse_kernel_depends(text) == ["linux-image-6.1.0-56-cloud-amd64",
                                                "linux-image-6.1.0-9-cloud-amd64-unsigned"]


def test_elf_is_static_reads_program_headers():
    def elf(types) -> bytes:
        header = bytearray(64)
        header[:6] = b"\x7fELF\x02\x01"
        struct.pack_into("<Q", header, 0x20, 64)
        struct.pack_into("<HH", header, 0x36, 56, len(types))
        return bytes(header) + b"".join(struct.pack("<I", t) + bytes(52) for t in types)
    assert guest.elf_is_static(elf([1, 1]))
    assert not guest.elf_is_static(elf([6, 3, 1]))       # PT_INTERP: needs ld.so
    assert not guest.elf_is_static(b"#!/bin/sh\n")


def test_cached_build_is_returned_without_apt(tmp_path, monkeypatch):
    for name in ("vmlinuz", "initrd.gz", "root.img"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / guest.MANIFEST).write_text(
        f'{{"builder_version": {guest.BUILDER_VERSION}, "kernel_package": "k"}}')
    monkeypatch.setattr(guest, "kernel_package", lambda: pytest.fail("apt consulted"))
    logged = []

    files = guest.build(tmp_path, log=logged.append)

    assert files == guest.GuestFiles(tmp_path / "vmlinuz", tmp_path / "initrd.gz",
                                     tmp_path / "root.img")
    assert logged == [f"guest: cached in {tmp_path}"]


# --- the real build ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def built_guest(tmp_path_factory):
    """The real guest, built once per session (or reused from $EUCALITE_TEST_GUEST_DIR)."""
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"cannot build the guest here: {', '.join(missing)} not installed")
    out = GUEST_DIR or tmp_path_factory.mktemp("guest")
    try:
        return guest.build(out, log=lambda line: None)
    except guest.GuestBuildError as error:
        print(f"guest build failed: {error}")
        pytest.skip(f"guest build failed (no apt lists or no download?): {error}")


def test_real_build_gives_bzimage_initramfs_and_ext4_root(built_guest):
    with open(built_guest.kernel, "rb") as kernel:
        kernel.seek(0x202)
        assert kernel.read(4) == b"HdrS"

    members = read_newc(gzip.decompress(built_guest.ramdisk.read_bytes()))
    assert members["init"][1].decode() == guest.init_script()
    assert guest.elf_is_static(members["bin/busybox"][1])
    for name in ("virtio_pci", "virtio_net", "virtio_blk"):
        assert members[f"lib/modules/{name}.ko"][1][:4] == b"\x7fELF", name

    assert built_guest.root.stat().st_size == guest.ROOT_SIZE
    if shutil.which("mkfs.ext4") or os.path.exists("/sbin/mkfs.ext4"):
        with open(built_guest.root, "rb") as root:
            root.seek(1080)
            assert root.read(2) == b"\x53\xef"


def test_cli_build_prints_the_three_paths(built_guest):
    from eucalite.cli import main

    result = CliRunner().invoke(main, ["guest", "build", "--out",
                                       str(built_guest.kernel.parent)])

    assert result.exit_code == 0, result.output
    assert f"kernel\t{built_guest.kernel}\n" in result.output
    assert f"ramdisk\t{built_guest.ramdisk}\n" in result.output
    assert f"root\t{built_guest.root}\n" in result.output
