"""ComputeService's public-address methods (a mixin; the rules live in
:mod:`eucalite.compute.addresses`).

Every change that moves an address is committed, then the network plan is pushed to the
nodes (:func:`eucalite.compute.netplan.sync`), so the address reaches its instance on the
wire as soon as the call returns.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from .. import tags
from ..accounts import Principal
from ..db import writing
from ..errors import ServiceUnavailable
from ..errors.ec2 import UnsupportedOperation
from . import addresses, instances, netplan
from .addresses import Pool
from .models import Address, Instance

#: What to do when public IPs are off.
HOW_TO_TURN_ON = ("set public_interface (the host interface facing the lab network) and "
                  "public_ips (addresses, first-last ranges or CIDRs on it) in the config "
                  "file (eucalite.toml), and restart")


class AddressesMixin:
    """Elastic and launch-time public IPs, for the EC2 adapter and the console."""

    def public_pool(self) -> Pool:
        """The cloud's pool of public IPs; ServiceUnavailable saying what to do when public
        IPs are off (not configured, configured wrongly, or the data plane cannot enforce
        them)."""
        pool = self.configured_pool()
        if pool is None:
            raise ServiceUnavailable(f"Public IPs are OFF on this cloud: {HOW_TO_TURN_ON}.")
        self.cluster.require_network()
        return pool

    def launch_pool(self) -> Pool | None:
        """The pool new instances take launch addresses from: None when public IPs are not
        configured or not enforced here (instances then have none); ServiceUnavailable when
        the configuration is wrong (say so rather than launch without)."""
        pool = self.configured_pool()
        return None if self.cluster.network_problem else pool

    def configured_pool(self) -> Pool | None:
        """The pool config describes (None: not configured); ServiceUnavailable naming
        what is wrong with a bad one."""
        try:
            return addresses.parse_pool(self.config)
        except ValueError as error:
            raise ServiceUnavailable(f"Public IPs are OFF: {error}.") from None

    def address_pool(self) -> dict:
        """``{"total": n, "free": n, "interface": name}`` of the public pool (the console's
        summary); ServiceUnavailable when public IPs are off."""
        return addresses.pool_usage(self.public_pool())

    def allocate_address(self, principal: Principal, domain: str = "standard",
                         tags: Mapping[str, str] | None = None,
                         public_ip: str | None = None) -> Address:
        """AllocateAddress: an elastic IP of the pool for the caller's account (*public_ip*:
        that one, if free). *domain* ``standard`` (EC2-Classic: named by its address) or
        ``vpc`` (also an allocation id, which *tags* are given to). AddressLimitExceeded past
        ``address_limit``, InsufficientAddressCapacity when the pool is used up."""
        pool = self.public_pool()
        with writing():
            row = addresses.allocate(principal, pool, domain,
                                     int(self.config.get("address_limit", 5)), tags, public_ip)
        return row

    def associate_address(self, principal: Principal, instance_id: str,
                          public_ip: str | None = None, allocation_id: str | None = None,
                          allow_reassociation: bool = False) -> Address:
        """AssociateAddress: the caller's elastic IP (by *public_ip* or *allocation_id*)
        becomes the public IP of the caller's instance *instance_id* (pending or running).
        An address on another instance moves (a ``vpc`` one only with
        *allow_reassociation*). See :func:`eucalite.compute.addresses.associate`."""
        pool = self.public_pool()
        with writing():
            row = addresses.find(principal, public_ip=public_ip, allocation_id=allocation_id)
            instance = instances.owned(principal, instance_id)
            if instance.burst_target:       # its public address is its remote cloud's
                raise UnsupportedOperation(
                    f"The instance '{instance.id}' runs on burst target "
                    f"{instance.burst_target}: this cloud's addresses cannot reach it.")
            changed = addresses.associate(pool, row, instance, allow_reassociation)
        if changed:
            netplan.sync(self.cluster)
        return row

    def disassociate_address(self, principal: Principal, public_ip: str | None = None,
                             association_id: str | None = None) -> None:
        """DisassociateAddress: the caller's elastic IP (by *public_ip* or
        *association_id*) leaves its instance, which gets a fresh launch address when the
        pool has one. Nothing happens for an address not associated."""
        pool = self._pool_if_any()
        with writing():
            row = addresses.find(principal, public_ip=public_ip, association_id=association_id)
            changed = addresses.disassociate(pool, row)
        if changed:
            netplan.sync(self.cluster)

    def release_address(self, principal: Principal, public_ip: str | None = None,
                        allocation_id: str | None = None) -> None:
        """ReleaseAddress: the caller's elastic IP goes back to the pool (a ``standard``
        one is disassociated first; a ``vpc`` one still associated is
        InvalidIPAddress.InUse)."""
        pool = self._pool_if_any()
        with writing():
            row = addresses.find(principal, public_ip=public_ip, allocation_id=allocation_id)
            changed = addresses.release(pool, row)
        if changed:
            netplan.sync(self.cluster)

    def describe_addresses(self, principal: Principal, public_ips: Iterable[str] = (),
                           allocation_ids: Iterable[str] = ()) -> list[Address]:
        """DescribeAddresses: the caller's elastic IPs by address (launch addresses are
        not listed), narrowed to *public_ips* / *allocation_ids* (each must be the
        caller's, else NotFound). ``Filter.N`` is the adapter's, as for every Describe."""
        return addresses.describe(principal, public_ips, allocation_ids)

    def address_tags(self, principal: Principal,
                     rows: Iterable[Address]) -> dict[str, dict[str, str]]:
        """Allocation id -> tags of those of *rows* that have one (``vpc`` addresses)."""
        return tags.tags_for(principal.account_id,
                             [row.allocation_id for row in rows if row.allocation_id])

    def address_private_ips(self, rows: Iterable[Address]) -> dict[str, str]:
        """Instance id -> private IP of the instances *rows* are associated with."""
        return addresses.private_ips(rows)

    def give_launch_address(self, instance: Instance) -> None:
        """*instance*, starting again, gets a launch address if it wants one and the pool
        has one free (in the caller's transaction)."""
        addresses.give_launch_addresses(self._pool_if_any(), [instance])

    def _pool_if_any(self) -> Pool | None:
        """The pool to hand launch addresses from when an elastic IP leaves an instance;
        None when public IPs are off or misconfigured (the instance then has none)."""
        try:
            return self.launch_pool()
        except ServiceUnavailable:
            return None
