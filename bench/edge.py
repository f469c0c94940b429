#!/usr/bin/env python3
"""Benchmark: EDGE networking (security groups, public IPs) beside the bare floor.

Three parts, in one run:

* rule set: the data plane itself (:class:`eucalite.cluster.edge.firewall.NftFirewall`,
  rendering with :func:`eucalite.cluster.edge.ruleset.render`) on a synthetic plan of 100
  instances with 10 rules each (1,000 rules: CIDR and group peers, tcp/udp/icmp) and a
  public IP each, applied by ``nft`` inside a throwaway network namespace (nothing on the
  host is touched): render, first apply into empty tables, the same plan again (a sync
  with nothing to do), a reconcile pass (the tables read back, nothing to do), one rule
  changed, one instance added.
* AuthorizeSecurityGroupIngress -> reachable: a running guest serves HTTP on port 80; tcp
  80 from the lab is revoked from its group, then authorised again: time from the call to
  the lab client's first successful GET on the guest's public IP (a fresh connection every
  20 ms, each given 200 ms). Floor: the very nft commands eucalite ran for that call
  (recorded as it ran them), run by hand with ``nft -f`` after another revoke, timed the
  same way.
* RunInstances -> reachable on the public IP (the group allows ICMP and tcp 80 from the
  lab): time to ``running``, to the public IP answering a ping from the lab, to port 80 answering (the guest starts httpd from its
  user data once it has read its metadata). Floor: a bare guest boot, the same domain
  defined and started with libvirt-python on the same network with a static lease, made
  public by hand (a /32 on the lab interface and one DNAT/SNAT pair in a table of its
  own): define+create, and the public IP answering a ping.

The lab client is tests/edgeutil.py's namespace (``eulab``, 198.51.100.2, joined to the
host by ``eulab0``); eucalite's pool is 198.51.100.10-19, the floor's public IP .20.
Needs root, nft and qemu:///system (skipped, exit 0, with the reason otherwise); the
tiny guest is cached in ``common.GUEST_DIR``. Everything made is removed at the end.

    sudo .venv/bin/python bench/edge.py [--runs N] [--quick]     # --quick: 3 runs
"""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import GUEST_DIR, InProcessCloud, parse_runs, progress, run_cleaning_up, skip

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import edgeutil  # noqa: E402  (the lab namespace the EDGE tests use)

URI = "qemu:///system"
NETWORK, BRIDGE, SUBNET = "eucalite-benchedge", "eubenchbr1", "10.218.0.0/24"
POOL = ["198.51.100.10-198.51.100.19"]
FLOOR_IP, FLOOR_PUBLIC, FLOOR_MAC = "10.218.0.250", "198.51.100.20", "52:54:00:be:0e:01"
FLOOR_TABLE = "eubench_floor"
NFT_NAMESPACE = "eubenchnft"
TIMEOUT = 180
POLL, ATTEMPT = 0.02, 0.2           # reachability: a new try every 20 ms, 200 ms each
HTTP = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": edgeutil.CIDR}]}]
HTTPD_SCRIPT = """#!/bin/sh
mkdir -p /www && echo bench > /www/index.html && httpd -p 80 -h /www
"""


def until(condition, what: str, timeout: float = TIMEOUT) -> float:
    """perf_counter() when *condition* first holds (polled every POLL s)."""
    return common.until(condition, what, timeout, POLL)


# -- part 1: the rule set, in a throwaway namespace -----------------------------------------

def synthetic_plan(instances: int = 100, rules_each: int = 10, extra: int = 0):
    """*instances* ports, each in its own group of *rules_each* ingress rules (every
    fifth names the previous group as peer) plus one egress rule; *extra* more ports."""
    from eucalite.cluster.edge.plan import Group, NetworkPlan, Port, Rule, tap_name

    ports, groups = [], {}
    for i in range(instances + extra):
        ip = f"10.{220 + i // 250}.{i % 250}.{2 + i % 200}"
        group_id = f"sg-{i:017x}"
        rules = []
        for r in range(rules_each):
            if r % 5 == 4:
                rules.append(Rule("6", 1000 + r, 1000 + r, group=f"sg-{(i - 1) % instances:017x}"))
            elif r % 3 == 0:
                rules.append(Rule("6", 20 + r, 20 + r, cidr=f"192.0.{r}.0/24"))
            elif r % 3 == 1:
                rules.append(Rule("17", 5000, 5000 + r, cidr=f"198.18.{i % 256}.0/24"))
            else:
                rules.append(Rule("1", 8, -1, cidr="0.0.0.0/0"))
        groups[group_id] = Group(group_id, ingress=tuple(rules),
                                 egress=(Rule("-1", cidr="0.0.0.0/0"),))
        ports.append(Port(f"i-{i:017x}", tap_name(ip), f"52:54:00:{i // 65536 % 256:02x}:"
                          f"{i // 256 % 256:02x}:{i % 256:02x}", ip,
                          f"203.0.{113 + i // 250}.{i % 250 + 1}", (group_id,)))
    members = {g: (p.private_ip,) for g, p in zip(groups, ports)}
    return NetworkPlan(ports=tuple(ports), groups=groups, members=members)


