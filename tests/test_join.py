"""A second host joins the cloud as a user does it: `eucalite node token` on the controller,
`eucalite join URL TOKEN` on the node host (a separate process on the fake hypervisor), and
after a restart `eucalite serve --node-only`; the node shows in `eucalite node list` and
DescribeAvailabilityZones verbose with its zone and capacity."""
from __future__ import annotations

import datetime as dt
import os
import re
import stat
import subprocess

from werkzeug.serving import make_server

from eucalite import config as config_module, create_app
from eucalite.cluster import joining, nodes
from eucalite.cluster.models import Node
from eucalite.db import db
from eucalite.compute.models import Instance
from ec2util import make_image, wait_for_state
from liveutil import free_port, serve_in_background, start_live
from serverutil import EUCALITE, cli_env, run, self_signed, stop, wait_until


def _node(app, node_id):
    with app.app_context():
        node = db.session.get(Node, node_id)
        return None if node is None else (node.zone, node.state, node.cores, node.last_seen)


def _node_process(*args, data_dir):
    env = cli_env(EUCALITE_HYPERVISOR="fake", EUCALITE_LOG_LEVEL="INFO")
    env.pop("EUCALITE_CONFIG", None)
    return subprocess.Popen([EUCALITE, *args, "--data-dir", str(data_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_host_joins_with_a_token_and_resumes_after_a_restart(tmp_path):
    controller_dir, node_dir = tmp_path / "controller", tmp_path / "node"
    controller_dir.mkdir()
    (controller_dir / "eucalite.toml").write_text(
        'zones = ["lab-1a", "lab-1b"]\nheartbeat_interval = 1\n')
    live, server = start_live(controller_dir)
    config_module.remember_served_url(live.app.config["EUCALITE"])
    process = None
    try:
        result = run(EUCALITE, "node", "token", "--zone", "lab-1b", "--expires", "10m",
                     "--data-dir", str(controller_dir), env=cli_env())
        printed = result.stdout
        assert "loopback" in result.stderr       # this controller serves on 127.0.0.1
        token = re.search(r"^token (\S+)$", printed, re.M).group(1)
        command = re.search(r"^  eucalite join (\S+) (\S+)$", printed, re.M)
        assert command.group(2) == token and "zone lab-1b" in printed
        url = command.group(1)

        process = _node_process("join", url, token, "--node-name", "far-node",
                                data_dir=node_dir)
        wait_until(lambda: (_node(live.app, "far-node") or (0, 0, 0))[2] == 8,
                   "the joined node to register its capacity", show=lambda: stop(process))
        credentials = node_dir / "node-credentials.json"
        assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
        assert "secret_access_key" in credentials.read_text()

        listed = run(EUCALITE, "node", "list", "--data-dir", str(controller_dir),
                     env=cli_env()).stdout
        row = next(line.split("\t") for line in listed.splitlines()
                   if line.startswith("far-node\t"))
        assert row[1:3] == ["lab-1b", "enabled"] and row[4] == "8" and row[6] == "16384"
        zones = live.client("ec2").describe_availability_zones(ZoneNames=["verbose"])
        far = [zone["ZoneName"] for zone in zones["AvailabilityZones"]
               if zone["ZoneName"].startswith("|- node far-node")]
        assert far == ["|- node far-node"]
        by_zone, current = {}, None
        for zone in zones["AvailabilityZones"]:
            if not zone["ZoneName"].startswith("|-"):
                current = zone["ZoneName"]
            by_zone.setdefault(current, []).append(zone["ZoneName"])
        assert "|- node far-node" in by_zone["lab-1b"]
        assert "|- node far-node" not in by_zone["lab-1a"]
        # the joined node takes instances: one launched in its zone runs there
        ec2 = live.client("ec2")
        instance_id = ec2.run_instances(ImageId=make_image(live), MinCount=1, MaxCount=1,
                                        Placement={"AvailabilityZone": "lab-1b"})[
            "Instances"][0]["InstanceId"]
        wait_for_state(ec2, [instance_id], "running", timeout=30)
        with live.app.app_context():
            assert db.session.get(Instance, instance_id).node_id == "far-node"
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_for_state(ec2, [instance_id], "terminated", timeout=30)

        registered = _node(live.app, "far-node")[3]
        wait_until(lambda: _node(live.app, "far-node")[3] > registered, "a heartbeat")
        output = stop(process)
        assert process.returncode == 0, output
        assert "joined" in output

        again = run(EUCALITE, "join", url, token, "--data-dir", str(tmp_path / "other"),
                    "--node-name", "other-node", check=False,
                    env=cli_env(EUCALITE_HYPERVISOR="fake"))
        assert again.returncode == 1 and "InvalidJoinToken" in again.stderr

        with live.app.app_context():
            nodes.mark_unreachable("far-node")
        stopped = _node(live.app, "far-node")[3]
        process = _node_process("serve", "--node-only", data_dir=node_dir)
        wait_until(lambda: _node(live.app, "far-node")[1] == "enabled"
                   and _node(live.app, "far-node")[3] > stopped,
                   "the restarted node to register again", show=lambda: stop(process))
        assert stop(process) and process.returncode == 0
    finally:
        if process is not None and process.poll() is None:
            stop(process)
        server.shutdown()


def test_serve_node_only_needs_credentials(tmp_path):
    result = run(EUCALITE, "serve", "--node-only", "--data-dir", str(tmp_path), check=False,
                 env=cli_env(EUCALITE_HYPERVISOR="fake"))
    assert result.returncode == 1 and "join first" in result.stderr


def test_a_node_joins_an_https_controller_with_its_certificate(tmp_path):
    """`--cafile` trusts a controller's own certificate, and `serve --node-only` keeps
    trusting it after a restart; without it the join fails on the certificate."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    app = create_app({"data_dir": str(tmp_path / "controller"), "node": False,
                      "port": port, "heartbeat_interval": 1})
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=(cert, key))
    serve_in_background(server)
    url = f"https://127.0.0.1:{port}"

    def token():
        with app.app_context():
            return joining.create_token("eucalyptus-1a", ["eucalyptus-1a"],
                                        dt.timedelta(hours=1), "test")[0]
    process = None
    try:
        untrusted = run(EUCALITE, "join", url, token(), "--data-dir", str(tmp_path / "n0"),
                        "--node-name", "untrusting", check=False,
                        env=cli_env(EUCALITE_HYPERVISOR="fake"))
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr

        process = _node_process("join", url, token(), "--node-name", "tls-node",
                                "--cafile", cert, data_dir=tmp_path / "node")
        wait_until(lambda: (_node(app, "tls-node") or (0, 0, 0))[2] == 8,
                   "the node to register over https", show=lambda: stop(process))
        stop(process)
        stopped = _node(app, "tls-node")[3]
        process = _node_process("serve", "--node-only", data_dir=tmp_path / "node")
        wait_until(lambda: _node(app, "tls-node")[3] > stopped,
                   "the restarted node to reach the https controller",
                   show=lambda: stop(process))
    finally:
        if process is not None and process.poll() is None:
            stop(process)
        server.shutdown()


def test_a_host_without_a_usable_hypervisor_spends_no_token(tmp_path):
    live, server = start_live(tmp_path / "controller")
    try:
        with live.app.app_context():
            token = joining.create_token("eucalyptus-1a", ["eucalyptus-1a"],
                                         dt.timedelta(hours=1), "test")[0]
        result = run(EUCALITE, "join", live.base_url, token, "--data-dir",
                     str(tmp_path / "node"), check=False,
                     env=cli_env(EUCALITE_HYPERVISOR="no-such-hypervisor"))
        assert result.returncode == 1 and "token is not spent" in result.stderr
        with live.app.app_context():
            assert joining.exchange(token, "later").node_id == "later"
    finally:
        server.shutdown()
