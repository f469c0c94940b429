"""Public IPs (EDGE, EC2-Classic semantics as Eucalyptus offered them): the cloud's pool,
elastic IPs, and the address every instance gets at launch.

The pool is config ``public_ips`` (addresses, ``first-last`` ranges, CIDRs) on the host
interface ``public_interface``. An address in use has an :class:`Address` row, a free one
none. Two kinds:

* ``launch``: handed to an instance when it is recorded (unless the launch asked for private
  addressing, or the pool is exhausted: then it has none, as in Eucalyptus); back to the
  pool when the instance stops or ends, or when it gets an elastic IP.
* ``elastic``: allocated to an account by AllocateAddress until released; associated with at
  most one instance, which then uses it instead of a launch address (and gets a fresh launch
  address when it is disassociated). Stopping or ending the instance disassociates it.

``Instance.public_ip`` is the address the instance uses now; every function here keeps it in
step with the rows. They work in the caller's transaction (writers take ``write_lock``
first): the caller commits, then pushes the network plan (:func:`eucalite.compute.netplan.sync`).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from .. import ids, quotas, tags
from ..accounts import Principal
from ..cluster import network
from ..db import db
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import (AddressLimitExceeded, AuthFailure, IncorrectInstanceState,
                          InsufficientAddressCapacity, InvalidAddressNotFound,
                          InvalidAllocationIDNotFound, InvalidAssociationIDNotFound,
                          InvalidIPAddressInUse, ResourceAlreadyAssociated)
from . import states
from .models import Address, Instance

LAUNCH, ELASTIC = "launch", "elastic"
STANDARD, VPC = "standard", "vpc"
DOMAINS = (STANDARD, VPC)

#: States an instance may take an address in: it holds its place on a node (a stopped one
#: has none, and its addresses went when it stopped, as in EC2-Classic).
ASSOCIABLE = frozenset({states.PENDING, states.RUNNING})

#: ``attributes_json`` key remembering a launch with private addressing
#: (``AddressingType=private``): such an instance never gets a launch address.
PRIVATE_ADDRESSING = "addressingType"


# --- the pool --------------------------------------------------------------------------

@dataclass(frozen=True)
class Pool:
    """The cloud's public IPs on *interface*: *spans* of IPv4 addresses as integers
    (inclusive, ascending, disjoint)."""

    interface: str
    spans: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    def __contains__(self, address: object) -> bool:
        try:
            value = int(ipaddress.IPv4Address(str(address)))
        except ValueError:
            return False
        return any(first <= value <= last for first, last in self.spans)

    def __iter__(self) -> Iterator[str]:
        for first, last in self.spans:
            for value in range(first, last + 1):
                yield str(ipaddress.IPv4Address(value))


def parse_pool(config: Mapping[str, Any]) -> Pool | None:
    """The pool config describes, or None when public IPs are off (no ``public_ips``).

    ValueError naming the entry and what is wrong with it: an entry that is not an IPv4
    address, ``first-last`` range or CIDR (a CIDR gives its host addresses), a range that
    runs backwards, an address inside ``instance_subnet``, or ``public_ips`` without
    ``public_interface``."""
    entries = config.get("public_ips") or []
    if isinstance(entries, str):
        entries = entries.replace(",", " ").split()
    if not entries:
        return None
    interface = (config.get("public_interface") or "").strip()
    if not interface:
        raise ValueError("public_ips needs public_interface: the host interface facing the "
                         "lab network, where the public IPs are reachable")
    spans = sorted(_span(str(entry).strip()) for entry in entries)
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    private = network.subnet(config)
    for first, last in merged:
        if first <= int(private.broadcast_address) and last >= int(private.network_address):
            raise ValueError(f"public_ips overlaps instance_subnet {private}: public and "
                             "private addresses must be apart")
    return Pool(interface, tuple(merged))


def _span(entry: str) -> tuple[int, int]:
    """(first, last) of one ``public_ips`` entry; ValueError saying what is wrong."""
    try:
        if "/" in entry:
            net = ipaddress.IPv4Network(entry, strict=True)
            hosts = list(_ends(net))
            return int(hosts[0]), int(hosts[-1])
        if "-" in entry:
            first, last = (ipaddress.IPv4Address(part.strip()) for part in entry.split("-", 1))
            if last < first:
                raise ValueError("the range runs backwards")
            return int(first), int(last)
        address = ipaddress.IPv4Address(entry)
        return int(address), int(address)
    except ValueError as error:
        raise ValueError(f"public_ips entry {entry!r} is not an IPv4 address, first-last "
                         f"range or CIDR ({error})") from None


def _ends(net: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """The first and last host addresses of *net* (network and broadcast excluded where
    the network has them)."""
    if net.prefixlen >= 31:
        return net[0], net[-1]
    return net[1], net[-2]


def in_use() -> set[str]:
    """Every public IP that has a row (allocated or handed to an instance)."""
    return set(db.session.execute(db.select(Address.public_ip)).scalars())


def free_addresses(pool: Pool, count: int) -> list[str]:
    """Up to *count* free addresses of *pool*, lowest first (fewer when it runs out)."""
    used = in_use()
    chosen: list[str] = []
    for address in pool:
        if len(chosen) == count:
            break
        if address not in used:
            chosen.append(address)
    return chosen


def pool_usage(pool: Pool) -> dict:
    """``{"total": n, "free": n, "interface": name}`` of *pool*."""
    used = sum(1 for address in in_use() if address in pool)
    return {"total": len(pool), "free": len(pool) - used, "interface": pool.interface}


# --- instances: launch, stop/end ------------------------------------------------------

def assign_at_launch(pool: Pool | None, rows: list[Instance], public: bool) -> None:
    """New instances being recorded: each gets a launch address while *pool* (None: public
    IPs are off) has free ones; with *public* False (private addressing) none, and they
    remember it."""
    if not public:
        for row in rows:
            row.set_json("attributes", {**(row.get_json("attributes") or {}),
                                        PRIVATE_ADDRESSING: "private"})
        return
    give_launch_addresses(pool, rows)


def wants_public(instance: Instance) -> bool:
    """False for an instance launched with private addressing."""
    return (instance.get_json("attributes") or {}).get(PRIVATE_ADDRESSING) != "private"


def give_launch_addresses(pool: Pool | None, rows: Iterable[Instance]) -> None:
    """A launch address for each of *rows* that has no public IP and wants one, while the
    pool has free addresses (the others stay without)."""
    if pool is None:
        return
    wanting = [row for row in rows if not row.public_ip and wants_public(row)]
    for row, address in zip(wanting, free_addresses(pool, len(wanting))):
        db.session.add(Address(public_ip=address, kind=LAUNCH, owner_id=row.owner_id,
                               instance_id=row.id))
        row.public_ip = address
    db.session.flush()


def instance_left(instance_id: str) -> None:
    """The instance stopped or ended: its launch address goes back to the pool and its
    elastic IP is disassociated (it stays allocated to its owner)."""
    db.session.execute(db.delete(Address).where(Address.instance_id == instance_id,
                                                 Address.kind == LAUNCH))
    db.session.execute(db.update(Address).where(Address.instance_id == instance_id)
                       .values(instance_id=None, association_id=None))
    db.session.execute(db.update(Instance).where(Instance.id == instance_id)
                       .values(public_ip=None))


# --- elastic IPs -----------------------------------------------------------------------

def allocate(principal: Principal, pool: Pool, domain: str, limit: int,
             tag_map: Mapping[str, str] | None = None, wanted: str | None = None) -> Address:
    """AllocateAddress: a free address of *pool* (*wanted* if given and free) for the
    caller's account, in *domain* (a ``vpc`` one also gets an allocation id, which its
    tags are keyed by). AddressLimitExceeded past *limit* elastic IPs,
    InsufficientAddressCapacity when the pool has none left."""
    if domain not in DOMAINS:
        raise InvalidParameterValue(f"Invalid value '{domain}' for domain.")
    if tag_map and domain != VPC:
        raise InvalidParameterValue("Only vpc addresses can be tagged (tags are kept by "
                                    "allocation id, which standard addresses do not have).")
    if len(owned(principal)) >= limit:
        raise AddressLimitExceeded("The maximum number of addresses has been reached.")
    quotas.check(principal, "ec2:AllocateAddress", {"ec2:quota-addressnumber": 1})
    if wanted is not None:
        address = _recoverable(pool, wanted)
    else:
        free = free_addresses(pool, 1)
        if not free:
            raise InsufficientAddressCapacity("Not enough available addresses to satisfy "
                                              "your minimum request.")
        address = free[0]
    row = Address(public_ip=address, kind=ELASTIC, owner_id=principal.account_id,
                  domain=domain, creator_user_id=quotas.creator(principal),
                  allocation_id=ids.resource_id("eipalloc") if domain == VPC else None)
    db.session.add(row)
    db.session.flush()
    if tag_map:
        tags.tag_new_resources(principal, "elastic-ip", [row.allocation_id], dict(tag_map))
    return row


def _recoverable(pool: Pool, wanted: str) -> str:
    """*wanted* (AllocateAddress' ``Address``) if it is a free address of the pool."""
    address = check_ip(wanted, "Address")
    if address not in pool or address in in_use():
        raise InvalidAddressNotFound(f"Address '{address}' not found: it is not a free "
                                     "address of this cloud's public pool.")
    return address


def owned(principal: Principal) -> list[Address]:
    """The caller's elastic IPs, by address."""
    rows = db.session.execute(db.select(Address).filter_by(
        kind=ELASTIC, owner_id=principal.account_id)).scalars()
    return sorted(rows, key=lambda row: ipaddress.IPv4Address(row.public_ip))


def check_ip(value: str, parameter: str) -> str:
    """*value* as a dotted IPv4 address, or InvalidParameterValue."""
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise InvalidParameterValue(f"Invalid value '{value}' for {parameter}.") from None


def find(principal: Principal, public_ip: str | None = None,
         allocation_id: str | None = None, association_id: str | None = None) -> Address:
    """One of the caller's elastic IPs, named by exactly one of its public IP, allocation id
    or association id. An address nobody holds is InvalidAddress.NotFound, one another
    account holds (or an instance's launch address) AuthFailure; unknown ids are
    InvalidAllocationID.NotFound / InvalidAssociationID.NotFound."""
    if allocation_id:
        row = db.session.execute(db.select(Address).filter_by(
            allocation_id=allocation_id, owner_id=principal.account_id)).scalar()
        if row is None:
            raise InvalidAllocationIDNotFound(
                f"The allocation ID '{allocation_id}' does not exist")
        return row
    if association_id:
        row = db.session.execute(db.select(Address).filter_by(
            association_id=association_id, owner_id=principal.account_id)).scalar()
        if row is None:
            raise InvalidAssociationIDNotFound(
                f"The association ID '{association_id}' does not exist")
        return row
    if not public_ip:
        raise MissingParameter("Either public IP or allocation id must be specified")
    address = check_ip(public_ip, "PublicIp")
    row = db.session.get(Address, address)
    if row is None:
        raise InvalidAddressNotFound(f"Address '{address}' not found.")
    if row.kind != ELASTIC or row.owner_id != principal.account_id:
        raise AuthFailure(f"The address '{address}' does not belong to you.")
    return row


def describe(principal: Principal, public_ips: Iterable[str] = (),
             allocation_ids: Iterable[str] = ()) -> list[Address]:
    """DescribeAddresses' selection: the caller's elastic IPs (launch addresses are not
    elastic and not listed, as in EC2-Classic), narrowed to *public_ips* and
    *allocation_ids*, every one of which must be the caller's (else NotFound)."""
    rows = owned(principal)
    wanted_ips = [check_ip(value, "PublicIp") for value in public_ips]
    if wanted_ips:
        missing = sorted(set(wanted_ips) - {row.public_ip for row in rows})
        if missing:
            raise InvalidAddressNotFound(f"Address '{', '.join(missing)}' not found.")
        rows = [row for row in rows if row.public_ip in wanted_ips]
    allocation_ids = list(allocation_ids)
    if allocation_ids:
        missing = sorted(set(allocation_ids) - {row.allocation_id for row in rows})
        if missing:
            raise InvalidAllocationIDNotFound(
                f"The allocation ID '{', '.join(missing)}' does not exist")
        rows = [row for row in rows if row.allocation_id in allocation_ids]
    return rows


def associate(pool: Pool | None, row: Address, instance: Instance,
              allow_reassociation: bool) -> bool:
    """AssociateAddress: *row* (the caller's elastic IP) becomes *instance*'s public IP.

    The instance gives back its launch address or drops its other elastic IP (kept
    allocated). An address associated with another instance moves (a ``standard`` one
    always, a ``vpc`` one only with *allow_reassociation*, else Resource.AlreadyAssociated);
    the instance it leaves gets a fresh launch address. IncorrectInstanceState unless the
    instance is pending or running. True if anything changed."""
    if instance.state not in ASSOCIABLE:
        raise IncorrectInstanceState(f"The instance '{instance.id}' is not in a state from "
                                     "which an address can be associated with it.")
    if row.instance_id == instance.id:
        return False
    if row.instance_id and row.domain == VPC and not allow_reassociation:
        raise ResourceAlreadyAssociated(f"resource {row.allocation_id} is already "
                                        f"associated with associate-id {row.association_id}")
    _drop_public_ip(instance)      # first: its launch address may serve the one left
    if row.instance_id:
        _detach(pool, row)
    row.instance_id = instance.id
    row.association_id = ids.resource_id("eipassoc") if row.domain == VPC else None
    instance.public_ip = row.public_ip
    db.session.flush()
    return True


def disassociate(pool: Pool | None, row: Address) -> bool:
    """DisassociateAddress: *row* leaves its instance, which gets a fresh launch address
    (if it wants one and the pool has one). True if it was associated."""
    if not row.instance_id:
        return False
    _detach(pool, row)
    db.session.flush()
    return True


def release(pool: Pool | None, row: Address) -> bool:
    """ReleaseAddress: *row* goes back to the pool, its tags with it. A ``standard``
    address is disassociated first (EC2-Classic); a ``vpc`` one must have been
    (InvalidIPAddress.InUse). True if it was associated."""
    if row.instance_id and row.domain == VPC:
        raise InvalidIPAddressInUse(f"Address '{row.public_ip}' is in use.")
    moved = disassociate(pool, row)
    if row.allocation_id:
        tags.delete_all(row.allocation_id)
    db.session.delete(row)
    db.session.flush()
    return moved


def _detach(pool: Pool | None, row: Address) -> None:
    """Take *row* off its instance, which gets a launch address in its place."""
    instance = db.session.get(Instance, row.instance_id)
    row.instance_id = None
    row.association_id = None
    if instance is not None and instance.public_ip == row.public_ip:
        instance.public_ip = None
        db.session.flush()
        if instance.state in ASSOCIABLE:
            give_launch_addresses(pool, [instance])


def _drop_public_ip(instance: Instance) -> None:
    """*instance* is about to get an elastic IP: its launch address goes back to the pool,
    its other elastic IP is disassociated (it stays allocated)."""
    for held in db.session.execute(db.select(Address).filter_by(
            instance_id=instance.id)).scalars():
        if held.kind == LAUNCH:
            db.session.delete(held)
        else:
            held.instance_id = None
            held.association_id = None
    instance.public_ip = None
    db.session.flush()


# --- DescribeAddresses' filters ----------------------------------------------------------

def filter_getters(private_ips: Mapping[str, str],
                   region: str) -> dict[str, Callable[[Address], Any]]:
    """DescribeAddresses' filters (tags aside) as getters of an address's values;
    *private_ips* maps instance ids to their private IPs. No address has a network
    interface, so the ``network-interface-*`` filters match nothing."""
    return {
        "allocation-id": lambda row: row.allocation_id,
        "association-id": lambda row: row.association_id,
        "domain": lambda row: row.domain,
        "instance-id": lambda row: row.instance_id,
        "network-border-group": lambda row: region,
        "network-interface-id": lambda row: None,
        "network-interface-owner-id": lambda row: None,
        "private-ip-address": lambda row: private_ips.get(row.instance_id or ""),
        "public-ip": lambda row: row.public_ip,
    }


#: ``publicIpv4Pool`` of every address: the provider's own pool, as AWS names its own.
PUBLIC_IPV4_POOL = "amazon"


def private_ips(rows: Iterable[Address]) -> dict[str, str]:
    """Instance id -> private IP of the instances *rows* are associated with."""
    instance_ids = {row.instance_id for row in rows if row.instance_id}
    if not instance_ids:
        return {}
    return dict(db.session.execute(db.select(Instance.id, Instance.private_ip).where(
        Instance.id.in_(instance_ids))).all())


def _allocation_owned(owner_id: str, allocation_id: str) -> bool:
    return db.session.execute(db.select(Address.public_ip).filter_by(
        allocation_id=allocation_id, owner_id=owner_id)).first() is not None


# vpc addresses are tagged by allocation id (CreateTags, TagSpecification on AllocateAddress)
tags.register_resource("eipalloc-", "elastic-ip", _allocation_owned)
