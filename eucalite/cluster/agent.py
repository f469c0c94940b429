"""Node duty on a host that joined a cloud: register with the controller, then heartbeat.

:func:`join` spends a join token for this host's credentials (kept in the data directory);
:func:`run` is the node's loop, which ``eucalite join`` enters after joining and
``eucalite serve --node-only`` enters on every later start. The node calls the controller
only (the internal API, :mod:`.nodeclient`), so it works behind a firewall that lets it
reach the controller and nothing else. The command channel (instances on this node) comes
with RemoteNode; until then the node reports its capacity and domains.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping

from .nodeclient import InternalApiError, NodeClient, NodeCredentials, version
from .service import ClusterService

log = logging.getLogger(__name__)

#: Seconds between tries while the controller cannot be reached at start.
RETRY_SECONDS = 5


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
    """The loop of a joined node: register, then a heartbeat every interval the controller
    names, until :meth:`stop`. A controller that cannot be reached is retried; one that
    refuses the node's key (the node was removed) ends the loop."""

    def __init__(self, config: Mapping[str, Any], credentials: NodeCredentials):
        self.config = config
        self.credentials = credentials
        self.client = NodeClient(config.get("controller_url") or credentials.controller_url,
                                 credentials, cafile=credentials.cafile or None)
        self.driver = ClusterService(config).open_driver()
        self.interval = 10
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _capacity(self) -> dict:
        capacity = self.driver.capacity()
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
            "version": version()})
        self.interval = answer["heartbeat_interval"]
        return answer

    def heartbeat(self) -> dict:
        domains = {instance: state.value for instance, state in
                   self.driver.list_domains().items()}
        answer = self.client.call("POST", self._node_path() + "/heartbeat", {
            "capacity": self._capacity(), "domains": domains, "version": version()})
        self.interval = answer["heartbeat_interval"]
        return answer

    def run(self) -> int:
        """Register, then heartbeat until stopped; 0 when stopped, 1 when refused."""
        registered = False
        try:
            while not self._stop.is_set():
                try:
                    if not registered:
                        answer = self.register()
                        registered = True
                        log.info("node %s registered with %s in zone %s (%s); heartbeat "
                                 "every %d s", self.credentials.node_id,
                                 self.client.base, answer["zone"], answer["state"],
                                 self.interval)
                    else:
                        self.heartbeat()
                except InternalApiError as error:
                    if error.status in (401, 403, 404):
                        log.error("the controller refused node %s: %s",
                                  self.credentials.node_id, error)
                        return 1
                    log.warning("%s; retrying", error)
                    self._stop.wait(RETRY_SECONDS)
                    continue
                self._stop.wait(self.interval)
            return 0
        finally:
            self.driver.close()
