"""Cloud-controller tables: images, instances, key pairs, instance types, security groups and
public addresses (tags: :mod:`eucalite.tags`).

Ids are EC2/Eucalyptus style (``emi-``, ``eki-``, ``eri-``, ``i-``, ``r-``, ``key-``,
``sg-``, ``sgr-``, ``eipalloc-``).
Every row that belongs to someone carries ``owner_id`` (the account id); services filter on
it so an account sees only what it owns or was given. Instance state changes go through
:mod:`eucalite.compute.states` (one transition table, compare-and-swap updates).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .. import tags
from ..accounts import utcnow
from ..db import JsonFields, db


class Image(db.Model, JsonFields):
    """A registered machine (emi-), kernel (eki-) or ramdisk (eri-) image."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))             # machine | kernel | ramdisk
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    state_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    # bucket/prefix.manifest.xml for bundled images; None for snapshot-backed images
    location: Mapped[str | None] = mapped_column(String(1024), default=None)
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    kernel_id: Mapped[str | None] = mapped_column(String(32), default=None)
    ramdisk_id: Mapped[str | None] = mapped_column(String(32), default=None)
    root_device_name: Mapped[str] = mapped_column(String(32), default="/dev/sda1")
    root_device_type: Mapped[str] = mapped_column(String(16), default="instance-store")
    virtualization_type: Mapped[str] = mapped_column(String(16), default="paravirtual")
    is_public: Mapped[bool] = mapped_column(default=False)
    # Account ids allowed to launch besides the owner (launchPermission).
    launch_permissions_json: Mapped[str | None] = mapped_column(Text, default=None)
    block_devices_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Parsed bundle manifest: parts (object keys, sizes, digests), sizes, encryption.
    manifest_json: Mapped[str | None] = mapped_column(Text, default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # CopyImage's ClientToken: a retried copy answers the image the first one made.
    client_token: Mapped[str | None] = mapped_column(String(64), default=None)
    # Where the image came from: CreateImage's instance, CopyImage's source image.
    source_instance_id: Mapped[str | None] = mapped_column(String(32), default=None)
    source_image_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # ImdsSupport (None, or "v2.0": instances launched from it require IMDSv2 tokens).
    imds_support: Mapped[str | None] = mapped_column(String(16), default=None)
    # Deregistration protection: "disabled", "enabled" or "enabled-with-cooldown"; when it
    # was disabled with a cooldown, DeregisterImage stays refused until *protected_until*.
    deregistration_protection: Mapped[str] = mapped_column(String(32), default="disabled")
    deregistration_protected_until: Mapped[dt.datetime | None] = mapped_column(default=None)


class KeyPair(db.Model):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)      # key-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(255))
    key_type: Mapped[str] = mapped_column(String(16), default="rsa")     # rsa | ed25519
    fingerprint: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(Text)                        # OpenSSH format
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstanceType(db.Model):
    """Eucalyptus' instance type table; the cloud admin may change cpu, memory and disk."""

    __tablename__ = "instance_types"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    cpu: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer, default=0)             # display order


