"""Helpers for the cloud-bursting tests: a fake remote EC2 (in memory, can be taken down),
a burst target added to a live cloud, and waiting for the burst jobs."""
from __future__ import annotations

import itertools
import threading

from eucalite.burst.remote import CLOUD_TAG, INSTANCE_TAG, RemoteError, RemoteInstance

_ids = itertools.count(1)

#: What the fake remote's instances move to at its next listing.
_SETTLES = {"pending": "running", "stopping": "stopped", "shutting-down": "terminated"}


class FakeRemote:
    """A remote EC2 in memory with :class:`eucalite.burst.remote.Remote`'s interface.
    Instances settle (pending -> running, stopping -> stopped, shutting-down ->
    terminated) when the reconciler lists them. ``down`` makes every call unreachable;
    ``calls`` counts the calls by name."""

    def __init__(self, cloud_id: str = "cloud-a"):
        self.cloud_id = cloud_id
        self.instances: dict[str, dict] = {}
        self.down = False
        self.keys: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.down:
            raise RemoteError(f"fake remote did not answer {name}: connection refused")

    def _item(self, remote_id: str) -> RemoteInstance:
        record = self.instances[remote_id]
        return RemoteInstance(remote_id, record["tags"].get(INSTANCE_TAG), record["state"],
                              record.get("private_ip"), record.get("public_ip"))

    def add(self, local_id: str, state: str = "running", cloud_id: str | None = None) -> str:
        """An instance put on the remote behind the local cloud's back."""
        remote_id = f"i-{next(_ids):017x}"
        self.instances[remote_id] = {
            "state": state, "tags": {INSTANCE_TAG: local_id,
                                     CLOUD_TAG: cloud_id or self.cloud_id},
            "private_ip": f"172.31.0.{len(self.instances) % 250 + 1}",
            "public_ip": f"203.0.113.{len(self.instances) % 250 + 1}"}
        return remote_id

    def run(self, local_id, image_id, instance_type, *, user_data=None, tags=None,
            key_name=None) -> RemoteInstance:
        with self.lock:
            self._call("run")
            remote_id = self.add(local_id, "pending")
            record = self.instances[remote_id]
            record.update(image_id=image_id, instance_type=instance_type, user_data=user_data,
                          key_name=key_name)
            record["tags"].update(tags or {})
            return self._item(remote_id)

    def pages(self):
        with self.lock:
            self._call("describe")
            for record in self.instances.values():
                record["state"] = _SETTLES.get(record["state"], record["state"])
            yield [self._item(remote_id) for remote_id, record in self.instances.items()
                   if record["tags"].get(CLOUD_TAG) == self.cloud_id]

    def ours(self) -> list[RemoteInstance]:
        return [item for page in self.pages() for item in page]

    def _set(self, remote_id: str, state: str) -> None:
        if remote_id not in self.instances:
            raise RemoteError("unknown", code="InvalidInstanceID.NotFound")
        self.instances[remote_id]["state"] = state

    def terminate(self, remote_ids) -> None:
        with self.lock:
            self._call("terminate")
            for remote_id in remote_ids:
                if remote_id in self.instances:
                    self._set(remote_id, "shutting-down")

    def reboot(self, remote_id) -> None:
        self._call("reboot")

    def stop(self, remote_id) -> None:
        with self.lock:
            self._call("stop")
            self._set(remote_id, "stopping")

    def start(self, remote_id) -> None:
        with self.lock:
            self._call("start")
            self._set(remote_id, "pending")

    def console_output(self, remote_id) -> bytes:
        self._call("console_output")
        return f"console of {remote_id}\n".encode()

    def import_key(self, name, public_key) -> None:
        self._call("import_key")
        self.keys[name] = public_key

    def check(self) -> None:
        self._call("check")

    def running(self) -> list[str]:
        """Remote ids of the instances not terminated (nor terminating)."""
        return [remote_id for remote_id, record in self.instances.items()
                if record["state"] not in ("shutting-down", "terminated")]


def add_target(live, name="far", *, endpoint="http://remote.invalid:8773", region="far-1",
               images=None, types=None, **settings):
    """Add burst target *name* on *live* mapping its emi-0a1b2c3d and m1.small."""
    with live.app.app_context():
        live.app.extensions["eucalite"].burst.add_target(
            name, endpoint_url=endpoint, region=region, access_key_id="AKIDREMOTE",
            secret_access_key="remote-secret",
            image_map=images if images is not None else {"emi-0a1b2c3d": "ami-12345678"},
            type_map=types if types is not None else {"m1.small": "t3.micro"}, **settings)


def use_fake(live, monkeypatch, fake: FakeRemote) -> None:
    """Make *live*'s burst service reach *fake* for every target."""
    monkeypatch.setattr(live.app.extensions["eucalite"].burst, "remote", lambda target: fake)


def settle(live) -> list:
    """Let queued burst jobs finish, then one reconciler pass; its reports."""
    services = live.app.extensions["eucalite"]
    services.compute.worker.wait()
    with live.app.app_context():
        reports = services.burst.reconcile()
    services.compute.worker.wait()
    return reports


def age(live, instance_ids, seconds=3600) -> None:
    """Backdate the launch of *instance_ids* by *seconds* (as if launched long ago)."""
    import datetime as dt

    from eucalite.compute.models import Instance
    from eucalite.db import db
    with live.app.app_context():
        for instance_id in instance_ids:
            row = db.session.get(Instance, instance_id)
            row.launch_time -= dt.timedelta(seconds=seconds)
        db.session.commit()
