"""More hosts, for real: a controller and two node hosts on one machine (tests/multihost.py:
each node a separate ``eucalite`` process in its own network namespace with its own libvirtd,
joined with ``eucalite node token`` / ``eucalite join``), real guests on both nodes.

* the nodes join in their zone and the controller drives them with their own libvirtd;
* a forged request (a wrong secret) and a replayed one from a node host are refused, and the
  real node is not disturbed;
* a guest on node A pings a guest on node B by its private IP (the instance network spans
  the nodes);
* a volume from the storage controller (tgt on the controller's lab address) attaches to
  the guest on node B and the guest reads the bytes written into it;
* node B's eucalite process killed with -9: the node is marked unreachable and its guest's
  system check impaired; restarted, the node is enabled again, the guest, which ran on
  meanwhile, is kept running and ok, and a guest terminated while B was down is destroyed.

One lab and two guests serve the module (booting is the slow part). Skipped, with the
reason, without root, the real-VM environment or the programs the lab needs. The lab's
teardown checks it left nothing on the host (links, namespaces, the tgt portal, processes).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from guestutil import BOOT_TIMEOUT, MARK, guest_console, instance_state, volume_state
from multihost import NODE_BRIDGE, ZONES, Lab, namespace_pids, preflight
from serverutil import wait_until

from eucalite.cluster.virt.driver import DOMAIN_PREFIX

MiB = 2**20


@pytest.fixture(scope="module")
def lab():
    problem = preflight()
    if problem:
        pytest.skip(problem)
    lab = Lab()
    try:
        lab.start()
        lab.images = lab.controller.import_guest()
        top = lab.top
        yield lab
    finally:
        lab.close()
    assert lab.leftovers(top) == [], "the lab left these on the host"


def _launch_on(lab, node_id: str, user_data: str = "") -> dict:
    """One m1.small of the tiny guest on *node_id* (the other nodes disabled meanwhile, as
    an admin steers a launch); its DescribeInstances item once it runs."""
    ec2 = lab.controller.client()
    others = [other for other in lab.nodes if other != node_id]
    for other in others:
        lab.controller.cli("node", "disable", other)
    try:
        answer = ec2.run_instances(ImageId=lab.images["emi"], MinCount=1, MaxCount=1,
                                   InstanceType="m1.small", UserData=user_data,
                                   Placement={"AvailabilityZone": ZONES[0]})
    finally:
        for other in others:
            lab.controller.cli("node", "enable", other)
    instance_id = answer["Instances"][0]["InstanceId"]
    wait_until(lambda: instance_state(ec2, instance_id) == "running", f"{instance_id} running",
               BOOT_TIMEOUT, interval=1, show=lab.nodes[node_id].log)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


PING_SCRIPT = """#!/bin/sh
until ping -c 1 -W 1 {address} >/dev/null 2>&1; do sleep 1; done
echo "{mark} ping {address} ok"
"""


@pytest.fixture(scope="module")
def guests(lab):
    """Guest ``b`` on node-b, then guest ``a`` on node-a, whose user data pings b's private
    IP until it answers; both running (the consoles say more)."""
    b = _launch_on(lab, "node-b")
    a = _launch_on(lab, "node-a", PING_SCRIPT.format(address=b["PrivateIpAddress"],
                                                      mark=MARK))
    return {"a": a, "b": b}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _qemu_in(namespace: str, instance_id: str) -> bool:
    """Whether a QEMU process of *instance_id*'s domain runs in *namespace*."""
    return any("qemu" in (line := _cmdline(pid)) and f"{DOMAIN_PREFIX}{instance_id}" in line
               for pid in namespace_pids(namespace))


def _ready(ec2, instance_id: str) -> str:
    return wait_until(lambda: (console := guest_console(ec2, instance_id))
                      and f"{MARK} ready" in console and console,
                      f"{instance_id} ready", BOOT_TIMEOUT, interval=1,
                      show=lambda: guest_console(ec2, instance_id)[-2000:])


# --- joining and the internal API's guard -----------------------------------------------

