"""The storage controller's export drivers (eucalite.ebs.export): the contract on every
driver usable here, then what is particular to each, then a real hot-plug.

- local: always.
- tgt: when tgtadm reaches a tgtd; as root, this module starts ``tgtd -f`` on
  127.0.0.1:3260 itself when none answers and stops it afterwards. CHAP is checked with
  QEMU's own iSCSI initiator (qemu-img / qemu-io, from qemu-block-extra).
- lio: LIO cannot run on our machines (no configfs target), so its logic runs against an
  in-memory rtslib_fb put in sys.modules; ``problem()`` is checked against this host.
- the end-to-end hot-plug (tiny guest on qemu:///system, a volume attached through tgt and
  through local, found in the guest by serial and md5): only when EUCALITE_TEST_LIBVIRT_URI
  names a real libvirt (read at import: conftest wipes EUCALITE_* during tests).

A driver that is not usable is skipped with the reason printed.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from guestutil import build_guest, qemu_reachable_dir

from eucalite import ids
from eucalite.cluster.virt import domain_xml as dx
from eucalite.ebs import export
from eucalite.ebs.export import base, lio, tgt
from eucalite.ebs.export.base import ExportError, ExportUnavailable

REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
PORTAL = "127.0.0.1:3260"
MARK = "EUCALITE-GUEST"
MIB = 1024 * 1024
VOLUME_SIZE = 64 * MIB


def _skip(reason: str):
    print(reason)
    pytest.skip(reason)


def _volume(directory: Path, pattern_seed: int | None = None, size: int = VOLUME_SIZE):
    """(volume id, path, md5 of the first MiB) for a new sparse raw volume file whose first
    MiB holds a seeded random pattern."""
    volume_id = ids.resource_id("vol")
    path = directory / f"{volume_id}.raw"
    first = random.Random(pattern_seed).randbytes(MIB)
    with open(path, "wb") as f:
        f.write(first)
        f.truncate(size)
    path.chmod(0o644)
    return volume_id, str(path), hashlib.md5(first).hexdigest()


# --- a tgtd ------------------------------------------------------------------------------

def _tgt_answers() -> bool:
    try:
        return subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _stop_tgtd(proc: subprocess.Popen) -> None:
    """tgtd ignores SIGTERM while targets exist: delete them all, then the system."""
    show = subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                          capture_output=True, text=True, timeout=10).stdout
    for target in tgt.parse_targets(show).values():
        subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "target",
                        "--tid", str(target.tid), "--force"], capture_output=True, timeout=10)
    subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "system"],
                   capture_output=True, timeout=10)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tgtd():
    """A tgtd that answers tgtadm: the host's own, or one started here (as root)."""
    if shutil.which("tgtadm") is None or shutil.which("tgtd") is None:
        _skip("tgt is not installed (apt install tgt)")
    if _tgt_answers():
        yield None
        return
    if os.geteuid() != 0:
        _skip("tgtd is not running and starting it needs root")
    proc = subprocess.Popen(["tgtd", "-f", "--iscsi", f"portal={PORTAL}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not _tgt_answers():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _skip(f"tgtd -f --iscsi portal={PORTAL} did not come up")
        time.sleep(0.1)
    try:
        yield proc
    finally:
        _stop_tgtd(proc)


# --- a fake rtslib_fb --------------------------------------------------------------------

def fake_rtslib(kernel_target: bool = True) -> types.ModuleType:
    """An in-memory rtslib_fb with the calls LioExport makes and rtslib's semantics:
    mode='any' looks up or creates, creating a LUN / MappedLUN / storage object that exists
    raises RTSLibError, deletes are recursive. Without *kernel_target*, RTSRoot() fails as
    on our machines."""
    mod = types.ModuleType("rtslib_fb")
    mod.sos, mod.targets = {}, {}

    class RTSLibError(Exception):
        pass

    def _any(registry, key, make):
        if key not in registry:
            registry[key] = make()
        return registry[key]

    class Node:
        def __init__(self, registry, key, **attrs):
            self._registry, self._key = registry, key
            self.__dict__.update(attrs)

        def delete(self):
            for child in getattr(self, "children", lambda: [])():
                child.delete()
            self._registry.pop(self._key, None)

    class StorageObject(Node):
        def delete(self):
            for target in list(mod.targets.values()):       # its LUNs go with it
                for tpg in target.tpgs:
                    for lun in tpg.luns:
                        if lun.storage_object is self:
                            lun.delete()
            super().delete()

    class Target(Node):
        tpgs = property(lambda self: list(self.tpgs_d.values()))
        children = lambda self: self.tpgs  # noqa: E731

    class TPG(Node):
        luns = property(lambda self: list(self.luns_d.values()))
        node_acls = property(lambda self: list(self.acls_d.values()))
        network_portals = property(lambda self: list(self.portals_d.values()))
        children = lambda self: self.luns + self.node_acls + self.network_portals  # noqa

        def set_attribute(self, name, value):
            self.attrs[name] = value

    class NodeACL(Node):
        mapped_luns = property(lambda self: list(self.mapped_d.values()))

    class RTSRoot:
        def __init__(self):
            if not kernel_target:
                raise FileNotFoundError(2, "No such file or directory", "/proc/modules")

        storage_objects = property(lambda self: list(mod.sos.values()))
        targets = property(lambda self: list(mod.targets.values()))

    def file_io(name, dev=None, size=None):
        if dev is None:
            return mod.sos[name]
        if name in mod.sos:
            raise RTSLibError(f"storage object {name} exists")
        mod.sos[name] = StorageObject(mod.sos, name, name=name, udev_path=dev, size=size)
        return mod.sos[name]

    def lun(tpg, index, storage_object):
        if index in tpg.luns_d:
            raise RTSLibError(f"LUN {index} exists")
        tpg.luns_d[index] = Node(tpg.luns_d, index, lun=index, storage_object=storage_object)
        return tpg.luns_d[index]

    def mapped_lun(acl, index, tpg_lun):
        if index in acl.mapped_d:
            raise RTSLibError(f"mapped LUN {index} exists")
        acl.mapped_d[index] = Node(acl.mapped_d, index, mapped_lun=index, tpg_lun=tpg_lun)
        return acl.mapped_d[index]

    mod.RTSLibError = RTSLibError
    mod.RTSRoot = RTSRoot
    mod.FabricModule = lambda name: name
    mod.FileIOStorageObject = file_io
    mod.Target = lambda fabric, wwn, mode="any": _any(
        mod.targets, wwn, lambda: Target(mod.targets, wwn, wwn=wwn, tpgs_d={}))
    mod.TPG = lambda target, tag, mode="any": _any(target.tpgs_d, tag, lambda: TPG(
        target.tpgs_d, tag, tag=tag, attrs={}, chap_userid="", chap_password="",
        enable=False, luns_d={}, acls_d={}, portals_d={}))
    mod.LUN = lun
    mod.NetworkPortal = lambda tpg, ip, port, mode="any": _any(
        tpg.portals_d, (ip, port), lambda: Node(tpg.portals_d, (ip, port), ip_address=ip,
                                                port=port))
    mod.NodeACL = lambda tpg, wwn, mode="any": _any(tpg.acls_d, wwn, lambda: NodeACL(
        tpg.acls_d, wwn, node_wwn=wwn, chap_userid="", chap_password="", mapped_d={}))
    mod.MappedLUN = mapped_lun
    return mod


@pytest.fixture
def rtslib(monkeypatch):
    mod = fake_rtslib()
    monkeypatch.setitem(sys.modules, "rtslib_fb", mod)
    return mod


# --- the contract, on every driver usable here -------------------------------------------

@pytest.fixture(params=["local", "tgt", "lio"])
def driver(request, tmp_path, monkeypatch):
    name = request.param
    if name == "local":
        yield export.LocalExport()
        return
    if name == "tgt":
        request.getfixturevalue("tgtd")
        made = tgt.TgtExport(str(tmp_path / "tgt-state"), portal=PORTAL)
    else:
        monkeypatch.setitem(sys.modules, "rtslib_fb", fake_rtslib())
        made = lio.LioExport(portal=PORTAL)
    problem = made.problem()
    if problem:
        _skip(problem)
    yield made
    if name == "tgt":
        for volume_id in made.exported() & _made_here(tmp_path):
            made.remove_export(volume_id, {})


def _made_here(directory: Path) -> set[str]:
    return {p.stem for p in directory.glob("vol-*.raw")}


def test_create_is_idempotent_and_listed(driver, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    record = driver.create_export(volume_id, path)
    assert json.loads(json.dumps(record)) == record          # the caller stores it as JSON
    assert record["driver"] == driver.name and record["volume_id"] == volume_id
    assert driver.create_export(volume_id, path) == record   # same credentials, same target
    assert volume_id in driver.exported()


def test_remove_is_idempotent(driver, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    record = driver.create_export(volume_id, path)
    driver.remove_export(volume_id, record)
    assert volume_id not in driver.exported()
    driver.remove_export(volume_id, record)
    driver.remove_export(ids.resource_id("vol"), {})         # never exported: no error
    assert volume_id not in driver.exported()


def test_missing_file_is_an_error(driver, tmp_path):
    with pytest.raises(ExportError, match="no volume file"):
        driver.create_export("vol-missing", str(tmp_path / "nope.raw"))


def test_disk_spec_shape(driver, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    record = driver.create_export(volume_id, path)
    disk = driver.disk_spec(volume_id, record, path, "vdc")
    assert (disk.target, disk.format, disk.serial) == ("vdc", "raw",
                                                       volume_id.replace("-", ""))
    xml = dx.disk_xml(disk)
    if driver.name == "local":
        assert disk.path == path and disk.network is None
        return
    assert disk.path is None
    assert disk.network == {
        "protocol": "iscsi", "name": f"{base.IQN_PREFIX}{volume_id}/{record['lun']}",
        "host": "127.0.0.1", "port": 3260, "username": record["username"],
        "password": record["password"], "secret_usage": f"eucalite-chap-{volume_id}"}
    assert record["password"] not in xml                     # only the secret's usage
    assert f"usage=\"eucalite-chap-{volume_id}\"" in xml


def test_two_volumes_get_their_own_target_and_secret(driver, tmp_path):
    if driver.name == "local":
        _skip("local exports have no target")
    a = driver.create_export(*_volume(tmp_path)[:2])
    b = driver.create_export(*_volume(tmp_path)[:2])
    assert a["iqn"] != b["iqn"]
    assert a["username"] != b["username"] and a["password"] != b["password"]
    if driver.name == "tgt":
        assert a["tid"] != b["tid"]


# --- tgt ---------------------------------------------------------------------------------

SHOW = """\
Target 1: iqn.2026-11.dev.eucalite:vol-1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.2008-11.org.linux-kvm: alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Backing store path: /var/lib/eucalite/volumes/vol-1.raw
    Account information:
        euca01
        outuser (outgoing)
    ACL information:
        ALL
Target 3: iqn.2001-04.com.example:other
    System information:
        Driver: iscsi
    LUN information:
        LUN: 0
            Backing store path: None
    Account information:
    ACL information:
        10.0.0.7
"""


def test_parse_targets():
    targets = tgt.parse_targets(SHOW)
    mine = targets["iqn.2026-11.dev.eucalite:vol-1"]
    assert (mine.tid, mine.accounts, mine.acls) == (1, ["euca01"], ["ALL"])
    assert mine.luns == {0: "None", 1: "/var/lib/eucalite/volumes/vol-1.raw"}
    other = targets["iqn.2001-04.com.example:other"]
    assert (other.tid, other.accounts, other.acls) == (3, [], ["10.0.0.7"])
    assert tgt.parse_accounts("Account list:\n    euca01\n    euca02\n") == {"euca01", "euca02"}


def test_tgt_problem_names_the_fix(tmp_path):
    missing = tgt.TgtExport(str(tmp_path), tgtadm="/nonexistent/tgtadm").problem()
    assert "apt install tgt" in missing
    not_running = tgt.TgtExport(str(tmp_path), tgtadm="false").problem()
    assert "tgtd is not running" in not_running


def _qemu_read(record: dict, password: str | None, length: int = MIB):
    """Log in to the export with QEMU's iSCSI initiator and read *length* bytes (CHAP when
    *password* is given); the CompletedProcess."""
    if password is None:
        argv = ["qemu-img", "info", f"iscsi://{record['host']}:{record['port']}/"
                                    f"{record['iqn']}/{record['lun']}"]
    else:
        opts = ",".join([
            "driver=raw", "file.driver=iscsi", "file.transport=tcp",
            f"file.portal={record['host']}:{record['port']}", f"file.target={record['iqn']}",
            f"file.lun={record['lun']}", f"file.user={record['username']}",
            "file.password-secret=s0"])
        argv = ["qemu-io", "-r", "--object", f"secret,id=s0,data={password}",
                "--image-opts", opts, "-c", f"read -v 0 {length}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _hexdump_bytes(text: str) -> bytes:
    """The bytes of a ``qemu-io read -v`` hex dump."""
    out = bytearray()
    for line in text.splitlines():
        if len(line) > 10 and line[8:10] == ": ":
            out += bytes.fromhex(line[10:58].replace(" ", ""))
    return bytes(out)


@pytest.fixture
def tgt_driver(tgtd, tmp_path):
    if shutil.which("qemu-io") is None:
        _skip("qemu-utils is not installed (apt install qemu-utils qemu-block-extra)")
    made = tgt.TgtExport(str(tmp_path / "tgt-state"), portal=PORTAL)
    yield made
    for volume_id in made.exported() & _made_here(tmp_path):
        made.remove_export(volume_id, {})


def test_tgt_login_needs_chap(tgt_driver, tmp_path):
    volume_id, path, md5 = _volume(tmp_path, pattern_seed=7)
    record = tgt_driver.create_export(volume_id, path)
    anonymous = _qemu_read(record, None)
    assert anonymous.returncode != 0 and "Authentication failure" in anonymous.stderr
    wrong = _qemu_read(record, "not-the-password")
    assert wrong.returncode != 0
    good = _qemu_read(record, record["password"])
    assert good.returncode == 0, good.stderr
    assert hashlib.md5(_hexdump_bytes(good.stdout)).hexdigest() == md5


def test_tgt_remove_shuts_everyone_out(tgt_driver, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    record = tgt_driver.create_export(volume_id, path)
    tgt_driver.remove_export(volume_id, record)
    assert _qemu_read(record, record["password"], 512).returncode != 0
    accounts = tgt.parse_accounts(subprocess.run(
        ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "account"],
        capture_output=True, text=True).stdout)
    assert record["username"] not in accounts


def test_tgt_reexport_after_tgtd_forgot_keeps_the_secret(tgt_driver, tmp_path):
    """tgtd keeps targets in memory: after a restart the export is made again with the
    same CHAP secret, so the nodes' initiators (and libvirt's secrets) still log in."""
    volume_id, path, _ = _volume(tmp_path)
    record = tgt_driver.create_export(volume_id, path)
    subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "target",
                    "--tid", str(record["tid"]), "--force"], check=True)
    assert volume_id not in tgt_driver.exported()
    again = tgt_driver.create_export(volume_id, path)
    assert (again["username"], again["password"]) == (record["username"], record["password"])
    assert _qemu_read(again, again["password"], 512).returncode == 0


def test_tgt_concurrent_exports_get_distinct_tids(tgt_driver, tmp_path):
    volumes = [_volume(tmp_path)[:2] for _ in range(6)]
    records, errors = [], []

    def run(volume_id, path):
        try:
            records.append(tgt_driver.create_export(volume_id, path))
        except Exception as exc:        # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=v) for v in volumes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r["tid"] for r in records}) == 6
    assert {v for v, _ in volumes} <= tgt_driver.exported()


# --- lio (against the fake rtslib) -----------------------------------------------------------

def test_lio_problem_on_this_host(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtslib_fb", None)      # `import rtslib_fb` fails
    assert "pip install rtslib-fb" in lio.LioExport().problem()
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake_rtslib(kernel_target=False))
    problem = lio.LioExport().problem()
    assert problem.startswith("LIO is not available on this host: the kernel has no "
                              "configfs target (modprobe target_core_mod; mount configfs)")
    assert "use tgt" in problem
    with pytest.raises(ExportError, match="LIO is not available"):
        lio.LioExport().create_export("vol-1", __file__)


def test_lio_objects_and_tpg_chap(rtslib, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    record = lio.LioExport(portal=PORTAL).create_export(volume_id, path)
    so = rtslib.sos[volume_id]
    assert (so.udev_path, so.size) == (path, VOLUME_SIZE)
    tpg = rtslib.targets[base.IQN_PREFIX + volume_id].tpgs[0]
    assert tpg.enable and tpg.attrs["authentication"] == "1"
    assert tpg.attrs["generate_node_acls"] == "1"            # any initiator, with CHAP
    assert (tpg.chap_userid, tpg.chap_password) == (record["username"], record["password"])
    assert [(l.lun, l.storage_object) for l in tpg.luns] == [(0, so)]
    assert [(p.ip_address, p.port) for p in tpg.network_portals] == [("127.0.0.1", 3260)]
    assert record["lun"] == 0


def test_lio_per_node_acls(rtslib, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    nodes = ["iqn.2026-11.dev.eucalite:node1", "iqn.2026-11.dev.eucalite:node2"]
    driver = lio.LioExport(portal=PORTAL, initiator_iqns=",".join(nodes))
    record = driver.create_export(volume_id, path)
    tpg = rtslib.targets[base.IQN_PREFIX + volume_id].tpgs[0]
    assert tpg.attrs["generate_node_acls"] == "0"
    assert sorted(acl.node_wwn for acl in tpg.node_acls) == nodes
    for acl in tpg.node_acls:
        assert (acl.chap_userid, acl.chap_password) == (record["username"], record["password"])
        assert [m.mapped_lun for m in acl.mapped_luns] == [0]
    # a node dropped from the config loses its ACL; the others keep the same secret
    fewer = lio.LioExport(portal=PORTAL, initiator_iqns=nodes[:1])
    assert fewer.create_export(volume_id, path)["password"] == record["password"]
    assert [acl.node_wwn for acl in tpg.node_acls] == nodes[:1]


def test_lio_replaces_a_stale_backstore(rtslib, tmp_path):
    volume_id, path, _ = _volume(tmp_path)
    driver = lio.LioExport(portal=PORTAL)
    first = driver.create_export(volume_id, path)
    moved = str(tmp_path / "moved.raw")
    shutil.copyfile(path, moved)
    again = driver.create_export(volume_id, moved)
    assert rtslib.sos[volume_id].udev_path == moved
    tpg = rtslib.targets[base.IQN_PREFIX + volume_id].tpgs[0]
    assert [l.storage_object.udev_path for l in tpg.luns] == [moved]
    assert again["password"] == first["password"]
    driver.remove_export(volume_id, again)
    assert not rtslib.sos and not rtslib.targets


# --- choose ------------------------------------------------------------------------------------

def test_choose_named_and_auto(monkeypatch, tmp_path):
    config = {"data_dir": str(tmp_path)}
    assert isinstance(export.choose({**config, "ebs_export": "local"}), export.LocalExport)
    monkeypatch.setitem(sys.modules, "rtslib_fb", None)
    with pytest.raises(ExportUnavailable, match="pip install rtslib-fb"):
        export.choose({**config, "ebs_export": "lio"})
    with pytest.raises(ExportUnavailable, match="unknown ebs_export"):
        export.choose({**config, "ebs_export": "nfs"})
    # auto: tgt when LIO is out, local when tgt is out too, LIO when it works
    monkeypatch.setattr(tgt.TgtExport, "problem", lambda self: None)
    assert export.choose(config).name == "tgt"
    monkeypatch.setattr(tgt.TgtExport, "problem", lambda self: "tgtd is not running")
    assert export.choose(config).name == "local"
    with pytest.raises(ExportUnavailable, match="tgtd is not running"):
        export.choose({**config, "ebs_export": "tgt"})
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake_rtslib())
    chosen = export.choose({**config, "iscsi_portal": "10.0.0.5:3261"})
    assert chosen.name == "lio" and chosen.portal == ("10.0.0.5", 3261)


def test_parse_portal():
    assert base.parse_portal("10.1.2.3:3261") == ("10.1.2.3", 3261)
    assert base.parse_portal("storage.example") == ("storage.example", 3260)
    assert base.parse_portal("[fd00::1]:3260") == ("fd00::1", 3260)
    with pytest.raises(ValueError):
        base.parse_portal("host:port")


# --- a real hot-plug into a running guest -------------------------------------------------

real = pytest.mark.skipif(
    not REAL_URI.startswith("qemu"),
    reason="needs a real libvirtd: set EUCALITE_TEST_LIBVIRT_URI=qemu:///system")
BOOT_TIMEOUT = 240      # no network: the guest gives up DHCP and metadata (~75 s) first
PLUG_TIMEOUT = 60


def _wait_console(path: Path, needle: str, timeout: float, start: int = 0) -> float:
    """Seconds until *needle* appears in the console file after byte *start*."""
    began = time.monotonic()
    while True:
        try:
            if needle in path.read_bytes()[start:].decode(errors="replace"):
                return time.monotonic() - began
        except OSError:
            pass
        if time.monotonic() - began > timeout:
            tail = path.read_bytes()[-2000:].decode(errors="replace") if path.exists() else ""
            raise AssertionError(f"no {needle!r} on the console within {timeout} s:\n{tail}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def guest_vm(tmp_path_factory):
    """The tiny guest running on REAL_URI (no network), and its work dir and console."""
    from eucalite.cluster.virt.driver import DiskSpec, DomainSpec
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver

    files = build_guest(tmp_path_factory)
    top = qemu_reachable_dir("eucalite-export-test-")
    root = top / "root.img"
    shutil.copyfile(files.root, root)
    console = top / "console.log"
    driver = LibvirtDriver(REAL_URI, detach_timeout=60)
    instance_id = ids.resource_id("i")
    spec = DomainSpec(instance_id=instance_id, vcpus=1, memory_mb=256,
                      kernel=str(files.kernel), ramdisk=str(files.ramdisk),
                      disks=[DiskSpec("vda", path=str(root), format="raw")],
                      console_log=str(console))
    try:
        driver.spawn(spec)
        booted = _wait_console(console, f"{MARK} ready", BOOT_TIMEOUT)
        print(f"guest ready {booted:.1f} s after start")
        yield driver, instance_id, top, console
    finally:
        driver.destroy(instance_id)
        driver.close()
        shutil.rmtree(top, ignore_errors=True)


def _hotplug(driver_name: str, export_driver, guest_vm, request):
    vm, instance_id, top, console = guest_vm
    import libvirt

    volume_id, path, md5 = _volume(top, pattern_seed=42)
    record = export_driver.create_export(volume_id, path)
    request.addfinalizer(lambda: export_driver.remove_export(volume_id, record))
    disk = export_driver.disk_spec(volume_id, record, path, "vdb")
    start = console.stat().st_size
    began = time.monotonic()
    vm.attach_disk(instance_id, disk)
    attached = time.monotonic() - began
    # the guest sees the volume id without its dash (20 bytes, a virtio-blk serial's room),
    # as EC2's Nitro hosts show it
    # (by its serial: on a loaded host the guest's first report of its own vda may come late)
    serial = f"serial={volume_id.replace('-', '')} "
    seen = _wait_console(console, serial, PLUG_TIMEOUT, start)
    text = console.read_bytes()[start:].decode(errors="replace")
    line = next(l for l in text.splitlines()
                if l.startswith(f"{MARK} disk name=") and serial in l)
    name = line.split("name=")[1].split()[0]
    assert line.strip() == (f"{MARK} disk name={name} serial={volume_id.replace('-', '')} "
                            f"size={VOLUME_SIZE // 512} md5={md5}")
    print(f"{driver_name}: attach_disk {attached:.2f} s, guest sees the disk "
          f"{attached + seen:.1f} s after the call (the guest polls every 2 s)")
    conn = libvirt.open(REAL_URI)
    try:
        xml = conn.lookupByName("eucalite-" + instance_id).XMLDesc(0)
        if disk.network:
            assert disk.network["password"] not in xml
            conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI,
                                     disk.network["secret_usage"])       # exists
        start = console.stat().st_size
        began = time.monotonic()
        vm.detach_disk(instance_id, "vdb")      # returns once the guest released it
        detached = time.monotonic() - began
        gone = _wait_console(console, f"{MARK} disk-gone name={name}", PLUG_TIMEOUT, start)
        print(f"{driver_name}: detach_disk {detached:.2f} s, the guest reports it gone "
              f"{gone:.1f} s later")
        assert "vdb" not in vm.disks(instance_id)
        if disk.network:
            with pytest.raises(libvirt.libvirtError):
                conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI,
                                         disk.network["secret_usage"])
    finally:
        conn.close()
    export_driver.remove_export(volume_id, record)
    assert volume_id not in export_driver.exported()


@real
def test_hotplug_through_tgt(guest_vm, tgtd, tmp_path, request):
    made = tgt.TgtExport(str(tmp_path / "tgt-state"), portal=PORTAL)
    _hotplug("tgt", made, guest_vm, request)


@real
def test_hotplug_local(guest_vm, request):
    _hotplug("local", export.LocalExport(), guest_vm, request)


def test_chap_disk_on_a_libvirt_without_hotplug_is_not_supported():
    """libvirt's test driver has neither secrets nor hot-plug: attaching a CHAP disk says
    NotSupported (the contract's answer there), not a secret error."""
    pytest.importorskip("libvirt")
    from eucalite.cluster.virt.driver import DomainSpec, NotSupported
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver

    driver = LibvirtDriver("test:///default")
    instance_id = ids.resource_id("i")
    driver.spawn(DomainSpec(instance_id=instance_id, vcpus=1, memory_mb=64,
                            kernel="/boot/none", ramdisk="/boot/none.img"))
    try:
        record = base.iscsi_record("tgt", "vol-1", 1, ("127.0.0.1", 3260), "u", "p" * 12)
        with pytest.raises(NotSupported):
            driver.attach_disk(instance_id, base.iscsi_disk_spec("vol-1", record, "vdb"))
    finally:
        driver.destroy(instance_id)
        driver.close()
