"""RunInstances with a ClientToken another call is launching at the same moment: the call
that records second answers the instances the first made (as a retry would), never a
server error from the unique token index. (A burst target's launch retried while its first
attempt is still at work is such a call.)"""
from __future__ import annotations

from ec2util import make_image

from eucalite.accounts import ADMIN_ACCOUNT, root_principal, get_account
from eucalite.compute.instances import LaunchRequest
from eucalite.db import db


def test_the_second_of_two_racing_launches_answers_the_firsts_instances(roomy, monkeypatch):
    make_image(roomy, "emi-0a1b2c3d")
    compute = roomy.services.compute
    first = roomy.client("ec2").run_instances(
        ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=1, ClientToken="token-1")["Instances"]
    real = type(compute)._earlier_launch
    calls = []

    def raced(principal, request):
        calls.append(request.client_token)
        # the first look finds nothing: the other call had not committed yet
        return [] if len(calls) == 1 else real(principal, request)

    monkeypatch.setattr(type(compute), "_earlier_launch", staticmethod(raced))
    with roomy.app.app_context():
        principal = root_principal(get_account(ADMIN_ACCOUNT).id)
        rows = compute.run_instances(principal, LaunchRequest(
            image_id="emi-0a1b2c3d", instance_type="m1.small", client_token="token-1"))
        assert [row.id for row in rows] == [first[0]["InstanceId"]]
        db.session.remove()
    assert len(calls) == 2
    reservations = roomy.client("ec2").describe_instances()["Reservations"]
    assert sum(len(item["Instances"]) for item in reservations) == 1
