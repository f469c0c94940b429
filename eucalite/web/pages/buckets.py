"""Buckets: the account's buckets, and a browser for one bucket's folders (common prefixes
under the delimiter "/") and objects, with upload (streamed, with a progress bar),
download, delete, public/private (canned ACLs) and a presigned link.

The same calls as the S3 adapter (:mod:`eucalite.s3.rest_buckets`,
:mod:`eucalite.s3.rest_objects`): :mod:`eucalite.s3.buckets`, :mod:`eucalite.s3.listing`,
:mod:`eucalite.s3.objects`, with the signed-in user's Principal, so bucket policies and ACLs
decide here exactly as they do for S3 clients.
"""
from __future__ import annotations

import datetime as dt
import mimetypes
from urllib.parse import urlsplit

from flask import Response, redirect, render_template, request, url_for

from ... import accounts, config as config_module
from ...api import services
from ...db import db
from ...errors import AwsError
from ...errors.s3 import InvalidArgument
from ...s3 import (acl as s3_acl, authz, buckets as s3_buckets, listing, objects, ownership,
                   sse)
from ...s3.store import CHUNK, HashingReader
from ...sigv4 import presigned_query, uri_encode
from .. import blueprint
from ..session import act, login_required, notify, notify_error, principal
from . import add_nav, attachment, may

add_nav("console.buckets", "Buckets")

DELIMITER = "/"
PAGE_SIZE = 1000
PRESIGN_SECONDS = 3600


def _store():
    return services().s3.store


#: How the console names the backend holding a bucket's data (Bucket.backend).
BACKEND_LABELS = {"file": "files on the cloud host", "s3": "S3 backend (e.g. Ceph RGW)"}


def backend_label(name: str) -> str:
    return BACKEND_LABELS.get(name, name)


# --- bucket list ------------------------------------------------------------------------

@blueprint.route("/buckets")
@login_required
def buckets():
    who = principal()
    # offered only what the S3 service would allow (it refuses the rest anyway)
    return render_template("console/buckets.html", buckets=s3_buckets.list_for(who),
                           may_create=may("s3:CreateBucket"), backend_label=backend_label,
                           may_delete=lambda b: authz.allowed(who, "s3:DeleteBucket", b))


@blueprint.route("/buckets/create", methods=["POST"])
@login_required
def buckets_create():
    name = (request.form.get("name") or "").strip()
    if act(lambda: s3_buckets.create(principal(), name, "", None),
           f"Created bucket {name}."):
        return redirect(url_for("console.bucket", name=name))
    return redirect(url_for("console.buckets"))


@blueprint.route("/buckets/<name>/delete", methods=["POST"])
@login_required
def buckets_delete(name: str):
    act(lambda: s3_buckets.delete(principal(), name, _store()), f"Deleted bucket {name}.")
    return redirect(url_for("console.buckets"))


# --- one bucket -------------------------------------------------------------------------

def _breadcrumbs(prefix: str) -> list[tuple[str, str]]:
    """(label, prefix) for each folder level of *prefix* ("a/b/" -> a, a/b)."""
    crumbs, so_far = [], ""
    for part in prefix.split(DELIMITER)[:-1]:
        so_far += part + DELIMITER
        crumbs.append((part or "(empty)", so_far))
    return crumbs


def presign_url(base: str, bucket: str, key: str, key_id: str, secret: str, region: str,
                expires: int = PRESIGN_SECONDS, now: dt.datetime | None = None) -> str:
    """A SigV4 query-signed (presigned) GET URL for ``bucket/key`` at the S3 endpoint
    *base*, as botocore's presigner makes them (host signed, payload unsigned); signed by
    :func:`eucalite.sigv4.presigned_query`, the canonicalisation the S3 API verifies with."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and (parts.scheme, parts.port) not in (("http", 80), ("https", 443)):
        host += f":{parts.port}"
    path = parts.path.rstrip("/") + "/" + uri_encode(bucket) + "/" + uri_encode(key, "/-_.~")
    query = presigned_query("GET", host, path, access_key_id=key_id, secret=secret,
                            region=region, service="s3", expires=expires,
                            now=now or dt.datetime.now(dt.timezone.utc))
    return f"{parts.scheme}://{host}{path}?{query}"


def _presigner():
    """A function (bucket, key) -> presigned GET URL (valid an hour) signed with the
    signed-in user's active access key, or None when the user has no active key."""
    who = principal()
    key_row = db.session.get(accounts.AccessKey, who.access_key_id) \
        if who.access_key_id else None
    if key_row is None or key_row.status != "Active":
        return None
    config = services().config
    base = config_module.endpoints(config)["s3"]
    key_id, secret, region = key_row.id, key_row.secret, config["region"]
    return lambda bucket, key: presign_url(base, bucket, key, key_id, secret, region)


