"""boto3 clients of model-driven services (CloudWatch) pinned to one wire protocol.

boto3 picks the first protocol of a model's ``protocols`` it supports (awsJson for
CloudWatch today); older SDKs speak awsQuery and others Smithy RPC v2 CBOR. :func:`client`
builds a client whose botocore loader gives the service's model with ``protocols`` set to
the one asked for, so a test can drive the server exactly as each kind of SDK does.
"""
from __future__ import annotations

import copy

import botocore.loaders
from botocore.config import Config
from liveutil import aws_session

#: The protocols a test names, as botocore's models name them.
PROTOCOLS = {"json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor"}


class PinnedLoader(botocore.loaders.Loader):
    """botocore's loader, with every service model's ``protocols`` set to one protocol."""

    def __init__(self, protocol: str):
        super().__init__()
        self.protocol = protocol

    def load_service_model(self, service_name, type_name, api_version=None):
        model = super().load_service_model(service_name, type_name, api_version)
        if type_name != "service-2":
            return model
        model = copy.copy(model)
        model["metadata"] = dict(model["metadata"], protocol=self.protocol,
                                 protocols=[self.protocol])
        return model


#: One loader per protocol (each caches the models it has read)
_LOADERS: dict[str, PinnedLoader] = {}


def client(service: str, protocol: str, endpoint_url: str, key_id: str, secret: str,
           region: str, **config):
    """A boto3 client of *service* speaking *protocol* ("json", "query" or "cbor") to
    *endpoint_url*, never retrying (errors reach the test as they are)."""
    if protocol not in _LOADERS:
        _LOADERS[protocol] = PinnedLoader(PROTOCOLS[protocol])
    session = aws_session(key_id, secret, region, _LOADERS[protocol])
    return session.client(service, endpoint_url=endpoint_url,
                          config=Config(retries={"max_attempts": 1}, **config))
