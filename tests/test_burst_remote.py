"""Cloud-bursting end to end with real remotes over HTTP: a second eucalite (fake
hypervisor) and moto_server. The local cloud has no capacity at all (no node), so every
launch overflows; the tests launch, see the instances run remotely, terminate them through
the local API and find nothing left remotely, and take the remote away mid-way."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from burstutil import add_target, age, settle
from ec2util import make_image
from eucalite.cli.main import main
from liveutil import free_port, serve_in_background, start_live_node, stop_live
from serverutil import wait_for_port, wait_until


def _serve(app, port):
    server = make_server("127.0.0.1", port, app, threaded=True)
    serve_in_background(server)
    return server


def _remote_instances(ec2, local_ids) -> dict[str, dict]:
    """Local id -> the remote instance tagged with it (the last one listed)."""
    found = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for item in reservation["Instances"]:
            tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}
            if tags.get("eucalite:instance-id") in local_ids:
                found[tags["eucalite:instance-id"]] = item
    return found


def _states(live, ids) -> list[str]:
    answer = live.client("ec2").describe_instances(InstanceIds=ids)
    by_id = {item["InstanceId"]: item["State"]["Name"]
             for reservation in answer["Reservations"] for item in reservation["Instances"]}
    return [by_id[instance_id] for instance_id in ids]


def _launch(live, count):
    answer = live.client("ec2").run_instances(ImageId="emi-0a1b2c3d", InstanceType="m1.small",
                                              MinCount=count, MaxCount=count)
    assert {item["Placement"]["AvailabilityZone"] for item in answer["Instances"]} == \
        {"burst-remote"}
    return [item["InstanceId"] for item in answer["Instances"]]


def _settle_until(live, ids, states, remote_worker=None, timeout=30):
    def done():
        if remote_worker is not None:
            remote_worker.wait()
        settle(live)
        return _states(live, ids) == states
    wait_until(done, f"{ids} to be {states}", timeout=timeout, interval=0.2)


def _burst_list(live) -> str:
    return CliRunner().invoke(main, ["burst", "list", "--data-dir",
                                     live.app.config["EUCALITE"]["data_dir"]]).output


# --- a second eucalite as the remote -------------------------------------------------------

@pytest.fixture
def remote_eucalite(tmp_path):
    remote, server = start_live_node(tmp_path / "remote", hypervisor="fake")
    make_image(remote, "emi-7e7e7e7e")
    holder = {"server": server}
    yield remote, holder
    stop_live(remote, holder["server"])


def test_bursting_into_another_eucalite(live, remote_eucalite):
    remote, holder = remote_eucalite
    make_image(live)
    add_target(live, "remote", endpoint=remote.endpoints["ec2"], region=remote.region,
               images={"emi-0a1b2c3d": "emi-7e7e7e7e"}, types={"m1.small": "m1.small"})
    burst = live.app.extensions["eucalite"].burst
    with live.app.app_context():
        # credentials the remote does not know: refused, and the target is marked so
        error = burst.check_target("remote")
        assert "AuthFailure" in error or "InvalidClientTokenId" in error, error
        assert burst.target("remote").unreachable
        # real credentials: the remote's admin key
        burst.change_target("remote", {}, access_key_id=remote.key_id,
                            secret_access_key=remote.secret)
        assert burst.check_target("remote") is None
        assert not burst.target("remote").unreachable
    remote_worker = remote.services.compute.worker
    ids = _launch(live, 2)
    _settle_until(live, ids, ["running", "running"], remote_worker)
    remote_ec2 = remote.client("ec2")
    there = _remote_instances(remote_ec2, set(ids))
    assert set(there) == set(ids)
    assert {item["State"]["Name"] for item in there.values()} == {"running"}
    here = live.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    addresses = {item["InstanceId"]: item["PrivateIpAddress"]
                 for reservation in here for item in reservation["Instances"]}
    assert addresses == {local_id: item["PrivateIpAddress"] for local_id, item in there.items()}

    # the remote goes away: reported; a terminate waits for it
    holder["server"].shutdown()
    [report] = settle(live)
    assert report.unreachable
    assert "\tunreachable\t2\t" in _burst_list(live)
    live.client("ec2").terminate_instances(InstanceIds=[ids[0]])
    settle(live)
    assert _states(live, ids) == ["shutting-down", "running"]

    # it comes back: the terminate reaches it, nothing leaks
    holder["server"] = _serve(remote.app, remote.port)
    _settle_until(live, ids, ["terminated", "running"], remote_worker)
    assert "\tavailable\t1\t" in _burst_list(live)
    live.client("ec2").terminate_instances(InstanceIds=[ids[1]])
    _settle_until(live, ids, ["terminated", "terminated"], remote_worker)
    remote_worker.wait()
    there = _remote_instances(remote_ec2, set(ids))
    assert {item["State"]["Name"] for item in there.values()} <= {"terminated"}


# --- moto_server as the remote -------------------------------------------------------------

def _moto_server():
    path = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or \
        shutil.which("moto_server")
    if path is None:
        pytest.skip("moto_server is not installed")
    return path


def _start_moto(path, port):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "EUCALITE_"))}
    process = subprocess.Popen([path, "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process


@pytest.fixture
def moto():
    path = _moto_server()
    port = free_port()
    holder = {"process": _start_moto(path, port), "port": port, "path": path}
    yield holder
    holder["process"].terminate()
    holder["process"].wait(10)


def _moto_client(url):
    import boto3
    return boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto")


def test_bursting_into_moto_server(live, moto):
    url = f"http://127.0.0.1:{moto['port']}"
    ec2 = _moto_client(url)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    make_image(live)
    add_target(live, "remote", endpoint=url, region="us-east-1",
               images={"emi-0a1b2c3d": ami}, types={"m1.small": "t3.micro"})
    ids = _launch(live, 3)
    _settle_until(live, ids, ["running"] * 3)
    there = _remote_instances(ec2, set(ids))
    assert set(there) == set(ids)
    assert {item["InstanceType"] for item in there.values()} == {"t3.micro"}
    assert {item["ImageId"] for item in there.values()} == {ami}
    # console output and reboot go through to the remote instance
    local_ec2 = live.client("ec2")
    assert "Linux version" in local_ec2.get_console_output(InstanceId=ids[0])["Output"]
    local_ec2.reboot_instances(InstanceIds=[ids[0]])
    live.app.extensions["eucalite"].compute.worker.wait()
    assert _states(live, ids[:1]) == ["running"]

    live.client("ec2").terminate_instances(InstanceIds=ids[:2])
    _settle_until(live, ids, ["terminated", "terminated", "running"])
    states = {local_id: item["State"]["Name"]
              for local_id, item in _remote_instances(ec2, set(ids)).items()}
    assert states == {ids[0]: "terminated", ids[1]: "terminated", ids[2]: "running"}

    # moto goes away: reported, and the capacity error of a launch that needed it says so
    moto["process"].terminate()
    moto["process"].wait(10)
    [report] = settle(live)
    assert report.unreachable
    with pytest.raises(Exception, match="burst target remote is unreachable"):
        _launch(live, 1)
    assert _states(live, ids[2:]) == ["running"]
    # moto returns empty (it keeps nothing): the instance that ran there ended with it
    moto["process"] = _start_moto(moto["path"], moto["port"])
    age(live, ids)                  # long enough ago not to be a listing's lag
    _settle_until(live, ids, ["terminated"] * 3)
    assert _remote_instances(ec2, set(ids)) == {}


# --- `eucalite serve`: the served process runs the burst reconciler ---------------------

def test_a_served_cloud_bursts_with_the_cli_configured_target(tmp_path, moto):
    """`eucalite serve` (gunicorn) with no node and a target added by `eucalite burst add`:
    a launch runs on moto_server and its terminate leaves nothing there, with nothing but
    the served process's own burst reconciler following them up."""
    import boto3
    from botocore.config import Config

    from eucalite import accounts, create_app
    from eucalite.compute.models import Image
    from eucalite.db import db
    from serverutil import EUCALITE, cli_env, run, stop, wait_ready

    url = f"http://127.0.0.1:{moto['port']}"
    ami = _moto_client(url).describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    data_dir = tmp_path / "served"
    env = cli_env(EUCALITE_DATA_DIR=str(data_dir), EUCALITE_BURST_SECRET_ACCESS_KEY="moto")
    app = create_app({"data_dir": str(data_dir), "node": False})
    with app.app_context():     # an image to launch, recorded as the image tests do
        owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        db.session.add(Image(id="emi-0a1b2c3d", owner_id=owner, kind="machine",
                             name="img", state="available"))
        db.session.commit()
        key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
        key_id, secret = key.id, key.secret
    run(EUCALITE, "burst", "add", "remote", "--endpoint", url, "--region", "us-east-1",
        "--access-key-id", "AKIDMOTO", "--image", f"emi-0a1b2c3d={ami}",
        "--type", "m1.small=t3.micro", env=env)
    port = free_port()
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        wait_ready(port, process)
        ec2 = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{port}/services/compute",
                           region_name="eucalyptus", aws_access_key_id=key_id,
                           aws_secret_access_key=secret,
                           config=Config(retries={"max_attempts": 1}))
        [item] = ec2.run_instances(ImageId="emi-0a1b2c3d", InstanceType="m1.small",
                                   MinCount=1, MaxCount=1)["Instances"]
        instance_id = item["InstanceId"]
        assert item["Placement"]["AvailabilityZone"] == "burst-remote"

        def state():
            [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
            return reservation["Instances"][0]["State"]["Name"]
        wait_until(lambda: state() == "running", "the burst instance to run", timeout=30)
        remote = _remote_instances(_moto_client(url), {instance_id})
        assert remote[instance_id]["State"]["Name"] == "running"
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_until(lambda: state() == "terminated", "the terminate", timeout=30)
        remote = _remote_instances(_moto_client(url), {instance_id})
        assert remote[instance_id]["State"]["Name"] == "terminated"
    finally:
        output = stop(process)
    assert "Traceback" not in output, output
