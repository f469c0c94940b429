"""The burst targets table: remote EC2 clouds this one may overflow into."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import JsonFields, db

#: A burst target's availability zone is this prefix and its name.
ZONE_PREFIX = "burst-"

#: Policies: ``when-full`` takes launches local capacity cannot; ``always`` takes every
#: launch of the listed accounts and Auto Scaling groups first.
WHEN_FULL, ALWAYS = "when-full", "always"
POLICIES = (WHEN_FULL, ALWAYS)


class BurstTarget(db.Model, JsonFields):
    """One remote EC2 endpoint. ``credentials`` is the access key id and secret sealed
    with AES-GCM under the data directory's burst key (:mod:`eucalite.burst.sealed`).
    ``last_contact`` is when it last answered, ``last_error`` what went wrong the last
    time it did not (None after it answers again)."""

    __tablename__ = "burst_targets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_url: Mapped[str] = mapped_column(String(1024))
    region: Mapped[str] = mapped_column(String(64))
    credentials: Mapped[str] = mapped_column(Text)
    # local emi-… -> remote image id; local instance type -> remote instance type
    image_map_json: Mapped[str] = mapped_column(Text, default="{}")
    type_map_json: Mapped[str] = mapped_column(Text, default="{}")
    policy: Mapped[str] = mapped_column(String(16), default=WHEN_FULL)
    # the ``always`` policy's account ids and Auto Scaling group names
    accounts_json: Mapped[str] = mapped_column(Text, default="[]")
    groups_json: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(default=True)
    last_contact: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(1024), default=None)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def zone(self) -> str:
        return ZONE_PREFIX + self.name

    @property
    def unreachable(self) -> bool:
        """True while its last contact failed."""
        return self.last_error is not None
