"""The bundle of service objects, wired in one place (:meth:`Services.build`) and shared by
every adapter: the EC2 and IAM Query handlers, the S3 REST handlers, the console and the CLI
reach the roles through it (``eucalite.api.services()`` inside a request)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .burst.service import BurstService
from .autoscaling.service import AutoScalingService
from .cloudwatch import ec2actions
from .cloudwatch.service import CloudWatchService
from .cluster.service import ClusterService
from .compute import lifecycle
from .compute import nodemetadata
from .compute.ebsroot import ComputeView
from .compute.nodebundles import NodeBundles
from .compute.service import ComputeService
from .ebs.service import EbsService
from .iam.service import IamService
from .s3.service import S3Service
from .sts.service import StsService


@dataclass
class Services:
    """One service object per role, each given the others it uses."""

    config: dict[str, Any]
    cluster: ClusterService
    compute: ComputeService
    s3: S3Service
    ebs: EbsService
    iam: IamService
    sts: StsService
    cloudwatch: CloudWatchService
    autoscaling: AutoScalingService
    burst: BurstService

    @classmethod
    def build(cls, config: dict[str, Any], app) -> "Services":
        """Build and wire every service. *app* is the Flask app whose contexts the
        background worker opens for instance and volume jobs."""
        s3 = S3Service(config)
        # the node's image cache is filled from bundles in Walrus
        cluster = ClusterService(config, image_source=lifecycle.bundle_source(
            s3.store, config["data_dir"]))
        # nodes on other hosts read bundles through the internal API
        cluster.bundles = NodeBundles(s3.store, config["data_dir"])
        # guests of joined nodes get their metadata through the internal API
        cluster.node_metadata = nodemetadata.answerer(app)
        ebs = EbsService(config, cluster, s3.store, ComputeView())
        compute = ComputeService(config, cluster, s3, ebs)
        # one worker runs instance and volume jobs beside the requests
        compute.worker = lifecycle.Worker(app)
        ebs.bind(app, compute.worker)
        # burst targets take launches this cloud cannot (or should not) run; their remote
        # work runs on the same worker
        burst = BurstService(config)
        burst.worker = compute.worker
        compute.burst = burst
        # alarms act on instances through the cloud controller
        cloudwatch = CloudWatchService(config)
        ec2actions.register(cloudwatch.actions, compute)
        # groups launch through the cloud controller; their policies run from alarms
        autoscaling = AutoScalingService(config, compute, cloudwatch)
        return cls(config=config, cluster=cluster, compute=compute, s3=s3, ebs=ebs,
                   iam=IamService(config), sts=StsService(config), cloudwatch=cloudwatch,
                   burst=burst, autoscaling=autoscaling)
