"""Nodes (hosts running VMs), for the cloud admin, grouped by zone: capacity (physical, and
what each node's overcommit ratios, else the cloud's, let it hold), last seen, enabling,
disabling or draining each for new instances, removing it (a lost one with its instances)
and setting its own ratios (what `eucalite node list/enable/disable/drain/remove/set` do)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...cluster.scheduler import DEFAULT_RATIO, MAX_RATIOS, Overcommit
from .. import blueprint
from ..session import act, admin_required
from . import add_nav

add_nav("console.nodes", "Nodes", admin=True)


@blueprint.route("/nodes")
@admin_required
def nodes():
    return render_template("console/nodes.html", nodes=services().cluster.node_capacities(),
                           overcommit=Overcommit.of(services().config), max_ratios=MAX_RATIOS,
                           node_timeout=services().config["node_timeout"])


@blueprint.route("/nodes/rows")
@admin_required
def nodes_rows():
    return render_template("console/nodes_rows.html", nodes=services().cluster.node_capacities())


@blueprint.route("/nodes/<node_id>/state", methods=["POST"])
@admin_required
def node_state(node_id):
    state = request.form.get("state", "")
    act(lambda: services().cluster.set_node_state(node_id, state), f"Node {node_id} is now {state}.")
    return redirect(url_for("console.nodes"))


@blueprint.route("/nodes/<node_id>/remove", methods=["POST"])
@admin_required
def node_remove(node_id):
    if request.form.get("force"):
        act(lambda: services().compute.remove_lost_node(node_id),
            f"Node {node_id} is removed; its instances ended.")
    else:
        act(lambda: services().cluster.remove_node(node_id), f"Node {node_id} is removed.")
    return redirect(url_for("console.nodes"))


@blueprint.route("/nodes/<node_id>/overcommit", methods=["POST"])
@admin_required
def node_overcommit(node_id):
    # An empty field is the cloud's ratio, as the form says.
    cpu, memory = (request.form.get(field, "").strip() or DEFAULT_RATIO
                   for field in ("cpu_overcommit", "memory_overcommit"))
    act(lambda: services().cluster.set_node_overcommit(node_id, cpu, memory),
        f"Node {node_id}: vCPUs per core {cpu}, memory ratio {memory}.")
    return redirect(url_for("console.nodes"))
