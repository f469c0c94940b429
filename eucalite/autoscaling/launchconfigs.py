"""Launch configurations: what a group launches, checked when created as AWS does (the
image, instance type, key pair and security groups must exist), kept immutable, and turned
into the cloud controller's :class:`~eucalite.compute.instances.LaunchRequest`."""
from __future__ import annotations

from typing import Any

from ..accounts import Principal
from ..compute.instances import LaunchRequest, decode_user_data
from ..db import db
from ..errors import AwsError
from .common import already_exists, arn, dumps, in_use, loads, utc, validation
from .models import Group, LaunchConfiguration

#: CreateLaunchConfiguration members eucalite keeps and answers back.
KEPT = ("ImageId", "KeyName", "SecurityGroups", "UserData", "InstanceType", "KernelId",
        "RamdiskId", "BlockDeviceMappings", "InstanceMonitoring", "IamInstanceProfile",
        "AssociatePublicIpAddress", "MetadataOptions", "EbsOptimized", "PlacementTenancy")

#: Members that ask for what a eucalite cloud does not have.
UNSUPPORTED = {"SpotPrice": "Spot Instances", "ClassicLinkVPCId": "ClassicLink",
               "ClassicLinkVPCSecurityGroups": "ClassicLink"}

#: The most launch configurations an account may have (AWS's default quota).
MAX_PER_ACCOUNT = 200


def create(principal: Principal, region: str, request: dict[str, Any], compute) -> None:
    """CreateLaunchConfiguration: AlreadyExists for a taken name, ValidationError for what
    cannot launch (checked through *compute* as the caller: the image must be launchable,
    the key pair and groups the caller's)."""
    name = request["LaunchConfigurationName"]
    for member, what in UNSUPPORTED.items():
        if request.get(member):
            raise validation(f"{member} is not supported: this cloud has no {what}.")
    definition = {key: request[key] for key in KEPT if key in request}
    if request.get("InstanceId"):
        definition = {**_from_instance(principal, request["InstanceId"], compute),
                      **definition}
    for member in ("ImageId", "InstanceType"):
        if not definition.get(member):
            raise validation(f"{member} is required when no InstanceId is given.")
    if definition.get("PlacementTenancy", "default") != "default":
        raise validation("Only the default placement tenancy is supported.")
    to_launch_request(definition, tags=None, zone=None)      # user data, mappings
    check_launchable(principal, compute, image_id=definition["ImageId"],
                     instance_type=definition["InstanceType"],
                     key_name=definition.get("KeyName"),
                     groups=definition.get("SecurityGroups") or [])
    taken = db.session.execute(db.select(LaunchConfiguration.id).where(
        LaunchConfiguration.account_id == principal.account_id,
        LaunchConfiguration.name == name)).first()
    if taken:
        raise already_exists(f"Launch Configuration by this name already exists - A launch "
                             f"configuration already exists with the name {name}")
    count = db.session.execute(db.select(db.func.count()).select_from(LaunchConfiguration)
                               .where(LaunchConfiguration.account_id == principal.account_id)
                               ).scalar()
    if count >= MAX_PER_ACCOUNT:
        raise AwsError(f"You have reached the limit of {MAX_PER_ACCOUNT} launch "
                       "configurations.", code="LimitExceeded", status=400)
    db.session.add(LaunchConfiguration(
        account_id=principal.account_id, name=name,
        arn=arn(region, principal.account_id, "launchConfiguration",
                f"launchConfigurationName/{name}"),
        definition_json=dumps(definition)))


def check_launchable(principal: Principal, compute, *, image_id: str, instance_type: str,
                     key_name: str | None, groups: list[str]) -> None:
    """ValidationError unless *principal* could launch this (AWS checks when a launch
    configuration is created, not only when the group first launches)."""
    try:
        compute.check_launch(principal, image_id=image_id, instance_type=instance_type,
                             key_name=key_name, security_groups=groups)
    except AwsError as error:
        if error.code == "InternalError":
            raise
        raise validation(error.message) from None


def _from_instance(principal: Principal, instance_id: str, compute) -> dict[str, Any]:
    """The members a launch configuration copies from a running instance (InstanceId)."""
    try:
        instance = compute.instance(principal, instance_id)
    except AwsError:
        raise validation(f"Invalid instance id {instance_id}.") from None
    definition = {"ImageId": instance.image_id, "InstanceType": instance.instance_type}
    if instance.key_name:
        definition["KeyName"] = instance.key_name
    if instance.kernel_id:
        definition["KernelId"] = instance.kernel_id
    if instance.ramdisk_id:
        definition["RamdiskId"] = instance.ramdisk_id
    return definition


