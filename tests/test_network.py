"""The instance network: libvirt network XML (pure), address allocation in the database, and
through the API on the `cloud` fixture, addresses on instances and DHCP entries on the node."""
from __future__ import annotations

import datetime as dt
import ipaddress
import xml.etree.ElementTree as ET

import pytest

from eucalite import accounts, create_app
from eucalite.cluster import network
from eucalite.cluster.virt import network_xml as nx
from eucalite.cluster.virt.driver import NetworkSpec
from eucalite.compute import instances
from eucalite.compute.models import Image, Instance
from eucalite.db import db
from eucalite.errors import AwsError

DNSMASQ = "{" + nx.DNSMASQ_NS + "}"


# --- network XML ---------------------------------------------------------------------------

def test_network_xml_is_isolated_with_router_option():
    spec = NetworkSpec(name="eunet", bridge="eubr7", gateway="10.9.8.1", prefix=26)
    xml = nx.network_xml(spec)
    root = ET.fromstring(xml)           # valid XML
    assert root.tag == "network"
    assert root.findtext("name") == "eunet"
    assert root.find("forward") is None                     # isolated: no NAT, no routing
    assert root.find("bridge").get("name") == "eubr7"
    ip = root.find("ip")
    assert (ip.get("address"), ip.get("prefix")) == ("10.9.8.1", "26")
    # every instance address (.2-.62, not the gateway) reserved for the MAC made from it
    hosts = {h.get("ip"): h.get("mac") for h in ip.findall("dhcp/host")}
    assert len(hosts) == 61 and "10.9.8.1" not in hosts
    assert hosts["10.9.8.2"] == "d0:0d:0a:09:08:02" == nx.mac_for("10.9.8.2")
    assert hosts["10.9.8.62"] == "d0:0d:0a:09:08:3e"
    options = [o.get("value") for o in root.findall(f"{DNSMASQ}options/{DNSMASQ}option")]
    assert options == ["dhcp-option=option:router,10.9.8.1"]
    assert f'xmlns:dnsmasq="{nx.DNSMASQ_NS}"' in xml


@pytest.mark.parametrize("changes, message", [
    ({"bridge": "b" * 16}, "bridge"),
    ({"bridge": "bad bridge"}, "bridge"),
    ({"bridge": ""}, "bridge"),
    ({"name": "no/slash"}, "network name"),
    ({"gateway": "10.0.0.300"}, None),
    ({"gateway": "not-an-ip"}, None),
    ({"prefix": 33}, None),
    ({"prefix": 16}, "/18"),            # too many reservations for one network
    ({"prefix": 30}, "/29"),
    ({"lease_minutes": 0}, "lease"),
])
def test_validate_network_errors(changes, message):
    spec = NetworkSpec(**{"name": "eunet", "bridge": "eubr0", "gateway": "10.0.0.1",
                          "prefix": 24, **changes})
    with pytest.raises(ValueError, match=message):
        nx.validate_network(spec)
    with pytest.raises(ValueError):
        nx.network_xml(spec)


def test_validate_network_accepts_fifteen_character_bridge():
    nx.validate_network(NetworkSpec(bridge="b" * 15))


def test_dhcp_host_xml():
    host = ET.fromstring(nx.dhcp_host_xml("D0:0D:AA:BB:CC:01", "10.0.0.7", 10))
    assert host.tag == "host"
    assert (host.get("mac"), host.get("ip")) == ("d0:0d:aa:bb:cc:01", "10.0.0.7")
    assert host.find("lease").attrib == {"expiry": "10", "unit": "minutes"}
    with pytest.raises(ValueError):
        nx.dhcp_host_xml("d0:0d:aa:bb:cc:01", "10.0.0.999", 10)