def test_both_nodes_joined_in_their_zone_with_their_own_hypervisor(lab):
    listed = lab.controller.nodes()
    for node_id in lab.nodes:
        assert listed[node_id][1:3] == [ZONES[0], "enabled"]
    zones = lab.controller.client().describe_availability_zones(ZoneNames=["verbose"])
    names = [zone["ZoneName"] for zone in zones["AvailabilityZones"]]
    zone_at = names.index(ZONES[0])
    for node_id in lab.nodes:
        assert names.index(f"|- node {node_id}") > zone_at
    # each node host has its libvirtd, and its instance network (bridge, dnsmasq) is in
    # that host's namespace, not on the controller's host
    assert lab.nodes["node-a"].libvirtd_pid != lab.nodes["node-b"].libvirtd_pid
    for host in lab.nodes.values():
        assert subprocess.run(["ip", "-n", host.namespace, "link", "show", NODE_BRIDGE],
                              capture_output=True).returncode == 0
        assert any("dnsmasq" in _cmdline(pid) for pid in namespace_pids(host.namespace))
    assert subprocess.run(["ip", "link", "show", NODE_BRIDGE],
                          capture_output=True).returncode != 0


FORGER = textwrap.dedent("""
    import json, sys, urllib.error, urllib.request
    from pathlib import Path
    from eucalite.cluster.nodeclient import NodeCredentials, sign

    creds = NodeCredentials.load(Path(sys.argv[1]))
    url = creds.controller_url + "/internal/v1/nodes/" + creds.node_id + "/heartbeat"
    body = json.dumps({"capacity": {"cores": 1, "memory_mb": 1, "disk_gb": 1}}).encode()

    def send(headers):
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={**headers, "content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return [answer.status, None]
        except urllib.error.HTTPError as error:
            return [error.code, json.load(error)["error"]["code"]]

    forged = sign("POST", url, body, creds.access_key_id, "not-the-secret", creds.region)
    signed = sign("POST", url, body, creds.access_key_id, creds.secret_access_key,
                  creds.region)
    print(json.dumps({"forged": send(forged), "first": send(signed),
                      "replayed": send(signed)}))
""")


def test_a_forged_and_a_replayed_request_from_a_node_host_are_refused(lab):
    """From inside node B's namespace, with node B's own key: a request signed with a wrong
    secret is refused, a correctly signed one goes through once and its replay is refused;
    the node itself keeps heartbeating."""
    host = lab.nodes["node-b"]
    answer = subprocess.run(host.command(sys.executable, "-c", FORGER, str(host.data_dir)),
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    outcome = json.loads(answer.stdout)
    assert outcome["forged"] == [403, "SignatureDoesNotMatch"]
    assert outcome["first"] == [200, None]
    assert outcome["replayed"] == [403, "RequestReplayed"]
    assert lab.controller.node_state("node-b") == "enabled"


# --- guests on both nodes -------------------------------------------------------------------

def test_a_guest_on_node_a_pings_a_guest_on_node_b_by_private_ip(lab, guests):
    ec2 = lab.controller.client()
    a, b = guests["a"]["InstanceId"], guests["b"]["InstanceId"]
    assert a in lab.nodes["node-a"].domains() and b in lab.nodes["node-b"].domains()
    assert b not in lab.nodes["node-a"].domains()
    address = guests["b"]["PrivateIpAddress"]
    assert f"{MARK} ip={address}" in _ready(ec2, b)
    # the ping runs from the user data the guest got from its own node's metadata service
    assert f"{MARK} instance-id={a}" in _ready(ec2, a)
    # each guest's QEMU runs in its node host's namespace, under that host's libvirtd
    assert _qemu_in(lab.nodes["node-a"].namespace, a)
    assert _qemu_in(lab.nodes["node-b"].namespace, b)
    assert not _qemu_in(lab.nodes["node-b"].namespace, a)
    wait_until(lambda: f"{MARK} ping {address} ok" in guest_console(ec2, a),
               f"{a} on node-a to ping {b} on node-b at {address}", BOOT_TIMEOUT,
               interval=1, show=lambda: guest_console(ec2, a)[-2000:])


def test_a_volume_attaches_to_a_guest_on_node_b_and_its_data_matches(lab, guests):
    if lab.storage_problem:
        pytest.skip(lab.storage_problem)
    ec2 = lab.controller.client()
    instance_id = guests["b"]["InstanceId"]
    _ready(ec2, instance_id)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=ZONES[0])["VolumeId"]
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "the volume", 30,
               interval=1)
    pattern = os.urandom(MiB)
    with open(lab.controller.volume_path(volume_id), "r+b") as f:
        f.write(pattern)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    wait_until(lambda: volume_state(ec2, volume_id) == "attached", "attached", 60, interval=1,
               show=lab.nodes["node-b"].log)
    serial = volume_id.replace("-", "")
    seen = wait_until(
        lambda: next((line for line in guest_console(ec2, instance_id).splitlines()
                      if f"serial={serial}" in line and "md5=" in line), None),
        f"the guest on node-b to report {volume_id}", 60, interval=1,
        show=lambda: guest_console(ec2, instance_id)[-2000:])
    assert f"md5={hashlib.md5(pattern).hexdigest()}" in seen
    ec2.detach_volume(VolumeId=volume_id)
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "detached", 60,
               interval=1)
    ec2.delete_volume(VolumeId=volume_id)


