"""The cloud controller's service object: what the EC2 adapter calls.

Region, zone and account-attribute facts for now; images, instances, key pairs and tags
join it in later issues. Functions take a Principal and plain values, never a request.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import config as config_module
from ..cluster.service import ClusterService, Zone


@dataclass(frozen=True)
class Region:
    name: str
    endpoint: str


#: DescribeAccountAttributes values that are true of every eucalite cloud. EC2-Classic
#: networking (no default VPC) is what Eucalyptus' EDGE mode offers.
ACCOUNT_ATTRIBUTES: dict[str, list[str]] = {
    "supported-platforms": ["EC2"],
    "default-vpc": ["none"],
}


class ComputeService:
    def __init__(self, config: Mapping[str, Any], cluster: ClusterService):
        self.config = config
        self.cluster = cluster

    def regions(self) -> list[Region]:
        """This cloud is one region; its endpoint is the EC2 URL clients use."""
        return [Region(self.config["region"], config_module.endpoints(self.config)["ec2"])]

    def zones(self) -> list[Zone]:
        return self.cluster.zones()

    def account_attributes(self) -> dict[str, list[str]]:
        return dict(ACCOUNT_ATTRIBUTES)