def test_parse_network_round_trip():
    spec = NetworkSpec(name="eunet", bridge="eubr3", gateway="172.20.4.1", prefix=29)
    reserved = {nx.mac_for(f"172.20.4.{n}"): f"172.20.4.{n}" for n in range(2, 7)}
    assert nx.parse_network(nx.network_xml(spec)) == ("eubr3", "172.20.4.1", 29, reserved)
    # with hosts added (as libvirt shows them) and a netmask instead of a prefix
    root = ET.fromstring(nx.network_xml(spec))
    dhcp = root.find("ip/dhcp")
    dhcp.append(ET.fromstring(nx.dhcp_host_xml("D0:0D:00:00:00:01", "172.20.4.9", 10)))
    assert nx.parse_network(ET.tostring(root, encoding="unicode")) == (
        "eubr3", "172.20.4.1", 29, {**reserved, "d0:0d:00:00:00:01": "172.20.4.9"})
    netmask = ('<network><name>n</name><bridge name="virbr9"/>'
               '<ip address="192.168.9.1" netmask="255.255.255.0"/></network>')
    assert nx.parse_network(netmask) == ("virbr9", "192.168.9.1", 24, {})
    assert nx.parse_network("<network><name>n</name></network>") == ("", "", 0, {})


def test_spec_and_subnet_from_config():
    config = {"instance_subnet": "10.5.0.0/29", "instance_network": "eunet",
              "instance_bridge": "eubr0", "metadata_address": ""}
    assert network.spec(config) == NetworkSpec(name="eunet", bridge="eubr0",
                                               gateway="10.5.0.1", prefix=29,
                                               metadata_ip=None)
    for bad in ("10.5.0.0/30", "10.5.0.1/29", "fd00::/64", "nonsense"):
        with pytest.raises(ValueError):
            network.subnet({**config, "instance_subnet": bad})


# --- allocation in the database ------------------------------------------------------------

SUBNET = "10.5.0.0/29"          # hosts .1-.6: .1 the gateway, .2-.6 for instances
T0 = dt.datetime(2024, 1, 1, 12, 0, 0)


@pytest.fixture
def small_app(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False,
                      "instance_subnet": SUBNET})
    with app.app_context():
        yield app


def _config(app):
    return app.extensions["eucalite"].config


_serial = iter(range(10**6))


def add_instance(ip, state="running", minutes=0):
    """An instance row holding *ip*, launched *minutes* after T0."""
    n = next(_serial)
    db.session.add(Instance(
        id=f"i-{n:08x}", reservation_id=f"r-{n:08x}",
        owner_id=accounts.get_account("eucalyptus").id, image_id="emi-00000000",
        instance_type="m1.small", state=state, zone="zone", private_ip=ip,
        mac=f"d0:0d:00:00:{n // 256 % 256:02x}:{n % 256:02x}",
        launch_time=T0 + dt.timedelta(minutes=minutes)))
    db.session.commit()


def allocate(config, count):
    """network.allocate given what the cloud controller reads for it (in the database)."""
    return network.allocate(config, count, *instances.addresses_in_use())


def addresses(*last_octets):
    return [f"10.5.0.{octet}" for octet in last_octets]


def test_allocate_starts_at_the_second_host(small_app):
    config = _config(small_app)
    assert allocate(config, 1) == addresses(2)
    assert allocate(config, 5) == addresses(2, 3, 4, 5, 6)     # never the gateway


def test_allocate_continues_after_the_last_launched_address(small_app):
    config = _config(small_app)
    add_instance("10.5.0.4", minutes=1)
    add_instance("10.5.0.2", minutes=0)        # earlier launch: not the round-robin point
    assert allocate(config, 2) == addresses(5, 6)
    assert allocate(config, 3) == addresses(5, 6, 3)        # wraps, skips .2 and .4
    add_instance("10.5.0.5", minutes=2)
    assert allocate(config, 1) == addresses(6)


