"""A node lost for good: its instances end as if their domains vanished, then it is removed.

When a node host died and will not come back (a dead disk, a machine given away), the
administrator removes it with ``eucalite node remove --force`` (or the console's button).
The failure monitor must have found it silent first (its system check failing:
``status_impaired_since``): a node that answers is drained and removed the ordinary way, so
no running guest is ever forgotten while it still runs.

Each instance placed there ends as the reconciler ends one whose domain vanished, with the
state reason ``Server.InternalError: ...`` saying the node was removed: an instance-store
instance is terminated (its disks were on the node), an EBS-backed one is stopped (its
volumes stay attached and it starts on another node), a launch in flight fails as launches
do, a termination in flight completes. Capacity, addresses and volumes are given back in
the same transaction as each instance's end; nothing is asked of the lost node.
"""
from __future__ import annotations

import logging

from ..cluster.models import Node as NodeRow
from ..cluster.service import ClusterService
from ..db import db
from ..ebs.service import EbsService
from ..errors import InvalidParameterValue
from . import ebsroot, lifecycle, netplan, states
from .models import Instance

log = logging.getLogger(__name__)

#: The states of an instance that has (or is getting, or is losing) a domain on its node.
ON_A_NODE = (states.PENDING, states.RUNNING, states.STOPPING, states.SHUTTING_DOWN)


def remove_lost_node(cluster: ClusterService, ebs: EbsService, node_id: str) -> NodeRow:
    """End every live instance of *node_id* (see the module docstring) and remove the node
    (:meth:`ClusterService.remove_node`). InvalidParameterValue for an unknown node or one
    whose system check passes (it answers: drain and remove it instead)."""
    node = db.session.get(NodeRow, node_id)
    if node is None:
        raise InvalidParameterValue(f"The node '{node_id}' does not exist.")
    if node.status_impaired_since is None:
        raise InvalidParameterValue(
            f"The node '{node_id}' answers: drain it (`eucalite node drain {node_id}`) and "
            "remove it once its instances have ended. Only a node that stopped answering "
            "(node_timeout) can be removed with its instances.")
    reason = (f"Server.InternalError: the instance's node {node_id} was removed after it "
              "stopped answering")
    ended = [instance_id for instance_id in _live_instances(node_id)
             if _end(ebs, instance_id, reason)]
    cluster.detach(node_id)         # nothing more is asked of it
    removed = cluster.remove_node(node_id)
    netplan.sync(cluster)
    log.warning("node %s removed with its %d instance(s): %s", node_id, len(ended),
                ", ".join(ended) or "none")
    return removed


def _live_instances(node_id: str) -> list[str]:
    return list(db.session.execute(
        db.select(Instance.id).where(Instance.node_id == node_id,
                                     Instance.state.in_(ON_A_NODE))
        .order_by(Instance.id)).scalars())


def _end(ebs: EbsService, instance_id: str, reason: str) -> bool:
    """End one instance of the lost node without asking the node; True if it ended here
    (False: it had meanwhile moved on, which the state machine logs)."""
    db.session.expire_all()
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state == states.TERMINATED:
        return False
    if instance.state == states.PENDING:
        return lifecycle.launch_failed(instance, None, ebs, reason)
    keeps_volumes = (instance.root_device_type == "ebs"
                     and instance.state in (states.RUNNING, states.STOPPING))
    if keeps_volumes:
        ebsroot.instance_stopped(ebs, instance_id)
        target, changes = states.STOPPED, {"node_id": None}
    else:
        lifecycle.release_node_resources(instance, None, ebs)
        target, changes = states.TERMINATED, {}
    return states.transition(instance_id, target, expected={instance.state}, reason=reason,
                             task=None, on_win=lifecycle.release_capacity(instance),
                             **changes)
