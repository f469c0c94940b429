"""EDGE networking end to end: real guests under libvirt (qemu:///system) behind the real
nftables data plane, seen from a lab client in a network namespace (tests/edgeutil.py).

One cloud and two guests serve the whole module (booting is the slow part, and a 2-core
host has room for two m1.small). Each guest's user data is a script the tiny guest runs
after it is ready:

* ``web`` (group edge-web, a public IP at launch) serves ``web`` over HTTP on port 80 and
  fetches ``/from-web`` from the lab client until it gets through (outbound NAT);
* ``private`` (group edge-other, launched with AddressingType=private) serves ``private``
  on port 80, fetches ``/private`` from the lab (masqueraded behind the host's address),
  tries ``/forged-ip`` from an address that is not its own and ``/forged-mac`` from a MAC
  that is not its own, fetches ``/after`` with its own again, then fetches from web's
  private address once a second for ever, printing each outcome, numbered, on its console.

Negative checks never wait for time to pass: either the guest proved it is listening and the
rule change has returned (the API pushes the plan before answering), or a later event the
guest caused in order (``/after`` arriving, probe n+2 failing) shows the earlier one had its
chance. Skipped, with the reason, without root, qemu:///system, nft or the tiny guest.
"""
from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from edgeutil import (CIDR, CLIENT_IP, HOST_IF, HOST_IP, POOL, PUBLIC_IPS, Lab,
                      host_addresses, is_root, nft_tables, sysctl)
from guestutil import (BOOT_TIMEOUT, GUEST_DIR, MARK, REAL_URI, guest_console,
                       qemu_reachable_dir, requires_real_libvirt, terminate)
from liveutil import start_live, stop_live
from serverutil import wait_until

from eucalite.cluster import guest

NETWORK, BRIDGE, SUBNET = "eucalite-edgetest", "euedgebr0", "10.214.0.0/24"
FORGED_IP = "10.214.0.250"              # in the subnet, never handed out by this test
FORGED_MAC = "52:54:00:66:66:66"
LAB_PORT = 8080
REACH_TIMEOUT = 20                      # enforced before the API answers (~40 ms here)
HOST_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding",
                "net.ipv4.conf.default.forwarding", "net.ipv4.conf.lo.forwarding")

pytestmark = requires_real_libvirt


def _preflight() -> None:
    if not is_root():
        pytest.skip("the lab namespace, the bridge and nftables need root")
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (apt install nftables)")


# --- the cloud, its restart, and the guests ----------------------------------------------

class Cloud:
    """eucalite serving in this process with node duty on REAL_URI, EDGE networking with
    nftables and the lab's pool on eulab0; restartable over the same data directory while
    the guests run on."""

    def __init__(self, top, guest_files):
        self.top = top
        self.live = self.server = None
        self.start()
        from eucalite.cli.common import admin_principal
        from eucalite.compute.imageimport import ImageFiles

        with self.live.app.app_context():
            ids = self.services.compute.import_images(
                admin_principal(), ImageFiles(guest_files.kernel, guest_files.ramdisk,
                                              guest_files.root), name="tiny", bucket="images")
        self.image_id = ids["machine"]

    def start(self) -> None:
        from eucalite.server import start_node_services

        self.live, self.server = start_live(
            self.top / "data", node=True, hypervisor="libvirt", libvirt_uri=REAL_URI,
            reconcile_interval=3600, instance_subnet=SUBNET, instance_network=NETWORK,
            instance_bridge=BRIDGE, firewall="nftables", public_interface=HOST_IF,
            public_ips=PUBLIC_IPS)
        start_node_services(self.live.app)
        cluster = self.services.cluster
        assert cluster.node_problem is None, cluster.node_problem
        assert cluster.metadata_problem is None, cluster.metadata_problem
        assert cluster.network_problem is None, cluster.network_problem

    @property
    def services(self):
        return self.live.app.extensions["eucalite"]

    @property
    def ec2(self):
        return self.live.client("ec2")

    def restart(self) -> None:
        """Stop serving (the guests run on, as when ``eucalite serve`` restarts) and start
        again on the same data directory."""
        services = self.services
        self.server.shutdown()
        services.compute.worker.shutdown()
        services.compute.metadata_server.shutdown()
        services.cluster.close_driver()
        self.start()

    def stop(self) -> None:
        stop_live(self.live, self.server, NETWORK)