# --- failure and return -----------------------------------------------------------------------

def _system_status(ec2, instance_id: str) -> str:
    statuses = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    return statuses[0]["SystemStatus"]["Status"] if statuses else "none"


def _kill_and_restart(lab, node_id: str, while_down=lambda: None) -> None:
    """SIGKILL *node_id*'s eucalite process (its guests run on under its libvirtd), wait
    until the controller marks it unreachable, call *while_down*, then restart it with
    ``eucalite serve --node-only`` and wait until it is enabled again."""
    host = lab.nodes[node_id]
    host.kill()
    # The failure monitor runs after each reconcile pass, and a pass that asked the node
    # for its domains just before it died waits out that command's deadline
    # (remotenode.DEFAULT_TIMEOUT, 60 s) first: hence a deadline well above node_timeout.
    wait_until(lambda: lab.controller.node_state(node_id) == "unreachable",
               f"{node_id} marked unreachable", 150, interval=0.5, show=lab.controller.log)
    assert all(lab.controller.node_state(other) == "enabled"
               for other in lab.nodes if other != node_id)
    while_down()
    host.serve()
    wait_until(lambda: lab.controller.node_state(node_id) == "enabled",
               f"{node_id} enabled again", 60, interval=0.5, show=host.log)


def test_a_node_killed_with_9_is_marked_down_and_comes_back_reconciled(lab, guests):
    """Node B's eucalite process killed with -9 is marked unreachable (node A stays
    enabled) and its guest's system check impaired; a guest terminated meanwhile stays
    recorded. Restarted with ``eucalite serve --node-only``, B is enabled again, the guest
    that ran on is kept (running, checks ok) and the terminated one is destroyed on B."""
    ec2 = lab.controller.client()
    host = lab.nodes["node-b"]
    kept = guests["b"]["InstanceId"]
    ended = _launch_on(lab, "node-b")["InstanceId"]

    def while_down():
        wait_until(lambda: _system_status(ec2, kept) == "impaired",
                   f"{kept}'s system check impaired", 60, interval=0.5)
        assert kept in host.domains() and ended in host.domains()   # they never stopped
        ec2.terminate_instances(InstanceIds=[ended])
    _kill_and_restart(lab, "node-b", while_down)
    assert lab.controller.nodes()["node-b"][1] == ZONES[0]
    wait_until(lambda: ended not in host.domains(), f"{ended} destroyed on node-b", 60,
               interval=0.5, show=host.log)
    wait_until(lambda: instance_state(ec2, ended) == "terminated", f"{ended} terminated", 60,
               interval=0.5)
    wait_until(lambda: _system_status(ec2, kept) == "ok", f"{kept}'s system check ok again",
               60, interval=0.5)
    assert instance_state(ec2, kept) == "running" and kept in host.domains()