def named(account_id: str, name: str) -> LaunchConfiguration:
    row = db.session.execute(db.select(LaunchConfiguration).where(
        LaunchConfiguration.account_id == account_id,
        LaunchConfiguration.name == name)).scalar_one_or_none()
    if row is None:
        raise validation(f"Launch configuration name not found - Launch configuration "
                         f"{name} not found")
    return row


def describe(account_id: str, names: list[str], after: int, limit: int
             ) -> tuple[list[LaunchConfiguration], int | None]:
    """The account's launch configurations (only *names* when given), by name, a page of
    at most *limit* from position *after*; and the next position, if there is more."""
    query = db.select(LaunchConfiguration).where(
        LaunchConfiguration.account_id == account_id)
    if names:
        query = query.where(LaunchConfiguration.name.in_(names))
    rows = db.session.execute(query.order_by(LaunchConfiguration.name)
                              .offset(after).limit(limit + 1)).scalars().all()
    return rows[:limit], (after + limit if len(rows) > limit else None)


def delete(account_id: str, name: str) -> None:
    """DeleteLaunchConfiguration: ResourceInUse while a group uses it."""
    row = named(account_id, name)
    user = db.session.execute(db.select(Group.name).where(
        Group.account_id == account_id, Group.launch_config == name)).scalar()
    if user is not None:
        raise in_use(f"Cannot delete launch configuration {name} because it is attached to "
                     f"AutoScalingGroup {user}")
    db.session.delete(row)


def render(row: LaunchConfiguration) -> dict[str, Any]:
    """DescribeLaunchConfigurations' LaunchConfiguration."""
    definition = loads(row.definition_json, {})
    answer = {"LaunchConfigurationName": row.name, "LaunchConfigurationARN": row.arn,
              "CreatedTime": utc(row.created_at), "SecurityGroups": [], "KernelId": "",
              "RamdiskId": "", "KeyName": "", "UserData": "", "BlockDeviceMappings": [],
              "InstanceMonitoring": {"Enabled": True}, "EbsOptimized": False}
    answer.update(definition)
    return answer


def to_launch_request(definition: dict[str, Any], *, tags: dict[str, str] | None,
                      zone: str | None, system_tags: dict[str, str] | None = None
                      ) -> LaunchRequest:
    """One instance of *definition* (a launch configuration's members) in *zone*, tagged
    *tags* (already validated) and *system_tags* (``aws:`` ones the group sets)."""
    monitoring = definition.get("InstanceMonitoring", {}).get("Enabled", True)
    profile = definition.get("IamInstanceProfile")
    return LaunchRequest(
        image_id=definition["ImageId"], instance_type=definition["InstanceType"],
        key_name=definition.get("KeyName") or None,
        security_groups=[group for group in definition.get("SecurityGroups") or []
                         if not group.startswith("sg-")] or None,
        security_group_ids=[group for group in definition.get("SecurityGroups") or []
                            if group.startswith("sg-")] or None,
        public_ip=definition.get("AssociatePublicIpAddress", True),
        user_data=decode_user_data(definition.get("UserData")),
        zone=zone, kernel_id=definition.get("KernelId") or None,
        ramdisk_id=definition.get("RamdiskId") or None, tags=tags or None,
        system_tags=system_tags or None,
        metadata_options=_metadata_options(definition.get("MetadataOptions")),
        block_devices=_mappings(definition.get("BlockDeviceMappings") or []) or None,
        iam_instance_profile=(None if not profile else
                              ("arn", profile) if profile.startswith("arn:")
                              else ("name", profile)),
        monitoring=bool(monitoring))


def _metadata_options(options: dict | None) -> dict | None:
    """A launch configuration's MetadataOptions in RunInstances' terms."""
    if not options:
        return None
    return {key: str(value) for key, value in options.items()}


def _mappings(items: list[dict]) -> list[dict]:
    """BlockDeviceMappings (the API's structures) as the cloud controller reads them."""
    mappings = []
    for item in items:
        mapping: dict = {"device": item["DeviceName"]}
        if item.get("VirtualName"):
            mapping["virtual"] = item["VirtualName"]
        if item.get("NoDevice"):
            mapping["no_device"] = True
        if "Ebs" in item:
            ebs = item["Ebs"]
            mapping["ebs"] = {"snapshot_id": ebs.get("SnapshotId"),
                              "volume_size": ebs.get("VolumeSize"),
                              "delete_on_termination": ebs.get("DeleteOnTermination", True),
                              "volume_type": ebs.get("VolumeType") or "standard"}
        mappings.append(mapping)
    return mappings
