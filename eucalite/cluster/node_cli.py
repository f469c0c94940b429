"""`eucalite node ...`: list the cluster's nodes and switch them on or off for new instances.

The group is registered on the main command in :mod:`eucalite.cli`. That module imports
this one, so its helpers (``_app``, ``_fail_on_aws_error``) are imported inside the
commands, not at import time, to avoid an import cycle.
"""
from __future__ import annotations

import functools

import click

# Same text as eucalite.cli.DATA_DIR_HELP; copied because importing it here at import time
# would be the cycle described above.
DATA_DIR_HELP = ("Data directory (database, objects, volumes). Default: $EUCALITE_DATA_DIR, "
                 "else /var/lib/eucalite for root, ~/.local/share/eucalite for others.")

node_group = click.Group(
    "node",
    help="Nodes (hosts running VMs): list their capacity, enable or disable them for new "
         "instances (Eucalyptus' euca-describe-nodes and node state).")

_data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False),
                                help=DATA_DIR_HELP)


def _app(data_dir):
    from ..cli import _app as build

    return build(data_dir)


def _fail_on_aws_error(function):
    """Report AwsError as one line and exit 1, as the other `eucalite` commands do."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from ..cli import _fail_on_aws_error as fail

        return fail(function)(*args, **kwargs)
    return wrapper


def _usage(used: int, total: int) -> str:
    return f"{used}/{total}"


@node_group.command("list")
@_data_dir_option
def node_list(data_dir):
    """List nodes: zone, state, and cores, memory (MiB), disk (GiB) as used/total."""
    from . import nodes

    with _app(data_dir).app_context():
        rows = nodes.list_nodes()
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
    from . import nodes

    with _app(data_dir).app_context():
        node = nodes.set_state(node_id, state)
        click.echo(f"{node.id} {node.state}")


@node_group.command("enable")
@click.argument("node_id", metavar="NODE")
@_data_dir_option
@_fail_on_aws_error
def node_enable(node_id, data_dir):
    """Let NODE take new instances again."""
    _set_state(node_id, data_dir, "enabled")


@node_group.command("disable")
@click.argument("node_id", metavar="NODE")
@_data_dir_option
@_fail_on_aws_error
def node_disable(node_id, data_dir):
    """Stop placing new instances on NODE; the ones it runs keep running."""
    _set_state(node_id, data_dir, "disabled")