def one_rule_changed(plan):
    from dataclasses import replace

    from eucalite.cluster.edge.plan import Rule

    first = next(iter(plan.groups))
    groups = dict(plan.groups)
    group = groups[first]
    groups[first] = replace(group, ingress=group.ingress[:-1] + (Rule("6", 8443, 8443,
                                                                      cidr="192.0.99.0/24"),))
    return replace(plan, groups=groups)


def ruleset_part(runs: int) -> dict[str, list[float]]:
    from eucalite.cluster.edge.firewall import NftFirewall
    from eucalite.cluster.edge.ruleset import Host, render

    prefix = ("ip", "netns", "exec", NFT_NAMESPACE)
    host = Host(bridge="eubr-x", subnet="10.220.0.0/14", gateway="10.220.0.1",
                public_interface="eulab-x")
    base, changed = synthetic_plan(), one_rule_changed(synthetic_plan())
    grown = synthetic_plan(extra=1)
    times: dict[str, list[float]] = {}

    def timed(key, function):
        start = time.perf_counter()
        result = function()
        times.setdefault(key, []).append(time.perf_counter() - start)
        return result

    def in_namespace(*argv: str) -> None:
        subprocess.run([*prefix, *argv], check=True)

    rules = sum(t.rule_count() for t in render(base, host))
    for _ in range(runs):
        subprocess.run(["ip", "netns", "delete", NFT_NAMESPACE], capture_output=True)
        subprocess.run(["ip", "netns", "add", NFT_NAMESPACE], check=True)
        try:
            in_namespace("ip", "link", "add", host.bridge, "type", "bridge")
            in_namespace("ip", "link", "add", host.public_interface, "type", "veth",
                         "peer", "name", "eulab-y")
            with tempfile.TemporaryDirectory() as state:
                firewall = NftFirewall(host, Path(state), prefix)
                firewall.prepare()
                timed("render", lambda: render(base, host))
                timed("first", lambda: firewall.apply(base))
                again = timed("again", lambda: firewall.apply(base))
                checked = timed("reconcile", lambda: firewall.apply(base, reread=True))
                if not again.empty or not checked.empty:
                    raise SystemExit("applying the same plan again changed "
                                     f"{(again.commands or checked.commands)[:5]}")
                one = timed("one_rule", lambda: firewall.apply(changed))
                times.setdefault("one_rule_commands", []).append(len(one.commands))
                timed("one_instance", lambda: firewall.apply(grown))
        finally:
            subprocess.run(["ip", "netns", "delete", NFT_NAMESPACE], capture_output=True)
    times["nft_rules"] = [rules]
    return times


# -- parts 2 and 3: eucalite with real guests, and the floor ---------------------------------

