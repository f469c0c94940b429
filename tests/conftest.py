"""Shared fixtures: a clean environment for every test, a fresh app, a real HTTP server on
loopback with clients (``live``), and one with node duty on each test hypervisor
(``cloud``). The servers themselves are started by :mod:`liveutil`."""
from __future__ import annotations

import os

import pytest
from liveutil import start_live, start_live_node, stop_live

from eucalite import create_app


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch, tmp_path):
    """No developer credentials, profiles or endpoints leak into a test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "EUCALITE_")) or name in ("EC2_URL", "S3_URL"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def app(tmp_path):
    return create_app({"data_dir": str(tmp_path / "data"), "node": False})


@pytest.fixture
def live(tmp_path):
    live, server = start_live(tmp_path / "data")
    yield live
    server.shutdown()


def _hypervisors():
    """The drivers the compute tests run on: the fake always, libvirt's in-process test
    driver when libvirt-python is installed."""
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return ["fake"]
    return ["fake", "test:///default"]


@pytest.fixture(params=_hypervisors())
def cloud(tmp_path, request):
    """A live server with node duty on: the in-memory fake hypervisor, and libvirt's
    test:///default driver where libvirt-python is installed."""
    if request.param == "fake":
        options = {"hypervisor": "fake"}
    else:
        options = {"hypervisor": "libvirt", "libvirt_uri": request.param}
    live, server = start_live_node(tmp_path / "data", **options)
    yield live
    # test:///default is one state per process: leave no domain for the next test to see
    stop_live(live, server)
