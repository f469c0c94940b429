"""The node's side of the internal API's transport: JSON over HTTP(S), each request signed
with SigV4 (service ``eucalite-node``) by :mod:`eucalite.sigv4`, the algorithm the
controller verifies with; and the node's credentials file.

Standard library only (urllib), so a node host needs nothing the package does not bring.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

from .. import sigv4

#: The protocol's names, which the controller's side (:mod:`.internalapi`) uses too: the
#: SigV4 service name and the API's path.
SERVICE = "eucalite-node"
API_PATH = "/internal/v1"
CREDENTIALS_FILE = "node-credentials.json"


def version() -> str:
    """This package's version, which each side tells the other."""
    try:
        return metadata.version("eucalite")
    except metadata.PackageNotFoundError:     # pragma: no cover - a source tree
        return "0"


class InternalApiError(Exception):
    """The controller refused or failed a request (*status* 0: it was not reached)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}" if status else message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class NodeCredentials:
    """What a node keeps in its data directory after joining (mode 0600)."""

    controller_url: str
    node_id: str
    zone: str
    region: str
    access_key_id: str
    secret_access_key: str
    # A CA bundle trusted for an https:// controller with its own certificate ("": the
    # system's), given at join and used on every later start.
    cafile: str = ""

    def save(self, data_dir: Path) -> Path:
        """Write to *data_dir* readable by this user only (created 0600, then renamed)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / CREDENTIALS_FILE
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=1)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, data_dir: Path) -> "NodeCredentials | None":
        path = data_dir / CREDENTIALS_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))


def sign(method: str, url: str, body: bytes, access_key_id: str, secret: str, region: str,
         now: dt.datetime | None = None) -> dict[str, str]:
    """The headers that sign a request for *url* with *body*: host, x-amz-date, the payload
    hash, a random nonce and Authorization."""
    now = now or dt.datetime.now(dt.timezone.utc)
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    # The nonce makes two identical requests in one second two signatures: the controller
    # accepts each signature once.
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date,
               "x-eucalite-nonce": secrets.token_hex(8)}
    signed = sorted(headers)
    query = sigv4.canonical_query([(unquote(key), unquote(value)) for key, _, value in
                                   (pair.partition("=") for pair in parts.query.split("&"))
                                   if key])
    canonical = sigv4.canonical_request(method, parts.path or "/", query,
                                        sigv4.canonical_headers(headers, signed), signed,
                                        payload)
    scope = sigv4.credential_scope(amz_date[:8], region, SERVICE)
    key = sigv4.v4_signing_key(secret, amz_date[:8], region, SERVICE)
    headers["authorization"] = (
        f"{sigv4.V4_ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, "
        f"Signature={sigv4.signature(key, sigv4.string_to_sign(amz_date, scope, canonical))}")
    return headers


class NodeClient:
    """Calls the controller at *controller_url* (its base URL, e.g. http://cc:8773); signed
    when it has *credentials*. *cafile*: a CA bundle for a self-signed HTTPS controller."""

    def __init__(self, controller_url: str, credentials: NodeCredentials | None = None,
                 timeout: float = 30, cafile: str | None = None):
        self.base = controller_url.rstrip("/") + API_PATH
        self.credentials = credentials
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def _open(self, method: str, path: str, body: bytes = b""):
        """The open response to *method* on ``/internal/v1`` + *path* with *body* (signed
        when the client has credentials). Raises InternalApiError with the controller's
        error code, or status 0 when the controller was not reached."""
        url = self.base + path
        headers = {"content-type": "application/json"}
        if self.credentials is not None:
            creds = self.credentials
            headers.update(sign(method, url, body, creds.access_key_id,
                                creds.secret_access_key, creds.region))
        request = urllib.request.Request(url, data=body if method != "GET" else None,
                                         headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                detail = json.loads(text)["error"]
                code, message = detail["code"], detail["message"]
            except (ValueError, KeyError, TypeError):
                code, message = f"HTTP{error.code}", text.decode("utf-8", "replace")[:200]
            raise InternalApiError(error.code, code, message) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise InternalApiError(0, "Unreachable",
                                   f"cannot reach the controller at {self.base}: {reason}") \
                from None

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """*method* on ``/internal/v1`` + *path* with *payload* as JSON; the decoded JSON
        answer. Raises InternalApiError with the controller's error code."""
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        with self._open(method, path, body) as response:
            return json.loads(response.read() or b"null")

    def stream(self, path: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """GET ``/internal/v1`` + *path*: the answer's body in chunks of at most
        *chunk_size* bytes, never held whole. The request is made on the first ``next()``;
        InternalApiError as :meth:`call` (status 0 also when the body is cut short)."""
        with self._open("GET", path) as response:
            try:
                while chunk := response.read(chunk_size):
                    yield chunk
            except (http.client.IncompleteRead, OSError) as error:
                raise InternalApiError(0, "Unreachable", f"the answer to {path} was cut "
                                       f"short: {error}") from None

    def join(self, token: str, node_name: str) -> dict:
        return self.call("POST", "/join", {"token": token, "node_name": node_name})