class Eucalite(InProcessCloud):
    def __init__(self, data_dir: Path):
        super().__init__(data_dir, node=True, hypervisor="libvirt", libvirt_uri=URI,
                         instance_subnet=SUBNET, instance_network=NETWORK,
                         instance_bridge=BRIDGE, reconcile_interval=3600,
                         firewall="nftables", public_interface=edgeutil.HOST_IF,
                         public_ips=POOL)
        self.launched: list[str] = []
        self.scripts: list[str] = []

    def start_node(self) -> None:
        problem = super().start_node()
        if problem:
            raise SystemExit(f"no metadata service ({problem}): guests could not start "
                             "their listener")
        if self.services.cluster.network_problem:
            raise SystemExit(self.services.cluster.network_problem)
        self._record_nft_scripts()

    def _record_nft_scripts(self) -> None:
        """Keep every script eucalite hands to ``nft -f`` (the floor replays them)."""
        from eucalite.cluster.edge import nft

        run = nft.run_nft

        def recording(prefix, args, stdin=None):
            if stdin is not None:
                self.scripts.append(stdin)
            return run(prefix, args, stdin)
        nft.run_nft = recording

    def import_guest(self, files) -> str:
        from eucalite.cli.common import admin_principal
        from eucalite.compute.imageimport import ImageFiles

        with self.app.app_context():
            return self.services.compute.import_images(
                admin_principal(), ImageFiles(files.kernel, files.ramdisk, files.root),
                name="bench-edge", bucket="bench-images")["machine"]

    def described(self, iid: str) -> dict:
        return self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0][
            "Instances"][0]

    def resync(self) -> None:
        """Make the kernel enforce the database's plan again after the floor's hand work
        (read back, as a reconcile pass does: the firewall's memory does not see it)."""
        from eucalite.compute import netplan

        with self.app.app_context():
            netplan.sync(self.services.cluster, reread=True)

    def terminate(self, iid: str) -> None:
        self.ec2.terminate_instances(InstanceIds=[iid])
        until(lambda: self.described(iid)["State"]["Name"] == "terminated", f"{iid} ended", 60)

    def close(self) -> None:
        super().close(self.launched, NETWORK)


def port_80(address: str):
    return lambda lab: lab.get(address, 80, timeout=ATTEMPT) is not None


def launch_part(euca: Eucalite, lab, image_id: str, group: str) -> dict[str, float]:
    t0 = time.perf_counter()
    reply = euca.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                   InstanceType="m1.small", UserData=HTTPD_SCRIPT,
                                   SecurityGroupIds=[group])
    result = {"api": time.perf_counter() - t0}
    iid = reply["Instances"][0]["InstanceId"]
    euca.launched.append(iid)
    public = reply["Instances"][0].get("PublicIpAddress") or \
        euca.described(iid).get("PublicIpAddress")
    if not public:
        raise SystemExit(f"{iid} got no public IP")
    result["running"] = until(lambda: euca.described(iid)["State"]["Name"] == "running",
                              "running") - t0
    result["ping"] = until(lambda: lab.ping(public, ATTEMPT), f"{public} answering pings") - t0
    result["port"] = until(lambda: port_80(public)(lab), f"{public}:80") - t0
    result["iid"], result["public"] = iid, public
    return result


def authorize_part(euca: Eucalite, lab, group: str, public: str) -> dict[str, float]:
    """Revoke tcp 80, then time Authorize -> reachable; revoke again and time the same nft
    script run by hand; leave the group as it was (tcp 80 allowed)."""
    reachable = port_80(public)
    euca.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=HTTP)
    until(lambda: not reachable(lab), "port 80 closed after revoking")
    recorded = len(euca.scripts)
    t0 = time.perf_counter()
    euca.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=HTTP)
    result = {"api": time.perf_counter() - t0}
    result["reachable"] = until(lambda: reachable(lab), "port 80 after authorising") - t0
    if len(euca.scripts) != recorded + 1:
        raise SystemExit(f"the authorisation ran nft {len(euca.scripts) - recorded} times")
    script = euca.scripts[-1]
    result["nft_commands"] = len(script.strip().splitlines())
    euca.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=HTTP)
    until(lambda: not reachable(lab), "port 80 closed after revoking")
    # the floor: the same commands by hand, then eucalite puts its plan back
    t0 = time.perf_counter()
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
    result["floor_nft"] = time.perf_counter() - t0
    result["floor_reachable"] = until(lambda: reachable(lab), "port 80, floor") - t0
    euca.resync()
    until(lambda: not reachable(lab), "port 80 closed again")
    euca.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=HTTP)
    return result