def _remove_eucalite_tables() -> None:
    """What the README says undoes EDGE on a host: delete eucalite's own nft tables."""
    for family, table in nft_tables():
        if table == "eucalite":
            subprocess.run(["nft", "delete", "table", family, table], check=False)


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    """The tiny guest (cached in EUCALITE_TEST_GUEST_DIR when set); skip when it cannot be
    built here."""
    out = Path(GUEST_DIR) if GUEST_DIR else tmp_path_factory.mktemp("guest")
    try:
        return guest.build(out, log=lambda *args: None)
    except guest.GuestBuildError as error:
        pytest.skip(f"the tiny guest cannot be built here: {error}")


@pytest.fixture(scope="module")
def lab():
    _preflight()
    with Lab() as lab:
        lab.listener = lab.listen(LAB_PORT)
        yield lab


@pytest.fixture(scope="module")
def host_before():
    """The host's IPv4 forwarding switches (global, and each interface that is not the
    lab's or an instance bridge) before eucalite started here."""
    _preflight()
    return {"sysctls": {name: sysctl(name) for name in HOST_SYSCTLS},
            "uplinks": _uplink_forwarding()}


def _uplink_forwarding() -> dict[str, str | None]:
    """Forwarding of every host interface that is not the lab's or an instance network's."""
    names = [link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)]
    return {name: sysctl(f"net.ipv4.conf.{name}.forwarding") for name in names
            if not name.startswith(("eu", "vnet", "virbr"))}


@pytest.fixture(scope="module")
def cloud(lab, host_before, guest_files):
    top = qemu_reachable_dir("eucalite-edge-test-")
    cloud = None
    try:
        cloud = Cloud(top, guest_files)
        cloud.foreign = _foreign_tables()
        yield cloud
    finally:
        if cloud is not None and cloud.live is not None:
            cloud.stop()
        _remove_eucalite_tables()
        for name, value in host_before["sysctls"].items():
            if value is not None and sysctl(name) != value:
                Path("/proc/sys", *name.split(".")).write_text(value + "\n")
        shutil.rmtree(top, ignore_errors=True)


def _foreign_tables() -> dict:
    return {key: body for key, body in nft_tables().items() if key[1] != "eucalite"}


def _eucalite_tables() -> dict:
    return {key: body for key, body in nft_tables().items() if key[1] == "eucalite"}


WEB_SCRIPT = """#!/bin/sh
M=EUCALITE-GUEST
mkdir -p /www && echo web > /www/index.html
httpd -p 80 -h /www && echo "$M" "httpd=up"
until timeout 5 wget -q -O /dev/null http://{lab}:{port}/from-web; do sleep 1; done
echo "$M" "outbound=ok"
"""

PRIVATE_SCRIPT = """#!/bin/sh
M=EUCALITE-GUEST
mkdir -p /www && echo private > /www/index.html
httpd -p 80 -h /www && echo "$M" "httpd=up"
lab() {{ timeout 5 wget -q -O /dev/null http://{lab}:{port}/$1; }}
until lab private; do sleep 1; done
echo "$M" "outbound=ok"
own=$(cat /run/eucalite-ip); mac=$(cat /sys/class/net/eth0/address)
gw=$(ip route | awk '/^default/ {{print $3}}')
address() {{ ip addr flush dev eth0; ip addr add $1/{prefix} dev eth0; ip route add default via $gw; }}
hwaddr() {{ ip link set eth0 down; ip link set eth0 address $1; ip link set eth0 up;
           ip route add default via $gw; arping -U -c 1 -I eth0 -s $own $own >/dev/null; }}
address {forged_ip}; lab forged-ip; echo "$M" "forged-ip=tried"
address $own
hwaddr {forged_mac}; lab forged-mac; echo "$M" "forged-mac=tried"
hwaddr $mac
until lab after; do sleep 1; arping -U -c 1 -I eth0 -s $own $own >/dev/null; done
echo "$M" "after=ok"
n=0
while :; do
    n=$((n + 1))
    if timeout 3 wget -q -O /tmp/got http://{web}/; then
        echo "$M" "probe=$n ok $(cat /tmp/got)"
    else
        echo "$M" "probe=$n fail"
    fi
    sleep 1
done
"""


