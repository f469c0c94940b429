"""Imports every module that defines tables, so Alembic and tests see the whole schema."""
from .accounts import AccessKey, Account, ConsoleSession, User  # noqa: F401
from .identity import (InlinePolicy, InstanceProfile, ManagedPolicy,  # noqa: F401
                       PolicyAttachment, PolicyVersion, Role, StsSession)
from .cluster.models import Node  # noqa: F401
from .compute.models import Image, Instance, InstanceType, KeyPair  # noqa: F401
from .tags import Tag  # noqa: F401
from .ebs.models import Snapshot, SnapshotChunk, Volume, VolumeModification  # noqa: F401
from .s3.models import Bucket, MultipartUpload, ObjectVersion, UploadPart  # noqa: F401
from .cloudwatch.models import Alarm, AlarmHistory, Metric, MetricCell  # noqa: F401
from .autoscaling.models import (Activity, Group, GroupTag, LaunchConfiguration,  # noqa: F401
                                  LifecycleHook, Member, Policy, ScheduledAction)
from .burst.models import BurstTarget  # noqa: F401
