"""Placement policies: which nodes take the instances of one RunInstances request.

Pure functions over plain values (no database), so every policy is unit-tested as arithmetic.
:mod:`eucalite.cluster.nodes` reads the nodes inside its write transaction, calls
:func:`choose`, and records the result.

Policies are Eucalyptus' ``SCHEDULER`` settings:

- ``GREEDY``: the first node (by id) with room, filled before the next one is used.
- ``ROUNDROBIN``: one instance per node in turn, least recently chosen node first.
- ``POWERSAVE``: pack onto as few nodes as possible: nodes already running instances (most
  loaded first), and idle nodes only when those are full, so idle hosts can stay powered off.

What a node may hold is its physical capacity times its :class:`Overcommit` ratios (Eucalyptus'
node ``MAX_CORES``/``MAX_MEM``, nova's ``cpu_allocation_ratio``/``ram_allocation_ratio``); disk
is never overcommitted. A node may set its own ratios; where it does not, the cloud's apply
(:meth:`Overcommit.for_node`, the one rule every reader uses).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

GREEDY = "GREEDY"
ROUNDROBIN = "ROUNDROBIN"
POWERSAVE = "POWERSAVE"
POLICIES = (GREEDY, ROUNDROBIN, POWERSAVE)


@dataclass(frozen=True)
class Need:
    """What one instance reserves on its node (an instance type's cpu, memory and disk)."""

    cores: int
    memory_mb: int
    disk_gb: int

    def __post_init__(self) -> None:
        # A zero-core instance would "fit" any number of times; no instance type is that.
        if self.cores < 1 or self.memory_mb < 0 or self.disk_gb < 0:
            raise ValueError(f"invalid instance size {self}: cores must be >= 1, "
                             "memory and disk >= 0")


@dataclass(frozen=True)
class Overcommit:
    """How far a node's cores and memory may be promised to instances: vCPUs per physical
    core (*cpu*) and MiB promised per physical MiB (*memory*). Disk has no ratio: a disk
    promised twice fills the host's file system, and its guests' writes then fail.

    Ratios are positive numbers (``config.load`` checks the configured ones); 1.0 is no
    overcommit, below 1.0 keeps part of the host for itself.
    """

    cpu: float = 1.0
    memory: float = 1.0

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "Overcommit":
        """The ratios a node's config sets (``cpu_overcommit``, ``memory_overcommit``)."""
        return cls(float(config["cpu_overcommit"]), float(config["memory_overcommit"]))

    def for_node(self, node: Any) -> "Overcommit":
        """The ratios that apply to *node* (anything with ``cpu_overcommit`` and
        ``memory_overcommit``, each a ratio or None): its own where it sets one, else
        these (the cloud's)."""
        return Overcommit(self.cpu if node.cpu_overcommit is None else node.cpu_overcommit,
                          self.memory if node.memory_overcommit is None
                          else node.memory_overcommit)

    def cores(self, physical: int) -> int:
        """The vCPUs a node with *physical* cores may hold."""
        return _scaled(physical, self.cpu)

    def memory_mb(self, physical: int) -> int:
        """The MiB of instance memory a node with *physical* MiB may hold."""
        return _scaled(physical, self.memory)


#: The highest ratios a node may set: above them a node promises its guests so much more than
#: it has that they thrash (memory) or crawl (vCPUs); such a number is most likely a typo.
MAX_RATIOS = {"cpu": 64.0, "memory": 4.0}
#: What an administrator writes to give a node the cloud's ratio back.
DEFAULT_RATIO = "default"


def node_ratio(kind: str, value: Any) -> float | None:
    """A node's *kind* (``cpu`` or ``memory``) overcommit ratio from an administrator's
    *value* (a number or its text); None for ``default`` (the cloud's ratio applies).

    ValueError, saying what is allowed, unless it is a number above 0 and at most
    ``MAX_RATIOS[kind]``.
    """
    if isinstance(value, str) and value.strip().lower() == DEFAULT_RATIO:
        return None
    limit = MAX_RATIOS[kind]
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = math.nan
    if isinstance(value, bool) or not 0 < ratio <= limit:
        raise ValueError(f"{kind} overcommit must be a number above 0 and at most {limit:g} "
                         f"(1 = no overcommit), or '{DEFAULT_RATIO}' for the cloud's setting; "
                         f"got {value!r}")
    return ratio


def _scaled(physical: int, ratio: float) -> int:
    # Rounded to 1e-6 first so that 10 cores * 1.1 is 11, not 11.000000000000002 floored
    # (harmless) nor 0.29 * 100 = 28.999999999999996 floored to 28.
    return max(0, math.floor(round(physical * ratio, 6)))


#: No overcommit: what a node may hold is what it has.
PHYSICAL = Overcommit()


@dataclass(frozen=True)
class NodeView:
    """A node as the scheduler sees it: what is free now (of its overcommitted capacity:
    see :class:`Overcommit`) and how it was used."""

    id: str
    free_cores: int
    free_memory_mb: int
    free_disk_gb: int
    #: Cores reserved now; POWERSAVE prefers the most loaded nodes.
    used: int = 0
    #: Higher means ROUNDROBIN chose the node more recently.
    last_chosen: int = 0
    enabled: bool = True


def validate_policy(policy: str) -> str:
    """Return *policy* in canonical (upper) case; ValueError naming the choices if unknown.

    Meant for configuration loading, so a typo in ``scheduler`` stops the start instead of
    failing the first RunInstances.
    """
    canonical = str(policy).strip().upper()
    if canonical not in POLICIES:
        raise ValueError(f"scheduler: unknown policy {policy!r}; "
                         f"expected one of {', '.join(POLICIES)}")
    return canonical


def fits(free_cores: int, free_memory_mb: int, free_disk_gb: int, need: Need) -> int:
    """How many instances of *need* fit in the given free resources (never negative)."""
    counts = [max(0, free_cores) // need.cores]
    # A resource the instance does not use (0 MiB, 0 GiB) does not limit the count.
    if need.memory_mb:
        counts.append(max(0, free_memory_mb) // need.memory_mb)
    if need.disk_gb:
        counts.append(max(0, free_disk_gb) // need.disk_gb)
    return min(counts)


@dataclass
class _Slot:
    """A node's state while one request is being placed (mutable copy of a NodeView)."""

    id: str
    cores: int
    memory_mb: int
    disk_gb: int
    used: int
    last_chosen: int
    taken: int = 0          # instances placed on it by this request

    def has_room(self, need: Need) -> bool:
        return fits(self.cores, self.memory_mb, self.disk_gb, need) >= 1

    def take(self, need: Need, stamp: int) -> None:
        self.cores -= need.cores
        self.memory_mb -= need.memory_mb
        self.disk_gb -= need.disk_gb
        self.used += need.cores
        self.taken += 1
        self.last_chosen = stamp


# Each policy's preference: among the slots with room, the one with the smallest key wins.
# The id comes last in every key so ties break the same way on every run.
_PREFERENCE: dict[str, Callable[[_Slot], tuple]] = {
    GREEDY: lambda slot: (slot.id,),
    ROUNDROBIN: lambda slot: (slot.last_chosen, slot.id),
    POWERSAVE: lambda slot: (not (slot.used or slot.taken), -slot.used, slot.id),
}


def choose(nodes: Iterable[NodeView], need: Need, count: int, policy: str) -> list[str]:
    """Node ids for up to *count* instances of *need*, one id per instance, in launch order.

    A node may appear several times. Fewer than *count* ids come back when capacity runs
    out; the caller compares that with MinCount. Disabled nodes are never chosen.
    """
    preference = _PREFERENCE[validate_policy(policy)]
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    slots = [_Slot(node.id, node.free_cores, node.free_memory_mb, node.free_disk_gb,
                   max(0, node.used), node.last_chosen)
             for node in nodes if node.enabled]
    # Stamps above every existing last_chosen, so a node chosen now is the most recent.
    stamp = max((slot.last_chosen for slot in slots), default=0)
    chosen: list[str] = []
    for _ in range(count):
        candidates = [slot for slot in slots if slot.has_room(need)]
        if not candidates:
            break
        best = min(candidates, key=preference)
        stamp += 1
        best.take(need, stamp)
        chosen.append(best.id)
    return chosen
