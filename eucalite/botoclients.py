"""botocore clients of other AWS-compatible endpoints: the cloud-bursting target's EC2 and
the S3 store Walrus' ``s3`` backend keeps data in.

One botocore session serves the process: making one loads botocore's data files (service
models, the endpoint table), which takes longer than any request these clients send. A
session is not safe to share between threads (its clients are), so clients are made from
it one at a time. Callers pass every setting (endpoint, region, keys, config), so nothing
of the process's AWS environment or files reaches these clients but what botocore itself
reads for settings left out.
"""
from __future__ import annotations

import threading

import botocore.session

_session = None
_lock = threading.Lock()


def create_client(service: str, **settings):
    """``botocore.session.Session.create_client(service, **settings)`` on the process's
    shared session."""
    global _session
    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.create_client(service, **settings)
