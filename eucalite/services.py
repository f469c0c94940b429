"""The bundle of service objects wired in ``create_app`` and shared by every adapter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cluster.service import ClusterService
from .compute.service import ComputeService
from .ebs.service import EbsService
from .s3.service import S3Service


@dataclass
class Services:
    config: dict[str, Any]
    cluster: ClusterService
    compute: ComputeService
    s3: S3Service
    ebs: EbsService

    @classmethod
    def build(cls, config: dict[str, Any]) -> "Services":
        cluster = ClusterService(config)
        compute = ComputeService(config, cluster)
        return cls(config=config, cluster=cluster, compute=compute, s3=S3Service(config),
                   ebs=EbsService(config, cluster, compute))
