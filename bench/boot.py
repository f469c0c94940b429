#!/usr/bin/env python3
"""Benchmark: how fast RunInstances boots a real guest, beside a bare libvirt start.

Needs root and a running libvirtd on qemu:///system (skipped, exit 0, with the reason
otherwise). eucalite runs in this process on werkzeug's threaded server, with node duty on
libvirt and a network of its own (``eucalite-bench``, bridge ``eubenchbr0``, 10.217.0.0/24)
and its metadata listener on the bridge (node services started by
``start_node_services``, as ``eucalite serve`` does; when another eucalite already holds
169.254.169.254, ours runs without metadata and 'ready' is not measured); the tiny
guest (``eucalite.cluster.guest``, cached in ``common.GUEST_DIR``) is imported as an
image. Measured in one run, interleaved, N
times each (median and min):

* floor: libvirt-python directly, ``defineXML`` + ``create()`` of a domain built by
  eucalite's own ``domain_xml`` from a DomainSpec like an m1.small instance's (same vCPUs,
  memory, kernel/initrd, a qcow2 overlay on the same raw root, the same sparse ephemeral
  disk, serial console to a file, NIC on eucalite's network with a static DHCP entry):
  define+start returned, and the first ``EUCALITE-GUEST boot`` line in the console file.
* eucalite, image cached (hit): RunInstances (boto3, m1.small, small user-data) until
  DescribeInstances says ``running`` (polled every 50 ms), until ``EUCALITE-GUEST boot``
  in GetConsoleOutput (polled every 200 ms), until ``EUCALITE-GUEST ready`` (the guest got
  its lease and read its metadata). The console file in the instance's work directory is
  also watched (every 20 ms) for the boot marker, to compare with the floor without the API
  polling. Terminated (and waited for) between runs.
* eucalite, image not cached (miss): the first launch of the freshly imported image, then
  launches after emptying the node's image cache (limit set to 0, ``evict(set())``): fetch
  from the object store, verify against the manifest, write the base, then as a hit. The
  object store's files are in the OS page cache, as they would be on a busy node.

Inside each launch the node's steps are timed by wrapping them in this process (image
cache ``ensure``, ``make_disks``, the DHCP reservation check (every address is
reserved when the network is made), the driver's ``spawn`` = define+create),
so the overhead over the floor can be placed.

    sudo .venv/bin/python bench/boot.py [--runs N] [--quick]     # --quick: 3 runs
"""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# bench/common.py (run as bench/<script>.py)
from common import (GUEST_DIR, InProcessCloud, parse_runs, progress, run_cleaning_up, skip,
                    until)

URI = "qemu:///system"
NETWORK = "eucalite-bench"
BRIDGE = "eubenchbr0"
SUBNET = "10.217.0.0/24"
FLOOR_IP = "10.217.0.250"          # eucalite hands out .2 upwards: never this one here
FLOOR_PREFIX = f"eubench-floor-{os.getpid()}-"
INSTANCE_TYPE = "m1.small"
USER_DATA = "eucalite boot benchmark"
MARK = "EUCALITE-GUEST"
BOOT, READY = f"{MARK} boot", f"{MARK} ready"
TIMEOUT = 180                      # seconds for any one wait (TCG on a loaded machine)


# -- watching a console file -----------------------------------------------------------------

class Watcher(threading.Thread):
    """Polls *path* every 20 ms; records when each marker first appears (perf_counter)."""

    def __init__(self, path: Path, markers: tuple[str, ...]):
        super().__init__(daemon=True)
        self.path, self.seen = path, {}
        self.markers = markers
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set() and len(self.seen) < len(self.markers):
            try:
                text = self.path.read_bytes().decode("utf-8", "replace")
            except OSError:
                text = ""
            now = time.perf_counter()
            for marker in self.markers:
                if marker not in self.seen and marker in text:
                    self.seen[marker] = now
            self.halt.wait(0.02)

    def wait_for(self, marker: str, timeout: float = TIMEOUT) -> float:
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {marker!r} in {self.path} after {timeout} s:\n"
                                 f"{tail(self.path)}")
            time.sleep(0.01)
        return self.seen[marker]

    def stop(self) -> None:
        self.halt.set()


def tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return "(no console file)"


