"""Packaging: a wheel install carries everything the server needs at run time, and
setup.sh installs every program the test suite runs on a bare Debian 12."""
from __future__ import annotations

import email.parser
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import boto3
import pytest
from liveutil import free_port
from packaging.requirements import Requirement
from serverutil import cli_env, run, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from this checkout (once per module)."""
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(ROOT)], timeout=300, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    return next(out.glob("eucalite-*.whl"))


def test_wheel_contains_migrations_templates_and_static(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "eucalite/migrations/env.py" in names
    assert any(name.startswith("eucalite/migrations/versions/0001_") for name in names)
    assert any(name.startswith("eucalite/templates/") for name in names)
    assert any(name.startswith("eucalite/static/") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "eucalite = eucalite.cli:main" in text


# --- optional roles are extras: a plain install serves everything but node duty ----------
#
# libvirt-python compiles against libvirt-dev, which a machine that only stores objects need
# not have; rtslib-fb is for the kernel's LIO target, which most kernels here lack. The code
# imports both on first use and says what is missing, so they are extras, not requirements.
# Likewise psycopg, only for a PostgreSQL database_url.
OPTIONAL = {"libvirt-python": "node", "rtslib-fb": "lio", "psycopg": "postgresql"}
# what a wheel install of eucalite alone must not find (the extras' import names)
OPTIONAL_MODULES = ("libvirt", "rtslib_fb", "psycopg")


def _requirements(wheel: Path) -> tuple[list[Requirement], set[str]]:
    """The wheel's Requires-Dist entries and its Provides-Extra names."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.BytesParser().parsebytes(archive.read(name))
    return ([Requirement(line) for line in metadata.get_all("Requires-Dist", [])],
            set(metadata.get_all("Provides-Extra", [])))


def test_libvirt_python_and_rtslib_fb_are_extras_not_requirements(wheel):
    requirements, extras = _requirements(wheel)
    assert set(OPTIONAL.values()) <= extras
    plain = {r.name for r in requirements
             if r.marker is None or r.marker.evaluate({"extra": ""})}
    assert not plain & set(OPTIONAL), f"required by a plain install: {plain & set(OPTIONAL)}"
    for package, extra in OPTIONAL.items():
        wanted_by = {e for e in extras for r in requirements
                     if r.name == package and r.marker and r.marker.evaluate({"extra": e})}
        assert wanted_by == {extra}, f"{package} comes with {wanted_by}, not [{extra}]"


def test_setup_sh_installs_the_node_lio_and_postgresql_extras():
    text = (ROOT / "setup.sh").read_text()
    assert 'pip" install -q -e ".[node,lio,postgresql$1]"' in text


def _bare_env(**extra) -> dict[str, str]:
    """The environment for commands in the bare venv: no PYTHONPATH, which could show them
    this checkout or this run's packages."""
    env = cli_env(**extra)
    env.pop("PYTHONPATH", None)
    # a plain install has no PostgreSQL driver: its server keeps SQLite on the PostgreSQL
    # pass of the suite too
    env.pop("EUCALITE_DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def bare_venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed and every plain requirement
    importable, but no libvirt-python and no rtslib-fb: a machine without libvirt's headers.

    The requirements come from this test run's own environment (linked, not downloaded: the
    suite needs no package index), minus the extras' packages and eucalite itself."""
    tmp_path = tmp_path_factory.mktemp("bare")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300,
                   capture_output=True, env=_bare_env())
    ours = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "site-packages"
    deps.mkdir()
    left_out = ("eucalite", "__editable__", "libvirt", "rtslib", "psycopg", "pip")
    for entry in ours.iterdir():
        if not entry.name.lower().replace("-", "_").startswith(left_out):
            (deps / entry.name).symlink_to(entry)
    theirs = subprocess.run([str(python), "-c", "import sysconfig; "
                             "print(sysconfig.get_paths()['purelib'])"], check=True,
                            capture_output=True, text=True, env=_bare_env()).stdout.strip()
    Path(theirs, "plain-requirements.pth").write_text(f"{deps}\n")
    return venv


