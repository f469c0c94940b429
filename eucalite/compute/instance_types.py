"""Instance types: Eucalyptus' table of VM sizes, which the cloud admin may resize.

AWS fixes its instance types; Eucalyptus lets the cloud administrator change each type's
cpu, memory and disk (``euca-modify-instance-type``), since a private cloud's hardware is
whatever it is. The table starts as Eucalyptus 4.x's defaults plus the small t2 types that
current tools and tutorials ask for. ``m1.small`` is the type RunInstances uses when none
is given.
"""
from __future__ import annotations

from ..accounts import Principal
from ..db import db, write_lock
from ..errors import InvalidParameterValue
from ..errors.ec2 import UnauthorizedOperation
from .models import InstanceType

DEFAULT_TYPE = "m1.small"

#: (name, cpu, memory MiB, disk GiB), in Eucalyptus' display order.
DEFAULTS: tuple[tuple[str, int, int, int], ...] = (
    ("t1.micro", 1, 256, 5),
    ("m1.small", 1, 256, 5),
    ("m1.medium", 1, 512, 10),
    ("c1.medium", 2, 512, 10),
    ("m1.large", 2, 512, 10),
    ("m1.xlarge", 2, 1024, 10),
    ("m2.xlarge", 2, 2048, 10),
    ("c1.xlarge", 2, 2048, 10),
    ("m3.xlarge", 4, 2048, 15),
    ("m3.2xlarge", 4, 4096, 30),
    ("m2.2xlarge", 2, 4096, 30),
    ("cc1.4xlarge", 8, 3072, 60),
    ("m2.4xlarge", 8, 4096, 60),
    ("hi1.4xlarge", 8, 6144, 120),
    ("cc2.8xlarge", 16, 6144, 120),
    ("cg1.4xlarge", 16, 12288, 200),
    ("cr1.8xlarge", 16, 16384, 240),
    ("t2.nano", 1, 512, 5),
    ("t2.micro", 1, 1024, 5),
    ("t2.small", 1, 2048, 5),
    ("t2.medium", 2, 4096, 10),
)

#: AWS still sells the t2 family as current generation; the rest are previous generation.
CURRENT_GENERATION_FAMILIES = ("t2",)

#: Databases (by URL) this process has seen seeded, so later calls skip the check.
_seeded: set[str] = set()


def ensure_defaults() -> None:
    """Fill the table with :data:`DEFAULTS` if it is empty (idempotent, concurrency-safe).

    Called lazily by this module's functions. When it does seed, it takes the write lock,
    which ends the session's open transaction: call it (or :func:`get`) before starting a
    write transaction of your own, as RunInstances validates before it writes.
    """
    url = str(db.engine.url)
    if url in _seeded:
        return
    if db.session.execute(db.select(InstanceType.name).limit(1)).first() is None:
        write_lock()
        try:
            # Checked again under the lock: another request may have seeded meanwhile.
            if db.session.execute(db.select(InstanceType.name).limit(1)).first() is None:
                for ordinal, (name, cpu, memory_mb, disk_gb) in enumerate(DEFAULTS):
                    db.session.add(InstanceType(name=name, cpu=cpu, memory_mb=memory_mb,
                                                disk_gb=disk_gb, ordinal=ordinal))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    _seeded.add(url)


def list_all() -> list[InstanceType]:
    """Every instance type, in display order."""
    ensure_defaults()
    return list(db.session.execute(
        db.select(InstanceType).order_by(InstanceType.ordinal, InstanceType.name)).scalars())


def find(name: str) -> InstanceType | None:
    ensure_defaults()
    return db.session.get(InstanceType, name)


def get(name: str) -> InstanceType:
    """The instance type *name*, or InvalidParameterValue as EC2 reports an unknown type."""
    row = find(name)
    if row is None:
        raise InvalidParameterValue(f"Invalid value '{name}' for InstanceType.")
    return row


def is_current_generation(name: str) -> bool:
    return name.split(".", 1)[0] in CURRENT_GENERATION_FAMILIES


def _check_size(label: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise InvalidParameterValue(f"Value ({value}) for parameter {label} is invalid. "
                                    "Expected a positive integer.")


def modify(principal: Principal, name: str, cpu: int | None = None,
           memory_mb: int | None = None, disk_gb: int | None = None) -> InstanceType:
    """Change an instance type's size; cloud admin only. Running instances keep theirs."""
    if not principal.is_cloud_admin:
        raise UnauthorizedOperation("You are not authorized to perform this operation: only "
                                    "the cloud administrator may change instance types.")
    for label, value in (("Cpu", cpu), ("Memory", memory_mb), ("Disk", disk_gb)):
        _check_size(label, value)
    ensure_defaults()
    write_lock()
    try:
        row = db.session.get(InstanceType, name)
        if row is None:
            raise InvalidParameterValue(f"Invalid value '{name}' for InstanceType.")
        if cpu is not None:
            row.cpu = cpu
        if memory_mb is not None:
            row.memory_mb = memory_mb
        if disk_gb is not None:
            row.disk_gb = disk_gb
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return row