def _without_public_ip(ec2):
    """Make this client's RunInstances send AddressingType=private (EC2's legacy parameter,
    which boto3's model no longer has)."""
    def add(params, **kwargs):
        params["body"]["AddressingType"] = "private"
    ec2.meta.events.register("before-call.ec2.RunInstances", add)
    return ec2


def _launch(ec2, image_id, script: str, **options) -> dict:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                             InstanceType="m1.small", UserData=script, **options)[
        "Instances"][0]


def _described(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def _console_has(ec2, instance_id, text, timeout=BOOT_TIMEOUT) -> str:
    return wait_until(lambda: text in (c := guest_console(ec2, instance_id)) and c,
                      f"{text!r} on {instance_id}'s console", timeout, interval=1,
                      show=lambda: guest_console(ec2, instance_id)[-3000:])


@pytest.fixture(scope="module")
def guests(cloud, lab):
    """The three guests (see the module docstring), running, their scripts started."""
    ec2 = cloud.ec2
    web_group = ec2.create_security_group(GroupName="edge-web",
                                          Description="the web guest")["GroupId"]
    other_group = ec2.create_security_group(GroupName="edge-other",
                                            Description="the private guest")["GroupId"]
    prefix = ipaddress.ip_network(SUBNET).prefixlen
    web = _launch(ec2, cloud.image_id, WEB_SCRIPT.format(lab=CLIENT_IP, port=LAB_PORT),
                  SecurityGroups=["edge-web"])
    private = _launch(_without_public_ip(cloud.live.client("ec2")), cloud.image_id,
                      PRIVATE_SCRIPT.format(lab=CLIENT_IP, port=LAB_PORT, prefix=prefix,
                                            forged_ip=FORGED_IP, forged_mac=FORGED_MAC,
                                            web=web["PrivateIpAddress"]),
                      SecurityGroupIds=[other_group])
    ids = {"web": web["InstanceId"], "private": private["InstanceId"]}
    try:
        for name, iid in ids.items():
            _console_has(ec2, iid, f"{MARK} user-script")
        _console_has(ec2, ids["web"], f"{MARK} httpd=up")
        _console_has(ec2, ids["private"], f"{MARK} httpd=up")
        # as each was when its script ran (the elastic IP test moves public IPs later)
        yield {"ids": ids, "groups": {"web": web_group, "other": other_group},
               "launched": {name: _described(ec2, iid) for name, iid in ids.items()}}
    finally:
        live = [iid for iid in ids.values()
                if _described(cloud.ec2, iid)["State"]["Name"] != "terminated"]
        if live:
            terminate(cloud.ec2, live)


def _tcp80_from(cidr: str | None = None, group: str | None = None) -> list[dict]:
    permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80}
    if cidr:
        permission["IpRanges"] = [{"CidrIp": cidr}]
    if group:
        permission["UserIdGroupPairs"] = [{"GroupId": group}]
    return [permission]


def _public_ip(ec2, instance_id) -> str | None:
    return _described(ec2, instance_id).get("PublicIpAddress") or None


# --- the tests ----------------------------------------------------------------------------

def test_instances_show_their_groups_and_public_ips_from_the_pool(cloud, guests):
    ec2 = cloud.ec2
    web = _described(ec2, guests["ids"]["web"])
    assert [(g["GroupName"], g["GroupId"]) for g in web["SecurityGroups"]] == [
        ("edge-web", guests["groups"]["web"])]
    first, last = (ipaddress.ip_address(a) for a in POOL)
    assert first <= ipaddress.ip_address(web["PublicIpAddress"]) <= last
    # the host answers for it on the lab side
    assert f"{web['PublicIpAddress']}/32" in host_addresses()
    private = _described(ec2, guests["ids"]["private"])
    assert [g["GroupName"] for g in private["SecurityGroups"]] == ["edge-other"]
    assert not private.get("PublicIpAddress")           # AddressingType=private


