"""What every Auto Scaling module shares: the API's fixed vocabularies (processes,
termination policies, lifecycle states), ARNs, the errors AWS answers, and finding a
group by name."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from .. import utctime
from ..db import db
from ..errors import AwsError
from .models import Group

#: The processes SuspendProcesses / ResumeProcesses name (DescribeScalingProcessTypes).
PROCESSES = ("Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification",
             "AZRebalance", "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy",
             "ScheduledActions")

#: DescribeTerminationPolicyTypes.
TERMINATION_POLICIES = ("AllocationStrategy", "ClosestToNextInstanceHour", "Default",
                        "NewestInstance", "OldestInstance", "OldestLaunchConfiguration",
                        "OldestLaunchTemplate")

#: DescribeAdjustmentTypes.
ADJUSTMENT_TYPES = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")

# A group member's lifecycle states (the API's LifecycleState values eucalite uses).
PENDING = "Pending"
IN_SERVICE = "InService"
STANDBY = "Standby"
TERMINATING = "Terminating"
# ... and while lifecycle hooks hold it (eucalite.autoscaling.hooks)
PENDING_WAIT, PENDING_PROCEED = "Pending:Wait", "Pending:Proceed"
TERMINATING_WAIT, TERMINATING_PROCEED = "Terminating:Wait", "Terminating:Proceed"
#: States that count toward the group's capacity.
COUNTED = (PENDING, PENDING_WAIT, PENDING_PROCEED, IN_SERVICE)

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"

#: The tag every instance a group launches carries (and the collector's dimension source).
GROUP_TAG = "aws:autoscaling:groupName"

#: DescribeAutoScalingGroups and friends: MaxRecords' default and ceiling.
DEFAULT_RECORDS = 50
MAX_RECORDS = 100


def validation(message: str) -> AwsError:
    """AWS answers most bad input, and most missing names, with ``ValidationError``."""
    return AwsError(message, code="ValidationError", status=400)


def already_exists(message: str) -> AwsError:
    return AwsError(message, code="AlreadyExists", status=400)


def in_use(message: str) -> AwsError:
    return AwsError(message, code="ResourceInUse", status=400)


def limit_exceeded(message: str) -> AwsError:
    return AwsError(message, code="LimitExceeded", status=400)


def arn(region: str, account_id: str, kind: str, path: str) -> str:
    """``arn:aws:autoscaling:<region>:<account>:<kind>:<uuid>:<path>``, AWS's form for
    groups (``autoScalingGroup``), launch configurations, policies and scheduled actions."""
    return f"arn:aws:autoscaling:{region}:{account_id}:{kind}:{uuid.uuid4()}:{path}"


def group_named(account_id: str, name: str, *, for_update: bool = False) -> Group:
    """The account's group called *name* (its name or its ARN, as the API accepts either),
    else ValidationError as AWS words it."""
    column = Group.arn if name.startswith("arn:") else Group.name
    group = db.session.execute(db.select(Group).where(
        Group.account_id == account_id, column == name)).scalar_one_or_none()
    if group is None:
        raise validation(f"AutoScalingGroup name not found - AutoScalingGroup {name} not "
                         "found")
    return group


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored time (or None) as answers give it: aware, in UTC."""
    return None if moment is None else utctime.aware(moment)


def loads(text: str | None, default=None):
    """A JSON column's value (*default* when it is NULL)."""
    return default if text is None else json.loads(text)


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def page_bounds(max_records: int | None) -> int:
    """MaxRecords as AWS takes it: 1..100, default 50."""
    if max_records is None:
        return DEFAULT_RECORDS
    if not 1 <= max_records <= MAX_RECORDS:
        raise validation(f"MaxRecords must be between 1 and {MAX_RECORDS}.")
    return max_records