def test_a_plain_install_imports_without_libvirt_and_meets_its_requirements(bare_venv):
    check = """
import importlib, importlib.metadata as md, sys
from packaging.requirements import Requirement
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    raise SystemExit(f"{name} is importable: not the machine this test means")
import eucalite.cluster.virt, eucalite.ebs.export, eucalite.server
missing = []
for line in md.requires("eucalite"):
    requirement = Requirement(line)
    if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
        try:
            md.version(requirement.name)
        except md.PackageNotFoundError:
            missing.append(requirement.name)
print("missing:", missing)
"""
    result = subprocess.run([str(bare_venv / "bin" / "python"), "-c", check,
                             *OPTIONAL_MODULES], capture_output=True, text=True, timeout=120,
                            env=_bare_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "missing: []"


def test_a_plain_install_serves_everything_but_node_duty_and_says_so(bare_venv, tmp_path):
    eucalite = str(bare_venv / "bin" / "eucalite")
    data_dir = tmp_path / "data"
    env = _bare_env(EUCALITE_DATA_DIR=str(data_dir))
    port = free_port()
    # node duty on, as by default: it is what cannot start here
    process = subprocess.Popen([eucalite, "serve", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, process)
        exports = run(eucalite, "credentials", env=env).stdout
        values = dict(re.findall(r"^export (\w+)=(\S+)$", exports, re.M))
        session = boto3.session.Session(aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
                                         aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
                                         region_name=values["AWS_DEFAULT_REGION"])
        ec2 = session.client("ec2", endpoint_url=values["AWS_ENDPOINT_URL_EC2"])
        s3 = session.client("s3", endpoint_url=values["AWS_ENDPOINT_URL_S3"])
        assert [r["RegionName"] for r in ec2.describe_regions()["Regions"]] == ["eucalyptus"]
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="k", Body=b"served")
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == b"served"
    finally:
        output = stop(process)
    [node_line] = [line for line in output.splitlines() if line.strip().startswith("node duty")]
    assert "OFF" in node_line and "libvirt-python" in node_line, node_line
    assert "Traceback" not in output, output

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
    "nft": ("nftables", "the EDGE data plane (cluster/edge/); tests/test_edge_nft.py"),
    "conntrack": ("conntrack", "the EDGE data plane forgets flows of a moved public IP "
                  "(cluster/edge/conntrack.py); tests/test_edge_nft.py"),
    "dhcp_release": ("dnsmasq-utils", "the libvirt driver frees a lease at terminate"),
    "ip": ("iproute2", "the libvirt driver puts the metadata address on the bridge"),
    "tgtd": ("tgt", "setup.sh and tests/test_ebs_export.py start it"),
    "tgtadm": ("tgt", "the tgt export driver (ebs/export/tgt.py); tests"),
    "s3cmd": ("s3cmd", "tests/test_s3_clients.py"),
    "rclone": ("rclone", "tests/test_s3_clients.py"),
    "wrk": ("wrk", "bench/bench_s3.py's small-object load (bench/s3load.py); "
            "tests/test_s3_durability.py runs it once"),
    "curl": ("curl", "bench/bench_s3.py's large concurrent streams (bench/s3load.py)"),
    "chromium": ("chromium", "tests/test_console_browser.py (through Playwright)"),
    "sysctl": ("procps", "the EDGE data plane sets per-interface forwarding (cluster/edge/)"),
    "bash": ("bash", "tests/test_eucalyptus_clients.py sources a eucarc with it"),
    "unzip": ("unzip", "tests/test_console_eucarc.py unpacks the credentials zip"),
    "pgrep": ("procps", "setup.sh, to see whether libvirtd runs"),
    "dpkg": ("dpkg", "this test, to check the table"),
    # tests/ceph/cluster.sh makes and runs the throwaway Ceph cluster with these
    "ceph-mon": ("ceph-mon", "tests/ceph/cluster.sh (the test Ceph's monitor)"),
    "ceph-mgr": ("ceph-mgr", "tests/ceph/cluster.sh (the test Ceph's manager)"),
    "ceph-osd": ("ceph-osd", "tests/ceph/cluster.sh (the test Ceph's memstore OSD)"),
    "radosgw": ("radosgw", "tests/ceph/cluster.sh; the RGW tests start a gateway of their own"),
    "monmaptool": ("ceph-base", "tests/ceph/cluster.sh (the first monitor map)"),
    "ceph-authtool": ("ceph-common", "tests/ceph/cluster.sh (the first keyring)"),
    "ceph": ("ceph-common", "tests/ceph/cluster.sh (pools, cephx users)"),
    "rbd": ("ceph-common", "tests/ceph/cluster.sh (rbd pool init)"),
    "radosgw-admin": ("ceph-common", "tests/ceph/cluster.sh (the RGW user)"),
    "pkill": ("procps", "tests/ceph/cluster.sh stops the cluster's daemons"),
}
# Files (not programs) something loads behind our back.
FILES = {
    "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so":
        ("qemu-block-extra", "QEMU's own iSCSI initiator, for volumes exported over tgt"),
    "/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so":
        ("qemu-block-extra", "QEMU's own RBD driver, for volumes on Ceph RBD"),
    "/usr/lib/python3/dist-packages/rados.cpython-311-x86_64-linux-gnu.so":
        ("python3-rados", "eucalite's Ceph backends connect to the cluster with it"),
    "/usr/lib/python3/dist-packages/rbd.cpython-311-x86_64-linux-gnu.so":
        ("python3-rbd", "EBS on RBD makes, snapshots and clones images with it"),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf":
        ("fonts-dejavu-core", "chromium renders the console's text with it"),
    # Debian 12's PostgreSQL (not on PATH): setup.sh's test command runs a private server
    # for the suite's PostgreSQL pass
    "/usr/lib/postgresql/15/bin/initdb": ("postgresql-15", "setup.sh test (PostgreSQL pass)"),
    "/usr/lib/postgresql/15/bin/pg_ctl": ("postgresql-15", "setup.sh test (PostgreSQL pass)"),
    "/usr/lib/postgresql/15/bin/postgres": ("postgresql-15", "the PostgreSQL pass's server"),
}
# Programs the suite runs from the virtual environment setup.sh creates (pip packages).
FROM_VENV = {"aws", "eucalite", "pip", "python", "gunicorn", "moto_server"}
# Packages of the bare Debian 12 image CI starts from that the table relies on.
BARE_IMAGE = {"apt", "bash", "dpkg", "zstd", "e2fsprogs", "iproute2", "procps", "fonts-dejavu-core"}

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
