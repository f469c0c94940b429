#!/usr/bin/env python3
"""Benchmark: the hop to a node on another host. RunInstances -> running on a remote node
beside the same on the controller's own node, with the image already in the node's cache
(warm) and on its first fetch (cold).

The lab of tests/multihost.py: ``eucalite serve`` with node duty on (the controller's own
node, zone lab-1b, the host's libvirtd) and node hosts joined in zone lab-1a, each a
separate ``eucalite serve --node-only`` in its own network namespace with its own libvirtd;
node-b is disabled so every remote launch goes to node-a. The security-group data plane is
the in-memory one on every node (``firewall = "fake"``): its cost is not the hop's, and the
host's nftables stay untouched.

For each placement (local: lab-1b; remote: lab-1a):

* warm: --runs launches of an image the node has cached (one untimed launch first fills
  the cache);
* cold: --cold launches, each of a freshly imported copy of the tiny guest (new image ids,
  so no node has it): the local node reads the bundle from the object store in process,
  the remote node streams it over the internal API.

Each launch is timed from the RunInstances call until DescribeInstances (polled every
50 ms) says running; the instance is then terminated and waited for before the next.
Prints p50/p95/min/max per placement side by side.

    flock /tmp/realvm.lock python bench/multinode.py [--runs 10] [--cold 3]

Needs root, libvirt and the tiny guest (EUCALITE_TEST_GUEST_DIR, EUCALITE_TEST_LIBVIRT_URI
as for the real-VM tests); skipped saying why otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from common import progress, skip, until  # noqa: E402

import multihost  # noqa: E402

PLACEMENTS = (("local", multihost.ZONES[1]), ("remote", multihost.ZONES[0]))


def launch_to_running(ec2, image_id: str, zone: str) -> float:
    """Seconds from RunInstances until running; the instance is terminated after."""
    start = time.perf_counter()
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small",
                                    Placement={"AvailabilityZone": zone})[
        "Instances"][0]["InstanceId"]

    def state() -> str:
        return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"][0]["State"]["Name"]
    running = until(lambda: state() in ("running", "terminated"), f"{instance_id} running",
                    900, poll=0.05)
    if state() != "running":
        raise SystemExit(f"{instance_id} ended instead of running (zone {zone})")
    ec2.terminate_instances(InstanceIds=[instance_id])
    until(lambda: state() == "terminated", f"{instance_id} terminated", 120, poll=0.2)
    return running - start


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    return (f"{name:<16}{len(values):>4}  {percentile(values, 0.5):8.2f}  "
            f"{percentile(values, 0.95):8.2f}  {min(values):8.2f}  {max(values):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="warm launches per placement")
    parser.add_argument("--cold", type=int, default=3, help="cold launches per placement")
    args = parser.parse_args()
    problem = multihost.preflight()
    if problem:
        skip(problem)
    results: dict[str, list[float]] = {}
    with multihost.Lab() as lab:
        progress("starting the lab (controller with node duty, two node hosts)")
        lab.start(controller_node=True, firewall="fake")
        controller = lab.controller
        controller.cli("node", "disable", "node-b")
        ec2 = controller.client()
        warm_image = controller.import_guest()["emi"]
        for name, zone in PLACEMENTS:
            progress(f"{name}: filling the cache")
            launch_to_running(ec2, warm_image, zone)
            results[f"{name} warm"] = []
            for run in range(args.runs):
                results[f"{name} warm"].append(launch_to_running(ec2, warm_image, zone))
                progress(f"{name} warm {run + 1}/{args.runs}: "
                         f"{results[f'{name} warm'][-1]:.2f} s")
            results[f"{name} cold"] = []
            for run in range(args.cold):
                image = controller.import_guest(f"cold-{name}-{run}")["emi"]
                results[f"{name} cold"].append(launch_to_running(ec2, image, zone))
                progress(f"{name} cold {run + 1}/{args.cold}: "
                         f"{results[f'{name} cold'][-1]:.2f} s")
    print("RunInstances -> running, seconds (local: the controller's own node; remote: a "
          "node host joined over the internal API)")
    print(f"{'':<16}{'n':>4}  {'p50':>8}  {'p95':>8}  {'min':>8}  {'max':>8}")
    for cache in ("warm", "cold"):
        for name, _ in PLACEMENTS:
            print(row(f"{name} {cache}", results[f"{name} {cache}"]))
    for cache in ("warm", "cold"):
        hop = (percentile(results[f"remote {cache}"], 0.5)
               - percentile(results[f"local {cache}"], 0.5))
        print(f"the hop ({cache}, p50 remote - local): {hop:+.2f} s")


if __name__ == "__main__":
    main()
