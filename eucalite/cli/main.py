"""The ``eucalite`` command: serve the cloud, print credentials, manage accounts and the DB."""
from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

import click

from .. import accounts, config as config_module, db
from ..compute import cloudkey
from ..compute.ec2.actions import CLASSIC_EC2_PATH
from ..credentials import classic_urls, env_lines, eucarc_text, profile_sections
from ..server import CannotServe, run
from ..web.session import set_password
from . import burst, common, guest, image, instance_types, join, node, quota


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eucalite")
def main():
    """eucalite: a private AWS-compatible cloud (EC2 + S3) in one process.

    Start with `eucalite serve`, then `eval "$(eucalite credentials)"` and use the aws CLI
    or boto3 as you would with AWS.
    """


# --- serve ----------------------------------------------------------------------------

@main.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for all).")
@click.option("--port", type=int, help="Port to listen on (default 8773, as Eucalyptus).")
@common.data_dir_option
@click.option("--node/--no-node", default=None,
              help="Run node duty (VMs through libvirt) on this host. Default: on. With "
                   "--no-node no hypervisor connection is opened.")
@click.option("--threads", type=int, help="Requests running at once (default 16).")
@click.option("--tls-cert", type=click.Path(dir_okay=False),
              help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.")
@click.option("--tls-key", type=click.Path(dir_okay=False),
              help="The PEM private key of --tls-cert.")
@click.option("--node-only", is_flag=True,
              help="Node duty only, for the controller this host joined (`eucalite join`).")
@click.option("--server", "server_model", type=click.Choice(["asyncio", "gthread"]),
              default="asyncio", hidden=True,
              help="Server model; gthread is the former one, for benchmarks.")
def serve(host, port, data_dir, node, threads, tls_cert, tls_key, node_only, server_model):
    """Serve every role (EC2, S3, IAM endpoints) in one process until Ctrl-C or SIGTERM."""
    if node_only:
        return join.serve_node_only(data_dir)
    overrides = common.overrides(host=host, port=port, data_dir=data_dir, node=node,
                                 threads=threads, tls_cert=tls_cert, tls_key=tls_key)
    try:
        config = config_module.load(overrides)
    except ValueError as error:
        raise click.ClickException(str(error))
    try:
        run(config, server_model)
    except CannotServe as error:
        raise click.ClickException(str(error))


# --- credentials ----------------------------------------------------------------------

@main.command()
@common.data_dir_option
@click.option("--account", default="eucalyptus", show_default=True)
@click.option("--user", default="admin", show_default=True)
@click.option("--profile", metavar="NAME",
              help="Write an aws CLI profile NAME (~/.aws/config and credentials) instead of "
                   "printing export lines.")
@click.option("--format", "output_format", type=click.Choice(["env", "eucarc"]),
              default="env", show_default=True,
              help="env: exports for boto3, the aws CLI and euca2ools; eucarc: a euca2ools "
                   "eucarc with Eucalyptus' classic service URLs.")
@common.fail_on_aws_error
def credentials(data_dir, account, user, profile, output_format):
    """Print shell export lines for a user's access key and the endpoints.

    Use as: eval "$(eucalite credentials)". boto3 and the aws CLI then need no other flags.
    `--format eucarc > eucarc` writes what euca2ools and scripts written for Eucalyptus
    source.
    """
    app = common.app(data_dir)
    with app.app_context():
        key = accounts.first_active_key(account, user)
        key_id, secret, account_id = key.id, key.secret, accounts.get_account(account).id
    config = app.config["EUCALITE"]
    endpoints = config_module.endpoints(config, use_served=True)
    if output_format == "eucarc":
        cert = cloudkey.cloud_certificate_path(config["data_dir"]).resolve()
        click.echo(eucarc_text(user, account, account_id, key_id, secret, config["region"],
                               endpoints, classic_urls(endpoints, CLASSIC_EC2_PATH),
                               cloud_cert=str(cert)), nl=False)
        return
    if profile:
        _write_profile(profile, key_id, secret, config["region"], endpoints)
        click.echo(f"Wrote aws CLI profile {profile!r}; use it with --profile {profile} or "
                   f"AWS_PROFILE={profile}.")
        return
    click.echo(f"# eucalite credentials for user {user} in account {account}")
    for line in env_lines(key_id, secret, config["region"], endpoints):
        click.echo(line)


def _write_profile(name: str, key_id: str, secret: str, region: str,
                   endpoints: dict[str, str]) -> None:
    """Add or replace profile *name* in the aws CLI files, keeping every other section."""
    aws_dir = Path.home() / ".aws"
    config_path = Path(os.environ.get("AWS_CONFIG_FILE") or aws_dir / "config")
    creds_path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or aws_dir / "credentials")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    creds_path.parent.mkdir(parents=True, exist_ok=True)

    creds_sections, config_sections = profile_sections(name, key_id, secret, region,
                                                       endpoints)
    creds = configparser.ConfigParser(interpolation=None)
    creds.read(creds_path)
    creds.update(creds_sections)
    with open(creds_path, "w") as handle:
        creds.write(handle)
    os.chmod(creds_path, 0o600)

    conf = configparser.ConfigParser(interpolation=None)
    conf.read(config_path)
    conf.update(config_sections)
    with open(config_path, "w") as handle:
        conf.write(handle)


