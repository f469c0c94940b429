"""``eucalite instance-type``: list and resize instance types from the host (the admin's
``euca-describe-instance-types`` / ``euca-modify-instance-type``).

:mod:`eucalite.cli.main` adds :data:`instance_type_group` to the ``eucalite`` group.
"""
from __future__ import annotations

import click

from ..api import services
from . import common

instance_type_group = click.Group(
    "instance-type", help="List instance types and change their cpu, memory and disk.")


@instance_type_group.command("list")
@common.in_app
def list_types():
    """Print each type: name, cpus, memory (MiB), disk (GiB)."""
    click.echo("NAME\tCPU\tMEMORY_MB\tDISK_GB")
    for row in services().compute.list_instance_types():
        click.echo(f"{row.name}\t{row.cpu}\t{row.memory_mb}\t{row.disk_gb}")


@instance_type_group.command("set")
@click.argument("name")
@click.option("--cpu", type=click.IntRange(min=1), help="Virtual CPUs.")
@click.option("--memory", type=click.IntRange(min=1), help="Memory in MiB.")
@click.option("--disk", type=click.IntRange(min=1), help="Root disk in GiB.")
@common.in_app
def set_type(name, cpu, memory, disk):
    """Change NAME's cpu, memory or disk; instances already running keep their size."""
    if cpu is None and memory is None and disk is None:
        raise click.UsageError("Give at least one of --cpu, --memory, --disk.")
    row = services().compute.modify_instance_type(common.admin_principal(), name, cpu=cpu,
                                                  memory_mb=memory, disk_gb=disk)
    click.echo(f"{row.name}\t{row.cpu}\t{row.memory_mb}\t{row.disk_gb}")