class Floor:
    """A bare guest on eucalite's network, made public by hand."""

    def __init__(self, top: Path, files, euca: Eucalite):
        import libvirt

        self.conn = libvirt.open(URI)
        self.top, self.euca = top, euca
        base = top / "base"
        base.mkdir(parents=True)
        self.kernel, self.ramdisk, self.root = (
            Path(shutil.copyfile(src, base / name)) for src, name in
            ((files.kernel, "kernel"), (files.ramdisk, "ramdisk"), (files.root, "root")))
        self.names: list[str] = []
        self.public_made = False

    def make_public(self) -> None:
        """What eucalite's data plane does for one public IP, as few commands as it takes."""
        subprocess.run(["ip", "address", "add", f"{FLOOR_PUBLIC}/32", "dev",
                        edgeutil.HOST_IF], check=True)
        self.public_made = True
        subprocess.run(["nft", "-f", "-"], text=True, check=True, input=f"""
table ip {FLOOR_TABLE} {{
  chain pre {{ type nat hook prerouting priority dstnat; ip daddr {FLOOR_PUBLIC} dnat to {FLOOR_IP}; }}
  chain post {{ type nat hook postrouting priority srcnat; ip saddr {FLOOR_IP} oifname "{edgeutil.HOST_IF}" snat to {FLOOR_PUBLIC}; }}
}}
""")

    def boot(self, index: int, lab) -> dict[str, float]:
        from eucalite.cluster import imagecache
        from eucalite.cluster.virt.domain_xml import domain_xml
        from eucalite.cluster.virt.driver import DiskSpec, DomainSpec

        work = self.top / f"run-{index}"
        disks = imagecache.make_disks(work, self.root, 1)
        spec = DomainSpec(instance_id=f"bench-edge-floor-{index}", vcpus=1, memory_mb=256,
                          kernel=str(self.kernel), ramdisk=str(self.ramdisk),
                          disks=[DiskSpec(target="vda", path=str(disks["root"]),
                                          format="qcow2")],
                          mac=FLOOR_MAC, network=NETWORK, console_log=str(work / "console"))
        name = f"eubench-edge-floor-{os.getpid()}-{index}"
        xml = domain_xml(spec, self.euca.services.cluster.driver.domain_type).replace(
            f"<name>{spec.name}</name>", f"<name>{name}</name>", 1)
        driver = self.euca.services.cluster.driver
        driver.add_dhcp_host(NETWORK, FLOOR_MAC, FLOOR_IP)
        self.names.append(name)
        try:
            t0 = time.perf_counter()
            dom = self.conn.defineXML(xml)
            dom.create()
            result = {"start": time.perf_counter() - t0}
            result["ping"] = until(lambda: lab.ping(FLOOR_PUBLIC, ATTEMPT),
                                   "the floor guest answering pings") - t0
        finally:
            self.remove(name)
            driver.remove_dhcp_host(NETWORK, FLOOR_MAC)
            shutil.rmtree(work, ignore_errors=True)
        return result

    def remove(self, name: str) -> None:
        import libvirt

        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError:
            return
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        dom.undefine()

    def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                self.remove(name)
        subprocess.run(["nft", "delete", "table", "ip", FLOOR_TABLE], capture_output=True)
        if self.public_made:
            subprocess.run(["ip", "address", "del", f"{FLOOR_PUBLIC}/32", "dev",
                            edgeutil.HOST_IF], capture_output=True)
        with contextlib.suppress(Exception):
            self.conn.close()


# -- the run ---------------------------------------------------------------------------------

def preflight():
    if os.geteuid() != 0:
        skip("needs root (namespaces, nftables, the bridge, qemu:///system)")
    if shutil.which("nft") is None:
        skip("nft is not installed (apt install nftables)")
    try:
        import libvirt
    except ImportError:
        skip("libvirt-python is not installed in this venv")
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        skip(f"libvirtd is unreachable at {URI}: {error}")
    from eucalite.cluster import guest

    try:
        return guest.build(GUEST_DIR, log=lambda *args: progress(" ".join(map(str, args))))
    except guest.GuestBuildError as error:
        skip(f"cannot build the tiny guest: {error}")


def row(label: str, samples: list[float], note: str = "", unit: str = "s") -> None:
    if not samples:
        print(f"  {label:56s} {'-':>9s} {'-':>9s}  {note}")
        return
    scale, fmt = (1000, "{:8.1f}ms") if unit == "ms" else (1, "{:8.3f}s ")
    print(f"  {label:56s} {fmt.format(statistics.median(samples) * scale)} "
          f"{fmt.format(min(samples) * scale)} {note}".rstrip())


def column(results: list[dict], key: str) -> list[float]:
    return [r[key] for r in results if key in r]


