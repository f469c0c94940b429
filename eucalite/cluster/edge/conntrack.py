"""Forgetting the tracked connections a new ruleset no longer stands behind.

The kernel's connection tracking keeps each flow's NAT and its "established" standing for
as long as packets keep coming (ICMP and UDP flows live 30 s past their last packet, TCP
ones days), and eucalite's ip table accepts established packets before any rule or map
looks at them. So without this, a continuous ping to an elastic IP moved from instance A
to B would stay on A, and A's flows out would keep leaving from the address it gave up.
After an apply, the firewall deletes (:func:`stale_flows`, :func:`forget`):

* every flow of a public IP whose mapping changed or went away: inbound ones DNATed to the
  old instance (original destination = the public IP) and outbound ones SNATed to it
  (reply destination = the public IP);
* the source-NATed flows of an instance whose public IP changed (SNATed to the old one, or
  masqueraded behind the host's address when it had none): their next packet is NATed
  afresh;
* every flow of a private IP no instance holds any more, so that a later instance given
  that address does not inherit flows its own rules never allowed.

Flows the rules allowed and still allow are kept: revoking a rule does not cut a tracked
connection, as in EC2. Uses the ``conntrack`` tool (Debian package ``conntrack``).
"""
from __future__ import annotations

import subprocess
from typing import Sequence

from .nft import FirewallError, Installed
from .ruleset import Table

INSTALL_HINT = "apt install conntrack"


def stale_flows(before: Installed | None, after: Table) -> list[tuple[str, ...]]:
    """The ``conntrack -D`` filters (argument tuples) of the flows that going from
    *before* (the ip table as it was; None: none) to *after* (the ip table now applied)
    leaves stale, in a stable order."""
    if before is None:
        return []
    old_public, new_public = before.maps.get("pub2priv", {}), after.maps["pub2priv"][2]
    old_nat, new_nat = before.maps.get("priv2pub", {}), after.maps["priv2pub"][2]
    existed = before.maps.get("ingress", {}).keys()     # the private IPs of the ports
    gone = existed - after.maps["ingress"][2].keys()
    filters: list[tuple[str, ...]] = []
    # a public IP or port new to the node has no flows yet: nothing to forget
    for public in (key for key in old_public if old_public[key] != new_public.get(key)):
        filters += [("--orig-dst", public), ("--reply-dst", public)]
    for private in existed - gone:
        if old_nat.get(private) != new_nat.get(private):
            filters.append(("--orig-src", private, "--src-nat"))
    for private in gone:
        filters += [("--orig-src", private), ("--orig-dst", private), ("--reply-src", private)]
    return sorted(filters)


def forget(prefix: Sequence[str], filters: Sequence[tuple[str, ...]]) -> None:
    """Delete the tracked connections matching each filter (``conntrack -D FILTER``, after
    *prefix*); FirewallError when conntrack is missing or refuses."""
    for selection in filters:
        argv = [*prefix, "conntrack", "-D", *selection]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except FileNotFoundError as exc:
            raise FirewallError(f"conntrack is not installed ({INSTALL_HINT})") from exc
        # conntrack exits 1 when nothing matched, saying "0 flow entries have been deleted"
        if done.returncode != 0 and " 0 flow entries" not in done.stderr:
            raise FirewallError(f"conntrack -D {' '.join(selection)}: {done.stderr.strip()}")
