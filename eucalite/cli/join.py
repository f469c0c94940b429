"""Joining hosts to a cloud: `eucalite node token` on the controller, `eucalite join` on the
node host, and the node-only serving `eucalite serve --node-only` does after a restart.

``node token`` is attached to the ``node`` group of :mod:`.node`; ``join`` is registered on
the main command by :mod:`.main`.
"""
from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path

import click
from flask import current_app

from .. import config as config_module
from ..cluster import joining
from ..cluster.agent import NodeAgent, check_hypervisor, join
from ..cluster.nodeclient import CREDENTIALS_FILE, InternalApiError, NodeCredentials
from ..cluster.virt.driver import DriverError
from . import common
from .node import node_group


@node_group.command("token")
@click.option("--zone", help="The zone the node joins (default: the first of `zones`).")
@click.option("--expires", default=joining.DEFAULT_TOKEN_LIFETIME, show_default=True,
              help="How long the token may be used: 90s, 30m, 1h, 2d (at most 7d).")
@common.in_app
def node_token(zone, expires):
    """Make a one-time join token for a new node and print it with the command that joins
    the node host (it is shown once; only its hash is kept)."""
    config = current_app.config["EUCALITE"]
    token, row = joining.create_token(zone or config["zones"][0], config["zones"],
                                      joining.parse_lifetime(expires), "cli")
    click.echo(f"token {token}")
    click.echo(f"zone {row.zone}")
    click.echo(f"expires {row.expires:%Y-%m-%dT%H:%M:%SZ}")
    url = config_module.public_url(config, use_served=True)
    click.echo("join the node host with:")
    click.echo("  " + joining.join_command(url, token))
    hint = joining.unreachable_url_hint(url)
    if hint:
        click.echo(f"note: {hint}", err=True)


def _load_config(data_dir: str | None) -> dict:
    try:
        return config_module.load(common.overrides(data_dir=data_dir))
    except ValueError as error:
        raise click.ClickException(str(error))


def _run_agent(config: dict, credentials: NodeCredentials) -> None:
    """Node duty until SIGTERM or Ctrl-C; a refused key exits 1."""
    logging.basicConfig(level=config.get("log_level", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent = NodeAgent(config, credentials)
    except (DriverError, ImportError, OSError) as error:
        raise click.ClickException(f"cannot open the hypervisor: {error}")
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    click.echo(f"node {credentials.node_id} (zone {credentials.zone}) serving node duty for "
               f"{config.get('controller_url') or credentials.controller_url}")
    try:
        status = agent.run()
    except KeyboardInterrupt:
        status = 0
    if status:
        raise click.ClickException(f"the controller refused node {credentials.node_id} "
                                   "(removed?); join again with a new token")


@click.command("join")
@click.argument("url")
@click.argument("token")
@common.data_dir_option
@click.option("--node-name", help="This node's id in the cloud (default: the host name).")
@click.option("--cafile", type=click.Path(dir_okay=False, exists=True),
              help="CA bundle to trust for an https:// controller with its own certificate "
                   "(kept for later starts).")
def join_command(url, token, data_dir, node_name, cafile):
    """Join this host to the cloud at URL as a node with a one-time TOKEN (from `eucalite
    node token`), then serve node duty only. The node's credentials stay in the data
    directory (0600); after a restart run `eucalite serve --node-only`."""
    config = _load_config(data_dir)
    try:
        check_hypervisor(config)
    except (DriverError, ImportError, OSError) as error:
        raise click.ClickException(f"cannot open the hypervisor, so this host cannot be a "
                                   f"node yet (the token is not spent): {error}")
    try:
        credentials = join(url, token, node_name or config.get("node_name") or
                           socket.gethostname(), Path(config["data_dir"]), cafile)
    except InternalApiError as error:
        raise click.ClickException(f"join refused: {error}")
    click.echo(f"joined {url} as node {credentials.node_id} in zone {credentials.zone}; "
               f"credentials in {Path(config['data_dir']) / CREDENTIALS_FILE}")
    _run_agent(config, credentials)


def serve_node_only(data_dir: str | None) -> None:
    """`eucalite serve --node-only`: node duty for the controller this host joined."""
    config = _load_config(data_dir)
    credentials = NodeCredentials.load(Path(config["data_dir"]))
    if credentials is None:
        raise click.ClickException(f"no node credentials in {config['data_dir']}: join "
                                   "first with `eucalite join URL TOKEN`")
    _run_agent(config, credentials)
