"""The dashboard: what the signed-in account has, and, for the cloud admin, the cloud's
capacity per node (used, and physical times the node's overcommit ratios, else the cloud's)
and per instance type (both from the cloud controller's service) and the nodes' utilisation
over time (charts of their Eucalite/Node metrics, :func:`.metrics.node_charts`)."""
from __future__ import annotations

from flask import redirect, render_template, url_for

from ...api import services
from .. import blueprint
from ..session import login_required, principal
from .metrics import RANGES, node_charts


@blueprint.route("/")
def home():
    return redirect(url_for("console.dashboard"))


@blueprint.route("/dashboard")
@login_required
def dashboard():
    who = principal()
    compute = services().compute
    return render_template("console/dashboard.html", counts=compute.summary(who),
                           capacity=compute.capacity() if who.is_cloud_admin else None,
                           node_charts=node_charts() if who.is_cloud_admin else None,
                           ranges=RANGES)
