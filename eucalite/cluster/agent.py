"""Node duty on a host that joined a cloud: register with the controller, heartbeat, and
run the commands the controller queues for this node.

:func:`join` spends a join token for this host's credentials (kept in the data directory);
:meth:`NodeAgent.run` is the node's loop, which ``eucalite join`` enters after joining and
``eucalite serve --node-only`` enters on every later start. The node calls the controller
only (the internal API, :mod:`.nodeclient`), so it works behind a firewall that lets it
reach the controller and nothing else: it long-polls for its commands (what the
controller's :class:`~.remotenode.RemoteNode` asks: spawn, destroy, console output, ...),
runs each on this host's :class:`~.localnode.LocalNode` (a few at once, so a long spawn
does not hold up a destroy) and posts the result. The agent has no database: its LocalNode
is made by :meth:`~.service.ClusterService.start_host`, as the controller's own node is,
and fills its image cache over the internal API (:func:`.nodeimages.remote_image_source`).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from . import metadataproxy, overlay, wire
from .edge.firewall import FirewallError
from .imagecache import CacheError
from .localnode import LocalNode
from .nodeimages import remote_image_source
from .nodeclient import InternalApiError, NodeClient, NodeCredentials, version
from .service import ClusterService
from .virt.driver import DriverError

log = logging.getLogger(__name__)

#: Seconds between tries while the controller cannot be reached at start.
RETRY_SECONDS = 5
#: Seconds a poll for commands waits at the controller when none is queued.
POLL_WAIT = 20
#: Commands run at once on this node.
COMMAND_THREADS = 4
#: Statuses meaning the controller no longer knows this node's key: the loop ends.
REFUSED = (401, 403, 404)
#: Errors a command may fail with that say what went wrong on the node (logged without a
#: traceback); any other is logged with one. Either way the controller hears of it.
EXPECTED = (DriverError, CacheError, FirewallError, OSError, ValueError)


def check_hypervisor(config: Mapping[str, Any]) -> None:
    """Open and close the configured hypervisor (raises DriverError or ImportError saying
    why it cannot be used), so a join spends no token on a host that cannot serve."""
    driver = ClusterService(config).open_driver()
    try:
        driver.capacity()
    finally:
        driver.close()


def join(controller_url: str, token: str, node_name: str, data_dir: Path,
         cafile: str | None = None) -> NodeCredentials:
    """Exchange *token* at the controller for this node's credentials and save them (0600)
    in *data_dir*, with *cafile* (trusted for an https:// controller from now on). Raises
    InternalApiError (e.g. InvalidJoinToken)."""
    answer = NodeClient(controller_url, cafile=cafile).join(token, node_name)
    credentials = NodeCredentials(controller_url=controller_url, node_id=answer["node_id"],
                                  zone=answer["zone"], region=answer["region"],
                                  access_key_id=answer["access_key_id"],
                                  secret_access_key=answer["secret_access_key"],
                                  cafile=str(Path(cafile).resolve()) if cafile else "")
    credentials.save(data_dir)
    return credentials


class NodeAgent:
    """The loop of a joined node (see the module docstring) until :meth:`stop`: register,
    then heartbeats every interval the controller names, beside a command loop. A
    controller that cannot be reached is retried; one that refuses the node's key (the node
    was removed) ends the loop. *poll_wait*: seconds a poll for commands may wait at the
    controller. *node*: the node to serve (default: this host's, made by
    :meth:`~.service.ClusterService.start_host`; raises DriverError, NodeDutyOff, when this
    host cannot be a node)."""

    def __init__(self, config: Mapping[str, Any], credentials: NodeCredentials,
                 poll_wait: float = POLL_WAIT, node: LocalNode | None = None):
        self.config = config
        self.credentials = credentials
        self.client = NodeClient(config.get("controller_url") or credentials.controller_url,
                                 credentials, cafile=credentials.cafile or None,
                                 timeout=poll_wait + 30)
        self.node = node or ClusterService(config).start_host(
            credentials.node_id, remote_image_source(self.client))
        self.poll_wait = poll_wait
        self.interval = 10
        self._stop = threading.Event()
        self._refused: InternalApiError | None = None
        #: the metadata service this node's guests ask (forwarded to the controller)
        self._metadata = None
        self._pool = ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="node-command")

    def stop(self) -> None:
        self._stop.set()

    def _capacity(self) -> dict:
        capacity = self.node.capacity()
        return {"cores": capacity.cores, "memory_mb": capacity.memory_mb,
                "disk_gb": capacity.disk_gb}

    def _node_path(self) -> str:
        return f"/nodes/{self.credentials.node_id}"

    def register(self) -> dict:
        answer = self.client.call("PUT", self._node_path(), {
            "capacity": self._capacity(),
            "hypervisor_uri": self.config.get("libvirt_uri", "") if
            self.config.get("hypervisor", "libvirt") == "libvirt" else
            f"{self.config.get('hypervisor')}://",
            "version": version(),
            **({"address": self.config["node_address"]} if self.config.get("node_address")
               else {})})
        self.interval = answer["heartbeat_interval"]
        self._follow(answer)
        return answer

    def heartbeat(self) -> dict:
        domains = {instance: state.value for instance, state in self.node.domains().items()}
        answer = self.client.call("POST", self._node_path() + "/heartbeat", {
            "capacity": self._capacity(), "domains": domains, "version": version()})
        self.interval = answer["heartbeat_interval"]
        self._follow(answer)
        return answer

    def _follow(self, answer: dict) -> None:
        """The instance network spans the zone: the overlay floods to the peers the
        controller names (guests on the fake hypervisor have no bridge to join)."""
        if self.node.uses_host_files:
            overlay.follow_answer(self.config, answer)

    def run(self) -> int:
        """Register, then heartbeat and run commands until stopped; 0 when stopped, 1 when
        refused."""
        registered = False
        commands = threading.Thread(target=self._command_loop, name="node-commands",
                                    daemon=True)
        try:
            while not self._stop.is_set():
                try:
                    if not registered:
                        answer = self.register()
                        registered = True
                        commands.start()
                        self._metadata = metadataproxy.start(
                            self.config, self.credentials, self.node.uses_host_files)
                        log.info("node %s registered with %s in zone %s (%s); heartbeat "
                                 "every %d s", self.credentials.node_id,
                                 self.client.base, answer["zone"], answer["state"],
                                 self.interval)
                    else:
                        self.heartbeat()
                except InternalApiError as error:
                    if error.status in REFUSED:
                        self._refuse(error)
                        break
                    log.warning("%s; retrying", error)
                    self._stop.wait(RETRY_SECONDS)
                    continue
                self._stop.wait(self.interval)
            return 1 if self._refused else 0
        finally:
            self._stop.set()
            if commands.is_alive():
                # its last poll ends within poll_wait; what it took still runs and answers
                commands.join(self.poll_wait + 30)
            self._pool.shutdown(wait=True)
            if self._metadata is not None:
                self._metadata.shutdown()
            self.node.driver.close()

    def _refuse(self, error: InternalApiError) -> None:
        log.error("the controller refused node %s: %s", self.credentials.node_id, error)
        self._refused = error
        self._stop.set()

    # -- commands ------------------------------------------------------------------------------

    def _command_loop(self) -> None:
        """Poll for commands and hand each to the pool, until stopped or refused."""
        path = f"{self._node_path()}/commands?wait={self.poll_wait:g}"
        while not self._stop.is_set():
            try:
                answer = self.client.call("GET", path)
            except InternalApiError as error:
                if error.status in REFUSED:
                    self._refuse(error)
                    return
                log.warning("polling for commands: %s; retrying", error)
                self._stop.wait(RETRY_SECONDS)
                continue
            for command in answer.get("commands", []):
                self._pool.submit(self._execute, command)
            if answer.get("retry_after"):
                # the controller holds no waiting poll for us now: ask again shortly
                self._stop.wait(float(answer["retry_after"]))

    def _execute(self, command: dict) -> None:
        """Run one command on this host's node and post its result or error."""
        method = command.get("method")
        try:
            arguments = wire.decode_args(method, command.get("args"))
            outcome = {"result": wire.encode_result(method,
                                                    getattr(self.node, method)(**arguments))}
        except Exception as error:  # noqa: BLE001 - every failure goes back to the caller
            (log.warning if isinstance(error, EXPECTED) else log.exception)(
                "command %s %s failed: %s", command.get("id"), method, error)
            outcome = {"error": wire.encode_error(error)}
        self._post(str(command.get("id")), outcome)

    def _post(self, command_id: str, outcome: dict) -> None:
        """Post *outcome*, retrying while the controller cannot be reached (until the
        agent stops); a refused result (the caller gave up) is logged."""
        while True:
            try:
                self.client.call("POST", f"{self._node_path()}/commands/{command_id}/result",
                                 outcome)
                return
            except InternalApiError as error:
                if error.status and error.status < 500:
                    log.warning("the result of command %s was refused: %s", command_id,
                                error)
                    return
                log.warning("posting the result of command %s: %s; retrying", command_id,
                            error)
                if self._stop.wait(RETRY_SECONDS):
                    return