def test_allocate_skips_live_instances_and_reuses_terminated_only_after_wrapping(small_app):
    config = _config(small_app)
    add_instance("10.5.0.2", state="terminated", minutes=0)
    add_instance("10.5.0.3", state="running", minutes=1)
    add_instance("10.5.0.5", state="stopped", minutes=2)
    add_instance("10.5.0.6", state="terminated", minutes=3)
    add_instance(None, state="running", minutes=4)                  # no address: ignored
    # last launched address is .6 (terminated): next comes .2 (terminated, wrapped), .4
    assert allocate(config, 3) == addresses(2, 4, 6)
    add_instance("10.5.0.4", state="pending", minutes=5)
    # after .4: .5 is live (stopped), .6 is free again, then .2; .3 and .4 are live
    assert allocate(config, 2) == addresses(6, 2)


def test_allocate_reuses_a_terminated_address_last(small_app):
    config = _config(small_app)
    add_instance("10.5.0.3", state="terminated", minutes=0)
    assert allocate(config, 1) == addresses(4)
    assert allocate(config, 5) == addresses(4, 5, 6, 2, 3)


def test_allocate_exhaustion(small_app):
    config = _config(small_app)
    with pytest.raises(AwsError) as excinfo:
        allocate(config, 6)
    assert excinfo.value.code == "InsufficientFreeAddressesInSubnet"
    for ip in addresses(2, 3, 4):
        add_instance(ip)
    assert allocate(config, 2) == addresses(5, 6)
    with pytest.raises(AwsError) as excinfo:
        allocate(config, 3)
    assert excinfo.value.code == "InsufficientFreeAddressesInSubnet"
    assert excinfo.value.status == 400


# --- through the API ---------------------------------------------------------------------

def _make_image(live, image_id="emi-0a1b2c3d"):
    with live.app.app_context():
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Image(id=image_id, owner_id=owner, kind="machine", name=image_id,
                             state="available"))
        db.session.commit()
    return image_id


def _described(ec2, **kwargs):
    return [item for reservation in ec2.describe_instances(**kwargs)["Reservations"]
            for item in reservation["Instances"]]


def test_instances_get_addresses_and_dhcp_entries(cloud):
    services = cloud.app.extensions["eucalite"]
    config = services.config
    net = ipaddress.ip_network(config["instance_subnet"])
    gateway = str(net.network_address + 1)
    driver = services.cluster.driver
    ec2 = cloud.client("ec2")
    image = _make_image(cloud)

    launched = ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]
    ids = [item["InstanceId"] for item in launched]
    ips = {item["InstanceId"]: item["PrivateIpAddress"] for item in launched}
    assert len(set(ips.values())) == 3
    for ip in ips.values():
        assert ipaddress.ip_address(ip) in net and ip != gateway

    described = {item["InstanceId"]: item for item in _described(ec2, InstanceIds=ids)}
    for instance_id, ip in ips.items():
        item = described[instance_id]
        assert item["PrivateIpAddress"] == ip
        assert item["PrivateDnsName"] == f"euca-{ip.replace('.', '-')}.eucalyptus.internal"
    one = ids[1]
    filtered = _described(ec2, Filters=[{"Name": "private-ip-address",
                                         "Values": [ips[one]]}])
    assert [item["InstanceId"] for item in filtered] == [one]

    services.compute.worker.wait()
    with cloud.app.app_context():
        macs = {row.id: row.mac for row in db.session.execute(
            db.select(Instance).where(Instance.id.in_(ids))).scalars()}
    hosts = driver.dhcp_hosts(config["instance_network"])
    for instance_id in ids:
        # the MAC is the address's own (as in Eucalyptus), reserved by the network
        assert macs[instance_id] == nx.mac_for(ips[instance_id])
        assert hosts.get(macs[instance_id]) == ips[instance_id]

    ec2.terminate_instances(InstanceIds=ids)
    services.compute.worker.wait()
    # the reservations stay for the next instance given the address (leases are released)
    assert driver.dhcp_hosts(config["instance_network"]) == hosts
    described = {item["InstanceId"]: item for item in _described(ec2, InstanceIds=ids)}
    assert all(item["State"]["Name"] == "terminated" for item in described.values())
