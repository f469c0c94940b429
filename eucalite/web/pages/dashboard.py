"""The dashboard: what the signed-in account has, and, for the cloud admin, the cloud's
capacity per node and per instance type."""
from __future__ import annotations

from flask import redirect, render_template, url_for

from ...db import db
from .. import blueprint
from ..session import login_required, principal


def counts(account_id: str) -> dict:
    """Instances by state, and how many volumes, snapshots, buckets, images and key pairs
    the account owns (terminated instances not counted)."""
    from ...compute.models import Image, Instance, KeyPair
    from ...ebs.models import Snapshot, Volume
    from ...s3.models import Bucket

    def count(model, **where) -> int:
        return db.session.execute(db.select(db.func.count()).select_from(model)
                                  .filter_by(**where)).scalar()

    by_state = dict(db.session.execute(
        db.select(Instance.state, db.func.count()).filter_by(owner_id=account_id)
        .where(Instance.state != "terminated").group_by(Instance.state)).all())
    return {"instances": by_state, "volumes": count(Volume, owner_id=account_id),
            "snapshots": count(Snapshot, owner_id=account_id),
            "buckets": count(Bucket, owner_id=account_id),
            "images": count(Image, owner_id=account_id),
            "keypairs": count(KeyPair, owner_id=account_id)}


def capacity() -> dict:
    """Nodes with used/total resources, and per zone the free/max count per instance type."""
    from flask import current_app

    from ...cluster import nodes
    from ...cluster.models import Node
    from ...compute import instance_types

    types = [(t.name, t.cpu, t.memory_mb, t.disk_gb) for t in instance_types.list_all()]
    zones = [z.name for z in current_app.extensions["eucalite"].cluster.zones()]
    return {"nodes": list(db.session.execute(db.select(Node).order_by(Node.id)).scalars()),
            "types": {zone: nodes.zone_capacity(zone, types) for zone in zones}}


@blueprint.route("/")
def home():
    return redirect(url_for("console.dashboard"))


@blueprint.route("/dashboard")
@login_required
def dashboard():
    who = principal()
    return render_template("console/dashboard.html", counts=counts(who.account_id),
                           capacity=capacity() if who.is_cloud_admin else None)
