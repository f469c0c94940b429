"""The HypervisorDriver contract (eucalite/cluster/virt/driver.py), checked on every driver here.

One suite, parametrized over drivers: the in-memory fake always, and libvirt's in-process
test driver (``test:///default``) when libvirt-python imports. A few tests at the end check
libvirt-only behaviour (console file tail, cleanup after a failed start, no hot-plug on the
test driver). test:///default keeps state per connection (and shares it while connections
overlap), so every test uses fresh instance ids and tears its domains down.

Opt-in, the same suite runs on a real libvirt (e.g. qemu:///system with QEMU/TCG) too:
set EUCALITE_TEST_LIBVIRT_URI plus EUCALITE_TEST_GUEST_KERNEL and EUCALITE_TEST_GUEST_RAMDISK
(a bootable kernel/initramfs that loads virtio_blk: ``eucalite guest build`` makes one).
"""
import dataclasses
import os
import shutil
import threading
import uuid

import pytest
from guestutil import qemu_reachable_dir
from serverutil import wait_until

from eucalite.cluster.virt.driver import (CONSOLE_TAIL, DiskCounters, DiskSpec, DomainSpec,
                                          DriverError, NetworkSpec, NicCounters, NotSupported,
                                          PowerState)
from eucalite.cluster.virt.fake import FakeDriver

TEST_URI = "test:///default"
REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI")
GUEST_KERNEL = os.environ.get("EUCALITE_TEST_GUEST_KERNEL")
GUEST_RAMDISK = os.environ.get("EUCALITE_TEST_GUEST_RAMDISK")
DRIVERS = ["fake", "libvirt"] + (["libvirt-real"] if REAL_URI else [])
TEST_DRIVER_NO_HOTPLUG = "libvirt's test driver cannot hot-plug"


def _libvirt_missing() -> str | None:
    """Why the libvirt driver cannot be tested here, or None when it can."""
    try:
        import libvirt  # noqa: F401
    except ImportError as exc:
        return f"libvirt-python not importable ({exc}); install libvirt-dev pkg-config, then pip install libvirt-python"
    return None


def _make_driver(kind):
    if kind == "fake":
        return FakeDriver()
    reason = _libvirt_missing()
    if reason:
        print(f"skipping libvirt contract tests: {reason}")
        pytest.skip(reason)
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver
    if kind == "libvirt-real":
        if not REAL_URI:
            pytest.skip("needs a real libvirt: set EUCALITE_TEST_LIBVIRT_URI")
        if not (GUEST_KERNEL and GUEST_RAMDISK):
            pytest.skip("EUCALITE_TEST_LIBVIRT_URI needs EUCALITE_TEST_GUEST_KERNEL/_RAMDISK")
        # a cloud id of its own: it sees only the domains this suite spawned, never those
        # of another eucalite (or test) sharing the host's libvirt
        return LibvirtDriver(REAL_URI, cloud=f"contract-{uuid.uuid4().hex[:8]}")
    return LibvirtDriver(TEST_URI)


@pytest.fixture(params=DRIVERS, ids=[{"libvirt": "libvirt-test"}.get(d, d) for d in DRIVERS])
def driver(request):
    drv = _make_driver(request.param)
    yield drv
    for iid in list(drv.list_domains()):
        drv.destroy(iid)
    drv.close()


@pytest.fixture
def libvirt_driver():
    drv = _make_driver("libvirt")
    yield drv
    for iid in list(drv.list_domains()):
        drv.destroy(iid)
    drv.close()


def _is_real(driver) -> bool:
    return bool(REAL_URI) and getattr(driver, "uri", None) == REAL_URI


def _test_driver(request):
    """The test's `driver` fixture value, or None when it has none."""
    return request.getfixturevalue("driver") if "driver" in request.fixturenames else None


