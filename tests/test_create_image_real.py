"""CreateImage end to end on real libvirtd + QEMU + tgtd: what a running guest wrote onto
its EBS root is in the image made from it, and a new instance of that image reads it back.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt and tgtd answers (the cloud and the
EBS-backed tiny-guest image are tests/guestutil.py's, with a network of this file's own).
The tiny guest runs user data starting with ``#!`` as a script and has no file system on
its root disk: a "file" is a token written with dd into /dev/vda (past the MiB the guest's
disk reports hash) and read back the same way.

One guest writes two tokens: one synced to disk, one left in its page cache (the guest's
periodic writeback turned off and the disk held open, so only a sync or a clean shutdown
writes it). An image with
NoReboot (the guest paused for the copy, running on) holds the synced token and not the
cached one; an image made the default way (the guest shut down cleanly, which syncs, and
started again) holds both: that is what AWS's reboot buys.
"""
from __future__ import annotations

import os

import pytest
from guestutil import (BOOT_TIMEOUT, MARK, ebs_image, guest_console, live_cloud,
                       requires_real_libvirt, root_guest, terminate)
from serverutil import wait_until

pytestmark = requires_real_libvirt
SYNCED_AT, CACHED_AT = 8, 16                    # MiB into /dev/vda


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    return root_guest(tmp_path_factory, "the instance bridge, the metadata address and tgt "
                                        "need root")


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Volumes exported over iSCSI by tgt (with CHAP), on a network of this file's own."""
    yield from live_cloud("tgt", guest_files, "eucalite-imgtest", "euimgbr0", "10.217.0.0/24")


def _run(ec2, image_id, script: str) -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m1.small",
                             UserData=script)["Instances"][0]["InstanceId"]


def _console_has(ec2, instance_id, text: str, what: str) -> None:
    wait_until(lambda: text in guest_console(ec2, instance_id), what, BOOT_TIMEOUT, interval=1,
               show=lambda: guest_console(ec2, instance_id)[-3000:])


def _image(ec2, instance_id, name: str, **kwargs) -> str:
    """CreateImage, waited for until it is available."""
    image_id = ec2.create_image(InstanceId=instance_id, Name=name, **kwargs)["ImageId"]

    def state() -> str:
        return ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"]
    wait_until(lambda: state() != "pending", f"the snapshots of {name}", 300, interval=1)
    assert state() == "available"
    return image_id


def _reads(ec2, image_id, length: int) -> tuple[str, str]:
    """What a new instance of *image_id* reads at SYNCED_AT and CACHED_AT MiB of its root."""
    read = (f"dd if=/dev/vda bs=1M skip={{at}} count=1 2>/dev/null | head -c {length} | "
            "tr -c 'a-z0-9-' '.'")
    reader = (f"#!/bin/sh\ns=$({read.format(at=SYNCED_AT)}); c=$({read.format(at=CACHED_AT)})"
              f"; f=found; echo \"{MARK} $f synced=$s cached=$c end\"\n")
    instance_id = _run(ec2, image_id, reader)
    _console_has(ec2, instance_id, f"{MARK} found synced=", f"{instance_id}'s read")
    line = guest_console(ec2, instance_id).split(f"{MARK} found synced=", 1)[1].split(
        " end", 1)[0]
    synced, cached = line.split(" cached=")
    terminate(ec2, [instance_id])
    return synced, cached


def _state(ec2, instance_id) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][
        0]["State"]["Name"]


def test_the_default_reboot_captures_what_no_reboot_leaves_in_the_guests_cache(cloud,
                                                                             guest_files):
    ec2 = cloud.client("ec2")
    image_id = ebs_image(cloud, guest_files)[0]
    synced, cached = f"tok-{os.urandom(8).hex()}", f"tok-{os.urandom(8).hex()}"
    # The console echoes the user data itself: the lines looked for are put together by
    # the shell ($w), so only running the script prints them.
    writer = ("#!/bin/sh\n"
              # no periodic flush for an hour (0 would flush at once)
              "echo 360000 > /proc/sys/vm/dirty_writeback_centisecs\n"
              "echo 360000 > /proc/sys/vm/dirty_expire_centisecs\n"
              # the kernel flushes a block device at its last close: keep it open (in
              # this shell before the write, then in a child that outlives the script)
              "exec 3</dev/vda\nsleep 100000 &\n"
              f"printf '{synced}' | dd of=/dev/vda bs=1M seek={SYNCED_AT} conv=fsync "
              "2>/dev/null && sync\n"
              f"printf '{cached}' | dd of=/dev/vda bs=1M seek={CACHED_AT} 2>/dev/null\n"
              f"w=wrote; echo \"{MARK} $w\"\n")
    first = _run(ec2, image_id, writer)
    _console_has(ec2, first, f"{MARK} wrote", "the guest's writes")

    paused = _image(ec2, first, "no-reboot", NoReboot=True)
    # the guest ran on through its pause: one boot, no shutdown
    assert _state(ec2, first) == "running"
    assert guest_console(ec2, first).count(f"{MARK} boot") == 1
    assert f"{MARK} power-button" not in guest_console(ec2, first)

    rebooted = _image(ec2, first, "rebooted")
    # shut down cleanly (its power button pressed) and booted again, running to the API
    assert f"{MARK} power-button" in guest_console(ec2, first)
    wait_until(lambda: guest_console(ec2, first).count(f"{MARK} boot") >= 2, "the reboot",
               BOOT_TIMEOUT, interval=1, show=lambda: guest_console(ec2, first)[-3000:])
    assert _state(ec2, first) == "running"

    assert _reads(ec2, paused, len(synced)) == (synced, "." * len(cached))
    assert _reads(ec2, rebooted, len(synced)) == (synced, cached)
    terminate(ec2, [first])
