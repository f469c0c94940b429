"""The EC2 instance metadata service (IMDSv1 and IMDSv2) and instance metadata options.

Guests reach it at ``http://169.254.169.254/``. It is a WSGI app of its own (the main app
serves S3 at ``/``); :func:`serve` runs it on a listener of its own. The caller is the
instance whose ``private_ip`` equals the request's source address, so nothing in the
request names an instance and one guest cannot read another's data.

The tree follows AWS: ``/`` lists the versions, every version serves the same tree,
directories list their entries one per line with a trailing ``/`` (leaves without), and
``public-keys/`` lists ``0=<keyname>`` as cloud-init's crawler expects.

IMDSv2 tokens are stateless: an HMAC-SHA256 over (instance id, expiry) with a secret kept
in ``<data_dir>/imds-secret``, so a token works only for the instance that asked for it,
and tokens survive a restart. :func:`metadata_options` and
:func:`validate_metadata_options` are the API side (``MetadataOptions`` of RunInstances,
ModifyInstanceMetadataOptions, DescribeInstances).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from .. import integers, sessions
from ..db import db
from ..errors import InvalidParameterValue
from ..httpserver import Limits
from ..httpserver.embedded import Embedded, listen, plain_text_error
from ..tags import tags_for
from . import states
from .instances import decode_user_data
from .models import Image, Instance
from .secgroups import GroupRef, instance_groups

METADATA_ADDRESS = "169.254.169.254"
# Guests on the instance network share the listener: a few threads, short timeouts (IMDS
# clients send whole requests at once), a few connections per guest address.
METADATA_LIMITS = Limits(threads=4, header_timeout=5, keepalive_timeout=5, body_timeout=5,
                         max_connections=1024, max_connections_per_client=16,
                         max_requests_per_client=2)

#: Every version AWS lists at ``/``; all of them serve the same tree here.
VERSIONS = (
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
    "2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12",
    "2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02",
    "2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03",
    "2021-03-23", "2021-07-15", "2022-09-24", "2024-04-11", "latest",
)

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TOKEN_TTL = 21600
SECRET_FILE = "imds-secret"

# States whose instance is the one behind an address; a stopped or shutting-down instance
# may still hold the address in the table but yields to a live one.
_LIVE = (states.PENDING, states.RUNNING, states.STOPPING)


# --- metadata options (the API side) ---------------------------------------------------

DEFAULT_OPTIONS: dict[str, Any] = {
    "HttpTokens": "optional",
    "HttpPutResponseHopLimit": 1,
    "HttpEndpoint": "enabled",
    "HttpProtocolIpv6": "disabled",
    "InstanceMetadataTags": "disabled",
}

_CHOICES = {
    "HttpTokens": ("optional", "required"),
    "HttpEndpoint": ("enabled", "disabled"),
    # There is no IPv6 endpoint here, so "enabled" would be a promise not kept.
    "HttpProtocolIpv6": ("disabled",),
    "InstanceMetadataTags": ("disabled", "enabled"),
}


def metadata_options(instance: Instance) -> dict[str, Any]:
    """The instance's metadata options under their AWS names, defaults filled in."""
    stored = instance.get_json("metadata_options", {}) or {}
    return {**DEFAULT_OPTIONS, **{key: value for key, value in stored.items()
                                  if key in DEFAULT_OPTIONS}}


def validate_metadata_options(raw: dict[str, Any]) -> dict[str, Any]:
    """The options given in *raw* (AWS names; values as strings or ints), checked and
    normalized; keys not given stay absent so a caller can merge them over stored ones.

    Raises :class:`InvalidParameterValue` for an unknown option or a bad value.
    """
    result: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name == "HttpPutResponseHopLimit":
            limit = value if type(value) is int else integers.parse(str(value))
            if limit is None or not 1 <= limit <= 64:
                raise InvalidParameterValue(
                    f"Value ({value}) for parameter HttpPutResponseHopLimit is invalid. "
                    "Expected an integer between 1 and 64.")
            result[name] = limit
        elif name in _CHOICES:
            if value not in _CHOICES[name]:
                raise InvalidParameterValue(
                    f"Value ({value}) for parameter {name} is invalid. Valid values: "
                    f"{', '.join(_CHOICES[name])}.")
            result[name] = value
        else:
            raise InvalidParameterValue(f"The parameter {name} is not recognized in "
                                        "MetadataOptions.")
    return result


