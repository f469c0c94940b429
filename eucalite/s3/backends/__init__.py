"""Walrus' data backends behind one contract (:class:`.base.Backend`): ``file`` (segments
as files in the data directory, :mod:`.file`) and ``s3`` (segments as objects in another
S3 endpoint's bucket, such as a Ceph RADOS Gateway, :mod:`.s3`).

Each bucket records the backend its new objects' data go to (``Bucket.backend``, from the
config's ``s3_backend`` when it was made) and each segment path names its backend, so a
cloud switched from one backend to the other still serves what it stored before.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .base import Backend
from .file import FileBackend

NAMES = ("file", "s3")


def from_config(config: Mapping[str, Any], root: Path) -> dict[str, Backend]:
    """The backends *config* describes, by name: always ``file`` (under *root*, which also
    holds the SSE keys whatever the backend), and ``s3`` when an endpoint is configured."""
    backends: dict[str, Backend] = {"file": FileBackend(root)}
    if config.get("s3_backend_url"):
        from .s3 import S3Backend           # botocore is only loaded when used
        backends["s3"] = S3Backend(
            config["s3_backend_url"], config.get("s3_backend_access_key", ""),
            config.get("s3_backend_secret_key", ""),
            config.get("s3_backend_bucket") or "eucalite-walrus",
            config.get("s3_backend_region") or "us-east-1")
    return backends
