"""`eucalite node ...`: list the cluster's nodes, switch them on or off for new instances,
drain and remove them, and set their own overcommit ratios.

The group is registered on the main command by :mod:`eucalite.cli.main`.
"""
from __future__ import annotations

import click

from ..api import services
from ..cluster import nodes
from ..cluster.scheduler import DEFAULT_RATIO, MAX_RATIOS
from .common import in_app

node_group = click.Group(
    "node",
    help="Nodes (hosts running VMs): list their capacity, enable, disable or drain them for "
         "new instances, remove them (Eucalyptus' euca-describe-nodes and node state).")


def _usage(used: int, total: int) -> str:
    return f"{used}/{total}"


@node_group.command("list")
@in_app
def node_list():
    """List nodes: zone, state; vCPUs and memory (MiB) as used/allowed (the physical size
    times the overcommit ratio) then the physical CORES and RAM_MB; disk (GiB, never
    overcommitted) as used/total; then the ratios that apply, marked * where the node sets
    its own (else the cloud's cpu_overcommit/memory_overcommit)."""
    rows = services().cluster.node_capacities()
    if not rows:
        click.echo("no nodes: run `eucalite serve` with node duty on (the default) on a "
                   "host with libvirt")
        return
    click.echo("NODE\tZONE\tSTATE\tVCPUS\tCORES\tMEMORY_MB\tRAM_MB\tDISK_GB\t"
               "CPU_OVERCOMMIT\tMEMORY_OVERCOMMIT")
    for entry in rows:
        node = entry.node
        click.echo("\t".join([
            node.id, node.zone, node.state,
            _usage(node.used_cores, entry.cores), str(node.cores),
            _usage(node.used_memory_mb, entry.memory_mb), str(node.memory_mb),
            _usage(node.used_disk_gb, node.disk_gb),
            entry.ratio_text("cpu"),
            entry.ratio_text("memory")]))



@node_group.command("set")
@click.argument("node_id", metavar="NODE")
@click.option("--cpu-overcommit", metavar="RATIO|default",
              help=f"vCPUs NODE may promise per physical core (above 0, at most "
                   f"{MAX_RATIOS['cpu']:g}); '{DEFAULT_RATIO}': the cloud's cpu_overcommit.")
@click.option("--memory-overcommit", metavar="RATIO|default",
              help=f"Instance memory NODE may promise per MiB of RAM (above 0, at most "
                   f"{MAX_RATIOS['memory']:g}); '{DEFAULT_RATIO}': the cloud's "
                   "memory_overcommit.")
@in_app
def node_set(node_id, cpu_overcommit, memory_overcommit):
    """Set NODE's own overcommit ratios (Eucalyptus' node MAX_CORES/MAX_MEM), at once: the
    scheduler admits instances up to its cores and RAM times them. Disk is never
    overcommitted. A ratio not given stays as it is."""
    if cpu_overcommit is None and memory_overcommit is None:
        raise click.UsageError("give --cpu-overcommit and/or --memory-overcommit")
    cluster = services().cluster
    cluster.set_node_overcommit(
        node_id, nodes.KEEP if cpu_overcommit is None else cpu_overcommit,
        nodes.KEEP if memory_overcommit is None else memory_overcommit)
    [entry] = [entry for entry in cluster.node_capacities() if entry.node.id == node_id]
    click.echo(f"{node_id} cpu_overcommit {entry.ratio_text('cpu')} "
               f"memory_overcommit {entry.ratio_text('memory')}")


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


@node_group.command("drain")
@click.argument("node_id", metavar="NODE")
@in_app
def node_drain(node_id):
    """Drain NODE before removing it: no new instances go there, the ones it runs keep
    running until they end (`eucalite node enable NODE` ends the drain)."""
    _set_state(node_id, nodes.DRAINING)


@node_group.command("remove")
@click.argument("node_id", metavar="NODE")
@click.option("--force", is_flag=True,
              help="The node is lost (it stopped answering): remove it with its instances.")
@in_app
def node_remove(node_id, force):
    """Remove NODE from the cluster. Refused while instances run (or are starting or
    stopping) there: drain it and let them end first. Its stopped instances start on
    another node. With --force, a node that stopped answering is removed at once: its
    instance-store instances are terminated and its EBS-backed ones stopped (they start
    on another node), as if their domains had vanished."""
    node = (services().compute.remove_lost_node(node_id) if force
            else services().cluster.remove_node(node_id))
    click.echo(f"{node.id} removed from {node.zone}")