# -- the eucalite side: in-process server, node steps timed ---------------------------------

class Eucalite(InProcessCloud):
    def __init__(self, data_dir: Path, metadata_off: str | None):
        super().__init__(data_dir, node=True, hypervisor="libvirt", libvirt_uri=URI,
                         instance_subnet=SUBNET, instance_network=NETWORK,
                         instance_bridge=BRIDGE, reconcile_interval=3600,
                         **({"metadata_address": ""} if metadata_off else {}))
        self.metadata_off = metadata_off
        self.launched: list[str] = []
        self.steps: dict[str, float] = {}

    def start_node(self) -> None:
        """Node duty as ``eucalite serve`` starts it, then the node's steps timed."""
        self.metadata_problem = super().start_node() or self.metadata_off
        self._time_node_steps()

    @property
    def driver(self):
        return self.services.cluster.driver

    def _time_node_steps(self) -> None:
        """Wrap the node's launch steps so each launch reports where its time went."""
        from eucalite.cluster import imagecache

        cache, driver = self.services.cluster.image_cache, self.driver

        def timed(name, function):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - start
            return wrapper

        cache.ensure = timed("cache", cache.ensure)
        driver.spawn = timed("spawn", driver.spawn)
        # the network reserves every address when it is made; a launch only checks its entry
        driver.dhcp_host = timed("dhcp", driver.dhcp_host)
        imagecache.make_disks = timed("disks", imagecache.make_disks)

    def import_guest(self, files) -> str:
        from eucalite.cli.common import admin_principal
        from eucalite.compute.imageimport import ImageFiles

        with self.app.app_context():
            ids = self.app.extensions["eucalite"].compute.import_images(
                admin_principal(), ImageFiles(files.kernel, files.ramdisk, files.root),
                name="bench-tiny", bucket="bench-images")
        return ids["machine"]

    def instance_type(self) -> tuple[int, int, int]:
        """(vCPUs, MiB, disk GiB) of INSTANCE_TYPE: vCPUs and memory as
        DescribeInstanceTypes reports them, the disk (not in that reply) from the table."""
        from eucalite.compute import instance_types

        info = self.ec2.describe_instance_types(InstanceTypes=[INSTANCE_TYPE])[
            "InstanceTypes"][0]
        with self.app.app_context():
            disk_gb = instance_types.get(INSTANCE_TYPE).disk_gb
        return info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"], disk_gb

    def empty_cache(self) -> None:
        cache = self.services.cluster.image_cache
        limit, cache.limit_bytes = cache.limit_bytes, 0
        try:
            cache.evict(set())
        finally:
            cache.limit_bytes = limit
        if cache.entries():
            raise SystemExit(f"image cache not empty after eviction: {cache.entries()}")

    def state(self, iid: str) -> dict:
        return self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0][
            "Instances"][0]

    def launch(self, image_id: str, to_boot: bool) -> dict[str, float]:
        """One RunInstances; seconds from the call to each milestone, and the node steps."""
        cache = self.services.cluster.image_cache
        misses = cache.misses
        self.steps = {}
        t0 = time.perf_counter()
        reply = self.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                       InstanceType=INSTANCE_TYPE, UserData=USER_DATA)
        t_api = time.perf_counter()
        iid = reply["Instances"][0]["InstanceId"]
        self.launched.append(iid)
        console = self.data_dir / "instances" / iid / "console.log"
        watcher = Watcher(console, (BOOT, READY))
        watcher.start()
        result = {"api": t_api - t0}
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                described = self.state(iid)
                state = described["State"]["Name"]
                if state == "running":
                    result["running"] = time.perf_counter() - t0
                    break
                if state != "pending" or time.monotonic() > deadline:
                    raise SystemExit(f"{iid} is {state}, not running: "
                                     f"{described.get('StateReason')}\n{tail(console)}")
                time.sleep(0.05)
            result.update({f"step:{k}": v for k, v in self.steps.items()})
            result["misses"] = cache.misses - misses
            if to_boot:
                deadline = time.monotonic() + TIMEOUT
                markers = [(BOOT, "boot_api")] + \
                    ([] if self.metadata_problem else [(READY, "ready_api")])
                for marker, key in markers:
                    while True:
                        output = self.ec2.get_console_output(InstanceId=iid).get("Output", "")
                        if marker in output:
                            result[key] = time.perf_counter() - t0
                            break
                        if time.monotonic() > deadline:
                            raise SystemExit(f"no {marker!r} on {iid}'s console after "
                                             f"{TIMEOUT} s:\n{output[-2000:]}")
                        time.sleep(0.2)
                result["boot_file"] = watcher.wait_for(BOOT) - t0
                if not self.metadata_problem and f"{MARK} instance-id={iid}" not in output:
                    progress(f"warning: {iid} did not print its instance-id (metadata?)")
        finally:
            watcher.stop()
            result["terminated"] = self.terminate(iid)
        return result

    def terminate(self, iid: str) -> float:
        start = time.perf_counter()
        self.ec2.terminate_instances(InstanceIds=[iid])
        return until(lambda: self.state(iid)["State"]["Name"] == "terminated",
                     f"{iid} terminated", 60, poll=0.05) - start

    def close(self) -> None:
        """Stop serving and the compute jobs, then remove what this run made in libvirt
        (only our instances: another eucalite may share this libvirt)."""
        super().close(self.launched, NETWORK)


