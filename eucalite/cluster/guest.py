"""A tiny real guest (kernel + initramfs + root disk), built offline from Debian packages.

:func:`build` makes three files a hypervisor can boot directly (``-kernel``/``-initrd``):

- ``kernel``: the Debian cloud kernel's ``vmlinuz``, taken from the package that
  ``linux-image-cloud-amd64`` currently depends on (fetched with ``apt-get download``);
- ``ramdisk``: a gzip'd newc initramfs written here in Python (no ``cpio`` binary needed)
  holding the host's static busybox, the kernel's virtio modules and an ``/init`` (the
  package data file ``guest_init.sh``, with ``guest_udhcpc.sh`` for DHCP) that
  reports on the serial console, in lines starting with :data:`MARKER`, what a test of the
  cloud needs to see: its DHCP address, the IMDS(v2) instance-id and user-data, and every
  virtio disk (serial, size, md5 of the first MiB) as it is plugged and unplugged, and
  powers off cleanly (sync first) when the ACPI power button is pressed; user
  data starting with ``#!`` is then run as a shell script in the background (as
  cloud-init does), its output on the console, so a test can start listeners or probes;
- ``root``: a 16 MiB raw ext4 image (zero-filled when ``mkfs.ext4`` is missing), usable as
  an EMI's root disk; the guest never mounts it.

The result is cached in the output directory (``guest.json`` records :data:`BUILDER_VERSION`
and the kernel package), so a second call returns at once.
"""
from __future__ import annotations

import dataclasses
import glob
import gzip
import io
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

# Bump when the files built here change in any way, so cached builds are redone.
BUILDER_VERSION = 4
MANIFEST = "guest.json"
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
ROOT_SIZE = 16 * 1024 * 1024
ROOT_LABEL = "cloudimg-rootfs"
MARKER = "EUCALITE-GUEST"
METADATA_HOST = "169.254.169.254"
METADATA_URL = f"http://{METADATA_HOST}/latest"

# Load order matters: each module needs the ones before it. Some kernels build a few of
# these in; the /init loads whichever files the initramfs has.
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk",
           "evdev", "button")        # the ACPI power button, which the /init answers

# busybox applets the /init and the udhcpc script call by name (symlinked in /bin), and
# those a user-data script may want: servers to reach (httpd, nc -l), tools to probe and to
# change the guest's own addresses with.
APPLETS = ("sh", "mount", "insmod", "echo", "cat", "sleep", "ip", "udhcpc", "nc", "wget",
           "timeout", "tr", "sed", "grep", "dd", "md5sum", "cut", "date", "dmesg", "tail",
           "printf", "rm", "ifconfig", "route", "test", "[", "head", "httpd", "mkdir", "kill",
           "ps", "awk", "seq", "wc", "ping", "arping", "usleep", "true", "false", "expr")


class GuestBuildError(RuntimeError):
    """The guest cannot be built on this host; the message says what to install or run."""


@dataclasses.dataclass(frozen=True)
class GuestFiles:
    """Paths of a built guest: boot ``kernel`` with ``ramdisk`` and attach ``root`` as vda."""

    kernel: Path
    ramdisk: Path
    root: Path


Log = Callable[[str], None]


# --- the build ------------------------------------------------------------------------

def build(out_dir: str | Path, *, work_dir: str | Path | None = None,
          log: Log = print) -> GuestFiles:
    """Build the guest into *out_dir* (created if missing) and return its three files.

    Cached: when *out_dir* already holds the three files and a ``guest.json`` from this
    :data:`BUILDER_VERSION`, they are returned without touching apt. Downloads and
    extraction happen in a temporary directory under *work_dir* (default: the system temp
    directory), removed afterwards. Raises :class:`GuestBuildError` with the fix when a
    tool, package or apt list is missing.
    """
    out = Path(out_dir)
    files = GuestFiles(kernel=out / "vmlinuz", ramdisk=out / "initrd.gz", root=out / "root.img")
    if _cached(out, files):
        log(f"guest: cached in {out}")
        return files
    out.mkdir(parents=True, exist_ok=True)
    busybox = find_static_busybox()
    with tempfile.TemporaryDirectory(prefix="eucalite-guest-", dir=work_dir) as tmp:
        tmp_path = Path(tmp)
        package = kernel_package()
        log(f"guest: downloading {package}")
        tree = _download_and_extract(package, tmp_path)
        kernel = _find_kernel(tree)
        modules = collect_modules(tree, tmp_path / "modules")
        log(f"guest: modules {' '.join(name for name, _ in modules) or '(all built in)'}")
        # Write next to the final names and rename, so a crash never leaves a half file
        # that a later call would take for a finished one.
        _replace(files.kernel, lambda part: shutil.copyfile(kernel, part))
        _replace(files.ramdisk, lambda part: part.write_bytes(
            initramfs(busybox.read_bytes(), modules)))
        _replace(files.root, lambda part: make_root_image(part, tmp_path / "rootdir"))
    (out / MANIFEST).write_text(json.dumps({"builder_version": BUILDER_VERSION,
                                            "kernel_package": package}, indent=1) + "\n")
    log(f"guest: built in {out}")
    return files


