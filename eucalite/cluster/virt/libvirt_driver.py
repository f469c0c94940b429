"""The libvirt hypervisor driver: QEMU/KVM domains (or libvirt's in-process test driver).

``LibvirtDriver`` implements ``HypervisorDriver`` (driver.py) with libvirt-python. libvirt is
imported when a driver is made, never at eucalite import time, so the rest of eucalite runs
without it. Domain XML comes from the pure builders in domain_xml.py; this module only talks
to libvirt and maps its errors and states onto the contract's. The instance network's half
of the contract (network, DHCP entries, leases) is :class:`~.libvirt_network.LibvirtNetworks`,
to which the driver hands those calls; the connection, the error mapping and the choice of
domain type (kvm or TCG) are in libvirt_conn.py.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import time
import xml.etree.ElementTree as ET

from . import domain_xml as dx
from .driver import (DOMAIN_PREFIX, DiskCounters, DiskSpec, DomainCounters, DomainSpec,
                     DriverError, HostCapacity, HypervisorDriver, NetworkSpec, NicCounters,
                     NotSupported, PowerState, read_tail)
from .libvirt_conn import LibvirtConnection, default_domain_type, is_remote
from .libvirt_network import LibvirtNetworks

def _free_gib(path: str) -> int:
    """Free space in GiB of the filesystem holding *path* (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free // 2**30


def _counters(stats: dict) -> DomainCounters:
    """A domain's counters from its ``getAllDomainStats`` record (``cpu.time``,
    ``vcpu.current``, ``block.<n>.name``/``rd.bytes``/..., ``net.<n>.name``/``rx.bytes``/...;
    libvirt reports a tap's traffic as the guest sees it)."""
    def each(prefix: str) -> list[tuple[str, dict]]:
        items = []
        for index in range(stats.get(f"{prefix}.count", 0)):
            name = stats.get(f"{prefix}.{index}.name")
            if name:
                items.append((name, {key[len(f"{prefix}.{index}."):]: value
                                     for key, value in stats.items()
                                     if key.startswith(f"{prefix}.{index}.")}))
        return items

    disks = {name: DiskCounters(read_bytes=s.get("rd.bytes", 0),
                                write_bytes=s.get("wr.bytes", 0),
                                read_ops=s.get("rd.reqs", 0), write_ops=s.get("wr.reqs", 0))
             for name, s in each("block")}
    nics = {name: NicCounters(rx_bytes=s.get("rx.bytes", 0), tx_bytes=s.get("tx.bytes", 0),
                              rx_packets=s.get("rx.pkts", 0), tx_packets=s.get("tx.pkts", 0))
            for name, s in each("net")}
    return DomainCounters(cpu_time_ns=stats["cpu.time"],
                          vcpus=max(1, stats.get("vcpu.current", 1)), disks=disks, nics=nics)


class LibvirtDriver(HypervisorDriver):
    """Domains through one libvirt connection (reopened if it drops); the instance network
    and its DHCP entries are :class:`~.libvirt_network.LibvirtNetworks`' work."""

    name = "libvirt"

    def __init__(self, uri: str = "qemu:///system", domain_type: str | None = None, *,
                 state_dir: str = "/var/lib/eucalite", arch: str = "x86_64",
                 detach_timeout: float = 30.0, cloud: str | None = None):
        self._connection = LibvirtConnection(uri)
        # short names for what every method below uses: the libvirt module, an error's
        # code, and the DriverError saying what failed
        self._lv, self._code, self._error = (self._connection.lv, self._connection.code,
                                             self._connection.error)
        self.uri = uri
        self.cloud = cloud
        self.state_dir = state_dir
        self.arch = arch
        self.detach_timeout = detach_timeout
        conn = self._conn()   # fail now, not at the first request, if libvirt is unreachable
        if domain_type is None:
            caps = None
            if is_remote(uri) and uri.startswith("qemu"):
                try:
                    caps = conn.getCapabilities()
                except self._lv.libvirtError:
                    caps = None     # fall back to TCG, which boots everywhere
            domain_type = default_domain_type(uri, caps, arch)
        if domain_type not in dx.DOMAIN_TYPES:
            self.close()
            raise DriverError(f"unknown libvirt domain type {domain_type!r}")
        self.domain_type = domain_type
        self._networks = LibvirtNetworks(
            self._connection, on_this_host=domain_type != "test" and not is_remote(uri))

    @property
    def uses_host_files(self) -> bool:
        return self.domain_type != "test"

    # -- connection and lookups --------------------------------------------------------------

    def _conn(self):
        """The open virConnect (reopened if it dropped)."""
        return self._connection.get()

    def close(self) -> None:
        self._connection.close()

    def _lookup(self, instance_id: str):
        """The virDomain for *instance_id*, or None when there is no such domain."""
        try:
            return self._conn().lookupByName(DOMAIN_PREFIX + instance_id)
        except self._lv.libvirtError as exc:
            if self._code(exc) == self._lv.VIR_ERR_NO_DOMAIN:
                return None
            raise self._error(f"looking up {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def _get(self, instance_id: str):
        """The virDomain, or DriverError when absent."""
        dom = self._lookup(instance_id)
        if dom is None:
            raise DriverError(f"{DOMAIN_PREFIX}{instance_id}: no such domain")
        return dom

    def _state(self, dom) -> PowerState:
        """Map libvirt's domain state onto the contract's PowerState."""
        lv = self._lv
        state = dom.state()[0]
        if state in (lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_BLOCKED, lv.VIR_DOMAIN_SHUTDOWN):
            return PowerState.RUNNING       # SHUTDOWN = still running, shutting down
        if state in (lv.VIR_DOMAIN_PAUSED, lv.VIR_DOMAIN_PMSUSPENDED):
            return PowerState.PAUSED
        if state == lv.VIR_DOMAIN_CRASHED:
            return PowerState.CRASHED
        if state == lv.VIR_DOMAIN_SHUTOFF:
            return PowerState.SHUTOFF
        return PowerState.RUNNING if dom.isActive() else PowerState.SHUTOFF

    def _xml(self, dom) -> ET.Element:
        """The domain's current (live if running) XML, parsed."""
        return ET.fromstring(dom.XMLDesc(0))

    # -- the contract ------------------------------------------------------------------------

    def spawn(self, spec: DomainSpec) -> None:
        if self.cloud and not spec.cloud:
            spec = dataclasses.replace(spec, cloud=self.cloud)
        try:
            xml = dx.domain_xml(spec, domain_type=self.domain_type, arch=self.arch)
        except ValueError as exc:
            raise DriverError(f"cannot spawn {spec.name}: {exc}") from exc
        # libvirt would also refuse (another UUID owns the name), but say it plainly and never
        # risk redefining a running instance's configuration
        if self._lookup(spec.instance_id) is not None:
            raise DriverError(f"cannot spawn {spec.name}: domain already exists")
        conn = self._conn()
        # CHAP: QEMU reads each iSCSI disk's password from the secret its <auth> names, at
        # start, as at a hot-plug (root volume at launch, attached ones at a start)
        new_secrets = []
        try:
            for disk in spec.disks:
                new_secrets.append(self._define_chap_secret(disk))
            try:
                dom = conn.defineXML(xml)
            except self._lv.libvirtError as exc:
                raise self._error(f"cannot define {spec.name}", exc) from exc
            try:
                dom.create()
            except self._lv.libvirtError as exc:
                # postcondition: a failed spawn leaves nothing behind
                try:
                    self._undefine(dom)
                except self._lv.libvirtError as cleanup_exc:
                    raise self._error(f"cannot start {spec.name} ({exc}), nor remove it",
                                      cleanup_exc) from exc
                raise self._error(f"cannot start {spec.name}", exc) from exc
        except DriverError:
            for secret in new_secrets:
                if secret is not None:
                    self._undefine_secret(secret)
            raise

    def _undefine(self, dom) -> None:
        """Stop (if running) and undefine *dom*, with its managed save, snapshots and nvram."""
        lv = self._lv
        try:
            if dom.isActive():
                dom.destroy()
        except lv.libvirtError as exc:
            if self._code(exc) not in (lv.VIR_ERR_NO_DOMAIN, lv.VIR_ERR_OPERATION_INVALID):
                raise
        # drivers differ in the flags they accept (the test driver rejects NVRAM): try the
        # thorough set first, then fewer
        flag_sets = [
            lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | lv.VIR_DOMAIN_UNDEFINE_NVRAM | lv.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
            lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
            0,
        ]
        for i, flags in enumerate(flag_sets):
            try:
                dom.undefineFlags(flags) if flags else dom.undefine()
                return
            except lv.libvirtError as exc:
                code = self._code(exc)
                if code == lv.VIR_ERR_NO_DOMAIN:
                    return          # gone already (transient, or destroyed concurrently)
                if code in (lv.VIR_ERR_INVALID_ARG, lv.VIR_ERR_NO_SUPPORT) and i + 1 < len(flag_sets):
                    continue
                if code == lv.VIR_ERR_OPERATION_INVALID and not dom.isPersistent():
                    return          # transient domains vanish on destroy
                raise

    def destroy(self, instance_id: str) -> None:
        dom = self._lookup(instance_id)
        if dom is None:
            return
        try:
            disks = self._xml(dom).findall("./devices/disk")
        except self._lv.libvirtError:
            disks = []
        try:
            self._undefine(dom)
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot destroy {DOMAIN_PREFIX}{instance_id}", exc) from exc
        for disk_el in disks:           # the CHAP secrets its iSCSI volumes used go too
            self._remove_chap_secret(disk_el)

    def reboot(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        name = DOMAIN_PREFIX + instance_id
        try:
            if not dom.isActive():
                dom.create()        # the postcondition is RUNNING, so start it
                return
            try:
                # a reset works whatever the guest runs; an ACPI reboot needs its cooperation
                dom.reset(0)
            except self._lv.libvirtError as exc:
                if self._code(exc) != self._lv.VIR_ERR_NO_SUPPORT:
                    raise
                dom.reboot(0)
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot reboot {name}", exc) from exc

    def power_off(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        try:
            if dom.isActive():
                dom.destroy()       # pull the plug: immediate and guest-independent
        except self._lv.libvirtError as exc:
            if self._code(exc) != self._lv.VIR_ERR_OPERATION_INVALID:   # stopped meanwhile
                raise self._error(f"cannot power off {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def shutdown(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        try:
            if dom.isActive():
                dom.shutdown()      # QEMU without a guest agent: the ACPI power button
        except self._lv.libvirtError as exc:
            if self._code(exc) != self._lv.VIR_ERR_OPERATION_INVALID:   # stopped meanwhile
                raise self._error(f"cannot shut down {DOMAIN_PREFIX}{instance_id}",
                                  exc) from exc

    def power_on(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        try:
            if not dom.isActive():
                dom.create()
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot power on {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def pause(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        try:
            if self._state(dom) != PowerState.PAUSED:
                dom.suspend()
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot pause {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def resume(self, instance_id: str) -> None:
        dom = self._get(instance_id)
        try:
            if self._state(dom) == PowerState.PAUSED:
                dom.resume()
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot resume {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def power_state(self, instance_id: str) -> PowerState:
        dom = self._lookup(instance_id)
        if dom is None:
            return PowerState.ABSENT
        try:
            return self._state(dom)
        except self._lv.libvirtError as exc:
            if self._code(exc) == self._lv.VIR_ERR_NO_DOMAIN:
                return PowerState.ABSENT
            raise self._error(f"cannot read state of {DOMAIN_PREFIX}{instance_id}", exc) from exc

    def list_domains(self) -> dict[str, PowerState]:
        try:
            doms = self._conn().listAllDomains(0)
        except self._lv.libvirtError as exc:
            raise self._error("cannot list domains", exc) from exc
        result = {}
        for dom in doms:
            name = dom.name()
            if not name.startswith(DOMAIN_PREFIX):
                continue            # not ours (e.g. the test driver's own "test" domain)
            if self.cloud and self._cloud_of(dom) != self.cloud:
                continue            # another eucalite's, on the same libvirt
            try:
                result[name[len(DOMAIN_PREFIX):]] = self._state(dom)
            except self._lv.libvirtError as exc:
                if self._code(exc) != self._lv.VIR_ERR_NO_DOMAIN:  # destroyed meanwhile
                    raise self._error(f"cannot read state of {name}", exc) from exc
        return result

    def counters(self) -> dict[str, DomainCounters]:
        if self.domain_type == "test":
            raise NotSupported("libvirt's test driver keeps no domain statistics")
        lv = self._lv
        wanted = (lv.VIR_DOMAIN_STATS_CPU_TOTAL | lv.VIR_DOMAIN_STATS_VCPU |
                  lv.VIR_DOMAIN_STATS_BLOCK | lv.VIR_DOMAIN_STATS_INTERFACE)
        try:    # one call for every running domain: what `virsh domstats` reads
            found = self._conn().getAllDomainStats(
                wanted, lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING)
        except lv.libvirtError as exc:
            raise self._error("cannot read domain statistics", exc) from exc
        result = {}
        for dom, stats in found:
            name = dom.name()
            if not name.startswith(DOMAIN_PREFIX) or \
                    (self.cloud and self._cloud_of(dom) != self.cloud):
                continue
            if "cpu.time" not in stats:
                raise NotSupported(f"{name}: the hypervisor reports no CPU time")
            result[name[len(DOMAIN_PREFIX):]] = _counters(stats)
        return result

    def _cloud_of(self, dom) -> str | None:
        """The cloud id in the domain's eucalite metadata (None when it has none)."""
        try:
            text = dom.metadata(self._lv.VIR_DOMAIN_METADATA_ELEMENT, dx.METADATA_NS, 0)
        except self._lv.libvirtError:
            return None
        return (ET.fromstring(text).text or "").strip() or None

    def console_output(self, instance_id: str) -> bytes:
        dom = self._lookup(instance_id)
        if dom is None:
            return b""
        try:
            root = self._xml(dom)
        except self._lv.libvirtError:
            return b""
        # the file the serial console writes to, as recorded in the domain's own XML
        for xpath in ("./devices/serial[@type='file']/source", "./devices/console[@type='file']/source"):
            src = root.find(xpath)
            if src is not None and src.get("path"):
                return read_tail(src.get("path"))
        return b""

    def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        name = DOMAIN_PREFIX + instance_id
        try:
            xml = dx.disk_xml(disk)
        except ValueError as exc:
            raise DriverError(f"cannot attach to {name}: {exc}") from exc
        dom = self._get(instance_id)
        if disk.target in self.disks(instance_id):
            raise DriverError(f"{name}: target {disk.target} is in use")
        # CHAP: QEMU reads the password from the libvirt secret the disk's <auth> names,
        # so the secret must hold it before the attach (the XML names only its usage)
        new_secret = self._define_chap_secret(disk)
        try:
            dom.attachDeviceFlags(xml, self._device_flags(dom))
        except self._lv.libvirtError as exc:
            if new_secret is not None:
                self._undefine_secret(new_secret)
            if self._code(exc) == self._lv.VIR_ERR_NO_SUPPORT:
                raise NotSupported(f"cannot attach a disk to {name}: the libvirt driver at "
                                   f"{self.uri} cannot hot-plug ({exc})") from exc
            raise self._error(f"cannot attach {disk.target} to {name}", exc) from exc

    def _define_chap_secret(self, disk: DiskSpec):
        """When *disk* carries a password (an iSCSI disk's CHAP secret, an RBD disk's cephx
        key), afterwards the libvirt secret (iscsi, ceph) of usage
        ``network["secret_usage"]`` holds it. Returns the secret if this call defined it
        (so a failed attach can take it back), None if there was nothing to do or it
        existed already (its value is updated)."""
        net = disk.network or {}
        if not net.get("password"):
            return None
        usage = str(net.get("secret_usage") or net.get("username"))
        kind = dx.SECRET_TYPES.get(net.get("protocol"), "iscsi")
        lv = self._lv
        usage_type = lv.VIR_SECRET_USAGE_TYPE_CEPH if kind == "ceph" else \
            lv.VIR_SECRET_USAGE_TYPE_ISCSI
        # libvirt keeps a ceph secret's raw key and hands QEMU its base64, the keyring's form
        value = base64.b64decode(net["password"]) if kind == "ceph" else \
            str(net["password"]).encode()
        conn = self._conn()
        created = None
        try:
            try:
                secret = conn.secretLookupByUsage(usage_type, usage)
            except lv.libvirtError as exc:
                if self._code(exc) != lv.VIR_ERR_NO_SECRET:
                    raise
                secret = created = conn.secretDefineXML(dx.secret_xml(kind, usage))
            secret.setValue(value)
        except lv.libvirtError as exc:
            if created is not None:
                self._undefine_secret(created)
            raise self._error(f"cannot store the {kind} secret {usage}", exc) from exc
        return created

    def _undefine_secret(self, secret) -> None:
        try:
            secret.undefine()
        except self._lv.libvirtError:
            pass                    # gone already: the postcondition holds

    def _remove_chap_secret(self, disk_el: ET.Element) -> None:
        """Undefine the iscsi secret the detached <disk> used, if eucalite defined it
        (its description says so): a secret someone else made is left alone."""
        el = disk_el.find("./source/auth/secret[@type='iscsi']")
        if el is None or not el.get("usage"):
            return
        lv = self._lv
        try:
            secret = self._conn().secretLookupByUsage(lv.VIR_SECRET_USAGE_TYPE_ISCSI,
                                                      el.get("usage"))
            description = ET.fromstring(secret.XMLDesc(0)).findtext("description") or ""
        except lv.libvirtError:
            return                  # no such secret (any more)
        if description.startswith(dx.CHAP_SECRET_DESCRIPTION):
            self._undefine_secret(secret)

    def _device_flags(self, dom) -> int:
        """LIVE for a running domain, CONFIG for a persistent one (both: survives restarts)."""
        lv = self._lv
        flags = 0
        if dom.isActive():
            flags |= lv.VIR_DOMAIN_AFFECT_LIVE
        if dom.isPersistent():
            flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
        return flags

    def detach_disk(self, instance_id: str, target: str) -> None:
        name = DOMAIN_PREFIX + instance_id
        dom = self._get(instance_id)
        el = self._disk_element(dom, target)
        if el is None:
            return                  # idempotent: not attached
        try:
            dom.detachDeviceFlags(ET.tostring(el, encoding="unicode"), self._device_flags(dom))
        except self._lv.libvirtError as exc:
            if self._code(exc) == self._lv.VIR_ERR_NO_SUPPORT:
                raise NotSupported(f"cannot detach a disk from {name}: the libvirt driver at "
                                   f"{self.uri} cannot hot-plug ({exc})") from exc
            raise self._error(f"cannot detach {target} from {name}", exc) from exc
        # QEMU unplugs only once the guest releases the device: wait for it so that the
        # postcondition (not listed) holds when we return
        deadline = time.monotonic() + self.detach_timeout
        while self._disk_element(dom, target) is not None:
            if time.monotonic() > deadline:
                raise DriverError(f"{name}: the guest did not release {target} within "
                                  f"{self.detach_timeout:g} s")
            time.sleep(0.2)
        # the disk is gone: nothing needs its CHAP password any more
        self._remove_chap_secret(el)

    def resize_disk(self, instance_id: str, target: str, size_bytes: int) -> None:
        name = DOMAIN_PREFIX + instance_id
        dom = self._get(instance_id)
        try:
            dom.blockResize(target, size_bytes, self._lv.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        except self._lv.libvirtError as exc:
            if self._code(exc) == self._lv.VIR_ERR_NO_SUPPORT:
                raise NotSupported(f"cannot resize {target} of {name}: the libvirt driver at "
                                   f"{self.uri} cannot ({exc})") from exc
            raise self._error(f"cannot resize {target} of {name}", exc) from exc

    def _disk_element(self, dom, target: str) -> ET.Element | None:
        """The domain's <disk> element at *target*, or None."""
        for disk in self._xml(dom).findall("./devices/disk"):
            t = disk.find("target")
            if t is not None and t.get("dev") == target:
                return disk
        return None

    def disks(self, instance_id: str) -> list[str]:
        dom = self._get(instance_id)
        try:
            root = self._xml(dom)
        except self._lv.libvirtError as exc:
            raise self._error(f"cannot read disks of {DOMAIN_PREFIX}{instance_id}", exc) from exc
        return [t.get("dev") for t in root.findall("./devices/disk[@device='disk']/target")]

    def capacity(self) -> HostCapacity:
        try:
            # getInfo: [model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
            info = self._conn().getInfo()
        except self._lv.libvirtError as exc:
            raise self._error("cannot read host info", exc) from exc
        return HostCapacity(cores=int(info[2]), memory_mb=int(info[1]),
                            disk_gb=_free_gib(self.state_dir))

    # -- the instance network: LibvirtNetworks' work ----------------------------------------

    def ensure_network(self, spec: NetworkSpec) -> None:
        self._networks.ensure_network(spec)

    def add_dhcp_host(self, network: str, mac: str, ip: str) -> None:
        self._networks.add_dhcp_host(network, mac, ip)

    def remove_dhcp_host(self, network: str, mac: str) -> None:
        self._networks.remove_dhcp_host(network, mac)

    def dhcp_hosts(self, network: str) -> dict[str, str]:
        return self._networks.dhcp_hosts(network)

    def release_lease(self, network: str, mac: str, ip: str) -> None:
        self._networks.release_lease(network, mac, ip)

    def dhcp_leases(self, network: str) -> dict[str, str]:
        return self._networks.dhcp_leases(network)

    def remove_network(self, name: str) -> None:
        """Stop and undefine the network *name* (not in the driver contract: nothing in
        eucalite removes its instance network; tests and benchmarks that made their own
        do). Idempotent."""
        self._networks.remove_network(name)