# -- the floor: libvirt-python directly ------------------------------------------------------

class Floor:
    def __init__(self, top: Path, files, euca: Eucalite, vcpus: int, memory_mb: int,
                 disk_gb: int):
        import libvirt

        self.libvirt = libvirt
        self.conn = libvirt.open(URI)
        self.top = top
        self.euca = euca
        self.vcpus, self.memory_mb, self.disk_gb = vcpus, memory_mb, disk_gb
        base = top / "base"
        base.mkdir(parents=True)
        # copies, as eucalite's image cache holds its own: QEMU (another user) reads them
        self.kernel, self.ramdisk, self.root = (
            Path(shutil.copyfile(src, base / name)) for src, name in
            ((files.kernel, "kernel"), (files.ramdisk, "ramdisk"), (files.root, "root")))
        self.mac = "52:54:00:be:0b:01"
        self.names: list[str] = []

    def run(self, index: int) -> dict[str, float]:
        from eucalite.cluster import imagecache
        from eucalite.cluster.virt.domain_xml import domain_xml
        from eucalite.cluster.virt.driver import DiskSpec, DomainSpec

        work = self.top / f"run-{index}"
        disks = imagecache.make_disks(work, self.root, self.disk_gb)   # same qemu-img calls
        console = work / "console.log"
        specs = [DiskSpec(target="vda", path=str(disks["root"]), format="qcow2")]
        if disks.get("ephemeral0"):
            specs.append(DiskSpec(target="vdb", path=str(disks["ephemeral0"]),
                                  format="qcow2", serial="ephemeral0"))
        spec = DomainSpec(instance_id=f"bench-floor-{index}", vcpus=self.vcpus,
                          memory_mb=self.memory_mb, kernel=str(self.kernel),
                          ramdisk=str(self.ramdisk), disks=specs, mac=self.mac,
                          network=NETWORK, console_log=str(console))
        name = f"{FLOOR_PREFIX}{index}"
        # a name outside eucalite's "eucalite-" prefix, so its driver never sees the domain
        xml = domain_xml(spec, self.euca.driver.domain_type).replace(
            f"<name>{spec.name}</name>", f"<name>{name}</name>", 1)
        self.euca.driver.add_dhcp_host(NETWORK, self.mac, FLOOR_IP)
        watcher = Watcher(console, (BOOT,))
        watcher.start()
        self.names.append(name)
        try:
            t0 = time.perf_counter()
            dom = self.conn.defineXML(xml)
            dom.create()
            result = {"start": time.perf_counter() - t0}
            result["boot_file"] = watcher.wait_for(BOOT) - t0
        finally:
            watcher.stop()
            self.remove(name)
            self.euca.driver.remove_dhcp_host(NETWORK, self.mac)
            shutil.rmtree(work, ignore_errors=True)
        return result

    def remove(self, name: str) -> None:
        lv = self.libvirt
        try:
            dom = self.conn.lookupByName(name)
        except lv.libvirtError:
            return
        with contextlib.suppress(lv.libvirtError):
            if dom.isActive():
                dom.destroy()
        dom.undefine()

    def close(self) -> None:
        for name in self.names:
            try:
                self.remove(name)
            except Exception as error:  # noqa: BLE001 - keep cleaning up
                print(f"cannot remove domain {name}: {error}", file=sys.stderr)
        with contextlib.suppress(Exception):
            self.conn.close()