def _cached(out: Path, files: GuestFiles) -> bool:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (manifest.get("builder_version") == BUILDER_VERSION
            and all(path.is_file() for path in dataclasses.astuple(files)))


def _replace(target: Path, write: Callable[[Path], object]) -> None:
    part = target.with_name(target.name + ".part")
    write(part)
    os.replace(part, target)


# --- kernel package -------------------------------------------------------------------

def kernel_package() -> str:
    """The versioned kernel package ``linux-image-cloud-amd64`` depends on now, with an
    installable candidate (the signed package, else its ``-unsigned`` twin).

    Runs ``apt-get update`` first when the apt lists are empty and we are root.
    """
    _need_tool("apt-cache", "apt")
    _ensure_apt_lists()
    depends = _run(["apt-cache", "depends", KERNEL_META_PACKAGE]).stdout
    named = parse_kernel_depends(depends)
    if not named:
        raise GuestBuildError(f"`apt-cache depends {KERNEL_META_PACKAGE}` names no "
                              f"linux-image-*-cloud-amd64 package:\n{depends}")
    for name in named:
        for candidate in (name, f"{name}-unsigned"):
            if _has_candidate(candidate):
                return candidate
    raise GuestBuildError(f"no installable candidate for {', '.join(named)} "
                          "(run apt-get update?)")


def parse_kernel_depends(text: str) -> list[str]:
    """Package names on ``Depends:`` lines of ``apt-cache depends`` output that look like
    a versioned cloud kernel; angle brackets (virtual packages) are removed."""
    names = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        name = value.strip().strip("<>")
        if key.endswith("Depends") and name.startswith("linux-image-") \
                and "-cloud-amd64" in name and name != KERNEL_META_PACKAGE:
            names.append(name)
    return names


def _has_candidate(package: str) -> bool:
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    for line in policy.stdout.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip() != "(none)"
    return False


def _ensure_apt_lists() -> None:
    if glob.glob("/var/lib/apt/lists/*_Packages*"):
        return
    if os.geteuid() != 0:
        raise GuestBuildError("the apt package lists are empty: run `sudo apt-get update`, "
                              "then build the guest again")
    _run(["apt-get", "update"])


def _download_and_extract(package: str, tmp: Path) -> Path:
    """``apt-get download`` *package* into *tmp* and ``dpkg-deb -x`` it; returns the tree."""
    _need_tool("apt-get", "apt")
    _need_tool("dpkg-deb", "dpkg")
    download = tmp / "deb"
    download.mkdir()
    command = ["apt-get", "download", "-q", package]
    if os.geteuid() == 0:
        # As root apt drops to the _apt user, who cannot write into our private temp dir.
        command[1:1] = ["-o", "APT::Sandbox::User=root"]
    _run(command, cwd=download)
    debs = sorted(download.glob("*.deb"))
    if not debs:
        raise GuestBuildError(f"apt-get download {package} produced no .deb")
    tree = tmp / "tree"
    _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
    return tree


def _find_kernel(tree: Path) -> Path:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise GuestBuildError(f"no boot/vmlinuz-* in the kernel package ({tree})")
    return kernels[0]


def collect_modules(tree: Path, dest: Path) -> list[tuple[str, Path]]:
    """The :data:`MODULES` present in the extracted package *tree*, in load order, as
    (name, uncompressed .ko path); compressed ones are unpacked into *dest*."""
    found = {}
    for path in tree.glob("lib/modules/*/kernel/**/*.ko*"):
        name, _, suffix = path.name.partition(".ko")
        if name in MODULES and suffix in ("", ".xz", ".zst"):
            found[name] = path
    dest.mkdir(parents=True, exist_ok=True)
    return [(name, _uncompressed(found[name], dest / f"{name}.ko"))
            for name in MODULES if name in found]


def _uncompressed(path: Path, target: Path) -> Path:
    if path.name.endswith(".ko"):
        return path
    if path.name.endswith(".xz"):
        target.write_bytes(lzma.decompress(path.read_bytes()))
        return target
    if shutil.which("zstd") is None:
        raise GuestBuildError(f"{path.name} is zstd-compressed and the zstd program is "
                              "missing: install the zstd package")
    _run(["zstd", "-q", "-d", "-f", "-o", str(target), str(path)])
    return target


# --- busybox --------------------------------------------------------------------------

def find_static_busybox() -> Path:
    """The host's busybox, checked to be statically linked (the initramfs has no libc)."""
    for candidate in BUSYBOX_PATHS:
        path = Path(candidate)
        if path.is_file():
            if elf_is_static(path.read_bytes()):
                return path
            raise GuestBuildError(f"{path} is dynamically linked: install {BUSYBOX_PACKAGE} "
                                  f"(apt-get install {BUSYBOX_PACKAGE})")
    raise GuestBuildError(f"no busybox found: install {BUSYBOX_PACKAGE} "
                          f"(apt-get install {BUSYBOX_PACKAGE})")


