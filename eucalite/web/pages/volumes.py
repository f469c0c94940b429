"""Volumes: create (empty, or from a snapshot the account may restore), attach to one of the
account's running instances, detach, snapshot and delete; the table refreshes itself while
volumes change state.

Every action calls what the EC2 adapter calls (:mod:`eucalite.compute.ec2.volumes`,
:mod:`eucalite.compute.ec2.snapshots`): :class:`eucalite.ebs.service.EbsService`, with the
signed-in user's Principal.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...compute import instances, states
from ...ebs.states import COMPLETED
from ...errors import InvalidParameterValue
from .. import blueprint
from ..session import act, login_required, notify, principal
from . import add_nav, int_field

add_nav("console.volumes", "Volumes")

DEFAULT_DEVICE = "/dev/sdf"
#: How the table names the backend holding a volume's blocks (Volume.backend)
BACKEND_NAMES = {"file": "file", "rbd": "Ceph RBD"}


def zone_names() -> list[str]:
    return [zone.name for zone in services().cluster.zones()]


def restorable_snapshots() -> list:
    """Completed snapshots the account may create volumes from (its own and shared)."""
    return [s for s in services().ebs.visible_snapshots(principal()) if s.state == COMPLETED]


def _rows_context() -> dict:
    who = principal()
    running: dict[str, list] = {}
    for instance in instances.visible(who):
        if instance.state == states.RUNNING:
            running.setdefault(instance.zone, []).append(instance)
    return {"volumes": services().ebs.visible_volumes(who), "running": running,
            "default_device": DEFAULT_DEVICE, "backend_names": BACKEND_NAMES}


@blueprint.route("/volumes")
@login_required
def volumes():
    return render_template("console/volumes.html", zones=zone_names(),
                           snapshots=restorable_snapshots(),
                           selected_snapshot=request.args.get("snapshot", ""),
                           **_rows_context())


@blueprint.route("/volumes/rows")
@login_required
def volumes_rows():
    return render_template("console/volumes_rows.html", **_rows_context())


@blueprint.route("/volumes/create", methods=["POST"])
@login_required
def volumes_create():
    created: list = []

    def create():
        snapshot_id = (request.form.get("snapshot_id") or "").strip() or None
        size = int_field("size", "size", required=snapshot_id is None)
        created.append(services().ebs.create_volume(
            principal(), size_gb=size, snapshot_id=snapshot_id,
            zone=(request.form.get("zone") or "").strip() or None,
            volume_type=None, tag_map=None))

    if act(create):
        notify(f"Creating volume {created[0].id}.")
    return redirect(url_for("console.volumes"))


@blueprint.route("/volumes/<volume_id>/attach", methods=["POST"])
@login_required
def volumes_attach(volume_id: str):
    instance_id = (request.form.get("instance_id") or "").strip()
    device = (request.form.get("device") or "").strip() or DEFAULT_DEVICE

    def attach():
        if not instance_id:
            raise InvalidParameterValue("Choose a running instance to attach the volume to.")
        services().ebs.attach(principal(), volume_id, instance_id, device)

    act(attach, f"Attaching {volume_id} to {instance_id} as {device}.")
    return redirect(url_for("console.volumes"))


@blueprint.route("/volumes/<volume_id>/detach", methods=["POST"])
@login_required
def volumes_detach(volume_id: str):
    force = request.form.get("force") == "1"
    act(lambda: services().ebs.detach(principal(), volume_id, None, None, force),
        f"Detaching {volume_id}.")
    return redirect(url_for("console.volumes"))


@blueprint.route("/volumes/<volume_id>/snapshot", methods=["POST"])
@login_required
def volumes_snapshot(volume_id: str):
    taken: list = []

    def take():
        taken.append(services().ebs.create_snapshot(principal(), volume_id,
                                                    request.form.get("description", "")))

    if act(take):
        notify(f"Taking snapshot {taken[0].id} of {volume_id}.")
        return redirect(url_for("console.snapshots"))
    return redirect(url_for("console.volumes"))


@blueprint.route("/volumes/<volume_id>/delete", methods=["POST"])
@login_required
def volumes_delete(volume_id: str):
    act(lambda: services().ebs.delete_volume(principal(), volume_id),
        f"Deleting volume {volume_id}.")
    return redirect(url_for("console.volumes"))