# --- names shared with the EC2 API ----------------------------------------------------

def private_dns_name(private_ip: str | None) -> str:
    """Eucalyptus' private DNS name for an address (``euca-10-0-0-5.eucalyptus.internal``)."""
    return f"euca-{private_ip.replace('.', '-')}.eucalyptus.internal" if private_ip else ""


def public_dns_name(public_ip: str | None) -> str:
    return f"euca-{public_ip.replace('.', '-')}.eucalyptus.lab" if public_ip else ""


# --- IMDSv2 tokens ---------------------------------------------------------------------

def _load_secret(data_dir: str) -> bytes:
    """The token key in ``<data_dir>/imds-secret`` (mode 0600), created on first use.

    O_EXCL makes two processes racing to create it agree on one file.
    """
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    secret = path.read_text().strip()
    if not secret:
        raise OSError(f"{path} is empty; delete it to make a new one")
    return bytes.fromhex(secret)


def _signature(secret: bytes, instance_id: str, expiry: int) -> bytes:
    return hmac.new(secret, f"{instance_id}\n{expiry}".encode(), hashlib.sha256).digest()


def issue_token(secret: bytes, instance_id: str, ttl: int, now: float | None = None) -> str:
    """A token valid for *ttl* seconds, for *instance_id* only."""
    expiry = int(now if now is not None else time.time()) + ttl
    raw = expiry.to_bytes(8, "big") + _signature(secret, instance_id, expiry)
    return base64.urlsafe_b64encode(raw).decode()


def token_seconds_left(secret: bytes, instance_id: str, token: str,
                       now: float | None = None) -> int | None:
    """Seconds the token has left, or None if it is malformed, forged, for another
    instance, or expired."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != 8 + 32:
        return None
    expiry = int.from_bytes(raw[:8], "big")
    if not hmac.compare_digest(raw[8:], _signature(secret, instance_id, expiry)):
        return None
    left = expiry - int(now if now is not None else time.time())
    return left if left > 0 else None


# --- the tree --------------------------------------------------------------------------

class Directory(dict):
    """A directory of the tree; *listing* overrides the default listing lines (AWS lists
    ``public-keys/`` as ``0=<keyname>`` and a version without trailing slashes)."""

    def __init__(self, entries: dict | None = None, listing: list[str] | None = None):
        super().__init__(entries or {})
        self.listing = listing

    def lines(self) -> list[str]:
        if self.listing is not None:
            return self.listing
        return [name + "/" if isinstance(child, Directory) else name
                for name, child in self.items()]


def _iso(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(document: dict[str, Any]) -> str:
    # AWS's pretty-printing in the metadata service: "key" : value
    return json.dumps(document, indent=2, separators=(",", " : "))


def identity_document(instance: Instance, region: str) -> str:
    """The instance identity document, pretty-printed as AWS does (``"key" : value``)."""
    document = {
        "accountId": instance.owner_id,
        "architecture": "x86_64",
        "availabilityZone": instance.zone,
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": instance.image_id,
        "instanceId": instance.id,
        "instanceType": instance.instance_type,
        "kernelId": instance.kernel_id,
        "pendingTime": _iso(instance.launch_time),
        "privateIp": instance.private_ip,
        "ramdiskId": instance.ramdisk_id,
        "region": region,
        "version": "2017-09-30",
    }
    return _json(document)


def _block_devices(instance: Instance) -> Directory:
    # Eucalyptus' instance-store layout: the image on sda1, the ephemeral disk on sda2.
    root = instance.root_device_name or "/dev/sda1"
    return Directory({"ami": root.removeprefix("/dev/"), "ephemeral0": "sda2", "root": root})


def _interface(instance: Instance, groups: list[GroupRef]) -> Directory:
    entries = {
        "device-number": "0",
        "local-hostname": private_dns_name(instance.private_ip),
        "local-ipv4s": instance.private_ip or "",
        "mac": instance.mac,
        "owner-id": instance.owner_id,
    }
    if instance.public_ip:
        entries["public-hostname"] = public_dns_name(instance.public_ip)
        entries["public-ipv4s"] = instance.public_ip
    entries["security-group-ids"] = "\n".join(group.id for group in groups)
    entries["security-groups"] = "\n".join(group.name for group in groups)
    return Directory(entries)


def _instance_tags(instance: Instance) -> Directory:
    tags = tags_for(instance.owner_id, [instance.id])[instance.id]
    # A key with "/" cannot be a path segment; AWS refuses such keys once tags are on.
    return Directory({key: value for key, value in sorted(tags.items()) if "/" not in key})


def _iam(instance: Instance) -> Directory | None:
    """``iam/``: the instance profile (``info``) and its role's current credentials
    (``security-credentials/<role>``, rotated by :func:`eucalite.sessions.instance_role`),
    or AWS's failure code for a role EC2 may not assume. None: no profile (or it is gone)."""
    if not instance.iam_instance_profile_id:
        return None
    found = sessions.instance_role(instance.owner_id, instance.iam_instance_profile_id,
                                   instance.id)
    if found is None:
        return None
    now = _iso(dt.datetime.now(dt.timezone.utc))
    if found.code != "Success":
        failure = _json({"Code": found.code, "Message": found.message, "LastUpdated": now})
        return Directory({"info": failure, "security-credentials": Directory(
            {found.role_name: failure})})
    session = found.session
    updated = _iso(session.created) if session is not None else now
    info = _json({"Code": "Success", "LastUpdated": updated,
                  "InstanceProfileArn": instance.iam_instance_profile_arn,
                  "InstanceProfileId": instance.iam_instance_profile_id})
    if session is None:         # a profile with no role: nothing to hand out
        return Directory({"info": info})
    credentials = {"Code": "Success", "LastUpdated": updated, "Type": "AWS-HMAC",
                   "AccessKeyId": session.access_key_id,
                   "SecretAccessKey": session.secret, "Token": session.token,
                   "Expiration": _iso(session.expires)}
    return Directory({"info": info, "security-credentials": Directory(
        {found.role_name: _json(credentials)})})