def elf_is_static(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF with no PT_INTERP (no dynamic loader needed)."""
    PT_INTERP = 3
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != PT_INTERP
               for i in range(phnum))


# --- newc cpio ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Entry:
    """One archive member. ``mode`` includes the file type bits (stat.S_IFREG | 0o755, ...);
    ``data`` is the content of a regular file or the target of a symlink; ``rdev`` is
    (major, minor) for device nodes."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str, perm: int = 0o755) -> Entry:
    return Entry(name, stat.S_IFDIR | perm)


def regular(name: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(name, stat.S_IFREG | perm, data)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, stat.S_IFLNK | 0o777, target.encode())


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(name, stat.S_IFCHR | perm, rdev=(major, minor))


def write_newc(entries: Iterable[Entry], out: BinaryIO) -> None:
    """Write *entries* as a SVR4 "newc" cpio archive (what the kernel unpacks as an
    initramfs), then the TRAILER!!! member. Owner root, mtime 0: the bytes depend only on
    the entries, so rebuilding gives an identical archive."""
    def member(ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        out.write(header + encoded + _pad(len(header) + len(encoded)))
        out.write(data + _pad(len(data)))

    ino = 0
    for ino, entry in enumerate(entries, start=1):
        member(ino, entry.name.lstrip("/"), entry.mode, entry.data, entry.rdev)
    member(ino + 1, "TRAILER!!!", 0, b"", (0, 0))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


# --- initramfs ------------------------------------------------------------------------

def initramfs(busybox: bytes, modules: list[tuple[str, Path]]) -> bytes:
    """The gzip'd newc initramfs: busybox + applet links, *modules* (name, .ko path) under
    /lib/modules/, the udhcpc script and :func:`init_script` as /init."""
    entries = [directory(name) for name in
               ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "run")]
    # The kernel opens /dev/console for /init's stdio before anything mounts devtmpfs.
    entries.append(char_device("dev/console", 5, 1))
    entries.append(regular("bin/busybox", busybox, 0o755))
    entries += [symlink(f"bin/{applet}", "busybox") for applet in APPLETS]
    entries += [regular(f"lib/modules/{name}.ko", path.read_bytes()) for name, path in modules]
    entries.append(regular("etc/udhcpc.script", udhcpc_script().encode(), 0o755))
    entries.append(regular("init", init_script().encode(), 0o755))
    archive = io.BytesIO()
    write_newc(entries, archive)
    return gzip.compress(archive.getvalue(), compresslevel=9, mtime=0)


def _script(name: str, values: dict[str, str]) -> str:
    """The package data file *name* with each ``@KEY@`` replaced by ``values[KEY]``
    (``@`` rather than ``$`` or braces: the shell uses those)."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def udhcpc_script() -> str:
    """The udhcpc event script (guest_udhcpc.sh): on a lease, set the address and default
    route (router option), print the lease and save the address in /run/eucalite-ip for
    /init."""
    return _script("guest_udhcpc.sh", {"MARKER": MARKER})


def init_script() -> str:
    """The /init busybox shell script (guest_init.sh; see the module docstring); it never
    exits, since the kernel panics when init does."""
    return _script("guest_init.sh", {"MARKER": MARKER, "MODULES": " ".join(MODULES),
                                     "METADATA_HOST": METADATA_HOST,
                                     "METADATA_URL": METADATA_URL})


# --- root disk ------------------------------------------------------------------------

def make_root_image(path: Path, staging: Path) -> None:
    """A 16 MiB raw disk at *path*: ext4 labelled cloudimg-rootfs holding a README, or
    zeros when mkfs.ext4 is not installed."""
    with open(path, "wb") as image:
        image.truncate(ROOT_SIZE)
    mkfs = shutil.which("mkfs.ext4") or next(
        (p for p in ("/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4") if os.path.exists(p)), None)
    if mkfs is None:
        return
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "README").write_text(
        "eucalite tiny guest root disk.\n\n"
        "Built by eucalite.cluster.guest for tests and first steps. The guest runs entirely\n"
        "from its initramfs (busybox /init) and never mounts this disk; it is here so the\n"
        "kernel + ramdisk pair can be registered as an EMI with a root device.\n")
    _run([mkfs, "-q", "-F", "-L", ROOT_LABEL, "-d", str(staging), str(path)])


# --- helpers --------------------------------------------------------------------------

def _need_tool(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise GuestBuildError(f"{tool} not found: the guest is built from Debian packages "
                              f"and needs {package} (a Debian/Ubuntu host)")


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise GuestBuildError(f"`{' '.join(command)}` failed ({result.returncode}): "
                              f"{(result.stderr or result.stdout).strip()}")
    return result
