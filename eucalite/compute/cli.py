"""``eucalite instance-type``: list and resize instance types from the host (the admin's
``euca-describe-instance-types`` / ``euca-modify-instance-type``).

The integrator adds :data:`instance_type_group` to the main ``eucalite`` group. The main
CLI's helpers are imported inside each command because ``eucalite.cli`` imports this module.
"""
from __future__ import annotations

import click

instance_type_group = click.Group(
    "instance-type", help="List instance types and change their cpu, memory and disk.")


def _data_dir(function):
    """``--data-dir`` as the main CLI's commands take it (defined here, not imported, so
    that importing this module never needs ``eucalite.cli`` to be fully loaded)."""
    return click.option("--data-dir", type=click.Path(file_okay=False),
                        help="Data directory (default: $EUCALITE_DATA_DIR, else the "
                             "eucalite default).")(function)


def _admin_principal():
    """The cloud admin's admin user, in whose name a host operator acts (no key needed)."""
    from .. import accounts

    return accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                   accounts.ADMIN_USER))


@instance_type_group.command("list")
@_data_dir
def list_types(data_dir):
    """Print each type: name, cpus, memory (MiB), disk (GiB)."""
    from ..cli import _app, _fail_on_aws_error

    @_fail_on_aws_error
    def run():
        from . import instance_types

        with _app(data_dir).app_context():
            click.echo("NAME\tCPU\tMEMORY_MB\tDISK_GB")
            for row in instance_types.list_all():
                click.echo(f"{row.name}\t{row.cpu}\t{row.memory_mb}\t{row.disk_gb}")
    run()


@instance_type_group.command("set")
@click.argument("name")
@click.option("--cpu", type=click.IntRange(min=1), help="Virtual CPUs.")
@click.option("--memory", type=click.IntRange(min=1), help="Memory in MiB.")
@click.option("--disk", type=click.IntRange(min=1), help="Root disk in GiB.")
@_data_dir
def set_type(name, cpu, memory, disk, data_dir):
    """Change NAME's cpu, memory or disk; instances already running keep their size."""
    from ..cli import _app, _fail_on_aws_error

    if cpu is None and memory is None and disk is None:
        raise click.UsageError("Give at least one of --cpu, --memory, --disk.")

    @_fail_on_aws_error
    def run():
        from . import instance_types

        with _app(data_dir).app_context():
            row = instance_types.modify(_admin_principal(), name, cpu=cpu, memory_mb=memory,
                                        disk_gb=disk)
            click.echo(f"{row.name}\t{row.cpu}\t{row.memory_mb}\t{row.disk_gb}")
    run()
