"""Snapshots: the account's snapshots and those others shared with it, with progress while
they are taken; create a volume from one, share it (createVolumePermission) and delete it.

The same calls as the EC2 adapter (:mod:`eucalite.compute.ec2.snapshots`):
:class:`eucalite.ebs.service.EbsService`, with the signed-in user's Principal.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...errors import InvalidParameterValue
from .. import blueprint
from ..session import act, login_required, notify, principal
from . import add_nav, int_field
from .volumes import zone_names

add_nav("console.snapshots", "Snapshots")


def _rows_context() -> dict:
    who, ebs = principal(), services().ebs
    rows = ebs.visible_snapshots(who)
    rows.sort(key=lambda s: (s.started, s.id), reverse=True)
    return {"snapshots": rows, "zones": zone_names(),
            "shared_with": {s.id: ebs.snapshot_permissions(s) for s in rows
                            if s.owner_id == who.account_id}}


@blueprint.route("/snapshots")
@login_required
def snapshots():
    return render_template("console/snapshots.html", **_rows_context())


@blueprint.route("/snapshots/rows")
@login_required
def snapshots_rows():
    return render_template("console/snapshots_rows.html", **_rows_context())


@blueprint.route("/snapshots/<snapshot_id>/volume", methods=["POST"])
@login_required
def snapshots_volume(snapshot_id: str):
    created: list = []

    def create():
        created.append(services().ebs.create_volume(
            principal(), size_gb=int_field("size", "size", required=False),
            snapshot_id=snapshot_id, zone=(request.form.get("zone") or "").strip() or None,
            volume_type=None, tag_map=None))

    if act(create):
        notify(f"Creating volume {created[0].id} from {snapshot_id}.")
        return redirect(url_for("console.volumes"))
    return redirect(url_for("console.snapshots"))


@blueprint.route("/snapshots/<snapshot_id>/share", methods=["POST"])
@login_required
def snapshots_share(snapshot_id: str):
    account_id = (request.form.get("account_id") or "").strip()
    operation = request.form.get("operation", "add")

    def share():
        if not account_id:
            raise InvalidParameterValue("Give the 12-digit account id to share with.")
        if operation not in ("add", "remove"):
            raise InvalidParameterValue(f"Value ({operation}) for parameter operationType is "
                                        "invalid. Valid values: add, remove")
        add, remove = ([account_id], []) if operation == "add" else ([], [account_id])
        services().ebs.modify_snapshot_permission(principal(), snapshot_id, add, remove)

    done = (f"{snapshot_id} is shared with {account_id}." if operation == "add"
            else f"{snapshot_id} is no longer shared with {account_id}.")
    act(share, done)
    return redirect(url_for("console.snapshots"))


@blueprint.route("/snapshots/<snapshot_id>/delete", methods=["POST"])
@login_required
def snapshots_delete(snapshot_id: str):
    act(lambda: services().ebs.delete_snapshot(principal(), snapshot_id),
        f"Deleted snapshot {snapshot_id}.")
    return redirect(url_for("console.snapshots"))
