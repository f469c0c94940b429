"""``eucalite serve``: the one-process server on gunicorn (one worker, many threads).

The app is built once in the master (migrations, bootstrap and config errors surface before
anything listens), then the worker is forked with database connections disposed. gunicorn
handles Ctrl-C (fast stop) and SIGTERM (graceful stop) and logs one line per request.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.sock import TCP6Socket, TCPSocket
from sqlalchemy.engine import make_url

from . import config as config_module, create_app, datadir
from .compute.addresses import parse_pool
from .cluster.scheduler import validate_policy
from .burst import reconcile as burst_reconcile
from .autoscaling import loop as autoscaling_loop
from .cloudwatch import loop as alarm_loop
from .cloudwatch import collector
from .compute import metadata, reconcile
from .db import db
from .s3 import upkeep

ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'
log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    """gunicorn's master (signals, worker respawn) serving *app* on an already bound
    *listener*."""

    def __init__(self, app, options: dict[str, Any], listener: socket.socket):
        self.application = app
        self.options = options
        self.listener = listener
        super().__init__()

    def run(self):
        arbiter = Arbiter(self)
        kind = TCP6Socket if self.listener.family == socket.AF_INET6 else TCPSocket
        address = self.listener.getsockname()[:2]
        # gunicorn adopts the descriptor (and closes the one given)
        arbiter.LISTENERS = [kind(address, self.cfg, arbiter.log,
                                  fd=os.dup(self.listener.fileno()))]
        self.listener.close()
        arbiter.run()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings:      # skip settings an older gunicorn lacks
                self.cfg.set(key, value)

    def load(self):
        return self.application


def _post_fork(app):
    def hook(server, worker):
        # Connections opened in the master must not be shared with the forked worker.
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        # Every worker, the first or one respawned after a crash, recovers the store before
        # it serves: it is then the only writer in the server, and the store lock waits out
        # writers elsewhere (a dying predecessor, `eucalite image import`).
        worker.store_lock = recover_store(app, worker.notify)
        # Background duties run in the worker, beside the request threads. The hypervisor
        # connection is opened here, after the fork, never shared with the master.
        services = app.extensions["eucalite"]
        upkeep.start(app, services.s3.store, services.config["lifecycle_interval"])
        start_node_services(app)
        reconcile.start(app, services.config["reconcile_interval"])
        burst_reconcile.start(app, services.config["burst_interval"])
        alarm_loop.start(app, services.config["alarm_interval"])
        autoscaling_loop.start(app, services.config["autoscaling_interval"])
        collector.start(app)
    return hook


def start_node_services(app) -> None:
    """This host's node duty in the serving process: the hypervisor connection and the
    instance network, a start-up reconcile pass, and the metadata listener guests reach on
    the bridge. Problems are logged and kept on the cluster service for the API errors."""
    services = app.extensions["eucalite"]
    with app.app_context():
        services.ebs.recover()
        if services.cluster.start_node_duty() is not None:
            return
        reconcile.reconcile(services.cluster, services.ebs, startup=True)
    address = services.config.get("metadata_address")
    if not address or not services.cluster.driver.uses_host_files:
        return          # no guests that could ask (fake or test hypervisor)
    try:
        services.compute.metadata_server = metadata.serve(
            app, address, int(services.config["metadata_port"]))
    except OSError as error:
        services.cluster.metadata_problem = (
            f"the metadata service cannot listen on {address}:"
            f"{services.config['metadata_port']}: {error}; guests will get no metadata")
        log.warning(services.cluster.metadata_problem)


def recover_store(app, waiting) -> int:
    """Remove the object store's unfinished writes once no other writer lives (calling
    *waiting* meanwhile); returns the store lock's descriptor, held shared from then on."""
    services = app.extensions["eucalite"]
    lock = datadir.recovery_lock(services.config["data_dir"], waiting)
    with app.app_context():
        services.s3.recover()
    datadir.become_writer(lock)
    return lock


def probe_node_duty(app) -> None:
    """Find out in the master whether node duty can run here, for the banner (the worker
    opens the hypervisor for real after fork)."""
    with app.app_context():
        services = app.extensions["eucalite"]
        services.cluster.start_node_duty()
        services.cluster.close_driver()


