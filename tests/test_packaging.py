"""Packaging: a wheel install carries everything the server needs at run time, and
setup.sh installs every program the test suite runs on a bare Debian 12."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_migrations_templates_and_static(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(tmp_path.glob("eucalite-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "eucalite/migrations/env.py" in names
    assert any(name.startswith("eucalite/migrations/versions/0001_") for name in names)
    assert any(name.startswith("eucalite/templates/") for name in names)
    assert any(name.startswith("eucalite/static/") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "eucalite = eucalite.cli:main" in text


# --- a bare machine: every program the suite runs is installed by setup.sh ---------------
#
# The programs the test suite runs, directly or through the code paths it exercises, and
# those programs run behind our back; each with the Debian package that ships it and who
# runs it. A program on a development machine by chance is missing on CI's bare Debian 12:
# its package must be in setup.sh's lists or in BARE_IMAGE.
PROGRAMS = {
    "apt-cache": ("apt", "eucalite guest build (cluster/guest.py)"),
    "apt-get": ("apt", "eucalite guest build; setup.sh unpacking cloud-init"),
    "dpkg-deb": ("dpkg", "eucalite guest build; setup.sh unpacking cloud-init"),
    "zstd": ("zstd", "eucalite guest build, for zstd-compressed kernel modules"),
    "mkfs.ext4": ("e2fsprogs", "eucalite guest build (the root disk)"),
    "busybox": ("busybox-static", "eucalite guest build; tests/test_guest_build.py"),
    "qemu-img": ("qemu-utils", "the image cache (cluster/imagecache.py); tests"),
    "qemu-io": ("qemu-utils", "tests/test_ebs_export.py reads volumes over iSCSI"),
    "qemu-system-x86_64": ("qemu-system-x86", "libvirtd, for every real guest"),
    "virsh": ("libvirt-clients", "setup.sh waits for libvirtd with it"),
    "libvirtd": ("libvirt-daemon", "setup.sh starts it for the real-VM tests"),
    "virtlogd": ("libvirt-daemon", "setup.sh starts it; libvirtd needs it"),
    "virt-xml-validate": ("libvirt-clients", "tests/test_domain_xml.py"),
    "xmllint": ("libxml2-utils", "virt-xml-validate runs it"),
    "dnsmasq": ("dnsmasq-base", "libvirtd, for the instance network's DHCP"),
    "iptables": ("iptables", "libvirtd, for the instance network's firewall rules"),
    "dhcp_release": ("dnsmasq-utils", "the libvirt driver frees a lease at terminate"),
    "ip": ("iproute2", "the libvirt driver puts the metadata address on the bridge"),
    "tgtd": ("tgt", "setup.sh and tests/test_ebs_export.py start it"),
    "tgtadm": ("tgt", "the tgt export driver (ebs/export/tgt.py); tests"),
    "s3cmd": ("s3cmd", "tests/test_s3_clients.py"),
    "rclone": ("rclone", "tests/test_s3_clients.py"),
    "chromium": ("chromium", "tests/test_console_browser.py (through Playwright)"),
    "pgrep": ("procps", "setup.sh, to see whether libvirtd runs"),
    "dpkg": ("dpkg", "this test, to check the table"),
}
# Files (not programs) something loads behind our back.
FILES = {
    "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so":
        ("qemu-block-extra", "QEMU's own iSCSI initiator, for volumes exported over tgt"),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf":
        ("fonts-dejavu-core", "chromium renders the console's text with it"),
}
# Programs the suite runs from the virtual environment setup.sh creates (pip packages).
FROM_VENV = {"aws", "eucalite", "pip", "python", "gunicorn", "moto_server"}
# Packages of the bare Debian 12 image CI starts from that the table relies on.
BARE_IMAGE = {"apt", "dpkg", "zstd", "e2fsprogs", "iproute2", "procps", "fonts-dejavu-core"}

_RUNS = re.compile(r"""(?:\b(?:_?run|Popen|check_output|check_call)\(\s*\[\s*"""
                   r"""|\b(?:which|_need_tool)\(\s*|(?<![\w.])require\(\s*)"""
                   r"""["']([A-Za-z][\w.+-]*)["']""")


def programs_named_in_source() -> dict[str, str]:
    """Program names given literally to subprocess/shutil.which (and the suite's wrappers
    of them) in eucalite/ and tests/, each with a file that names it."""
    found = {}
    for path in [*ROOT.glob("eucalite/**/*.py"), *ROOT.glob("tests/*.py")]:
        for name in _RUNS.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def setup_sh_packages() -> set[str]:
    """Every package an `apt_install` line of setup.sh names (continuation lines joined)."""
    text = (ROOT / "setup.sh").read_text().replace("\\\n", " ")
    packages = set()
    for line in text.splitlines():
        words = shlex.split(line.split("#", 1)[0]) if "apt_install " in line else []
        if words and words[0] == "apt_install":
            packages.update(words[2:])
    return packages


def test_every_program_the_code_runs_is_in_the_table():
    named = programs_named_in_source()
    unknown = {name: where for name, where in named.items()
               if name not in PROGRAMS and name not in FROM_VENV}
    assert not unknown, f"add these programs to PROGRAMS with their package: {unknown}"


def test_setup_sh_installs_every_package_the_suite_needs():
    installed = setup_sh_packages() | BARE_IMAGE
    missing = {what: f"{package} ({why})"
               for what, (package, why) in {**PROGRAMS, **FILES}.items()
               if package not in installed}
    assert not missing, f"nothing installs these on a bare machine: {missing}"


def _package_owning(path: str) -> str | None:
    """The Debian package that ships *path*. With /usr merged, a file a package ships as
    /bin/ip is found as /usr/bin/ip (and the reverse), so both spellings are asked."""
    candidates = set()
    for name in (path, os.path.realpath(path)):
        candidates.add(name)
        if name.startswith("/usr/"):
            candidates.add(name[len("/usr"):])
        else:
            candidates.add("/usr" + name)
        if "/sbin/" in name:         # iproute2 ships /bin/ip, found as /usr/sbin/ip
            candidates.update({name.replace("/sbin/", "/bin/"),
                               name.replace("/usr/sbin/", "/bin/")})
    for candidate in sorted(candidates):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="not a Debian machine (no dpkg)")
def test_table_names_the_package_that_ships_each_program():
    """Where a program is installed, the package the table names is the one that ships it
    (so the table cannot drift from what the machine really runs)."""
    wrong = {}
    for name, (package, _why) in PROGRAMS.items():
        path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        owner = _package_owning(path) if path else None
        if owner is not None and owner != package:
            wrong[name] = f"{path} is in {owner}, not {package}"
    for path, (package, _why) in FILES.items():
        owner = _package_owning(path) if os.path.exists(path) else None
        if owner is not None and owner != package:
            wrong[path] = f"in {owner}, not {package}"
    assert not wrong, wrong
