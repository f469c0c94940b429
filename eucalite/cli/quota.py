"""``eucalite quota``: an account's or user's quotas (Eucalyptus' limit policies) from the
host, through the same IamService methods as the API and the console, as the cloud admin.

``quota show ACCOUNT [--user U]`` prints each key's limit and usage; ``quota set ACCOUNT
[--user U] --instances 5 --vcpus 8 ... --clear KEY`` rewrites the ``eucalite-quota`` policy
of the account's admin user (the account's quotas) or of user U.
:mod:`eucalite.cli.main` adds :data:`quota_group` to the ``eucalite`` group.
"""
from __future__ import annotations

import click

from ..api import services
from . import common

quota_group = click.Group("quota", help="Show and set account and user quotas (the SLA).")

#: option name -> quota key
OPTIONS = {
    "instances": "ec2:quota-vminstancenumber", "vcpus": "ec2:quota-cputotalsize",
    "memory-mib": "ec2:quota-memorytotalsize", "disk-gib": "ec2:quota-disktotalsize",
    "images": "ec2:quota-imagenumber", "volumes": "ec2:quota-volumenumber",
    "volume-gib": "ec2:quota-volumetotalsize", "snapshots": "ec2:quota-snapshotnumber",
    "addresses": "ec2:quota-addressnumber", "buckets": "s3:quota-bucketnumber",
    "bucket-mb": "s3:quota-bucketsize", "buckets-mb": "s3:quota-buckettotalsize",
    "objects": "s3:quota-bucketobjectnumber", "users": "iam:quota-usernumber",
    "groups": "iam:quota-groupnumber", "roles": "iam:quota-rolenumber",
    "instance-profiles": "iam:quota-instanceprofilenumber",
}


def _show(account: str, user: str | None) -> None:
    click.echo("KEY\tLIMIT\tUSED\tUNIT")
    for line in services().iam.quota_report(common.admin_principal(), account, user):
        limit = "-" if line.limit is None else line.limit
        click.echo(f"{line.key}\t{limit}\t{line.used}\t{line.unit}")


@quota_group.command("show")
@click.argument("account")
@click.option("--user", help="A user's own quotas and what it created (default: the "
                             "account's).")
@common.in_app
def show(account, user):
    """Print each quota key of ACCOUNT (or of --user): limit ('-': none) and usage."""
    _show(account, user)


def _set_options(function):
    for name, key in reversed(OPTIONS.items()):
        function = click.option(f"--{name}", name.replace("-", "_"),
                                type=click.IntRange(min=0), help=key)(function)
    return function


@quota_group.command("set")
@click.argument("account")
@click.option("--user", help="Set the user's own quotas (default: the account's).")
@click.option("--clear", multiple=True, metavar="KEY",
              help="Remove a limit: an option name (instances) or a key "
                   "(ec2:quota-vminstancenumber); repeatable.")
@_set_options
@common.in_app
def set_quota(account, user, clear, **limits):
    """Set ACCOUNT's (or --user's) limits, then print them as ``show`` does."""
    values: dict[str, int | None] = {}
    for name in clear:
        key = OPTIONS.get(name, name)
        if key not in OPTIONS.values():
            raise click.UsageError(f"Unknown quota {name!r}: one of "
                                   f"{', '.join(OPTIONS)} or their keys.")
        values[key] = None
    for name, key in OPTIONS.items():
        value = limits.get(name.replace("-", "_"))
        if value is not None:
            values[key] = value
    if not values:
        raise click.UsageError("Give at least one limit or --clear.")
    services().iam.set_quotas(common.admin_principal(), account, user, values)
    _show(account, user)