def _listing(name: str, prefix: str):
    who = principal()
    bucket = s3_buckets.get(who, name, "s3:ListBucket",
                            **{"s3:prefix": prefix, "s3:delimiter": DELIMITER,
                               "s3:max-keys": str(PAGE_SIZE)})
    start_after = request.args.get("after") or None
    page = listing.list_page(bucket, prefix=prefix, delimiter=DELIMITER,
                             start_after=start_after, max_keys=PAGE_SIZE)
    public = {v.key for v in page.entries
              if authz.allowed(None, "s3:GetObject", bucket, v)}
    return bucket, page, public


@blueprint.route("/buckets/<name>")
@login_required
def bucket(name: str):
    prefix = request.args.get("prefix", "")
    try:
        found, page, public = _listing(name, prefix)
    except AwsError as error:
        notify_error(error)
        return redirect(url_for("console.buckets"))
    presign = _presigner()
    links = {v.key: presign(name, v.key) for v in page.entries} if presign else {}
    return render_template("console/buckets_browse.html", bucket=found, prefix=prefix,
                           crumbs=_breadcrumbs(prefix), page=page, public=public,
                           links=links, has_key=presign is not None,
                           backend=backend_label(found.backend),
                           delimiter=DELIMITER, short=lambda full: full[len(prefix):])


def _back(name: str, prefix: str | None = None):
    prefix = request.form.get("prefix", "") if prefix is None else prefix
    return redirect(url_for("console.bucket", name=name, prefix=prefix or None))


@blueprint.route("/buckets/<name>/upload", methods=["POST"])
@login_required
def bucket_upload(name: str):
    """Stream each uploaded file into ``<prefix><filename>``: 200 text on success, 4xx
    "Code: message" on failure (console.js shows it); a plain form post redirects."""
    prefix = request.form.get("prefix", "")
    files = [f for f in request.files.getlist("file") if f and f.filename]
    xhr = request.headers.get("X-Requested-With") == "fetch"
    stored: list[str] = []
    try:
        if not files:
            raise InvalidArgument("Choose a file to upload.")
        for upload in files:
            filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
            key = prefix + filename
            content_type = upload.mimetype if upload.mimetype and \
                upload.mimetype != "application/octet-stream" else \
                (mimetypes.guess_type(filename)[0] or "binary/octet-stream")
            reader = HashingReader(iter(lambda stream=upload.stream: stream.read(CHUNK), b""))
            objects.put(_store(), principal(), name, key, reader,
                        objects.Attributes(content_type=content_type))
            stored.append(key)
    except AwsError as error:
        db.session.rollback()
        message = f"{error.code}: {error.message}"
        if xhr:
            return Response(message, status=error.status if 400 <= error.status < 500
                            else 400, mimetype="text/plain")
        notify(message, "error")
        return _back(name, prefix)
    done = f"Uploaded {', '.join(stored)}."
    if xhr:
        notify(done)
        return Response(done, status=200, mimetype="text/plain")
    notify(done)
    return _back(name, prefix)


def _sendable(value: str | None) -> str | None:
    """*value* if a header can carry it as is (printable ASCII), else None: an object's
    stored attributes came from any S3 client (a PostObject form field, say)."""
    return value if value and all(" " <= c < "\x7f" for c in value) else None


@blueprint.route("/buckets/<name>/download")
@login_required
def bucket_download(name: str):
    """The object's bytes, streamed from the store as GetObject does, as an attachment."""
    key = request.args.get("key", "")
    try:
        version = objects.get(principal(), name, key)
        body = sse.read(_store(), version)      # an SSE-C object needs its key: refused
    except AwsError as error:
        notify_error(error)
        return _back(name, key.rsplit("/", 1)[0] + "/" if "/" in key else "")
    response = Response(body, status=200, direct_passthrough=True)
    response.headers["Content-Type"] = _sendable(version.content_type) or "binary/octet-stream"
    response.headers["Content-Length"] = str(version.size)
    response.headers["Content-Disposition"] = attachment(key.rsplit("/", 1)[-1] or "download")
    response.headers["ETag"] = f'"{version.etag}"'
    response.headers["Last-Modified"] = objects.http_date(version.last_modified)
    return response


@blueprint.route("/buckets/<name>/delete-object", methods=["POST"])
@login_required
def bucket_delete_object(name: str):
    key = request.form.get("key", "")
    act(lambda: objects.delete(_store(), principal(), name, key, None), f"Deleted {key}.")
    return _back(name)


@blueprint.route("/buckets/<name>/acl", methods=["POST"])
@login_required
def bucket_object_acl(name: str):
    """Make an object public (canned ``public-read``) or private, as PutObjectAcl does."""
    key = request.form.get("key", "")
    canned = request.form.get("acl", "")

    def apply():
        version = objects.get(principal(), name, key, None, action="s3:PutObjectAcl")
        bucket_row = s3_buckets.find(name)
        acl = s3_acl.canned_acl(canned, s3_acl.canonical_id(version.owner_id),
                                s3_acl.canonical_id(bucket_row.owner_id))
        ownership.check_acl_update(bucket_row, canned, acl)
        objects.set_document(principal(), version, "acl", acl.to_json())

    act(apply, f"{key} is now {'public' if canned == 'public-read' else 'private'}.")
    return _back(name)
