"""End to end on a real libvirtd + QEMU: a guest launched with an instance profile reads its
role's credentials from the metadata service (``iam/security-credentials/<role>``, as
boto3's instance-metadata provider does) and the host signs with them.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt (under ``flock /tmp/realvm.lock``
on a shared machine); skipped with the reason otherwise. The tiny guest runs its user
data as a script: it prints the credentials between two console markers.
"""
from __future__ import annotations

import json
import os

import pytest
from guestutil import (BOOT_TIMEOUT, MARK, build_guest, guest_console, live_cloud,
                       requires_real_libvirt, terminate)
from serverutil import wait_until
from test_instance_profiles import make_profile
from test_sts import client

pytestmark = requires_real_libvirt

ROLE = "guest-role"
# The guest prints its user data on the console first: the markers are spelt so that
# only the script's output holds them.
SCRIPT = f"""#!/bin/sh
M={MARK}
echo "$M creds-begin"
wget -q -O - http://169.254.169.254/latest/meta-data/iam/security-credentials/{ROLE}
echo
echo "$M creds-end"
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the instance bridge and the metadata address need root")
    yield from live_cloud("local", build_guest(tmp_path_factory), "eucalite-iamtest",
                          "euiambr0", "10.218.0.0/24")


def test_guest_reads_its_role_credentials_and_they_work(node):
    make_profile(node, "guest-profile", ROLE)
    ec2 = node.client("ec2")
    [instance] = ec2.run_instances(ImageId=node.image_id, MinCount=1, MaxCount=1,
                                   InstanceType="m1.small", UserData=SCRIPT,
                                   IamInstanceProfile={"Name": "guest-profile"},
                                   MetadataOptions={"HttpTokens": "optional"})["Instances"]
    iid = instance["InstanceId"]
    try:
        console = wait_until(
            lambda: f"{MARK} creds-end" in (c := guest_console(ec2, iid)) and c,
            "the guest's credentials on its console", BOOT_TIMEOUT, interval=1,
            show=lambda: guest_console(ec2, iid)[-3000:])
        between = console.split(f"{MARK} creds-begin", 1)[1].split(f"{MARK} creds-end")[0]
        # the guest's /init may report (a disk, say) while the script runs: its lines, which
        # start with the marker, interleave with the document
        document = [line for line in between.replace("\r", "").splitlines()
                    if not line.startswith(MARK)]
        creds = json.loads("\n".join(document).strip())
        assert creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
        session = {"AccessKeyId": creds["AccessKeyId"],
                   "SecretAccessKey": creds["SecretAccessKey"],
                   "SessionToken": creds["Token"]}
        me = client(node, "sts", session).get_caller_identity()
        assert me["Arn"].endswith(f":assumed-role/{ROLE}/{iid}")
        described = client(node, "ec2", session).describe_instances(InstanceIds=[iid])
        assert described["Reservations"][0]["Instances"][0]["IamInstanceProfile"]["Arn"] \
            .endswith(":instance-profile/guest-profile")
    finally:
        terminate(ec2, [iid])