# -- the run ---------------------------------------------------------------------------------

def preflight():
    """The reason to skip, or None; and the guest's files."""
    if os.geteuid() != 0:
        skip("needs root (the instance bridge, the metadata address and qemu:///system)")
    try:
        import libvirt
    except ImportError:
        skip("libvirt-python is not installed in this venv")
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as error:
        skip(f"libvirtd is unreachable at {URI}: {error}")
    try:
        lib, hyp = conn.getLibVersion(), conn.getVersion()
    finally:
        conn.close()
    if shutil.which("qemu-img") is None:
        skip("qemu-img is not installed (apt install qemu-utils)")
    from eucalite.cluster import guest

    try:
        files = guest.build(GUEST_DIR, log=lambda *args: progress(" ".join(map(str, args))))
    except guest.GuestBuildError as error:
        skip(f"cannot build the tiny guest: {error}")

    def version(number: int) -> str:
        return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
    return files, version(lib), version(hyp)


def metadata_taken() -> str | None:
    """Why the metadata address must stay off, or None. Only one listener per host can
    hold 169.254.169.254:80, and two libvirt networks both carrying the address make the
    second dnsmasq fail (it binds every address of its bridge): when another eucalite
    serves here, ours runs without metadata and 'ready' is not measured."""
    shown = subprocess.run(["ip", "-o", "-4", "address", "show"], capture_output=True,
                           text=True).stdout
    for line in shown.splitlines():
        if " 169.254.169.254/" in line:
            return (f"169.254.169.254 is already on {line.split()[1]} (another eucalite "
                    f"serves metadata on this host)")
    return None


def row(label: str, samples: list[float], note: str = "") -> None:
    if not samples:
        print(f"  {label:52s} {'-':>9s} {'-':>9s}  {note}")
        return
    print(f"  {label:52s} {statistics.median(samples):8.3f}s {min(samples):8.3f}s  "
          f"{note}".rstrip())


def column(results: list[dict], key: str) -> list[float]:
    return [r[key] for r in results if key in r]


