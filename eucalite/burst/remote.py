"""The remote cloud's EC2 API, as bursting uses it: one :class:`Remote` per burst target,
over botocore (no boto3).

Every instance eucalite makes on a remote carries two tags: :data:`INSTANCE_TAG` (the local
``i-…`` it stands for) and :data:`CLOUD_TAG` (this cloud's identity), and :meth:`Remote.ours`
lists only instances with this cloud's tag, so two clouds bursting into one remote account
never see (or terminate) each other's instances. Calls have short timeouts and no retries
(the reconciler's next pass is the retry): a remote that does not answer is a
:class:`RemoteError` within seconds, never a request thread hung on it.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .. import botoclients

#: The tags eucalite puts on every instance it launches remotely.
INSTANCE_TAG = "eucalite:instance-id"
CLOUD_TAG = "eucalite:cloud"

#: Seconds to connect and to wait for an answer; one attempt (the reconciler retries).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
PAGE_SIZE = 1000


class RemoteError(Exception):
    """The remote refused a call or did not answer; ``code`` is its EC2 error code when it
    answered (``None``: unreachable, timed out), ``str()`` says what happened."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code

    @property
    def unreachable(self) -> bool:
        return self.code is None


@dataclass(frozen=True)
class RemoteInstance:
    """What the local cloud keeps of one remote instance."""

    remote_id: str
    local_id: str | None            # its INSTANCE_TAG
    state: str                      # EC2 state name
    private_ip: str | None = None
    public_ip: str | None = None
    launch_time: dt.datetime | None = None
    state_reason: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to reach a remote EC2: what a burst target stores."""

    url: str
    region: str
    access_key_id: str
    secret_access_key: str


def _new_client(endpoint: Endpoint):
    """An EC2 client for *endpoint*: short timeouts, one attempt."""
    return botoclients.create_client(
        "ec2", region_name=endpoint.region, endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        config=Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                      retries={"total_max_attempts": 1}, max_pool_connections=20))


def _instance(item: Mapping) -> RemoteInstance:
    tags = {tag.get("Key"): tag.get("Value") for tag in item.get("Tags") or ()}
    reason = item.get("StateReason") or {}
    code, message = reason.get("Code"), reason.get("Message") or ""
    return RemoteInstance(
        remote_id=item["InstanceId"], local_id=tags.get(INSTANCE_TAG),
        state=(item.get("State") or {}).get("Name", "pending"),
        private_ip=item.get("PrivateIpAddress") or None,
        public_ip=item.get("PublicIpAddress") or None,
        launch_time=item.get("LaunchTime"),
        # some endpoints repeat the code in the message
        state_reason=(message if message.startswith(f"{code}:") else f"{code}: {message}")
        if code else None)


class Remote:
    """One remote EC2 endpoint, acting for cloud *cloud_id*. Thread-safe (botocore clients
    are); the client is made on first use."""

    def __init__(self, endpoint: Endpoint, cloud_id: str):
        self.endpoint = endpoint
        self.cloud_id = cloud_id
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = _new_client(self.endpoint)
            return self._client

    def _call(self, operation: str, **params):
        """The answer of *operation*, or RemoteError saying what went wrong."""
        try:
            return getattr(self.client(), operation)(**params)
        except ClientError as error:
            info = error.response.get("Error", {})
            code = info.get("Code") or "Unknown"
            raise RemoteError(f"{self.endpoint.url} refused {operation}: {code}: "
                              f"{info.get('Message', '')}".rstrip(": "), code) from None
        except (BotoCoreError, OSError) as error:
            raise RemoteError(f"{self.endpoint.url} did not answer {operation}: {error}") \
                from None

    # --- instances --------------------------------------------------------------------

    def run(self, local_id: str, image_id: str, instance_type: str, *,
            user_data: bytes | None = None, tags: Mapping[str, str] | None = None,
            key_name: str | None = None) -> RemoteInstance:
        """Launch one instance standing for *local_id*, tagged as ours. *local_id* is the
        ClientToken too, so a launch retried after a crash answers the first one's
        instance instead of starting a second."""
        all_tags = {**(tags or {}), INSTANCE_TAG: local_id, CLOUD_TAG: self.cloud_id}
        params = {
            "ImageId": image_id, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
            "ClientToken": local_id,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [
                {"Key": key, "Value": value} for key, value in all_tags.items()]}]}
        if user_data:
            params["UserData"] = base64.b64encode(user_data).decode()
        if key_name:
            params["KeyName"] = key_name
        answer = self._call("run_instances", **params)
        [item] = answer["Instances"]
        # some endpoints answer RunInstances without the tags they stored
        return _instance({**item, "Tags": item.get("Tags") or [
            {"Key": INSTANCE_TAG, "Value": local_id}]})

    def pages(self) -> Iterator[list[RemoteInstance]]:
        """This cloud's instances on the remote, a page at a time, as DescribeInstances
        gives them (terminated ones included while the remote shows them)."""
        params: dict = {"Filters": [{"Name": f"tag:{CLOUD_TAG}", "Values": [self.cloud_id]}],
                        "MaxResults": PAGE_SIZE}
        while True:
            answer = self._call("describe_instances", **params)
            yield [_instance(item) for reservation in answer.get("Reservations", ())
                   for item in reservation.get("Instances", ())]
            token = answer.get("NextToken")
            if not token:
                return
            params["NextToken"] = token

    def ours(self) -> list[RemoteInstance]:
        """Every instance of this cloud on the remote (all pages)."""
        return [item for page in self.pages() for item in page]

    def terminate(self, remote_ids: list[str]) -> None:
        """Terminate *remote_ids*; one the remote no longer knows is already gone (one
        unknown id fails a whole call, so the others are then asked for one at a time)."""
        if not remote_ids:
            return
        try:
            self._call("terminate_instances", InstanceIds=list(remote_ids))
        except RemoteError as error:
            if error.code != "InvalidInstanceID.NotFound":
                raise
            if len(remote_ids) > 1:
                for remote_id in remote_ids:
                    self.terminate([remote_id])

    def reboot(self, remote_id: str) -> None:
        self._call("reboot_instances", InstanceIds=[remote_id])

    def stop(self, remote_id: str) -> None:
        self._call("stop_instances", InstanceIds=[remote_id])

    def start(self, remote_id: str) -> None:
        self._call("start_instances", InstanceIds=[remote_id])

    def console_output(self, remote_id: str) -> bytes:
        """The remote instance's console output (b"" when it has none yet)."""
        output = self._call("get_console_output", InstanceId=remote_id).get("Output") or ""
        try:
            return base64.b64decode(output, validate=True)
        except (binascii.Error, ValueError):
            return output.encode()

    def import_key(self, name: str, public_key: str) -> None:
        """Import the OpenSSH *public_key* as key pair *name* unless the remote has it."""
        try:
            self._call("import_key_pair", KeyName=name,
                       PublicKeyMaterial=public_key.encode())
        except RemoteError as error:
            if error.code != "InvalidKeyPair.Duplicate":
                raise

    def check(self) -> None:
        """Raise RemoteError unless the remote answers with these credentials."""
        self._call("describe_availability_zones")
