"""The bundle of service objects wired in ``create_app`` and shared by every adapter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cluster.service import ClusterService
from .compute import lifecycle
from .compute.ebsroot import ComputeView
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
        s3 = S3Service(config)
        # the node's image cache is filled from bundles in Walrus
        cluster = ClusterService(config, image_source=lifecycle.bundle_source(
            s3.store, config["data_dir"]))
        ebs = EbsService(config, cluster, s3.store, ComputeView())
        compute = ComputeService(config, cluster, s3, ebs)
        return cls(config=config, cluster=cluster, compute=compute, s3=s3, ebs=ebs)
