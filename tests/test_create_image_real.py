"""CreateImage end to end on real libvirtd + QEMU + tgtd: what a running guest wrote onto
its EBS root is in the image made from it, and a new instance of that image reads it back.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt and tgtd answers (as
tests/test_ebs_real.py, whose cloud and EBS-backed tiny-guest image it reuses, with a
network of its own). The tiny guest runs user data starting with ``#!`` as a script and
has no file system on its root disk: the "file" is a token written with dd at 8 MiB into
/dev/vda (past the MiB the guest's disk reports hash) and read back the same way.
"""
from __future__ import annotations

import os

import pytest
from guestutil import BOOT_TIMEOUT, MARK, guest_console, requires_real_libvirt, terminate
from serverutil import wait_until
from test_ebs_real import _ebs_image, _live_cloud

pytestmark = requires_real_libvirt


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    from guestutil import build_guest
    if os.geteuid() != 0:
        pytest.skip("the instance bridge, the metadata address and tgt need root")
    return build_guest(tmp_path_factory)


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Volumes exported over iSCSI by tgt (with CHAP), on a network of this file's own."""
    yield from _live_cloud("tgt", guest_files, "eucalite-imgtest", "euimgbr0",
                           "10.216.0.0/24")


def _run(ec2, image_id, script: str) -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m1.small",
                             UserData=script)["Instances"][0]["InstanceId"]


def _console_has(ec2, instance_id, text: str, what: str) -> None:
    wait_until(lambda: text in guest_console(ec2, instance_id), what, BOOT_TIMEOUT, interval=1,
               show=lambda: guest_console(ec2, instance_id)[-3000:])


def test_image_of_a_running_instance_holds_what_its_guest_wrote(cloud, guest_files):
    ec2 = cloud.client("ec2")
    image_id = _ebs_image(cloud, guest_files)[0]
    token = f"tok-{os.urandom(8).hex()}"
    # The console echoes the user data itself: the lines looked for are put together by
    # the shell ($w, $f), so only running the script prints them.
    writer = (f"#!/bin/sh\nprintf '{token}' | dd of=/dev/vda bs=1M seek=8 conv=fsync "
              f"2>/dev/null && sync && w=wrote && echo \"{MARK} $w={token}\"\n")
    first = _run(ec2, image_id, writer)
    _console_has(ec2, first, f"{MARK} wrote={token}", "the first guest's write")

    made = ec2.create_image(InstanceId=first, Name="written-by-a-guest",
                            Description="the guest wrote a token at 8 MiB of its root")
    image_id_made = made["ImageId"]

    def image_state() -> str:
        return ec2.describe_images(ImageIds=[image_id_made])["Images"][0]["State"]
    wait_until(lambda: image_state() != "pending", "the image's snapshots", 300, interval=1)
    assert image_state() == "available"
    # the guest went on running through its pause
    assert ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "running"

    reader = (f"#!/bin/sh\nv=$(dd if=/dev/vda bs=1M skip=8 count=1 2>/dev/null | "
              f"head -c {len(token)}); f=found; echo \"{MARK} $f=$v\"\n")
    second = _run(ec2, made["ImageId"], reader)
    _console_has(ec2, second, f"{MARK} found={token}", "the second guest's read")
    terminate(ec2, [first, second])
