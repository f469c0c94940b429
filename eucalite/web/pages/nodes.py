"""Nodes (hosts running VMs), for the cloud admin: capacity (physical, and what the overcommit
ratios let each hold), last seen, and enabling or disabling each for new instances (what
`eucalite node list/enable/disable` do)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...cluster.scheduler import Overcommit
from .. import blueprint
from ..session import act, admin_required
from . import add_nav

add_nav("console.nodes", "Nodes", admin=True)


@blueprint.route("/nodes")
@admin_required
def nodes():
    return render_template("console/nodes.html", nodes=services().cluster.list_nodes(),
                           overcommit=Overcommit.of(services().config))


@blueprint.route("/nodes/rows")
@admin_required
def nodes_rows():
    return render_template("console/nodes_rows.html", nodes=services().cluster.list_nodes(),
                           overcommit=Overcommit.of(services().config))


@blueprint.route("/nodes/<node_id>/state", methods=["POST"])
@admin_required
def node_state(node_id):
    state = request.form.get("state", "")
    act(lambda: services().cluster.set_node_state(node_id, state), f"Node {node_id} is now {state}.")
    return redirect(url_for("console.nodes"))
