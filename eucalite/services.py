"""The bundle of service objects wired in ``create_app`` and shared by every adapter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cluster.service import ClusterService
from .compute.service import ComputeService
from .s3.service import S3Service


@dataclass
class Services:
    config: dict[str, Any]
    cluster: ClusterService
    compute: ComputeService
    s3: S3Service

    @classmethod
    def build(cls, config: dict[str, Any]) -> "Services":
        cluster = ClusterService(config)
        return cls(config=config, cluster=cluster, compute=ComputeService(config, cluster),
                   s3=S3Service(config))
