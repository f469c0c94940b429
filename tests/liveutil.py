"""Live servers for tests: a real eucalite HTTP server on loopback in the test's process,
with the cloud admin's credentials and boto3 clients (:class:`Live`), with or without node
duty; conftest's fixtures and the tests that need their own server start them here."""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from werkzeug.serving import make_server

from eucalite import accounts, config as config_module, create_app


#: How often a test server's loop looks for shutdown(): at socketserver's default (0.5 s)
#: every test that stopped a server spent half a second of its teardown waiting.
POLL_INTERVAL = 0.05


def serve_in_background(server) -> threading.Thread:
    """Run *server*'s ``serve_forever`` in a daemon thread; ``server.shutdown()`` returns
    within POLL_INTERVAL."""
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": POLL_INTERVAL}, daemon=True)
    thread.start()
    return thread


_LOADER: botocore.loaders.Loader | None = None


def aws_session(key_id: str, secret: str, region: str,
                loader: botocore.loaders.Loader | None = None) -> boto3.session.Session:
    """A boto3 session with these credentials whose service models come from *loader*, by
    default this process's one loader. A session of its own parses botocore's JSON models
    again (EC2's alone takes about 25 ms), which was most of a small live test's time."""
    global _LOADER
    if loader is None:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        loader = _LOADER
    core = botocore.session.Session()
    core.register_component("data_loader", loader)
    return boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                 region_name=region, botocore_session=core)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Live:
    """A running eucalite on loopback and the cloud admin's credentials."""

    app: object
    port: int
    key_id: str
    secret: str
    region: str

    @property
    def endpoints(self) -> dict[str, str]:
        return config_module.endpoints(self.app.config["EUCALITE"])

    @property
    def base_url(self) -> str:
        return self.endpoints["s3"]

    def client(self, service: str, key_id: str | None = None, secret: str | None = None,
               **config):
        """A boto3 client for *service* that never retries (errors reach the test as is)."""
        session = aws_session(key_id or self.key_id, secret or self.secret, self.region)
        return session.client(service, endpoint_url=self.endpoints[service],
                              config=Config(retries={"max_attempts": 1}, **config))

    def env(self) -> dict[str, str]:
        """os.environ plus what `eval "$(eucalite credentials)"` would export."""
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=self.key_id, AWS_SECRET_ACCESS_KEY=self.secret,
                   AWS_DEFAULT_REGION=self.region, AWS_ENDPOINT_URL_EC2=self.endpoints["ec2"],
                   AWS_ENDPOINT_URL_S3=self.endpoints["s3"],
                   AWS_ENDPOINT_URL_IAM=self.endpoints["iam"], AWS_MAX_ATTEMPTS="1")
        return env


def start_live(data_dir: Path, **overrides):
    """A real server on loopback in this process; *overrides* go to the config."""
    port = free_port()
    config = {"data_dir": str(data_dir), "port": port, "host": "127.0.0.1", "node": False}
    config.update(overrides)
    app = create_app(config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    serve_in_background(server)
    with app.app_context():
        key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
        live = Live(app, port, key.id, key.secret, app.config["EUCALITE"]["region"])
    return live, server


def start_live_node(data_dir: Path, **overrides):
    """:func:`start_live` with node duty on (its start checked) and the service bundle at
    ``live.services``; stop it with :func:`stop_live`."""
    live, server = start_live(data_dir, node=True, **overrides)
    live.services = live.app.extensions["eucalite"]
    with live.app.app_context():
        assert live.services.cluster.start_node_duty() is None
    return live, server


def stop_live(live, server, network: str | None = None) -> None:
    """Stop a server *start_live* started with node duty: the HTTP server, the job worker,
    the metadata listener, every domain it runs, what its data plane put on the host
    (eucalite's nft tables and public /32s on a real node) and, when named, its libvirt
    network."""
    services = live.app.extensions["eucalite"]
    server.shutdown()
    services.compute.worker.shutdown()
    if services.compute.metadata_server:
        services.compute.metadata_server.shutdown()
    node = services.cluster.local_node
    if node is None:
        return
    for instance_id in node.driver.list_domains():
        node.driver.destroy(instance_id)
    if node.firewall is not None:
        node.firewall.remove()
    if network:
        node.driver.remove_network(network)