def run(args, top: Path, files, cleanup: list) -> None:
    progress("rule set: 1,000 rules over 100 instances, in a throwaway namespace")
    ruleset = ruleset_part(args.runs)

    lab = edgeutil.Lab()
    cleanup.append(lab.close)
    lab.start()
    euca = Eucalite(top / "data")
    cleanup.insert(0, euca.close)
    progress("starting eucalite's node duty (network, nftables, metadata listener)")
    euca.start_node()
    floor = Floor(top / "floor", files, euca)
    cleanup.insert(0, floor.close)
    floor.make_public()
    image_id = euca.import_guest(files)
    group = euca.ec2.create_security_group(GroupName="bench-edge",
                                           Description="edge benchmark")["GroupId"]
    euca.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
         "IpRanges": [{"CidrIp": edgeutil.CIDR}]}, *HTTP])

    floors, launches, authorizations = [], [], []
    for i in range(args.runs):
        progress(f"run {i + 1}/{args.runs}: floor boot")
        floors.append(floor.boot(i, lab))
        progress(f"run {i + 1}/{args.runs}: RunInstances -> reachable")
        launch = launch_part(euca, lab, image_id, group)
        launches.append(launch)
        progress(f"run {i + 1}/{args.runs}: AuthorizeSecurityGroupIngress -> reachable")
        authorizations.append(authorize_part(euca, lab, group, launch["public"]))
        euca.terminate(launch["iid"])

    print(f"EDGE networking: eucalite vs the bare floor; {os.cpu_count()} CPUs, "
          f"{args.runs} runs each, interleaved; guests under "
          f"{euca.services.cluster.driver.domain_type} on {URI}")
    print(f"{'':58s}{'median':>9s} {'min':>9s}")
    print(f"Rule set ({int(ruleset['nft_rules'][0])} nft rules from 1,000 security-group "
          f"rules over 100 instances), nft in a namespace:")
    row("render (plan -> tables)", ruleset["render"], unit="ms")
    row("first apply (empty tables)", ruleset["first"], unit="ms")
    row("same plan again (a sync: nothing to do, no nft run)", ruleset["again"], unit="ms")
    row("reconcile pass (tables read back, nothing to do)", ruleset["reconcile"], unit="ms")
    row("one rule changed", ruleset["one_rule"],
        f"({int(statistics.median(ruleset['one_rule_commands']))} nft commands)", unit="ms")
    row("one instance added", ruleset["one_instance"], unit="ms")
    print("AuthorizeSecurityGroupIngress (tcp 80 from the lab) ->")
    row("call returned (the plan is applied before it answers)",
        column(authorizations, "api"))
    row("port 80 answers the lab on the public IP", column(authorizations, "reachable"),
        f"(new try every {POLL * 1000:.0f} ms)")
    row("floor: the same nft commands by hand, nft returned", column(authorizations,
                                                                      "floor_nft"),
        f"({int(statistics.median(column(authorizations, 'nft_commands')))} commands)")
    row("floor: port 80 answers", column(authorizations, "floor_reachable"))
    print("RunInstances (its group allows ICMP and tcp 80 from the lab) ->")
    row("call returned", column(launches, "api"))
    row("'running' in DescribeInstances", column(launches, "running"))
    row("public IP answers a ping from the lab", column(launches, "ping"))
    row("port 80 answers (httpd from user data, after metadata)", column(launches, "port"))
    print("Floor: bare guest (libvirt define+create, static lease, hand NAT) ->")
    row("define + create() returned", column(floors, "start"))
    row("public IP answers a ping from the lab", column(floors, "ping"))
    med = statistics.median
    print()
    print(f"  eucalite over the floor: authorize -> reachable "
          f"{med(column(authorizations, 'reachable')) - med(column(authorizations, 'floor_reachable')):+.3f} s; "
          f"launch -> ping on the public IP "
          f"{med(column(launches, 'ping')) - med(column(floors, 'ping')):+.3f} s")


def main() -> None:
    args = parse_runs(__doc__.splitlines()[0])
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    files = preflight()
    top = Path(tempfile.mkdtemp(prefix="eucalite-bench-edge-"))
    top.chmod(0o711)                # QEMU (libvirt's user) reaches the disks
    run_cleaning_up(lambda cleanup: run(args, top, files, cleanup), top)


if __name__ == "__main__":
    main()