def test_lab_reaches_a_port_only_while_a_rule_allows_it_from_its_cidr(cloud, guests, lab):
    ec2 = cloud.ec2
    group = guests["groups"]["web"]
    public = _public_ip(ec2, guests["ids"]["web"])
    # the guest's httpd is up (its console said so) but nothing lets the lab in
    assert lab.get(public) is None
    # nor does a rule for another CIDR (the call answers once the node enforces it)
    ec2.authorize_security_group_ingress(GroupId=group,
                                         IpPermissions=_tcp80_from("203.0.113.0/24"))
    assert lab.get(public) is None
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))
    assert wait_until(lambda: lab.get(public), "web through its public IP",
                      REACH_TIMEOUT) == "web\n"
    # the private address is not reachable from the lab at all
    assert lab.get(guests["launched"]["web"]["PrivateIpAddress"], timeout=1) is None
    # revoking cuts new connections
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))
    wait_until(lambda: lab.get(public, timeout=1) is None, "web unreachable after revoke",
               REACH_TIMEOUT)
    ec2.revoke_security_group_ingress(GroupId=group,
                                      IpPermissions=_tcp80_from("203.0.113.0/24"))


def test_guests_reach_the_lab_through_nat(cloud, guests, lab):
    listener = lab.listener
    # with a public IP: its traffic leaves with that address as source
    sources = wait_until(lambda: listener.sources("/from-web"), "web's request at the lab",
                         BOOT_TIMEOUT, interval=0.5)
    assert set(sources) == {guests["launched"]["web"]["PublicIpAddress"]}
    # without one: masqueraded behind the host's address on the lab side
    sources = wait_until(lambda: listener.sources("/private"),
                         "private's request at the lab", BOOT_TIMEOUT, interval=0.5)
    assert set(sources) == {HOST_IP}


def test_a_guest_forging_another_mac_or_ip_is_dropped(cloud, guests, lab):
    ec2 = cloud.ec2
    listener = lab.listener
    private = guests["ids"]["private"]
    # the guest asks for /after only once both forged attempts are over
    wait_until(lambda: listener.sources("/after"), "private's /after at the lab",
               BOOT_TIMEOUT, interval=0.5, show=lambda: guest_console(ec2, private)[-1500:])
    console = guest_console(ec2, private)
    assert f"{MARK} forged-ip=tried" in console and f"{MARK} forged-mac=tried" in console
    assert listener.sources("/forged-ip") == []
    assert listener.sources("/forged-mac") == []


def _probes(console: str) -> list[tuple[int, bool]]:
    return [(int(n), outcome == "ok")
            for n, outcome in re.findall(rf"{MARK} probe=(\d+) (ok|fail)", console)]


def _probe_after_now(ec2, instance_id, ok: bool) -> None:
    """Wait until a probe the guest began after this call has outcome *ok* (probe n+1
    may have begun before the call: look from n+2 on)."""
    seen = _probes(guest_console(ec2, instance_id))
    start = (seen[-1][0] if seen else 0) + 2

    def done():
        return any(n >= start and outcome == ok
                   for n, outcome in _probes(guest_console(ec2, instance_id)))
    wait_until(done, f"a probe from {start} on {'succeeding' if ok else 'failing'}",
               BOOT_TIMEOUT, interval=1, show=lambda: guest_console(ec2, instance_id)[-1500:])


def test_guests_in_different_groups_talk_only_through_a_group_pair_rule(cloud, guests):
    ec2 = cloud.ec2
    prober = guests["ids"]["private"]
    web_group, other_group = guests["groups"]["web"], guests["groups"]["other"]
    _probe_after_now(ec2, prober, ok=False)
    ec2.authorize_security_group_ingress(GroupId=web_group,
                                         IpPermissions=_tcp80_from(group=other_group))
    _probe_after_now(ec2, prober, ok=True)
    assert re.search(rf"{MARK} probe=\d+ ok web", guest_console(ec2, prober))
    ec2.revoke_security_group_ingress(GroupId=web_group,
                                      IpPermissions=_tcp80_from(group=other_group))
    _probe_after_now(ec2, prober, ok=False)


