"""`eucalite node ...`: list the cluster's nodes and switch them on or off for new instances.

The group is registered on the main command by :mod:`eucalite.cli.main`.
"""
from __future__ import annotations

import click

from ..api import services
from ..cluster import nodes
from ..cluster.scheduler import Overcommit
from .common import in_app

node_group = click.Group(
    "node",
    help="Nodes (hosts running VMs): list their capacity, enable or disable them for new "
         "instances (Eucalyptus' euca-describe-nodes and node state).")


def _usage(used: int, total: int) -> str:
    return f"{used}/{total}"


@node_group.command("list")
@in_app
def node_list():
    """List nodes: zone, state; vCPUs and memory (MiB) as used/allowed (the physical size
    times the overcommit ratio) then the physical CORES and RAM_MB; disk (GiB, never
    overcommitted) as used/total."""
    rows = services().cluster.list_nodes()
    if not rows:
        click.echo("no nodes: run `eucalite serve` with node duty on (the default) on a "
                   "host with libvirt")
        return
    overcommit = Overcommit.of(services().config)
    click.echo("NODE\tZONE\tSTATE\tVCPUS\tCORES\tMEMORY_MB\tRAM_MB\tDISK_GB")
    for node in rows:
        click.echo("\t".join([
            node.id, node.zone, node.state,
            _usage(node.used_cores, overcommit.cores(node.cores)), str(node.cores),
            _usage(node.used_memory_mb, overcommit.memory_mb(node.memory_mb)),
            str(node.memory_mb),
            _usage(node.used_disk_gb, node.disk_gb)]))


def _set_state(node_id: str, state: str) -> None:
    node = services().cluster.set_node_state(node_id, state)
    click.echo(f"{node.id} {node.state}")


@node_group.command("enable")
@click.argument("node_id", metavar="NODE")
@in_app
def node_enable(node_id):
    """Let NODE take new instances again."""
    _set_state(node_id, nodes.ENABLED)


@node_group.command("disable")
@click.argument("node_id", metavar="NODE")
@in_app
def node_disable(node_id):
    """Stop placing new instances on NODE; the ones it runs keep running."""
    _set_state(node_id, nodes.DISABLED)