def run(args, top: Path, files, versions, cleanup: list) -> None:
    from eucalite.cluster.virt.libvirt_conn import kvm_usable

    euca = Eucalite(top / "data", metadata_taken())
    cleanup.append(euca.close)
    progress("starting eucalite's node duty (network, metadata listener)")
    euca.start_node()
    vcpus, memory_mb, disk_gb = euca.instance_type()
    domain_type = euca.driver.domain_type
    floor = Floor(top / "floor", files, euca, vcpus, memory_mb, disk_gb)
    cleanup.insert(0, floor.close)          # floor domains go before the network does

    print(f"Boot of the tiny guest: eucalite RunInstances vs a bare libvirt start; "
          f"{os.cpu_count()} CPUs, {args.runs} runs each, interleaved")
    print(f"  libvirt {versions[0]}, QEMU {versions[1]} on {URI}; domains run under "
          f"{'KVM' if domain_type == 'kvm' else 'TCG (domain type qemu, no KVM)'}"
          f"{'' if domain_type == 'kvm' or not kvm_usable() else ' though KVM is usable'}")
    print(f"  {INSTANCE_TYPE}: {vcpus} vCPU, {memory_mb} MiB, {disk_gb} GiB (root overlay + "
          f"ephemeral); eucalite in-process on werkzeug's threaded server, sqlite; "
          f"boto3 without retries")
    if euca.metadata_problem:
        print(f"  NOTE: no metadata service: {euca.metadata_problem}; guests boot and get "
              f"their lease, but 'ready' (metadata read) is not measured")
    sys.stdout.flush()

    progress("importing the guest (bundle, upload, register)")
    image_id = euca.import_guest(files)
    floors, hits, misses = [], [], []
    for i in range(args.runs):
        progress(f"run {i + 1}/{args.runs}: floor")
        floors.append(floor.run(i))
        if i:
            euca.empty_cache()              # the first miss is the fresh import's
        progress(f"run {i + 1}/{args.runs}: eucalite, image not cached")
        misses.append(euca.launch(image_id, to_boot=False))
        progress(f"run {i + 1}/{args.runs}: eucalite, image cached")
        hit = euca.launch(image_id, to_boot=True)
        if hit["misses"]:
            raise SystemExit(f"the cached launch fetched the image again ({hit})")
        hits.append(hit)
    if any(m["misses"] == 0 for m in misses):
        raise SystemExit(f"a launch meant to miss found the image cached ({misses})")

    print()
    print(f"{'':54s}{'median':>9s} {'min':>9s}")
    print("Floor: libvirt-python defineXML + create() of the same domain")
    row("define + create() returned", column(floors, "start"))
    row("-> first 'EUCALITE-GUEST boot' in the console file", column(floors, "boot_file"),
        "(file polled every 20 ms)")
    print("eucalite, image cached: RunInstances (boto3) ->")
    row("RunInstances returned", column(hits, "api"))
    row("'running' in DescribeInstances", column(hits, "running"), "(polled every 50 ms)")
    row("'EUCALITE-GUEST boot' in GetConsoleOutput", column(hits, "boot_api"),
        "(polled every 200 ms)")
    row("'EUCALITE-GUEST boot' in the console file", column(hits, "boot_file"),
        "(file polled every 20 ms)")
    row("'EUCALITE-GUEST ready' in GetConsoleOutput", column(hits, "ready_api"),
        "(lease + IMDSv2 metadata read)" if not euca.metadata_problem else
        "(not measured: no metadata listener, see above)")
    print("  of which, on the compute worker:")
    row("  image cache lookup (hit)", column(hits, "step:cache"))
    row("  qcow2 overlay + ephemeral disk (qemu-img)", column(hits, "step:disks"))
    row("  DHCP reservation check", column(hits, "step:dhcp"))
    row("  driver spawn: defineXML + create()", column(hits, "step:spawn"))
    print("eucalite, image not cached (first launch after import / after eviction):")
    row("RunInstances -> 'running'", column(misses, "running"))
    row("  image cache fill (fetch, verify, write 3 parts)", column(misses, "step:cache"),
        f"({sum(files_size(files))/2**20:.1f} MiB)")
    row("  qcow2 overlay + ephemeral disk (qemu-img)", column(misses, "step:disks"))
    row("  DHCP reservation check", column(misses, "step:dhcp"))
    row("  driver spawn: defineXML + create()", column(misses, "step:spawn"))
    print("TerminateInstances -> 'terminated' (domain destroyed, disks removed, lease released)")
    row("after a cached launch", column(hits, "terminated"))

    med = statistics.median
    start, running = med(column(floors, "start")), med(column(hits, "running"))
    boot_floor, boot_file = med(column(floors, "boot_file")), med(column(hits, "boot_file"))
    boot_api = med(column(hits, "boot_api"))
    print()
    print("Overhead of eucalite over the bare libvirt start (medians; the issue expects a "
          "small fraction of a second):")
    print(f"  RunInstances -> running  minus  define + create():       "
          f"{running - start:+.3f} s  ({running:.3f} - {start:.3f})")
    print(f"  boot marker, console file: eucalite minus floor:         "
          f"{boot_file - boot_floor:+.3f} s  ({boot_file:.3f} - {boot_floor:.3f})")
    print(f"  boot marker, GetConsoleOutput (200 ms polls) minus floor: "
          f"{boot_api - boot_floor:+.3f} s  ({boot_api:.3f} - {boot_floor:.3f})")
    miss_running = med(column(misses, "running"))
    print(f"  image cache miss over hit, RunInstances -> running:      "
          f"{miss_running - running:+.3f} s  ({miss_running:.3f} - {running:.3f})")


def files_size(files) -> list[int]:
    return [os.path.getsize(p) for p in (files.kernel, files.ramdisk, files.root)]


def main() -> None:
    args = parse_runs(__doc__.splitlines()[0])
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    files, *versions = preflight()
    # not under a 0700 dir: QEMU runs as libvirt's user and must reach the disks
    top = Path(tempfile.mkdtemp(prefix="eucalite-bench-boot-"))
    top.chmod(0o711)
    run_cleaning_up(lambda cleanup: run(args, top, files, versions, cleanup), top)


if __name__ == "__main__":
    main()