def banner(config: dict[str, Any], node_problem: str | None, storage: str = "",
           network_problem: str | None = None, objects: str = "",
           volume_backend: str = "") -> str:
    """The start-up banner: endpoints, where data lives, which duties run (and why one is
    off). *storage* says how volumes reach nodes, *volume_backend* where their blocks live,
    *objects* where Walrus keeps object data (each backend reachable or not)."""
    endpoints = config_module.endpoints(config)
    if not config["node"]:
        node = "off (--no-node: no hypervisor connection is opened)"
    elif node_problem:
        node = f"OFF: {node_problem}"
    else:
        where = config["libvirt_uri"] if config["hypervisor"] == "libvirt" else "in memory"
        node = (f"on ({config['hypervisor']}: {where}; instances on {config['instance_subnet']}"
                f" via bridge {config['instance_bridge']}, metadata at "
                f"http://{config['metadata_address'] or '(off)'}/)")
    return "\n".join([
        f"eucalite serving on {config['host']}:{config['port']}",
        f"  EC2 (compute)  {endpoints['ec2']}",
        f"  S3 (Walrus)    {endpoints['s3']}",
        f"  IAM (Euare)    {endpoints['iam']}   [users, groups, access keys, login profiles]",
        f"  data dir       {config['data_dir']}",
        f"  database       {_safe_url(config['database_url'])}",
        f"  node duty      {node}",
        *([f"  objects        {objects}"] if objects else []),
        *([f"  volumes        {volume_backend}"] if volume_backend else []),
        *([f"  file exports   {storage}"] if storage and volume_backend else
          [f"  volumes        {storage}"] if storage else []),
        *([f"  network        {network_problem}"] if network_problem else []),
        "Credentials for boto3 and the aws CLI:",
        f"  eval \"$(eucalite credentials --data-dir {config['data_dir']})\"",
        "Stop with Ctrl-C or SIGTERM.",
    ])


def _safe_url(url: str) -> str:
    """The database URL with any password hidden."""
    return make_url(url).render_as_string(hide_password=True)


class CannotServe(RuntimeError):
    """Serving cannot start (the data directory is in use, the port is taken); the message
    says why, for one line on the terminal."""


def bind(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything changes on the host so that a taken port
    fails fast. It listens only once gunicorn's master adopts it, after the app is built:
    clients that wait for the port to accept find a server ready to answer."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, kind, proto)
    except OSError as error:
        raise CannotServe(f"cannot listen on {host}:{port}: {error}") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as error:
        listener.close()
        reason = "the port is in use" if error.errno == errno.EADDRINUSE else str(error)
        raise CannotServe(f"cannot listen on {host}:{port}: {reason}") from None
    return listener


SERVER_MODELS = {
    # the event-loop front end (eucalite.httpserver): the default
    "asyncio": "eucalite.httpserver.worker.Worker",
    # gunicorn's thread-per-connection worker, the former model: kept selectable (hidden
    # `--server gthread`) for bench/slow_clients.py's before/after comparison
    "gthread": "gthread",
}


def _tls_options(config: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's TLS settings for tls_cert/tls_key, checked now so that a missing file or a
    key that does not match its certificate is one clear line, not a worker boot loop."""
    if not config["tls_cert"]:
        return {}
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            config["tls_cert"], config["tls_key"])
    except (OSError, ssl.SSLError) as error:
        raise CannotServe(f"cannot use tls_cert {config['tls_cert']} with tls_key "
                          f"{config['tls_key']}: {error}") from None
    return {"certfile": config["tls_cert"], "keyfile": config["tls_key"]}


def run(config: dict[str, Any], server: str = "asyncio") -> None:
    """Serve until Ctrl-C or SIGTERM with the *server* model (see :data:`SERVER_MODELS`).
    Checks what can fail fast (the data directory's lock, the port, the TLS files) before
    anything else; raises :class:`CannotServe` when one of them fails."""
    try:
        # create_app checks them too; here a typo stops `serve` before anything changes
        validate_policy(config["scheduler"])
        parse_pool(config)
    except ValueError as error:
        raise CannotServe(str(error)) from None
    logging.basicConfig(level=config["log_level"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        server_lock = datadir.hold_server_lock(config["data_dir"])
    except datadir.InUse as error:
        raise CannotServe(str(error)) from None
    tls = _tls_options(config)
    listener = bind(config["host"], config["port"])
    config_module.remember_served_url(config)   # clients may connect from now on
    app = create_app(config)
    probe_node_duty(app)
    options = {
        "bind": f"{config['host']}:{config['port']}",     # what the listener is bound to
        "workers": 1,
        "worker_class": SERVER_MODELS[server],
        "threads": config["threads"],
        # The timeout watches the worker's main loop, not single requests, so long uploads
        # are fine; a hung worker is restarted after this long.
        "timeout": 120,
        "backlog": 2048,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": config["log_level"].lower(),
        "post_fork": _post_fork(app),
        "when_ready": lambda server: print(
            banner(config, app.extensions["eucalite"].cluster.node_problem,
                   app.extensions["eucalite"].ebs.describe_export(),
                   app.extensions["eucalite"].cluster.network_problem,
                   objects=app.extensions["eucalite"].s3.describe_backend(),
                   volume_backend=app.extensions["eucalite"].ebs.describe_backend()),
            file=sys.stderr, flush=True),
        "proc_name": "eucalite",
        # gunicorn >= 24 opens a control socket under ~/.gunicorn; eucalite has no use for it.
        "control_socket_disable": True,
        **tls,
    }
    try:
        _Gunicorn(app, options, listener).run()
    finally:
        os.close(server_lock)
