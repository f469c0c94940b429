"""The cluster controller's service object: clusters and their availability zones.

One availability zone per cluster, named in config (``zones``). Later issues add nodes,
capacity and scheduling here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: str
    region: str
    state: str = "available"
    messages: tuple[str, ...] = field(default_factory=tuple)


class ClusterService:
    def __init__(self, config: Mapping[str, Any]):
        region = config["region"]
        prefix = "".join(ch for ch in region if ch.isalnum())[:4] or "zone"
        self._zones = [Zone(name=name, zone_id=f"{prefix}-az{index}", region=region)
                       for index, name in enumerate(config["zones"], 1)]

    def zones(self) -> list[Zone]:
        """Every availability zone, in configured order."""
        return list(self._zones)