class Instance(db.Model, JsonFields):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_owner_state", "owner_id", "state"),
        # DescribeInstances' pages: owner, then launch order (compute.instances.page)
        Index("ix_instances_owner_launch", "owner_id", "launch_time", "id"),
        UniqueConstraint("owner_id", "client_token", "launch_index"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)        # i-...
    reservation_id: Mapped[str] = mapped_column(String(32), index=True)  # r-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    requester_arn: Mapped[str] = mapped_column(String(255), default="")
    image_id: Mapped[str] = mapped_column(String(32))
    kernel_id: Mapped[str | None] = mapped_column(String(32), default=None)
    ramdisk_id: Mapped[str | None] = mapped_column(String(32), default=None)
    instance_type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    state_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    # The job in flight ("spawning", "terminating", ...), None when the state is stable.
    task: Mapped[str | None] = mapped_column(String(32), default=None)
    key_name: Mapped[str | None] = mapped_column(String(255), default=None)
    key_public: Mapped[str | None] = mapped_column(Text, default=None)
    user_data: Mapped[str | None] = mapped_column(Text, default=None)    # base64 of the bytes
    zone: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[str | None] = mapped_column(String(64), default=None)
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    client_token: Mapped[str | None] = mapped_column(String(64), default=None)
    launch_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    private_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    public_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    mac: Mapped[str | None] = mapped_column(String(17), default=None)
    root_device_type: Mapped[str] = mapped_column(String(16), default="instance-store")
    root_device_name: Mapped[str] = mapped_column(String(32), default="/dev/sda1")
    # cpu / memory / disk reserved on the node, released when the instance ends
    cpu: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    metadata_options_json: Mapped[str | None] = mapped_column(Text, default=None)
    attributes_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Instance status check (DescribeInstanceStatus), kept across restarts: when the
    # reconciler first looked at the running guest, and since when it has seen it not
    # running (None: it is fine).
    status_checked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    status_impaired_since: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The IAM instance profile passed at launch (RunInstances' IamInstanceProfile): its
    # role's credentials reach the guest through the metadata service.
    iam_instance_profile_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    iam_instance_profile_id: Mapped[str | None] = mapped_column(String(32), default=None)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas
    # CloudWatch monitoring: "disabled" (basic: metrics every metrics_interval) or "enabled"
    # (detailed: every detailed_metrics_interval), as MonitorInstances sets it
    monitoring: Mapped[str] = mapped_column(String(16), default="disabled")
    # Cloud-bursting (eucalite.burst): the burst target an instance runs on (then it has
    # no node) and the remote cloud's id of it, once the remote launched it.
    burst_target: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    remote_id: Mapped[str | None] = mapped_column(String(64), default=None)


class SecurityGroup(db.Model):
    """A security group (sg-): a named set of rules that instances launched in it share.

    Every account gets a ``default`` group on first use (see :mod:`eucalite.compute.secgroups`).
    """

    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)        # sg-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SecurityGroupRule(db.Model):
    """One ingress or egress rule (sgr-) of a security group.

    *protocol* is the IANA number as text, or ``"-1"`` for all protocols. For TCP/UDP
    *from_port*/*to_port* are the port range, for ICMP the type and code (-1: any); both are
    None for all protocols. The peer is either *cidr* (IPv4 CIDR) or a group
    (*peer_group_id*, owned by *peer_owner_id*, which may be another account).
    """

    __tablename__ = "security_group_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)        # sgr-...
    group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"),
                                          index=True)
    egress: Mapped[bool] = mapped_column(default=False)
    protocol: Mapped[str] = mapped_column(String(8))
    from_port: Mapped[int | None] = mapped_column(Integer, default=None)
    to_port: Mapped[int | None] = mapped_column(Integer, default=None)
    cidr: Mapped[str | None] = mapped_column(String(64), default=None)
    peer_group_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    peer_owner_id: Mapped[str | None] = mapped_column(String(32), default=None)
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstanceSecurityGroup(db.Model):
    """An instance's membership of a security group, in the order the launch named them.

    Memberships go with their instance (ON DELETE CASCADE). A migration that rebuilds the
    ``instances`` table on SQLite (batch mode) drops the old table, which deletes them:
    copy them aside first (see migration 0006)."""

    __tablename__ = "instance_security_groups"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"),
                                             primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id"), primary_key=True,
                                          index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Address(db.Model):
    """A public IP of the cloud's pool that is in use; free addresses have no row.

    ``kind`` is ``elastic`` (allocated to *owner_id* by AllocateAddress; stays until
    released) or ``launch`` (handed to *instance_id* when it started; back to the pool
    when the instance ends or gets an elastic IP). ``domain`` is what AllocateAddress was
    asked for (``standard`` for EC2-Classic, ``vpc``); both behave alike on the flat network.
    """

    __tablename__ = "addresses"

    public_ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))                        # elastic | launch
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), default=None,
                                                 index=True)
    domain: Mapped[str] = mapped_column(String(16), default="standard")
    allocation_id: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    association_id: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    instance_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    allocated: Mapped[dt.datetime] = mapped_column(default=utcnow)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas


# Instances and images can be tagged; their families may register refined checks.
tags.register_resource("i-", "instance", tags.row_owned(Instance))
for _prefix in ("emi-", "eki-", "eri-"):
    tags.register_resource(_prefix, "image", tags.row_owned(Image))


class LaunchTemplate(db.Model):
    """An EC2 launch template (lt-): a named, versioned set of RunInstances parameters.

    *latest_version* is the highest version number ever made (numbers are never reused,
    even after DeleteLaunchTemplateVersions); *default_version* is the one a launch uses when
    it names no version. The versions are :class:`LaunchTemplateVersion` rows; the rules
    are :mod:`eucalite.compute.launchtemplates`.
    """

    __tablename__ = "launch_templates"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        # DescribeLaunchTemplates' pages: owner, then creation order
        Index("ix_launch_templates_owner_created", "owner_id", "created", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)        # lt-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(128))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(2048), default="")   # the creator's ARN
    default_version: Mapped[int] = mapped_column(Integer, default=1)
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    # CreateLaunchTemplate's ClientToken: a retried create answers the template it made.
    client_token: Mapped[str | None] = mapped_column(String(64), default=None)


class LaunchTemplateVersion(db.Model, JsonFields):
    """One version of a launch template: its LaunchTemplateData as JSON (the parsed,
    checked form :mod:`eucalite.compute.launchtemplates` keeps), never changed once made."""

    __tablename__ = "launch_template_versions"

    template_id: Mapped[str] = mapped_column(
        ForeignKey("launch_templates.id", ondelete="CASCADE"), primary_key=True)
    version_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    data_json: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(2048), default="")
    # CreateLaunchTemplateVersion's ClientToken: a retry answers the version it made.
    client_token: Mapped[str | None] = mapped_column(String(64), default=None)