# --- accounts -------------------------------------------------------------------------

@main.group()
def account():
    """Create and list accounts, users and access keys (Eucalyptus' euare-* tasks)."""


@account.command("list")
@common.in_app
def account_list():
    """List accounts with their ids."""
    for item in accounts.list_accounts():
        click.echo(f"{item.name}\t{item.id}")


@account.command("create")
@click.argument("name")
@common.in_app
def account_create(name):
    """Create account NAME with its admin user and one access key (printed once)."""
    created = accounts.create_account(name)
    key = accounts.create_access_key(name, accounts.ADMIN_USER)
    click.echo(f"account {created.name} {created.id}")
    click.echo(f"user {accounts.ADMIN_USER}")
    click.echo(f"access key {key.id} {key.secret}")


@account.command("delete")
@click.argument("name")
@common.in_app
def account_delete(name):
    """Delete account NAME with its users and keys."""
    accounts.delete_account(name)
    click.echo(f"deleted account {name}")


@account.command("users")
@click.argument("account_name", metavar="ACCOUNT")
@common.in_app
def account_users(account_name):
    """List the users of ACCOUNT."""
    for user in accounts.list_users(account_name):
        click.echo(f"{user.name}\t{user.id}\t{user.path}")


@account.command("user-create")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("user_name", metavar="USER")
@click.option("--with-key/--no-key", default=True, show_default=True,
              help="Also create an access key for the user (printed once).")
@common.in_app
def account_user_create(account_name, user_name, with_key):
    """Create USER in ACCOUNT."""
    user = accounts.create_user(account_name, user_name)
    click.echo(f"user {user.name} {user.id}")
    if with_key:
        key = accounts.create_access_key(account_name, user_name)
        click.echo(f"access key {key.id} {key.secret}")


@account.command("user-delete")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("user_name", metavar="USER")
@common.in_app
def account_user_delete(account_name, user_name):
    """Delete USER from ACCOUNT with its keys."""
    accounts.delete_user(account_name, user_name)
    click.echo(f"deleted user {user_name}")


@account.command("password")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("user_name", metavar="USER", default="admin")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new console password (asked for when not given).")
@common.in_app
def account_password(account_name, user_name, password):
    """Set USER's password for the management console (/console)."""
    set_password(account_name, user_name, password)
    click.echo(f"console password set for {user_name}@{account_name}")


@account.command("keys")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("user_name", metavar="USER", default="admin")
@common.in_app
def account_keys(account_name, user_name):
    """List USER's access key ids and their status (secrets are not shown)."""
    for key in accounts.get_user(account_name, user_name).keys:
        click.echo(f"{key.id}\t{key.status}\t{key.created:%Y-%m-%dT%H:%M:%SZ}")


@account.command("key-create")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("user_name", metavar="USER", default="admin")
@common.in_app
def account_key_create(account_name, user_name):
    """Create an access key for USER (at most two per user) and print it once."""
    key = accounts.create_access_key(account_name, user_name)
    click.echo(f"access key {key.id} {key.secret}")


@account.command("key-status")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@click.argument("status", type=click.Choice(["Active", "Inactive"]))
@common.in_app
def account_key_status(key_id, status):
    """Activate or deactivate an access key (inactive keys are refused)."""
    accounts.set_access_key_status(key_id, status)
    click.echo(f"{key_id} {status}")


@account.command("key-delete")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@common.in_app
def account_key_delete(key_id):
    """Delete an access key."""
    accounts.delete_access_key(key_id)
    click.echo(f"deleted {key_id}")


# --- database -------------------------------------------------------------------------

@main.group("db")
def db_group():
    """Database schema: migrations are applied at every start; these run them by hand."""


@db_group.command("upgrade")
@common.data_dir_option
def db_upgrade(data_dir):
    """Apply every pending migration."""
    config = config_module.load(common.overrides(data_dir=data_dir))
    db.upgrade(config["database_url"])
    click.echo(f"database at revision {db.current_revision(config['database_url'])}")


@db_group.command("current")
@common.data_dir_option
def db_current(data_dir):
    """Print the database's schema revision."""
    config = config_module.load(common.overrides(data_dir=data_dir))
    click.echo(db.current_revision(config["database_url"]) or "empty (no migrations applied)")


# --- role command groups -----------------------------------------------------------------

for _group in (image.image_group, instance_types.instance_type_group, node.node_group,
               guest.guest_group, join.join_command, quota.quota_group, burst.burst_group):
    main.add_command(_group)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
