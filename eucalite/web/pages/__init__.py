"""The console's pages, one module per resource family; importing one registers its views
on :data:`eucalite.web.blueprint`. Also what they share: the navigation bar (each entry shown
only to whom the gate lets see its page: :func:`shown`), reading a whole number from a form,
and naming a download's file."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Mapping
from urllib.parse import quote

from flask import g, request

from ... import access, integers
from ...api import services
from ...compute.ec2 import permissions
from ...errors import AwsError, InvalidParameterValue

#: (endpoint, label) of the navigation bar, in order; ADMIN_NAV only for the cloud admin.
NAV: list[tuple[str, str]] = []
ADMIN_NAV: list[tuple[str, str]] = []
_ORDER = ("instances", "images", "launchtemplates", "autoscaling", "keypairs",
          "securitygroups", "addresses", "volumes", "snapshots", "buckets", "metrics",
          "alarms", "iam_users", "iam_groups", "iam_roles", "iam_policies", "iam_simulator",
          "accounts", "nodes", "burst")

#: endpoint -> the action (``service:Action``, on ``*``) a user must be allowed to see that
#: page and its nav entry: the Describe/List call the page shows. Pages not named here are
#: for everyone signed in (their own credentials) or guarded by ``admin_required``.
PAGE_ACTIONS = {
    "console.instances": "ec2:DescribeInstances", "console.images": "ec2:DescribeImages",
    "console.keypairs": "ec2:DescribeKeyPairs",
    "console.launchtemplates": "ec2:DescribeLaunchTemplates",
    "console.securitygroups": "ec2:DescribeSecurityGroups",
    "console.addresses": "ec2:DescribeAddresses", "console.volumes": "ec2:DescribeVolumes",
    "console.snapshots": "ec2:DescribeSnapshots", "console.buckets": "s3:ListAllMyBuckets",
    # their detail pages and the rows their tables refresh from
    "console.instance": "ec2:DescribeInstances", "console.instances_rows":
    "ec2:DescribeInstances", "console.image": "ec2:DescribeImages",
    "console.securitygroup": "ec2:DescribeSecurityGroups",
    "console.volumes_rows": "ec2:DescribeVolumes",
    "console.snapshots_rows": "ec2:DescribeSnapshots",
    # CloudWatch: the metrics browser and the JSON its charts (and the instance page's and
    # the dashboard's) draw, the alarms and one alarm
    "console.metrics": "cloudwatch:ListMetrics", "console.metrics_data":
    "cloudwatch:GetMetricData", "console.alarms": "cloudwatch:DescribeAlarms",
    "console.alarm": "cloudwatch:DescribeAlarms",
    # Auto Scaling: the groups and one group
    "console.autoscaling": "autoscaling:DescribeAutoScalingGroups",
    "console.autoscaling_group": "autoscaling:DescribeAutoScalingGroups",
}
#: endpoint -> its own visibility rule (no arguments: asks about the signed-in user).
VISIBLE: dict[str, Callable[[], bool]] = {}


def may(action: str) -> bool:
    """Would the signed-in user be allowed *action* (``service:Action``) as such? EC2
    through :func:`eucalite.compute.ec2.permissions.may` (the table the EC2 API checks),
    the others through the gate on ``*``."""
    service, _, name = action.partition(":")
    if service == "ec2":
        return permissions.may(services(), g.principal, name)
    return access.decide(g.principal, action, "*").allowed


def shown(endpoint: str | None) -> bool:
    """Whether the signed-in user may see page *endpoint* (and its nav entry)."""
    if endpoint in VISIBLE:
        return VISIBLE[endpoint]()
    action = PAGE_ACTIONS.get(endpoint or "")
    return action is None or may(action)


#: POST endpoint -> (its EC2 action, or a function of the form giving it; the view
#: argument naming the resource, None for the action as such): the compute service does
#: not check callers (the EC2 adapter does), so the console asks the same table first.
#: The console's instance actions -> their EC2 actions.
INSTANCE_ACTIONS = {"reboot": "RebootInstances", "stop": "StopInstances",
                     "start": "StartInstances", "terminate": "TerminateInstances"}
POST_ACTIONS: dict[str, tuple[str | Callable[[Mapping[str, str]], str | None], str | None]] = {
    "console.instances_launch": ("RunInstances", None),
    "console.instance_action": (lambda form: INSTANCE_ACTIONS.get(form.get("action", "")),
                                "instance_id"),
    "console.instance_tags": (lambda form: "DeleteTags" if form.get("op") == "delete"
                              else "CreateTags", "instance_id"),
    "console.addresses_allocate": ("AllocateAddress", None),
    "console.addresses_associate": ("AssociateAddress", None),
    "console.addresses_disassociate": ("DisassociateAddress", None),
    "console.addresses_release": ("ReleaseAddress", None),
    "console.image_deregister": ("DeregisterImage", "image_id"),
    "console.image_permissions": ("ModifyImageAttribute", "image_id"),
    "console.images_import": ("RegisterImage", None),
    "console.keypairs_create": ("CreateKeyPair", None),
    "console.keypairs_delete": ("DeleteKeyPair", None),
    "console.keypairs_import": ("ImportKeyPair", None),
    "console.launchtemplates_create": ("CreateLaunchTemplate", None),
    "console.launchtemplate_default": ("ModifyLaunchTemplate", "template_id"),
    "console.launchtemplate_launch": ("RunInstances", "template_id"),
    "console.launchtemplate_delete": ("DeleteLaunchTemplate", "template_id"),
    "console.launchtemplate_delete_version": ("DeleteLaunchTemplateVersions", "template_id"),
    "console.securitygroups_create": ("CreateSecurityGroup", None),
    "console.securitygroups_delete": ("DeleteSecurityGroup", "group_id"),
    "console.securitygroup_add_rule": (
        lambda form: "AuthorizeSecurityGroupEgress" if form.get("direction") == "egress"
        else "AuthorizeSecurityGroupIngress", "group_id"),
    "console.securitygroup_remove_rule": (
        lambda form: "RevokeSecurityGroupEgress" if form.get("direction") == "egress"
        else "RevokeSecurityGroupIngress", "group_id"),
    "console.snapshots_delete": ("DeleteSnapshot", "snapshot_id"),
    "console.snapshots_share": ("ModifySnapshotAttribute", "snapshot_id"),
    "console.snapshots_volume": ("CreateVolume", "snapshot_id"),
    "console.volumes_create": ("CreateVolume", None),
    "console.volumes_attach": ("AttachVolume", "volume_id"),
    "console.volumes_detach": ("DetachVolume", "volume_id"),
    "console.volumes_delete": ("DeleteVolume", "volume_id"),
    "console.volumes_snapshot": ("CreateSnapshot", "volume_id"),
}


def permitted(endpoint: str | None, form: Mapping[str, str],
              view_args: Mapping[str, str]) -> bool:
    """May the signed-in user take the EC2 action POSTing *form* to *endpoint* asks for?
    (:data:`POST_ACTIONS`; anything else is the services' to decide.) A resource that does
    not exist is left to the view, which answers with the service's NotFound."""
    action, argument = POST_ACTIONS.get(endpoint or "", (None, None))
    name = action(form) if callable(action) else action
    if name is None:
        return True
    try:
        return permissions.may(services(), g.principal, name,
                               [view_args[argument]] if argument else [])
    except AwsError:
        return True


def add_nav(endpoint: str, label: str, admin: bool = False,
            visible: Callable[[], bool] | None = None) -> None:
    """Show *label* linking to *endpoint* in the navigation bar (once); *visible*: the
    page's own rule for who sees it (else :data:`PAGE_ACTIONS`')."""
    if visible is not None:
        VISIBLE[endpoint] = visible
    entries = ADMIN_NAV if admin else NAV
    if (endpoint, label) not in entries:
        entries.append((endpoint, label))
        entries.sort(key=lambda item: _ORDER.index(item[0].split(".")[-1])
                     if item[0].split(".")[-1] in _ORDER else len(_ORDER))


def load_all() -> None:
    """Import every page module in this package (each registers its own routes)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def int_field(name: str, label: str, *, required: bool = True,
              default: int | None = None) -> int | None:
    """The form field *name* as a whole number, read as the APIs read integers (ASCII
    digits, at most 20: :func:`eucalite.integers.parse`); *default* when empty and not
    *required*. A bad or missing value is the InvalidParameterValue the API would give."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise InvalidParameterValue(f"The request must contain a value for {label}.")
        return default
    value = integers.parse(raw)
    if value is None:
        raise InvalidParameterValue(f"Value ({raw}) for parameter {label} is invalid: "
                                    "expected a whole number.")
    return value


def attachment(filename: str) -> str:
    """A Content-Disposition that downloads as *filename*: printable ASCII in ``filename``
    (what every browser reads; anything else becomes ``_``) and exactly in ``filename*``.
    Names come from users (object keys, key pair and user names) and may hold anything; a
    header value cannot."""
    ascii_name = "".join(c if " " <= c < "\x7f" and c not in '"\\?' else "_"
                         for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
