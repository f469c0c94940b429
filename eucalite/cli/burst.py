"""`eucalite burst ...`: the cloud admin's burst targets (remote EC2 clouds this one
overflows into): add, list, change, check, remove.

The group is registered on the main command by :mod:`eucalite.cli.main`.
"""
from __future__ import annotations

import click

from ..api import services
from ..burst.models import POLICIES
from .common import in_app

burst_group = click.Group(
    "burst",
    help="Burst targets: remote EC2-compatible clouds (AWS, another eucalite, any EC2 "
         "endpoint) that take launches this cloud cannot or should not run. Each is the "
         "availability zone burst-NAME.")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """LOCAL=REMOTE options as a dict."""
    result = {}
    for value in values:
        local, sep, remote = value.partition("=")
        if not sep or not local or not remote:
            raise click.BadParameter(f"{value!r} is not LOCAL=REMOTE", param_hint=what)
        result[local] = remote
    return result


def _list(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


_map_options = [
    click.option("--image", "images", multiple=True, metavar="EMI=AMI",
                 help="A local image and the remote image it runs as (repeatable)."),
    click.option("--type", "types", multiple=True, metavar="LOCAL=REMOTE",
                 help="A local instance type and the remote one (repeatable)."),
    click.option("--policy", type=click.Choice(POLICIES),
                 help="when-full: only launches local capacity cannot take; always: every "
                      "launch of --accounts / --groups first."),
    click.option("--accounts", metavar="ID,...", help="Account ids the always policy takes."),
    click.option("--groups", metavar="NAME,...",
                 help="Auto Scaling group names the always policy takes."),
]


def _with(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


@burst_group.command("add")
@click.argument("name")
@click.option("--endpoint", required=True, help="The remote's EC2 endpoint URL.")
@click.option("--region", required=True, help="The remote's region (for signing).")
@click.option("--access-key-id", required=True, envvar="EUCALITE_BURST_ACCESS_KEY_ID")
@click.option("--secret-access-key", required=True, envvar="EUCALITE_BURST_SECRET_ACCESS_KEY",
              help="Stored encrypted; may come from $EUCALITE_BURST_SECRET_ACCESS_KEY "
                   "instead of the command line.")
@_with(_map_options)
@click.option("--disabled", is_flag=True, help="Add it switched off.")
@in_app
def burst_add(name, endpoint, region, access_key_id, secret_access_key, images, types,
              policy, accounts, groups, disabled):
    """Add burst target NAME (its zone: burst-NAME)."""
    target = services().burst.add_target(
        name, endpoint_url=endpoint, region=region, access_key_id=access_key_id,
        secret_access_key=secret_access_key, image_map=_pairs(images, "--image"),
        type_map=_pairs(types, "--type"), policy=policy or "when-full",
        accounts=_list(accounts), groups=_list(groups), enabled=not disabled)
    click.echo(f"added burst target {target.name} (zone {target.zone})")


@burst_group.command("list")
@in_app
def burst_list():
    """List burst targets: zone, endpoint, region, policy, state, live instances, last
    contact, last error; then each one's image and type maps."""
    burst = services().burst
    rows = burst.targets()
    if not rows:
        click.echo("no burst targets: add one with `eucalite burst add`")
        return
    click.echo("NAME\tZONE\tENDPOINT\tREGION\tPOLICY\tSTATE\tINSTANCES\tLAST_CONTACT\t"
               "LAST_ERROR")
    for target in rows:
        state = "disabled" if not target.enabled else \
            "unreachable" if target.unreachable else "available"
        click.echo("\t".join([
            target.name, target.zone, target.endpoint_url, target.region, target.policy,
            state, str(burst.live_instances(target.name)),
            target.last_contact.isoformat(timespec="seconds") if target.last_contact
            else "-", target.last_error or "-"]))
    for target in rows:
        maps = [f"image {k}={v}" for k, v in target.get_json("image_map", {}).items()] + \
            [f"type {k}={v}" for k, v in target.get_json("type_map", {}).items()]
        if target.policy == "always":
            maps += [f"account {a}" for a in target.get_json("accounts", [])] + \
                [f"group {g}" for g in target.get_json("groups", [])]
        click.echo(f"{target.name}: {', '.join(maps) or 'maps nothing'}")


@burst_group.command("set")
@click.argument("name")
@click.option("--endpoint", help="A new endpoint URL.")
@click.option("--region", help="A new region.")
@click.option("--access-key-id", help="New credentials (with --secret-access-key).")
@click.option("--secret-access-key", envvar="EUCALITE_BURST_SECRET_ACCESS_KEY")
@_with(_map_options)
@click.option("--enable/--disable", default=None, help="Switch it on or off for launches.")
@in_app
def burst_set(name, endpoint, region, access_key_id, secret_access_key, images, types,
              policy, accounts, groups, enable):
    """Change burst target NAME: options given replace the setting (--image and --type
    replace the whole map); the others stay."""
    changes = {"endpoint_url": endpoint, "region": region, "policy": policy,
               "enabled": enable,
               "accounts": _list(accounts) if accounts is not None else None,
               "groups": _list(groups) if groups is not None else None,
               "image_map": _pairs(images, "--image") if images else None,
               "type_map": _pairs(types, "--type") if types else None}
    credentials = {"access_key_id": access_key_id, "secret_access_key": secret_access_key} \
        if access_key_id or secret_access_key else {}
    services().burst.change_target(
        name, {key: value for key, value in changes.items() if value is not None},
        **credentials)
    click.echo(f"changed burst target {name}")


@burst_group.command("check")
@click.argument("name")
@in_app
def burst_check(name):
    """Ask burst target NAME whether it answers with its credentials now."""
    error = services().burst.check_target(name)
    if error:
        raise click.ClickException(error)
    click.echo(f"burst target {name} answers")


@burst_group.command("remove")
@click.argument("name")
@in_app
def burst_remove(name):
    """Remove burst target NAME (refused while instances run there)."""
    services().burst.remove_target(name)
    click.echo(f"removed burst target {name}")
