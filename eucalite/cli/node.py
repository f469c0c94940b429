"""`eucalite node ...`: list the cluster's nodes and switch them on or off for new instances.

The group is registered on the main command by :mod:`eucalite.cli.main`.
"""
from __future__ import annotations

import click

from ..cluster import nodes
from .common import app, data_dir_option, fail_on_aws_error

node_group = click.Group(
    "node",
    help="Nodes (hosts running VMs): list their capacity, enable or disable them for new "
         "instances (Eucalyptus' euca-describe-nodes and node state).")


def _usage(used: int, total: int) -> str:
    return f"{used}/{total}"


@node_group.command("list")
@data_dir_option
def node_list(data_dir):
    """List nodes: zone, state, and cores, memory (MiB), disk (GiB) as used/total."""
    made = app(data_dir)
    with made.app_context():
        rows = made.extensions["eucalite"].cluster.list_nodes()
        if not rows:
            click.echo("no nodes: run `eucalite serve` with node duty on (the default) on a "
                       "host with libvirt")
            return
        click.echo("NODE\tZONE\tSTATE\tCORES\tMEMORY_MB\tDISK_GB")
        for node in rows:
            click.echo("\t".join([
                node.id, node.zone, node.state,
                _usage(node.used_cores, node.cores),
                _usage(node.used_memory_mb, node.memory_mb),
                _usage(node.used_disk_gb, node.disk_gb)]))


def _set_state(node_id: str, data_dir, state: str) -> None:
    made = app(data_dir)
    with made.app_context():
        node = made.extensions["eucalite"].cluster.set_node_state(node_id, state)
        click.echo(f"{node.id} {node.state}")


@node_group.command("enable")
@click.argument("node_id", metavar="NODE")
@data_dir_option
@fail_on_aws_error
def node_enable(node_id, data_dir):
    """Let NODE take new instances again."""
    _set_state(node_id, data_dir, nodes.ENABLED)


@node_group.command("disable")
@click.argument("node_id", metavar="NODE")
@data_dir_option
@fail_on_aws_error
def node_disable(node_id, data_dir):
    """Stop placing new instances on NODE; the ones it runs keep running."""
    _set_state(node_id, data_dir, nodes.DISABLED)