def meta_data(instance: Instance, region: str, options: dict[str, Any]) -> Directory:
    """``/<version>/meta-data/`` for *instance*, keys in AWS' (alphabetical) order."""
    groups = instance_groups([instance.id])[instance.id]
    hostname = private_dns_name(instance.private_ip)
    image = db.session.get(Image, instance.image_id)
    entries: dict[str, Any] = {
        "ami-id": instance.image_id,
        "ami-launch-index": str(instance.launch_index),
        "ami-manifest-path": (image.location if image and image.location else "(unknown)"),
        "block-device-mapping": _block_devices(instance),
        "hostname": hostname,
    }
    iam = _iam(instance)
    if iam is not None:
        entries["iam"] = iam
    entries.update({
        "instance-action": "none",
        "instance-id": instance.id,
        "instance-life-cycle": "on-demand",
        "instance-type": instance.instance_type,
    })
    if instance.kernel_id:
        entries["kernel-id"] = instance.kernel_id
    entries["local-hostname"] = hostname
    entries["local-ipv4"] = instance.private_ip or ""
    if instance.mac:
        entries["mac"] = instance.mac
        entries["network"] = Directory({"interfaces": Directory({"macs": Directory({
            instance.mac: _interface(instance, groups)})})})
    entries["placement"] = Directory({"availability-zone": instance.zone,
                                      "region": region})
    if instance.public_ip:
        entries["public-hostname"] = public_dns_name(instance.public_ip)
        entries["public-ipv4"] = instance.public_ip
    if instance.key_public:
        key = instance.key_public.strip() + "\n"
        entries["public-keys"] = Directory(
            {"0": Directory({"openssh-key": key})},
            listing=[f"0={instance.key_name or ''}"])
    if instance.ramdisk_id:
        entries["ramdisk-id"] = instance.ramdisk_id
    entries["reservation-id"] = instance.reservation_id
    entries["security-groups"] = "\n".join(group.name for group in groups)
    entries["services"] = Directory({"domain": "amazonaws.com", "partition": "aws"})
    if options["InstanceMetadataTags"] == "enabled":
        entries["tags"] = Directory({"instance": _instance_tags(instance)})
    return Directory(entries)


def version_tree(instance: Instance, region: str, options: dict[str, Any]) -> Directory:
    """``/<version>/``: dynamic data, meta-data and (when there is some) user-data."""
    entries: dict[str, Any] = {
        "dynamic": Directory({"instance-identity": Directory({
            "document": identity_document(instance, region)})}),
        "meta-data": meta_data(instance, region, options),
    }
    user_data = decode_user_data(instance.user_data) if instance.user_data else b""
    if user_data:
        entries["user-data"] = user_data
    # AWS lists a version's entries without trailing slashes.
    return Directory(entries, listing=list(entries))