def test_an_elastic_ip_follows_the_instance_it_is_associated_with(cloud, guests, lab):
    ec2 = cloud.ec2
    web, private = guests["ids"]["web"], guests["ids"]["private"]
    for group in guests["groups"].values():
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))
    try:
        eip = ec2.allocate_address(Domain="standard")["PublicIp"]
        ec2.associate_address(InstanceId=web, PublicIp=eip)
        assert _public_ip(ec2, web) == eip
        assert wait_until(lambda: lab.get(eip), "web on the elastic IP",
                          REACH_TIMEOUT) == "web\n"
        ec2.associate_address(InstanceId=private, PublicIp=eip, AllowReassociation=True)
        assert _public_ip(ec2, private) == eip
        assert _public_ip(ec2, web) not in (None, eip)      # a fresh address from the pool
        assert wait_until(lambda: lab.get(eip), "private on the elastic IP",
                          REACH_TIMEOUT) == "private\n"
        assert wait_until(lambda: lab.get(_public_ip(ec2, web)), "web on its new address",
                          REACH_TIMEOUT) == "web\n"
        ec2.release_address(PublicIp=eip)
        wait_until(lambda: lab.get(eip, timeout=1) is None, "the released IP unreachable",
                   REACH_TIMEOUT)
        assert f"{eip}/32" not in host_addresses()
    finally:
        for group in guests["groups"].values():
            ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))


def _mac(cloud, instance_id) -> str:
    from eucalite.compute.models import Instance
    from eucalite.db import db

    with cloud.live.app.app_context():
        return db.session.get(Instance, instance_id).mac


def _mentions(tables: dict, *needles: str | None) -> list[str]:
    text = json.dumps(list(tables.values()))
    return [needle for needle in needles if needle and needle in text]


def _differences_from_the_plan(cloud) -> list[str]:
    """Where eucalite's installed tables differ from what the database's plan renders to:
    a chain's rule count or digest, a set's or map's elements, a chain, set or map too many
    or missing."""
    from eucalite.cluster import network
    from eucalite.cluster.edge import nft
    from eucalite.cluster.edge.ruleset import render
    from eucalite.compute import netplan

    cluster = cloud.services.cluster
    with cloud.live.app.app_context():
        plan = netplan.build(cluster.local_node.node_id)
    found = []
    for table in render(plan, network.edge_host(cloud.services.config)):
        have = nft.read_installed((), table.family, table.name)
        if have is None:
            found.append(f"{table.ref}: missing")
            continue
        want_chains = {name: (len(c.rules), c.digest()) for name, c in table.chains.items()}
        want_sets = {name: set(elements) for name, (_, elements) in table.sets.items()}
        want_maps = {name: dict(elements) for name, (_, _, elements) in table.maps.items()}
        for kind, want, got in (("chains", want_chains, have.chains),
                                ("sets", want_sets, have.sets),
                                ("maps", want_maps, have.maps)):
            if want != got:
                found.append(f"{table.ref} {kind}: want {want}, installed {got}")
    return found


def test_terminate_and_restart_leave_exactly_the_intended_rules(cloud, guests, lab,
                                                                host_before):
    from eucalite.cluster.edge.plan import tap_name

    ec2 = cloud.ec2
    ended = _described(ec2, guests["ids"]["private"])
    traces = (ended["PrivateIpAddress"], tap_name(ended["PrivateIpAddress"]),
              ended.get("PublicIpAddress"), _mac(cloud, ended["InstanceId"]))
    assert len(_mentions(_eucalite_tables(), *traces)) >= 3
    assert _differences_from_the_plan(cloud) == []
    terminate(ec2, [ended["InstanceId"]])
    assert _mentions(_eucalite_tables(), *traces) == []
    assert _differences_from_the_plan(cloud) == []

    # a restart rebuilds the same rule set, without what is not in the plan
    group = guests["groups"]["web"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))
    public = _public_ip(ec2, guests["ids"]["web"])
    assert wait_until(lambda: lab.get(public), "web before the restart",
                      REACH_TIMEOUT) == "web\n"
    before = _eucalite_tables()
    addresses = host_addresses()
    for family, table in before:
        subprocess.run(["nft", "add", "chain", family, table, "stale_from_a_crash"],
                       check=True)
    cloud.restart()
    assert _eucalite_tables() == before
    assert _differences_from_the_plan(cloud) == []
    assert host_addresses() == addresses
    assert lab.get(public) == "web\n"
    cloud.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_tcp80_from(CIDR))
    assert _differences_from_the_plan(cloud) == []

    # nothing of anyone else's changed on the host
    assert _foreign_tables() == cloud.foreign
    assert {name: sysctl(name) for name in HOST_SYSCTLS} == host_before["sysctls"]
    assert _uplink_forwarding() == host_before["uplinks"]
