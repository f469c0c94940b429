"""The EDGE data plane without the kernel: the plan built from the database
(compute.netplan), its nft rendering (cluster.edge.ruleset), the diff an apply would run
(cluster.edge.nft.script), the in-memory firewall on the fake hypervisor and the choice of
data plane at node start. The ruleset applied for real by nft is test_edge_nft."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from eucalite import accounts, create_app
from eucalite.cluster.edge import conntrack, nft, ruleset
from eucalite.cluster.edge.firewall import FakeFirewall, NftFirewall
from eucalite.cluster.edge.plan import Group, NetworkPlan, Port, Rule, tap_name
from eucalite.cluster.virt import domain_xml, network_xml
from eucalite.cluster.virt.driver import DomainSpec, NetworkSpec
from eucalite.compute import netplan, reconcile
from eucalite.compute.models import (Instance, InstanceSecurityGroup, SecurityGroup,
                                     SecurityGroupRule)
from eucalite.db import db
from ec2util import make_image, wait_for_state

HOST = ruleset.Host(bridge="eucabr0", subnet="10.211.0.0/24", gateway="10.211.0.1",
                    public_interface="eulab0")


def port(last: int, groups=("sg-web",), public: str | None = None) -> Port:
    ip = f"10.211.0.{last}"
    return Port(f"i-{last:08x}", tap_name(ip), network_xml.mac_for(ip), ip, public,
                tuple(groups))


WEB = Group("sg-web", ingress=(Rule("6", 80, 80, cidr="0.0.0.0/0"),
                               Rule("-1", group="sg-web")),
            egress=(Rule("-1", cidr="0.0.0.0/0"),))


def tables(plan: NetworkPlan, host: ruleset.Host = HOST) -> dict[str, ruleset.Table]:
    return {t.family: t for t in ruleset.render(plan, host)}


# --- rendering -----------------------------------------------------------------------------

def test_tap_name_is_short_unique_and_accepted_as_a_domain_nic():
    assert tap_name("10.211.0.2") == "eu0ad30002"
    assert tap_name("10.211.0.20") != tap_name("10.211.2.0")
    assert max(len(tap_name(f"10.{a}.{b}.254")) for a in (0, 255) for b in (0, 255)) <= 15
    spec = DomainSpec(instance_id="i-1", vcpus=1, memory_mb=64, kernel="/k",
                      mac="d0:0d:0a:d3:00:02", network="eucalite", tap=tap_name("10.211.0.2"))
    iface = ET.fromstring(domain_xml.domain_xml(spec)).find("devices/interface")
    assert iface.find("target").get("dev") == "eu0ad30002"
    with pytest.raises(ValueError, match="NIC name"):
        domain_xml.domain_xml(DomainSpec(instance_id="i-1", vcpus=1, memory_mb=64,
                                         kernel="/k", network="eucalite", tap="vnet0"))


def test_network_is_routed_open_only_with_a_public_interface():
    isolated = ET.fromstring(network_xml.network_xml(NetworkSpec()))
    assert isolated.find("forward") is None
    routed = network_xml.network_xml(NetworkSpec(routed=True))
    assert ET.fromstring(routed).find("forward").get("mode") == "open"
    assert network_xml.forward_mode(routed) == "open"


def test_each_port_may_send_only_from_its_own_mac_and_ip():
    bridge = tables(NetworkPlan(ports=(port(2),), groups={"sg-web": WEB}))["bridge"]
    assert bridge.maps["out_ports"][2] == {"eu0ad30002": "jump o-eu0ad30002"}
    assert bridge.chains["o-eu0ad30002"].rules == [
        "ether saddr != d0:0d:0a:d3:00:02 drop",
        "ether type != { ip, arp } drop",
        "arp saddr ether != d0:0d:0a:d3:00:02 drop",
        "arp saddr ip != 10.211.0.2 drop",
        "ip saddr != { 10.211.0.2, 0.0.0.0 } drop",
        "accept"]
    # what reaches the port must be for its address (or broadcast), whatever its MAC
    assert bridge.chains["i-eu0ad30002"].rules[0] == \
        "ip daddr != { 10.211.0.2, 255.255.255.255 } drop"


@pytest.mark.parametrize("rule, text", [
    (Rule("6", 22, 22, cidr="198.51.100.0/24"), "ip saddr 198.51.100.0/24 tcp dport 22 accept"),
    (Rule("17", 1000, 2000, cidr="10.0.0.1/32"), "ip saddr 10.0.0.1/32 udp dport 1000-2000 accept"),
    (Rule("6", 0, 65535, cidr="0.0.0.0/0"), "ip protocol tcp accept"),
    (Rule("1", 8, -1, cidr="0.0.0.0/0"), "icmp type 8 accept"),
    (Rule("1", 3, 4, cidr="0.0.0.0/0"), "icmp type 3 icmp code 4 accept"),
    (Rule("1", -1, -1, cidr="0.0.0.0/0"), "ip protocol icmp accept"),
    (Rule("47", cidr="192.0.2.0/24"), "ip saddr 192.0.2.0/24 ip protocol 47 accept"),
    (Rule("-1", group="sg-db"), "ip saddr @g-sg-db accept"),
])
def test_ingress_rules_accept_their_peers_protocol_and_ports(rule, text):
    plan = NetworkPlan(ports=(port(2, ["sg-x"]),), groups={"sg-x": Group("sg-x", (rule,))})
    chain = tables(plan)["ip"].chains["in-eu0ad30002"]
    assert chain.rules == [text, "drop"]         # everything else in is dropped


def test_egress_rules_return_to_the_receivers_ingress_and_drop_the_rest():
    group = Group("sg-x", egress=(Rule("6", 443, 443, cidr="203.0.113.0/24"),))
    ip = tables(NetworkPlan(ports=(port(2, ["sg-x"]),), groups={"sg-x": group}))["ip"]
    assert ip.chains["eg-eu0ad30002"].rules == [
        "ip daddr 203.0.113.0/24 tcp dport 443 return", "drop"]
    assert ip.chains["forward"].rules == [
        "ct state established,related accept", "ct state invalid drop",
        "ip saddr vmap @egress", "ip daddr vmap @ingress"]


def test_an_instance_in_several_groups_is_allowed_by_any_of_their_rules():
    db_group = Group("sg-db", ingress=(Rule("6", 5432, 5432, group="sg-web"),))
    plan = NetworkPlan(ports=(port(2, ["sg-web", "sg-db"]),),
                       groups={"sg-web": WEB, "sg-db": db_group},
                       members={"sg-web": ("10.211.0.2", "10.9.9.9")})
    ip = tables(plan)["ip"]
    assert ip.chains["in-eu0ad30002"].rules == [
        "tcp dport 80 accept", "ip saddr @g-sg-web accept",
        "ip saddr @g-sg-web tcp dport 5432 accept", "drop"]
    # peer groups are sets of their members' addresses, cloud-wide
    assert ip.sets["g-sg-web"] == ("ipv4_addr", frozenset({"10.211.0.2", "10.9.9.9"}))


def test_dhcp_dns_and_metadata_are_always_allowed():
    ip = tables(NetworkPlan(ports=(port(2, []),)))["ip"]
    assert ip.chains["in-eu0ad30002"].rules == ["drop"]        # no group: nothing in
    assert ip.chains["eg-eu0ad30002"].rules == ["drop"]        # and nothing out ...
    assert ip.chains["input"].rules[1:5] == [                   # ... but these
        'iifname "eucabr0" udp dport 67 accept',
        'iifname "eucabr0" ip daddr 10.211.0.1 udp dport 53 accept',
        'iifname "eucabr0" ip daddr 10.211.0.1 tcp dport 53 accept',
        'iifname "eucabr0" ip daddr 169.254.169.254 tcp dport 80 accept']
    assert 'oifname "eucabr0" udp sport 67 udp dport 68 accept' in ip.chains["output"].rules


def test_public_ips_are_nat_maps_and_the_rest_is_masqueraded_out_of_the_public_interface():
    plan = NetworkPlan(ports=(port(2, public="198.51.100.10"), port(3)),
                       groups={"sg-web": WEB})
    ip = tables(plan)["ip"]
    assert ip.maps["pub2priv"][2] == {"198.51.100.10": "10.211.0.2"}
    assert ip.maps["priv2pub"][2] == {"10.211.0.2": "198.51.100.10"}
    assert ip.chains["nat_postrouting"].rules == [
        'oifname "eulab0" snat ip to ip saddr map @priv2pub',
        'oifname "eulab0" ip saddr 10.211.0.0/24 masquerade']
    without = ruleset.Host(bridge="eucabr0", subnet="10.211.0.0/24", gateway="10.211.0.1")
    assert not any("masquerade" in rule
                   for rule in tables(plan, without)["ip"].chains["nat_postrouting"].rules)


# --- the diff an apply runs ----------------------------------------------------------------

def commands(desired: ruleset.Table, installed: nft.Installed | None) -> list[str]:
    changes = nft.Changes()
    nft.script(desired, installed, changes)
    return changes.commands


PLAN = NetworkPlan(ports=(port(2), port(3)), groups={"sg-web": WEB},
                   members={"sg-web": ("10.211.0.2", "10.211.0.3")})


def test_an_unchanged_plan_changes_nothing():
    for table in ruleset.render(PLAN, HOST):
        assert commands(table, nft.installed_after(table)) == []


def test_one_changed_rule_refills_only_the_chains_that_hold_it():
    before = tables(PLAN)["ip"]
    web = Group("sg-web", ingress=(Rule("6", 8080, 8080, cidr="0.0.0.0/0"), WEB.ingress[1]),
                egress=WEB.egress)
    after = tables(NetworkPlan(PLAN.ports, {"sg-web": web}, PLAN.members))["ip"]
    done = commands(after, nft.installed_after(before))
    assert done[0] == "flush chain ip eucalite in-eu0ad30002"
    assert [c for c in done if not c.startswith("add rule ip eucalite in-")] == [
        "flush chain ip eucalite in-eu0ad30002", "flush chain ip eucalite in-eu0ad30003"]
    assert "add rule ip eucalite in-eu0ad30002 tcp dport 8080 accept" in done


def test_a_membership_change_touches_only_the_set_and_the_ports_maps():
    before = tables(PLAN)["ip"]
    after = tables(NetworkPlan(PLAN.ports[:1], PLAN.groups, {"sg-web": ("10.211.0.2",)}))["ip"]
    assert commands(after, nft.installed_after(before)) == [
        "delete element ip eucalite g-sg-web { 10.211.0.3 }",
        "delete element ip eucalite egress { 10.211.0.3 }",
        "delete element ip eucalite ingress { 10.211.0.3 }",
        "flush chain ip eucalite eg-eu0ad30003", "delete chain ip eucalite eg-eu0ad30003",
        "flush chain ip eucalite in-eu0ad30003", "delete chain ip eucalite in-eu0ad30003",
    ]


def test_a_damaged_chain_is_refilled_and_a_moved_address_replaces_its_map_element():
    before = tables(PLAN)["ip"]
    damaged = nft.installed_after(before)
    count, digest = damaged.chains["forward"]
    damaged.chains["forward"] = (count - 1, digest)         # someone deleted a rule
    moved = NetworkPlan((port(2, public="198.51.100.11"), port(3)), PLAN.groups, PLAN.members)
    damaged.maps["pub2priv"] = {"198.51.100.10": "10.211.0.2"}
    damaged.maps["priv2pub"] = {"10.211.0.2": "198.51.100.10"}
    done = commands(tables(moved)["ip"], damaged)
    assert "flush chain ip eucalite forward" in done
    assert "delete element ip eucalite priv2pub { 10.211.0.2 }" in done
    assert "add element ip eucalite priv2pub { 10.211.0.2 : 198.51.100.11 }" in done
    assert done.index("delete element ip eucalite priv2pub { 10.211.0.2 }") < \
        done.index("add element ip eucalite priv2pub { 10.211.0.2 : 198.51.100.11 }")


def test_nothing_installed_makes_the_table_first():
    done = commands(tables(PLAN)["bridge"], None)
    assert done[0] == "add table bridge eucalite"
    # every command names our table, never another
    assert all(command.split()[2:4] == ["bridge", "eucalite"] for command in done)


# --- the plan from the database ------------------------------------------------------------

@pytest.fixture
def db_app(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False})
    with app.app_context():
        yield app


_serial = iter(range(1, 10**6))


def add_instance(node="node-a", state="running", ip=None, public=None, groups=()):
    n = next(_serial)
    ip = ip or f"10.211.0.{n + 1}"
    owner = accounts.get_account("eucalyptus").id
    row = Instance(id=f"i-{n:08x}", reservation_id=f"r-{n:08x}", owner_id=owner,
                   image_id="emi-00000000", instance_type="m1.small", state=state,
                   zone="zone", node_id=node, private_ip=ip, public_ip=public,
                   mac=network_xml.mac_for(ip))
    db.session.add(row)
    for position, group in enumerate(groups):
        db.session.add(InstanceSecurityGroup(instance_id=row.id, group_id=group,
                                             position=position))
    db.session.commit()
    return row.id, ip


def add_group(group_id, *rules):
    owner = accounts.get_account("eucalyptus").id
    db.session.add(SecurityGroup(id=group_id, owner_id=owner, name=group_id))
    for n, (egress, protocol, low, high, cidr, peer) in enumerate(rules):
        db.session.add(SecurityGroupRule(
            id=f"sgr-{group_id}-{n}", group_id=group_id, egress=egress, protocol=protocol,
            from_port=low, to_port=high, cidr=cidr, peer_group_id=peer,
            created=dt.datetime(2026, 1, 1) + dt.timedelta(seconds=n)))
    db.session.commit()


def test_plan_holds_the_nodes_live_instances_their_rules_and_peer_members(db_app):
    add_group("sg-web", (False, "6", 80, 80, "0.0.0.0/0", None),
              (False, "-1", None, None, None, "sg-db"), (True, "-1", None, None, "0.0.0.0/0", None))
    add_group("sg-db", (False, "6", 5432, 5432, None, "sg-web"))
    web, web_ip = add_instance(groups=["sg-web"], public="198.51.100.10")
    pending, pending_ip = add_instance(state="pending", groups=["sg-db", "sg-web"])
    add_instance(state="terminated", groups=["sg-web"])
    elsewhere, elsewhere_ip = add_instance(node="node-b", groups=["sg-db"])

    plan = netplan.build("node-a")
    assert [(p.instance_id, p.private_ip, p.public_ip, p.groups) for p in plan.ports] == [
        (web, web_ip, "198.51.100.10", ("sg-web",)),
        (pending, pending_ip, None, ("sg-db", "sg-web"))]
    assert plan.ports[0].tap == tap_name(web_ip)
    assert plan.ports[0].mac == network_xml.mac_for(web_ip)
    assert plan.groups["sg-web"].ingress == (Rule("6", 80, 80, cidr="0.0.0.0/0"),
                                             Rule("-1", group="sg-db"))
    assert plan.groups["sg-web"].egress == (Rule("-1", cidr="0.0.0.0/0"),)
    # sg-db's members on every node (not the terminated one); sg-web's too
    assert plan.members == {"sg-db": tuple(sorted((pending_ip, elsewhere_ip))),
                            "sg-web": tuple(sorted((web_ip, pending_ip)))}
    assert netplan.build("node-c") == NetworkPlan(ports=(), groups={}, members={})


# --- the fake data plane on the fake hypervisor --------------------------------------------

@pytest.fixture
def fake_cloud(tmp_path):
    from liveutil import start_live_node, stop_live
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def test_fake_hypervisor_gets_the_fake_data_plane_and_its_plan_follows_instances(fake_cloud):
    cluster = fake_cloud.services.cluster
    firewall = cluster.local_node.firewall
    assert isinstance(firewall, FakeFirewall) and cluster.network_problem is None
    make_image(fake_cloud)
    ec2 = fake_cloud.client("ec2")
    instance = ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=1,
                                 InstanceType="m1.small")["Instances"][0]
    wait_for_state(ec2, [instance["InstanceId"]], "running")
    ports = {p.instance_id: p for p in firewall.plan.ports}
    assert ports[instance["InstanceId"]].private_ip == instance["PrivateIpAddress"]
    assert ports[instance["InstanceId"]].tap == tap_name(instance["PrivateIpAddress"])
    # a reconcile pass applies the plan again, checked against the kernel's tables (what
    # repairs a lost rule on a real node)
    applied, rereads, before = firewall.applied, firewall.rereads, firewall.plan
    with fake_cloud.app.app_context():
        reconcile.reconcile(cluster, fake_cloud.services.ebs)
    assert firewall.applied == applied + 1 and firewall.plan == before
    assert firewall.rereads == rereads + 1
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    wait_for_state(ec2, [instance["InstanceId"]], "terminated")
    fake_cloud.services.compute.worker.wait()
    assert instance["InstanceId"] not in {p.instance_id for p in firewall.plan.ports}


def test_nftables_that_cannot_run_turns_security_groups_off_with_what_to_install(
        tmp_path, monkeypatch):
    from liveutil import start_live_node, stop_live
    monkeypatch.setenv("PATH", str(tmp_path))             # no nft on this PATH
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", firewall="nftables")
    try:
        problem = live.services.cluster.network_problem
        assert problem.startswith("security groups and public IPs are OFF: ")
        assert "apt install nftables" in problem
        assert live.services.cluster.local_node.firewall is None
        with pytest.raises(Exception, match="security groups and public IPs are OFF"):
            live.services.cluster.require_network()
    finally:
        stop_live(live, server)


def test_nft_firewall_reports_a_missing_nft(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "is not installed" in NftFirewall(HOST, tmp_path).problem()


def test_an_existing_network_is_redefined_when_routing_is_turned_on_or_off():
    pytest.importorskip("libvirt")          # the driver imports it
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver
    driver = LibvirtDriver("test:///default")
    spec = NetworkSpec(name="euedge-redefine", bridge="euedgebr0", gateway="10.77.0.1",
                       prefix=28, metadata_ip=None)
    try:
        for routed in (False, True, True, False):
            driver.ensure_network(NetworkSpec(**{**spec.__dict__, "routed": routed}))
            net = driver._networks._network(spec.name)
            assert net.isActive()
            assert network_xml.forward_mode(net.XMLDesc(0)) == ("open" if routed else None)
            assert len(driver.dhcp_hosts(spec.name)) == 13          # reservations kept
    finally:
        driver.remove_network(spec.name)
        driver.close()


def test_the_banner_says_when_security_groups_are_off(app):
    from eucalite import server
    config = dict(app.extensions["eucalite"].config, host="127.0.0.1", port=8773)
    off = "security groups and public IPs are OFF: nft is not installed (apt install nftables)"
    assert f"  network        {off}" in server.banner(config, None, "", off).splitlines()
    assert "network" not in server.banner(config, None, "", None)


# --- tracked connections an apply makes stale (cluster.edge.conntrack) ----------------------

def test_flows_are_forgotten_only_where_the_nat_or_the_instance_changed():
    def stale(before: NetworkPlan, after: NetworkPlan) -> list[tuple[str, ...]]:
        return conntrack.stale_flows(nft.installed_after(tables(before)["ip"]),
                                     tables(after)["ip"])
    a_public = NetworkPlan((port(2, public="198.51.100.10"), port(3)), PLAN.groups,
                           PLAN.members)
    moved = NetworkPlan((port(2), port(3, public="198.51.100.10")), PLAN.groups,
                        PLAN.members)
    assert stale(a_public, a_public) == []
    assert stale(PLAN, NetworkPlan((port(2), port(3, groups=())), PLAN.groups,
                                   PLAN.members)) == []      # rules changed: flows stay
    assert stale(a_public, moved) == [
        ("--orig-dst", "198.51.100.10"),                      # inbound, DNATed to A
        ("--orig-src", "10.211.0.2", "--src-nat"),           # A's out, SNATed to it
        ("--orig-src", "10.211.0.3", "--src-nat"),           # B's out, masqueraded
        ("--reply-dst", "198.51.100.10")]                     # out, SNATed to it
    assert stale(moved, NetworkPlan((port(2),), PLAN.groups, PLAN.members)) == [
        ("--orig-dst", "10.211.0.3"), ("--orig-dst", "198.51.100.10"),
        ("--orig-src", "10.211.0.3"),
        ("--reply-dst", "198.51.100.10"), ("--reply-src", "10.211.0.3")]
    assert conntrack.stale_flows(None, tables(a_public)["ip"]) == []
    launched = NetworkPlan((*a_public.ports, port(4, public="198.51.100.11")), PLAN.groups,
                           PLAN.members)
    assert stale(a_public, launched) == []          # a new port and address: no flows yet
