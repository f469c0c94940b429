"""What the data plane costs: render + apply times of a large synthetic plan, for the
benchmark (bench/edge.py) and the tests. Runs against any firewall with the
:class:`~.firewall.NftFirewall` interface (a network namespace's, for a bench that must not
touch the host)."""
from __future__ import annotations

import ipaddress
import time
from dataclasses import replace

from ..virt.network_xml import mac_for
from .firewall import NftFirewall
from .plan import Group, NetworkPlan, Port, Rule, tap_name
from .ruleset import render


def synthetic_plan(subnet: str, instances: int = 100, rules_per_instance: int = 10,
                   first_port: int = 1000) -> NetworkPlan:
    """*instances* ports on *subnet*, each in its own group of *rules_per_instance* TCP
    ingress rules (one port each, from distinct /24s) plus egress to anywhere; every group
    also admits the first group's members (a peer set)."""
    hosts = list(ipaddress.ip_network(subnet).hosts())[1:instances + 1]
    if len(hosts) < instances:
        raise ValueError(f"{subnet} has room for {len(hosts)} instances, not {instances}")
    ports, groups = [], {}
    for n, address in enumerate(hosts):
        ip = str(address)
        group_id = f"sg-{n:08x}"
        rules = tuple(Rule("6", first_port + k, first_port + k,
                           cidr=f"172.{16 + k % 16}.{n % 256}.0/24")
                      for k in range(rules_per_instance - 1))
        rules += (Rule("-1", group="sg-00000000"),)
        groups[group_id] = Group(group_id, rules[:rules_per_instance],
                                 (Rule("-1", cidr="0.0.0.0/0"),))
        ports.append(Port(f"i-{n:08x}", tap_name(ip), mac_for(ip), ip, None, (group_id,)))
    return NetworkPlan(tuple(ports), groups, {"sg-00000000": (str(hosts[0]),)})


def time_apply(firewall: NftFirewall, instances: int = 100,
               rules_per_instance: int = 10) -> dict:
    """Seconds to render and apply a plan of ``instances * rules_per_instance`` rules from
    nothing (``full``), to apply it again unchanged (``noop``: a sync with nothing to
    do), to check it against the kernel's tables (``reconcile``: a reconciler's pass) and
    to apply one changed rule (``one_rule``: the sync after an API call), with the counts
    that show how much each touched. Leaves the firewall's tables holding the last plan."""
    plan = synthetic_plan(firewall.host.subnet, instances, rules_per_instance)
    firewall.remove()
    result: dict = {"instances": instances,
                    "rules": sum(len(g.ingress) for g in plan.groups.values())}
    start = time.perf_counter()
    render(plan, firewall.host)
    result["render"] = time.perf_counter() - start
    start = time.perf_counter()
    full = firewall.apply(plan)
    result["full"] = time.perf_counter() - start
    result["full_commands"] = len(full.commands)
    start = time.perf_counter()
    noop = firewall.apply(plan)
    result["noop"] = time.perf_counter() - start
    result["noop_commands"] = len(noop.commands)
    start = time.perf_counter()
    reconcile = firewall.apply(plan, reread=True)
    result["reconcile"] = time.perf_counter() - start
    result["reconcile_commands"] = len(reconcile.commands)
    first = plan.ports[0].groups[0]
    group = plan.groups[first]
    changed_group = replace(group, ingress=(Rule("6", 1, 1, cidr="192.0.2.0/24"),
                                            *group.ingress[1:]))
    changed = replace(plan, groups={**plan.groups, first: changed_group})
    start = time.perf_counter()
    one = firewall.apply(changed)
    result["one_rule"] = time.perf_counter() - start
    result["changed_chains"] = len(one.chains)
    return result
