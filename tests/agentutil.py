"""A joined node for the fast tests: a live controller without node duty of its own and a
node agent on the fake hypervisor in a thread (as ``eucalite serve --node-only`` runs it),
joined with a token in zone :data:`ZONE` (:class:`Cloud`, :class:`Far`)."""
from __future__ import annotations

import datetime as dt
import threading

from werkzeug.serving import make_server

from eucalite import config as config_module, create_app
from eucalite.cluster import joining
from eucalite.cluster.agent import NodeAgent, join
from liveutil import Live, serve_in_background, start_live
from serverutil import wait_until

#: The joined node's zone (the controller's zones: lab-1a, lab-1b).
ZONE = "lab-1b"


class Far:
    """A joined node's agent on the fake hypervisor, running in a thread."""

    def __init__(self, live, data_dir, name="far-node", node=None):
        with live.app.app_context():
            token = joining.create_token(ZONE, live.app.config["EUCALITE"]["zones"],
                                         dt.timedelta(hours=1), "test")[0]
        self.config = config_module.load({"data_dir": str(data_dir), "hypervisor": "fake"},
                                         environ={})
        self.credentials = join(live.base_url, token, name, data_dir)
        self.start(node)

    def start(self, node=None):
        self.agent = NodeAgent(self.config, self.credentials, poll_wait=1, node=node)
        self.status = []
        self.thread = threading.Thread(target=lambda: self.status.append(self.agent.run()),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.agent.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()

    @property
    def driver(self):
        return self.agent.node.driver


class Cloud:
    """A controller without node duty of its own (zones lab-1a, lab-1b) and a node joined
    in lab-1b."""

    def __init__(self, tmp_path):
        data = tmp_path / "controller"
        data.mkdir()
        (data / "eucalite.toml").write_text(
            'zones = ["lab-1a", "lab-1b"]\nheartbeat_interval = 1\n')
        self.live, self.server = start_live(data)
        self.live.services = self.live.app.extensions["eucalite"]
        self.far = Far(self.live, tmp_path / "node")
        wait_until(lambda: "far-node" in self.live.services.cluster.attached_ids(),
                   "the node to attach")

    def stop_controller(self):
        self.server.shutdown()
        self.server.server_close()
        self.live.services.compute.worker.shutdown()

    def restart_controller(self):
        """Stop the controller and start another on the same data dir and port."""
        self.stop_controller()
        config = self.live.app.config["EUCALITE"]
        app = create_app({key: config[key] for key in ("data_dir", "port", "host", "node")})
        self.server = make_server("127.0.0.1", self.live.port, app, threaded=True)
        serve_in_background(self.server)
        self.live = Live(app, self.live.port, self.live.key_id, self.live.secret,
                         self.live.region)
        self.live.services = app.extensions["eucalite"]