def resolve(tree: Directory, segments: list[str]) -> Any:
    """The node at *segments* below *tree*, or None. A leaf asked for with a trailing
    slash is still the leaf (the caller drops empty segments), as AWS answers it."""
    node: Any = tree
    for segment in segments:
        if not isinstance(node, Directory) or segment not in node:
            return None
        node = node[segment]
    return node


# --- the WSGI app ----------------------------------------------------------------------

def _text(body: str | bytes, status: int = 200, mimetype: str = "text/plain",
          headers: dict | None = None) -> Response:
    return Response(body, status=status, mimetype=mimetype, headers=headers)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed"}


def _error(status: int, headers: dict | None = None) -> Response:
    return _text(f"{status} - {_REASONS[status]}\n", status, headers=headers)


def find_instance(address: str | None) -> Instance | None:
    """The instance behind a source address: not terminated, live ones first, then the
    newest launch (a reused address belongs to whoever holds it now)."""
    if not address:
        return None
    rows = db.session.execute(db.select(Instance).where(
        Instance.private_ip == address, Instance.state != states.TERMINATED)).scalars().all()
    if not rows:
        return None
    return max(rows, key=lambda row: (row.state in _LIVE, row.launch_time))


def make_app(main_app):
    """A WSGI callable serving the metadata of the instance at the request's source
    address (``REMOTE_ADDR``), with *main_app*'s database and config."""
    secret_lock = threading.Lock()
    secret: list[bytes] = []

    def get_secret() -> bytes:
        with secret_lock:
            if not secret:
                secret.append(_load_secret(main_app.config["EUCALITE"]["data_dir"]))
            return secret[0]

    def handle(request: Request) -> Response:
        instance = find_instance(request.remote_addr)
        if instance is None:
            return _error(404)
        options = metadata_options(instance)
        if options["HttpEndpoint"] != "enabled":
            return _error(403)
        segments = [segment for segment in request.path.split("/") if segment]
        if segments[1:] == ["api", "token"] and segments[0] in VERSIONS:
            if request.method != "PUT":
                return _error(405, {"Allow": "PUT"})
            return put_token(request, instance)
        if request.method not in ("GET", "HEAD"):
            return _error(405, {"Allow": "GET, HEAD"})
        headers = {}
        token = request.headers.get(TOKEN_HEADER)
        if token is not None:
            # A bad token is refused even where tokens are optional, as AWS does.
            left = token_seconds_left(get_secret(), instance.id, token)
            if left is None:
                return _error(401)
            headers[TTL_HEADER] = str(left)
        elif options["HttpTokens"] == "required":
            return _error(401)
        if not segments:
            return _text("\n".join(VERSIONS), headers=headers)
        if segments[0] not in VERSIONS:
            return _error(404, headers)
        region = main_app.config["EUCALITE"]["region"]
        node = resolve(version_tree(instance, region, options), segments[1:])
        if node is None:
            return _error(404, headers)
        if isinstance(node, Directory):
            return _text("\n".join(node.lines()), headers=headers)
        if isinstance(node, bytes):
            return _text(node, mimetype="application/octet-stream", headers=headers)
        return _text(node, headers=headers)

    def put_token(request: Request, instance: Instance) -> Response:
        # A PUT relayed by a proxy carries X-Forwarded-For; AWS refuses it so a
        # misconfigured proxy on the guest cannot hand tokens to the network.
        if "X-Forwarded-For" in request.headers:
            return _error(403)
        text = request.headers.get(TTL_HEADER, "")
        ttl = integers.parse(text, minimum=1, maximum=MAX_TOKEN_TTL)
        if ttl is None:
            return _error(400)
        return _text(issue_token(get_secret(), instance.id, ttl), headers={TTL_HEADER: text})

    def app(environ, start_response):
        request = Request(environ)
        with main_app.app_context():
            try:
                response = handle(request)
            finally:
                db.session.remove()
        return response(environ, start_response)

    return app


def serve(main_app, host: str = METADATA_ADDRESS, port: int = 80):
    """Serve :func:`make_app` on *host*:*port* from a background thread, on the API's front
    end (eucalite.httpserver: a guest that idles or trickles is cut off, not given a thread
    for ever). Returns the listener; its ``shutdown()`` stops it.

    Raises OSError if the address cannot be bound.
    """
    return Embedded(make_app(main_app), listen(host, port), METADATA_LIMITS, name="imds",
                    error_body=plain_text_error)
