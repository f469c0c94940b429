"""The registry of EC2 Query actions.

Each resource family's module (images, instances, volumes...) registers its handlers here
with ``@registry.action(...)``; the package (:mod:`eucalite.compute.ec2`) imports those
modules and serves the registry. Keeping the registry in its own module means the handler
modules never import the package that imports them.

It also holds what several handler modules share about clients written for Eucalyptus: the
classic path (:data:`CLASSIC_EC2_PATH`), the old unnumbered list parameters the registry
accepts (:data:`SINGULAR_FORMS`), and :class:`NamespacedBody` for an answer in Eucalyptus'
own namespace.
"""
from __future__ import annotations

from ...query import ActionRegistry


#: The list parameters EC2 (and Eucalyptus) also took in the old unnumbered form, as one
#: member (``KeyName=k`` for ``KeyName.1=k``): the id and name lists of the Describe calls
#: and of the instance state changes, which older clients (libcloud's get_key_pair,
#: scripts written for Eucalyptus) still send that way.
SINGULAR_FORMS: dict[str, tuple[str, ...]] = {
    "DescribeKeyPairs": ("KeyName", "KeyPairId"),
    "DescribeInstances": ("InstanceId",),
    "DescribeInstanceStatus": ("InstanceId",),
    "TerminateInstances": ("InstanceId",),
    "StopInstances": ("InstanceId",),
    "StartInstances": ("InstanceId",),
    "RebootInstances": ("InstanceId",),
    "DescribeImages": ("ImageId", "Owner", "ExecutableBy"),
    "DescribeVolumes": ("VolumeId",),
    "DescribeVolumeStatus": ("VolumeId",),
    "DescribeSnapshots": ("SnapshotId", "Owner", "RestorableBy"),
    "DescribeSecurityGroups": ("GroupName", "GroupId"),
    "DescribeAddresses": ("PublicIp", "AllocationId"),
    "DescribeAvailabilityZones": ("ZoneName",),
    "DescribeRegions": ("RegionName",),
    "DescribeInstanceTypes": ("InstanceType",),
}


class Ec2Registry(ActionRegistry):
    """Every EC2 action also accepts ``DryRun``, and the lists of :data:`SINGULAR_FORMS`
    their unnumbered one-member form."""

    def action(self, name, params=()):
        return super().action(name, tuple(params) + ("DryRun",))

    def lookup(self, params):
        """The action, as :meth:`ActionRegistry.lookup`; its :data:`SINGULAR_FORMS` sent
        unnumbered are rewritten in *params* as their ``.1`` member, so handlers see one
        form."""
        action = super().lookup(params)
        for name in SINGULAR_FORMS.get(action.name, ()):
            value = params.tree.get(name)
            if isinstance(value, str):
                params.tree[name] = {"1": value}
        return action


registry = Ec2Registry("ec2")

#: Where Eucalyptus served EC2 (euca2ools' and libcloud's default path): the same API as
#: ``/services/compute``, except where a Eucalyptus client expects Eucalyptus' own shape.
CLASSIC_EC2_PATH = "/services/Eucalyptus"


class NamespacedBody(dict):
    """A response body rendered in its own XML namespace instead of EC2's (a Eucalyptus
    message such as its DescribeInstanceTypes answer)."""

    def __init__(self, namespace: str, body: dict):
        super().__init__(body)
        self.namespace = namespace