@pytest.fixture
def work_dir(request, tmp_path):
    """Where disks and console logs go: tmp_path, or a directory QEMU's user can enter."""
    drv = _test_driver(request)
    if drv is None or not _is_real(drv):
        yield tmp_path
        return
    path = qemu_reachable_dir("eucalite-virt-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_spec(request, work_dir):
    """Build a DomainSpec with a fresh instance id and files under work_dir."""
    drv = _test_driver(request)
    real = drv is not None and _is_real(drv)
    kernel = work_dir / "vmlinuz"
    kernel.write_bytes(b"\0" * 16)       # libvirt's test driver never reads it

    def make(**kw):
        iid = kw.pop("instance_id", None) or f"i-{uuid.uuid4().hex[:8]}"
        root = work_dir / f"{iid}.root.raw"     # one each: QEMU locks a disk it writes
        with open(root, "wb") as f:
            f.truncate(16 * 2**20)
        base = dict(instance_id=iid, vcpus=1, memory_mb=64, kernel=str(kernel),
                    disks=[DiskSpec("vda", str(root), format="raw", serial="vol-root")],
                    mac="52:54:00:12:34:56", network="default",
                    console_log=str(work_dir / f"{iid}.console.log"))
        if real:
            # a real guest: bootable kernel, enough memory, and no libvirt network assumed
            base.update(kernel=GUEST_KERNEL, ramdisk=GUEST_RAMDISK, memory_mb=256,
                        cmdline="console=ttyS0", network=None)
        base.update(kw)
        return DomainSpec(**base)
    return make


# -- spawn ---------------------------------------------------------------------------------

def test_spawn_running_and_listed(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    assert driver.list_domains() == {spec.instance_id: PowerState.RUNNING}
    assert driver.disks(spec.instance_id) == ["vda"]


def test_spawn_twice_fails_and_keeps_first(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    again = make_spec(instance_id=spec.instance_id, memory_mb=128,
                      disks=spec.disks + [DiskSpec("vdb", "/tmp/other.raw", format="raw")])
    with pytest.raises(DriverError):
        driver.spawn(again)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    assert driver.disks(spec.instance_id) == ["vda"]       # the first's configuration


def test_concurrent_spawns_of_one_name_one_wins(driver, make_spec):
    spec = make_spec()
    results = []

    def go():
        try:
            driver.spawn(spec)
            results.append("ok")
        except DriverError:
            results.append("error")
    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["error"] * 3 + ["ok"]
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING


@pytest.mark.parametrize("bad", [dict(memory_mb=0), dict(vcpus=0), dict(kernel=None, disks=[]),
                                 dict(disks=[DiskSpec("vda")])])
def test_failed_spawn_leaves_nothing(driver, make_spec, bad):
    # invalid specs are refused before anything is defined (libvirt's test driver accepts
    # nonexistent kernel and disk paths, so they cannot make it fail); the libvirt-only test
    # below checks the cleanup when the start itself fails after define
    spec = make_spec(**bad)
    with pytest.raises(DriverError):
        driver.spawn(spec)
    assert driver.power_state(spec.instance_id) == PowerState.ABSENT
    assert spec.instance_id not in driver.list_domains()


# -- destroy, reboot, power ----------------------------------------------------------------

def test_destroy_idempotent(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    driver.destroy(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.ABSENT
    assert spec.instance_id not in driver.list_domains()
    driver.destroy(spec.instance_id)
    driver.destroy("i-neverexisted")
    assert driver.power_state(spec.instance_id) == PowerState.ABSENT
    driver.spawn(spec)      # the name is free again
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING


def test_destroy_stopped_domain(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    driver.power_off(spec.instance_id)
    driver.destroy(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.ABSENT


def _counters_or_skip(driver):
    """``driver.counters()``; on libvirt's test driver (only there) NotSupported skips."""
    try:
        return driver.counters()
    except NotSupported:
        if driver.name == "libvirt" and driver.domain_type == "test":
            pytest.skip("libvirt's test driver keeps no domain statistics")
        raise


def _flat(counters) -> list[int]:
    """Every counter of a DomainCounters in a fixed order (for comparing two samples)."""
    values = [counters.cpu_time_ns]
    for target in sorted(counters.disks):
        values += dataclasses.astuple(counters.disks[target])
    for nic in sorted(counters.nics):
        values += dataclasses.astuple(counters.nics[nic])
    return values


def test_counters_of_running_domains_only_and_never_decreasing(driver, make_spec):
    running, stopped = make_spec(vcpus=2), make_spec()
    driver.spawn(running)
    driver.spawn(stopped)
    driver.power_off(stopped.instance_id)
    first = _counters_or_skip(driver)
    assert set(first) == {running.instance_id}
    sample = first[running.instance_id]
    assert sample.vcpus == 2 and sample.cpu_time_ns >= 0
    assert set(sample.disks) <= set(driver.disks(running.instance_id))
    assert all(value >= 0 for value in _flat(sample))
    if _is_real(driver):        # a booting guest uses CPU and reads its disk
        wait_until(lambda: driver.counters()[running.instance_id].cpu_time_ns >
                   sample.cpu_time_ns, "the guest's CPU time to grow", timeout=30)
    later = driver.counters()[running.instance_id]
    assert set(later.disks) == set(sample.disks) and set(later.nics) == set(sample.nics)
    assert all(b >= a for a, b in zip(_flat(sample), _flat(later)))


def test_fake_counters_grow_as_told_and_restart_at_boot():
    driver = FakeDriver()
    spec = DomainSpec(instance_id="i-count", vcpus=2, memory_mb=64, kernel="/k",
                      disks=[DiskSpec("vda", "/r", format="raw")], tap="eu0ad30005")
    driver.spawn(spec)
    assert driver.counters()["i-count"].cpu_time_ns == 0
    driver.add_usage("i-count", cpu_seconds=1.5, disks={"vda": DiskCounters(1, 2, 3, 4)},
                     nic=NicCounters(5, 6, 7, 8))
    driver.add_usage("i-count", cpu_seconds=0.5, disks={"vda": DiskCounters(1, 1, 1, 1)})
    sample = driver.counters()["i-count"]
    assert sample.cpu_time_ns == 2_000_000_000 and sample.vcpus == 2
    assert sample.disks == {"vda": DiskCounters(2, 3, 4, 5)}
    assert sample.nics == {"eu0ad30005": NicCounters(5, 6, 7, 8)}
    driver.reboot("i-count")
    assert driver.counters()["i-count"].cpu_time_ns == 0
    with pytest.raises(DriverError):
        driver.add_usage("i-absent", cpu_seconds=1)


def test_reboot(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    driver.reboot(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    with pytest.raises(DriverError):
        driver.reboot("i-absent")


def test_power_off_on(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    driver.power_off(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.SHUTOFF
    assert driver.list_domains() == {spec.instance_id: PowerState.SHUTOFF}
    driver.power_off(spec.instance_id)                     # idempotent when off
    assert driver.power_state(spec.instance_id) == PowerState.SHUTOFF
    driver.power_on(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    assert driver.disks(spec.instance_id) == ["vda"]       # still the same domain


def test_shutdown_asks_the_guest_and_keeps_the_domain(driver, make_spec):
    """A guest that answers the request (the fake's and the test driver's do at once; a
    real guest when its OS handles ACPI) ends SHUTOFF, still defined; asking an off domain
    changes nothing; an absent one is a DriverError."""
    spec = make_spec()
    driver.spawn(spec)
    driver.shutdown(spec.instance_id)
    if not _is_real(driver):        # a real domain here boots no OS to press the button for
        assert driver.power_state(spec.instance_id) == PowerState.SHUTOFF
        driver.shutdown(spec.instance_id)                 # nothing for an off domain
        assert driver.power_state(spec.instance_id) == PowerState.SHUTOFF
    driver.power_off(spec.instance_id)
    driver.power_on(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    with pytest.raises(DriverError):
        driver.shutdown("i-absent")


@pytest.mark.parametrize("op", ["power_off", "power_on", "disks"])
def test_operations_on_absent_domain_fail(driver, op):
    with pytest.raises(DriverError):
        getattr(driver, op)("i-absent")
    assert driver.power_state("i-absent") == PowerState.ABSENT


# -- listing, console, capacity ------------------------------------------------------------

def test_list_only_prefixed_domains(driver, make_spec):
    specs = [make_spec() for _ in range(3)]
    for s in specs:
        driver.spawn(s)
    driver.power_off(specs[1].instance_id)
    listed = driver.list_domains()
    assert listed == {specs[0].instance_id: PowerState.RUNNING,
                      specs[1].instance_id: PowerState.SHUTOFF,
                      specs[2].instance_id: PowerState.RUNNING}
    assert "test" not in listed and not any(k.startswith("eucalite-") for k in listed)


def test_console_output(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    out = driver.console_output(spec.instance_id)
    assert isinstance(out, bytes) and len(out) <= CONSOLE_TAIL
    driver.power_off(spec.instance_id)
    stopped = driver.console_output(spec.instance_id)
    assert len(stopped) >= len(out)                          # kept while stopped
    assert driver.console_output(spec.instance_id) == stopped
    driver.destroy(spec.instance_id)
    assert driver.console_output(spec.instance_id) == b""
    assert driver.console_output("i-absent") == b""


def test_capacity_positive(driver):
    cap = driver.capacity()
    assert cap.cores > 0 and cap.memory_mb > 0 and cap.disk_gb > 0


# -- hot-plug ------------------------------------------------------------------------------

def _attach_or_skip(driver, iid, disk):
    """Attach, or skip where the driver documents it cannot hot-plug (test:///default)."""
    try:
        driver.attach_disk(iid, disk)
    except NotSupported:
        if getattr(driver, "uri", "").startswith("test:"):
            pytest.skip(TEST_DRIVER_NO_HOTPLUG)
        raise


def test_attach_detach(driver, make_spec, work_dir):
    spec = make_spec()
    driver.spawn(spec)
    if _is_real(driver):
        # the guest must answer the unplug request: wait until its /init runs (kernel up,
        # virtio modules loaded), which it says on the console
        wait_until(lambda: b"EUCALITE-GUEST boot" in driver.console_output(spec.instance_id),
                   "the guest's boot marker", 120, interval=0.2)
    vol = work_dir / "vol.raw"
    with open(vol, "wb") as f:
        f.truncate(2**20)
    _attach_or_skip(driver, spec.instance_id,
                    DiskSpec("vdb", str(vol), format="raw", serial="vol-1"))
    assert driver.disks(spec.instance_id) == ["vda", "vdb"]
    with pytest.raises(DriverError):               # target in use
        driver.attach_disk(spec.instance_id, DiskSpec("vdb", str(vol), format="raw"))
    driver.detach_disk(spec.instance_id, "vdb")
    assert driver.disks(spec.instance_id) == ["vda"]
    driver.detach_disk(spec.instance_id, "vdb")    # idempotent
    assert driver.disks(spec.instance_id) == ["vda"]


def test_attach_to_absent_domain_fails(driver):
    with pytest.raises(DriverError):
        driver.attach_disk("i-absent", DiskSpec("vdb", "/tmp/x.raw", format="raw"))


# -- fake-only -----------------------------------------------------------------------------

def test_fake_console_and_capacity():
    drv = FakeDriver(cores=2, memory_mb=1024, disk_gb=10)
    assert (drv.capacity().cores, drv.capacity().memory_mb, drv.capacity().disk_gb) == (2, 1024, 10)
    assert FakeDriver().capacity().cores == 8
    drv.spawn(DomainSpec("i-abc", 1, 64, kernel="/k"))
    assert b"eucalite fake console for i-abc" in drv.console_output("i-abc")
    drv.reboot("i-abc")
    assert drv.console_output("i-abc").count(b"eucalite fake console for i-abc") == 2


# -- libvirt-only --------------------------------------------------------------------------

def test_libvirt_console_is_tail_of_log_file(libvirt_driver, make_spec):
    spec = make_spec()
    libvirt_driver.spawn(spec)
    assert libvirt_driver.console_output(spec.instance_id) == b""   # nothing written yet
    data = bytes(range(256)) * (CONSOLE_TAIL // 256 + 100)
    with open(spec.console_log, "wb") as f:
        f.write(data)
    assert libvirt_driver.console_output(spec.instance_id) == data[-CONSOLE_TAIL:]


def test_libvirt_failed_start_is_undefined(libvirt_driver, make_spec, monkeypatch):
    import libvirt

    def refuse(self, *args):
        raise libvirt.libvirtError("injected start failure")
    monkeypatch.setattr(libvirt.virDomain, "create", refuse)
    spec = make_spec()
    with pytest.raises(DriverError, match="injected start failure"):
        libvirt_driver.spawn(spec)
    monkeypatch.undo()
    assert libvirt_driver.power_state(spec.instance_id) == PowerState.ABSENT
    assert spec.instance_id not in libvirt_driver.list_domains()


def test_libvirt_test_driver_cannot_hotplug(libvirt_driver, make_spec):
    spec = make_spec()
    libvirt_driver.spawn(spec)
    with pytest.raises(NotSupported):
        libvirt_driver.attach_disk(spec.instance_id, DiskSpec("vdb", "/tmp/x.raw", format="raw"))
    assert libvirt_driver.disks(spec.instance_id) == ["vda"]


def test_libvirt_domain_type_and_test_domain_ignored(libvirt_driver):
    assert libvirt_driver.domain_type == "test"
    conn = libvirt_driver._conn()
    assert "test" in [d.name() for d in conn.listAllDomains()]   # it is there, and ...
    assert "test" not in libvirt_driver.list_domains()          # ... not ours


def test_libvirt_reconnects_after_close(libvirt_driver, make_spec):
    libvirt_driver._conn().close()          # the connection drops under the driver
    assert libvirt_driver.capacity().cores > 0


def test_default_domain_type(monkeypatch, tmp_path):
    from eucalite.cluster.virt import libvirt_conn as lvd
    assert lvd.default_domain_type("test:///default") == "test"
    caps = ("<capabilities><guest><arch name='x86_64'><domain type='qemu'/>"
            "<domain type='kvm'/></arch></guest></capabilities>")
    with monkeypatch.context() as m:
        m.setattr(lvd, "kvm_usable", lambda: True)
        assert lvd.default_domain_type("qemu:///system") == "kvm"
        # remote hosts: their capabilities decide, not our /dev/kvm
        assert lvd.default_domain_type("qemu+ssh://node/system") == "qemu"
        assert lvd.default_domain_type("qemu+ssh://node/system", caps) == "kvm"
        m.setattr(lvd, "kvm_usable", lambda: False)
        assert lvd.default_domain_type("qemu:///system") == "qemu"
        assert lvd.default_domain_type("qemu+ssh://node/system", caps) == "kvm"
    # a PVM-only host (kvm_pvm without kvm_intel/kvm_amd) cannot boot ordinary guests
    dev = tmp_path / "kvm"
    dev.write_bytes(b"")
    mods = tmp_path / "module"
    (mods / "kvm_pvm").mkdir(parents=True)
    assert not lvd.kvm_usable(str(dev), str(mods))
    (mods / "kvm_intel").mkdir()
    assert lvd.kvm_usable(str(dev), str(mods))
    assert not lvd.kvm_usable(str(tmp_path / "missing"), str(mods))


def test_missing_libvirt_says_how_to_install(monkeypatch):
    import builtins
    from eucalite.cluster.virt import libvirt_driver as lvd
    real_import = builtins.__import__

    def no_libvirt(name, *args, **kw):
        if name == "libvirt":
            raise ImportError("No module named 'libvirt'")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_libvirt)
    with pytest.raises(DriverError, match="pip install libvirt-python"):
        lvd.LibvirtDriver(TEST_URI)


# -- the instance network ------------------------------------------------------------------

@pytest.fixture
def network(driver):
    """A NetworkSpec with a fresh name and bridge; the network is removed afterwards (libvirt's
    test:///default keeps state per process). Not run on a real libvirt: the real network
    path is covered end to end by tests/test_node_real.py."""
    if _is_real(driver):
        pytest.skip("network contract tests run on fake and test:///default only")
    tag = uuid.uuid4().hex[:8]
    spec = NetworkSpec(name=f"eutest{tag}", bridge=f"eub{tag}", gateway="10.231.7.1",
                       prefix=29, metadata_ip=None)
    yield spec
    if getattr(driver, "name", "") == "libvirt":
        driver.remove_network(spec.name)


def _network_exists(driver, name) -> bool:
    if isinstance(driver, FakeDriver):
        return name in driver._networks
    return name in driver._conn().listNetworks()        # active networks only


MAC1, MAC2 = "52:54:00:AA:00:01", "52:54:00:aa:00:02"
IP2, IP3, IP4 = "10.231.7.2", "10.231.7.3", "10.231.7.4"


def _reserved(spec) -> dict[str, str]:
    """What ensure_network reserves: every instance address for the MAC derived from it."""
    from eucalite.cluster.virt.network_xml import instance_addresses, mac_for

    return {mac_for(ip): ip for ip in instance_addresses(spec)}


def _with(hosts: dict, **moves) -> dict:
    """*hosts* after MAC -> IP *moves* (an address's previous holder loses it)."""
    result = dict(hosts)
    for mac, ip in moves.items():
        for holder in [m for m, i in result.items() if i == ip or m == mac]:
            del result[holder]
        result[mac] = ip
    return result


def test_ensure_network_reserves_every_address_and_is_idempotent(driver, network):
    assert not _network_exists(driver, network.name)
    driver.ensure_network(network)
    assert _network_exists(driver, network.name)
    reserved = _reserved(network)
    assert driver.dhcp_hosts(network.name) == reserved
    assert "10.231.7.1" not in reserved.values()              # the gateway is the bridge's
    assert reserved["d0:0d:0a:e7:07:02"] == IP2
    driver.add_dhcp_host(network.name, MAC1, IP2)
    driver.ensure_network(network)                  # again: no error, entries kept
    assert _network_exists(driver, network.name)
    assert driver.dhcp_hosts(network.name) == _with(reserved, **{MAC1.lower(): IP2})


@pytest.mark.parametrize("change", [dict(gateway="10.231.8.1"), dict(prefix=28),
                                    dict(bridge="eubother0")])
def test_ensure_network_refuses_other_settings(driver, network, change):
    driver.ensure_network(network)
    with pytest.raises(DriverError):
        driver.ensure_network(dataclasses.replace(network, **change))
    driver.ensure_network(network)                  # the original still stands


def test_add_dhcp_host_takes_over_an_address(driver, network):
    driver.ensure_network(network)
    reserved = _reserved(network)
    driver.add_dhcp_host(network.name, MAC1, IP2)
    driver.add_dhcp_host(network.name, MAC2, IP3)
    expected = _with(reserved, **{MAC1.lower(): IP2, MAC2: IP3})
    assert driver.dhcp_hosts(network.name) == expected
    assert driver.dhcp_host(network.name, MAC1) == IP2
    driver.add_dhcp_host(network.name, MAC1, IP2)       # idempotent
    assert driver.dhcp_hosts(network.name) == expected
    assert isinstance(driver.dhcp_leases(network.name), dict)


def test_add_dhcp_host_same_mac_other_ip_replaces(driver, network):
    driver.ensure_network(network)
    driver.add_dhcp_host(network.name, MAC1, IP2)
    driver.add_dhcp_host(network.name, MAC1.lower(), IP4)
    hosts = driver.dhcp_hosts(network.name)
    assert hosts[MAC1.lower()] == IP4 and list(hosts.values()).count(IP4) == 1


def test_add_dhcp_host_ip_in_use_replaces_old_holder(driver, network):
    driver.ensure_network(network)
    driver.add_dhcp_host(network.name, MAC1, IP2)
    driver.add_dhcp_host(network.name, MAC2, IP2)       # MAC2 moves onto MAC1's address
    hosts = driver.dhcp_hosts(network.name)
    assert hosts[MAC2] == IP2 and MAC1.lower() not in hosts


def test_add_dhcp_host_to_unknown_network_fails(driver, network):
    with pytest.raises(DriverError):
        driver.add_dhcp_host(network.name, MAC1, IP2)


def test_remove_dhcp_host_idempotent(driver, network):
    driver.ensure_network(network)
    reserved = _reserved(network)
    driver.add_dhcp_host(network.name, MAC1, IP2)
    driver.remove_dhcp_host(network.name, MAC1.lower())
    expected = {mac: ip for mac, ip in reserved.items() if ip != IP2}
    assert driver.dhcp_hosts(network.name) == expected
    driver.remove_dhcp_host(network.name, MAC1)               # again: nothing to do
    driver.remove_dhcp_host(network.name, "52:54:00:ff:ff:ff")  # never there
    driver.remove_dhcp_host(network.name + "x", MAC2)         # no such network: no error
    assert driver.dhcp_hosts(network.name) == expected
    driver.release_lease(network.name, MAC2, IP3)             # nothing leased: no error


def test_dhcp_hosts_of_unknown_network_is_empty(driver, network):
    assert driver.dhcp_hosts(network.name) == {}
    assert driver.dhcp_leases(network.name) == {}


def test_two_clouds_on_one_libvirt_never_see_each_others_domains():
    """Each eucalite records its cloud id in the domains it spawns and lists only those, so
    one cloud's reconciler never destroys another's instances as orphans."""
    if _libvirt_missing():
        pytest.skip(_libvirt_missing())
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver

    ours, theirs = LibvirtDriver(TEST_URI, cloud="cloud-a"), LibvirtDriver(TEST_URI, cloud="cloud-b")
    iid = "i-" + uuid.uuid4().hex[:12]
    try:
        ours.spawn(DomainSpec(instance_id=iid, vcpus=1, memory_mb=64,
                              disks=[DiskSpec(target="vda", path="/nonexistent/root.qcow2")]))
        assert iid in ours.list_domains()
        assert iid not in theirs.list_domains()
        assert iid in LibvirtDriver(TEST_URI).list_domains()    # no cloud given: every one
    finally:
        ours.destroy(iid)
        ours.close()
        theirs.close()


def test_pause_and_resume(driver, make_spec):
    spec = make_spec()
    driver.spawn(spec)
    driver.pause(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.PAUSED
    driver.pause(spec.instance_id)                      # again: still paused
    driver.resume(spec.instance_id)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    driver.resume(spec.instance_id)                     # idempotent
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    with pytest.raises(DriverError):
        driver.pause("i-absent0000")


# -- real libvirt with an iSCSI target -------------------------------------------------------

@pytest.fixture
def real_iscsi_disk(work_dir):
    """(DiskSpec at vdb of a volume exported by tgt with CHAP, the export's record);
    skipped where tgtd does not answer."""
    from eucalite.ebs.export import TgtExport, base

    exporter = TgtExport(str(work_dir / "tgt-state"))
    if exporter.problem():
        pytest.skip(exporter.problem())
    volume_id = f"vol-{uuid.uuid4().hex[:17]}"
    path = work_dir / f"{volume_id}.raw"
    with open(path, "wb") as f:
        f.truncate(16 * 2**20)
    record = exporter.create_export(volume_id, str(path))
    disk = base.iscsi_disk_spec(volume_id, record, "vdb")
    yield disk, record
    exporter.remove_export(volume_id, record)


def _secret_exists(driver, usage: str) -> bool:
    import libvirt

    try:
        driver._conn().secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        return True
    except libvirt.libvirtError:
        return False


@pytest.mark.parametrize("driver", ["libvirt-real"], indirect=True)
def test_spawn_with_a_chap_iscsi_disk_keeps_its_secret_until_destroy(driver, make_spec,
                                                                      real_iscsi_disk):
    """A domain defined with an iSCSI disk (an EBS root) starts: spawn stores the CHAP
    password in the secret the disk names; destroy removes it. A spawn whose login is
    refused (wrong password) leaves neither domain nor secret."""
    disk, record = real_iscsi_disk
    usage = record["secret_usage"]
    spec = make_spec()
    spec = dataclasses.replace(spec, disks=spec.disks + [disk])
    driver.spawn(spec)
    assert driver.power_state(spec.instance_id) == PowerState.RUNNING
    assert _secret_exists(driver, usage)
    driver.destroy(spec.instance_id)
    assert not _secret_exists(driver, usage)

    wrong = dataclasses.replace(disk, network={**disk.network, "password": "x" * 24})
    spec = make_spec()
    spec = dataclasses.replace(spec, disks=spec.disks + [wrong])
    with pytest.raises(DriverError):
        driver.spawn(spec)
    assert driver.power_state(spec.instance_id) == PowerState.ABSENT
    assert not _secret_exists(driver, usage)
