"""Helpers for the tests that boot the tiny guest on a real libvirtd (``./setup.sh test``
sets EUCALITE_TEST_LIBVIRT_URI=qemu:///system; EUCALITE_TEST_GUEST_DIR, when set, caches the
guest's build): its console markers, waiting on instances, and directories QEMU can reach."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from serverutil import wait_until

from eucalite.cluster import guest

REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
GUEST_DIR = os.environ.get("EUCALITE_TEST_GUEST_DIR", "")
MARK = "EUCALITE-GUEST"             # what the guest's /init starts its console lines with
BOOT_TIMEOUT = 120                  # TCG on a loaded 2-core machine: a guest is up in ~10 s

requires_real_libvirt = pytest.mark.skipif(
    not REAL_URI.startswith("qemu"),
    reason="needs a real libvirtd: set EUCALITE_TEST_LIBVIRT_URI=qemu:///system "
           "(./setup.sh test does)")


def build_guest(tmp_path_factory) -> guest.GuestFiles:
    """The tiny guest's kernel, ramdisk and root: cached in EUCALITE_TEST_GUEST_DIR when
    set, else built in a temporary directory."""
    out = Path(GUEST_DIR) if GUEST_DIR else tmp_path_factory.mktemp("guest")
    try:
        return guest.build(out, log=lambda *args: None)
    except guest.GuestBuildError as error:
        pytest.fail(f"cannot build the tiny guest: {error}")


def qemu_reachable_dir(prefix: str) -> Path:
    """A new directory QEMU, running as libvirt's user, can reach: in the system's
    temporary directory and open to pass through (pytest's own are 0700). The caller
    removes it."""
    top = Path(tempfile.mkdtemp(prefix=prefix))
    top.chmod(0o711)
    return top


def guest_console(ec2, instance_id) -> str:
    """The console text (botocore decodes EC2's base64 Output itself)."""
    return ec2.get_console_output(InstanceId=instance_id).get("Output", "")


def instance_state(ec2, instance_id) -> str:
    """The instance's state name."""
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    return described["State"]["Name"]


def terminate(ec2, ids) -> None:
    """Terminate and wait until they ended (their node capacity is back)."""
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_until(lambda: instance_state(ec2, iid) == "terminated", f"{iid} terminated", 60,
                   interval=1)
