"""Shared fixtures: a clean environment for every test, a fresh app, a real HTTP server on
loopback with clients (``live``), and one with node duty on each test hypervisor
(``cloud``). The servers themselves are started by :mod:`liveutil`.

With EUCALITE_TEST_DATABASE_URL set, every test's apps and servers (in process or `eucalite`
subprocesses given the test's environment) use a PostgreSQL database of the test's own
(:mod:`pgutil`); otherwise SQLite in the test's data directory."""
from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
import weakref
from pathlib import Path

import cephutil
import pgutil
import pytest
from liveutil import start_live, start_live_node, stop_live

from eucalite import create_app
from eucalite import db as db_module
from eucalite.cluster.models import Node
from eucalite.db import db

#: A capacity no test's instances exhaust (cores, MiB, GiB).
ROOMY = 1_000_000


# Files that use what this host has one of: its libvirtd (qemu:///system domains, networks
# and CHAP secrets), tgtd, the metadata address 169.254.169.254:80, the tiny guest's
# build directory, eucalite's nft tables and the EDGE lab namespace. Under pytest-xdist
# (`./setup.sh test` runs two workers) they run in one worker, one after another; every
# other file runs whole in one worker (--dist loadfile), so its module fixtures start once.
HOST_WIDE = {"test_autoscaling_real.py", "test_cloudwatch_collect_real.py",
             "test_console_browser.py", "test_create_image_real.py", "test_ebs_export.py",
             "test_ebs_real.py", "test_ebs_rbd_real.py", "test_edge_real.py", "test_guest_build.py",
             "test_instance_profiles_real.py", "test_instance_shutdown_real.py",
             "test_multihost_real.py", "test_node_real.py",
             "test_overlay_real.py", "test_virt_contract.py", "test_volume_remote.py"}


# Files that boot real VMs or build the guest: the PostgreSQL pass (tests/pgutil.py) leaves
# them to the SQLite pass, as their database work is what the other files test already.
REAL_VM = HOST_WIDE - {"test_console_browser.py", "test_ebs_export.py", "test_volume_remote.py"}


# Files that touch no database and no storage backend (pure code, the package itself, the
# hypervisor drivers, nft in namespaces): the PostgreSQL pass would run them unchanged.
NO_DATABASE = {"test_architecture.py", "test_bundle.py", "test_config_and_query.py",
               "test_domain_xml.py", "test_edge_nft.py", "test_ids.py", "test_overlay.py",
               "test_packaging.py", "test_policy_engine.py", "test_scheduler.py",
               "test_virt_contract.py", "test_wildcards.py", "test_wire_cbor.py",
               "test_wire_parse.py"}


def pytest_collection_modifyitems(config, items):
    if not pgutil.URL:
        return
    real_vm = pytest.mark.skip(reason="real VMs: run on the SQLite pass only")
    no_database = pytest.mark.skip(reason="uses no database or storage backend: run on the "
                                          "SQLite pass only")
    for item in items:
        if item.path.name in REAL_VM:
            item.add_marker(real_vm)
        elif item.path.name in NO_DATABASE:
            item.add_marker(no_database)


@pytest.hookimpl(optionalhook=True)         # a pytest-xdist hook: called only under -n
def pytest_xdist_make_scheduler(config, log):
    """For ``--dist loadfile``: xdist's file-by-file scheduling with the HOST_WIDE files as
    one unit. (Not --dist loadgroup with xdist_group marks: pytest-xdist 3.8 cannot add the
    group to a test's id under pytest 9, so the marks are ignored.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    # deferred: pytest-xdist is a test extra, and this runs only when it drives the run
    from xdist.scheduler import LoadFileScheduling

    class HostWideTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "host-wide files" if Path(file).name in HOST_WIDE else file

    return HostWideTogether(config, log)


@pytest.fixture(autouse=True, scope="session")
def _migrated_once(tmp_path_factory):
    """Each app migrates its new SQLite database from nothing, which was most of a small
    test's time. Here a data directory's new ``eucalite.db`` is instead a copy of one this
    process migrated once with the same migrations. Other files (the migrations' own tests
    use ``empty_database_url``) and PostgreSQL URLs are migrated for real."""
    migrated = tmp_path_factory.mktemp("migrated") / "eucalite.db"
    db_module.upgrade(f"sqlite:///{migrated}")
    template = migrated.with_name("template.db")
    with sqlite3.connect(migrated) as source, sqlite3.connect(template) as copy:
        source.backup(copy)                     # whole, whatever WAL still held
    upgrade = db_module.upgrade

    def from_template(url: str, revision: str = "head") -> None:
        path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
        if revision == "head" and path is not None and path.name == "eucalite.db" \
                and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, path)
            return
        upgrade(url, revision)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db_module, "upgrade", from_template)
        yield


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch, tmp_path):
    """No developer credentials, profiles or endpoints leak into a test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "EUCALITE_")) or name in ("EC2_URL", "S3_URL"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _test_database(_isolated_aws_environment, monkeypatch):
    """On the PostgreSQL pass, a database of this test's own, named to every app it builds
    through EUCALITE_DATABASE_URL (set after the environment above was cleared) and dropped
    after the test, whatever its servers still hold open."""
    if not pgutil.URL:
        yield
        return
    name = pgutil.fresh_database()
    monkeypatch.setenv("EUCALITE_DATABASE_URL", pgutil.url_for(name))
    yield
    pgutil.drop_database(name)


#: The pass of the suite that keeps Walrus' data in the test Ceph's RGW and EBS volumes in
#: its RBD pool (./setup.sh test: the PostgreSQL pass), so each suite also runs against Ceph.
WALRUS_ON_CEPH = os.environ.get("EUCALITE_TEST_WALRUS_ON_CEPH") == "1" and bool(cephutil.RGW_URL)
EBS_ON_CEPH = os.environ.get("EUCALITE_TEST_EBS_ON_CEPH") == "1" and bool(cephutil.CONF)


@pytest.fixture(autouse=True)
def _test_storage(_isolated_aws_environment, monkeypatch):
    """On the Ceph pass, every app this test builds puts new buckets' data in an RGW bucket
    of the test's own (removed after it) and new volumes in the RBD pool."""
    options = {}
    if WALRUS_ON_CEPH:
        options.update(cephutil.s3_backend_options())
    if EBS_ON_CEPH:
        options.update(cephutil.rbd_options())
    for name, value in cephutil.as_environment(options).items():
        monkeypatch.setenv(name, value)
    yield
    if WALRUS_ON_CEPH:
        cephutil.drop_backend_bucket(options["s3_backend_bucket"])


@pytest.fixture(autouse=True)
def _ceph_connections(monkeypatch):
    """Close, after the test, every RBD backing that connected during it. A backing holds
    its connection (a dozen librados threads) until it is garbage-collected, and the apps a
    live server's threads still reference never are: over a worker's hundreds of tests on
    the Ceph pass the threads piled up until librados aborted the process. A backing used
    again (a module's app) connects again."""
    if not cephutil.CONF:
        yield
        return
    from eucalite.ebs.backing import RbdBacking
    connected = weakref.WeakSet()               # not keeping a backing alive
    cluster = RbdBacking.cluster

    def tracked(self):
        connected.add(self)
        return cluster(self)

    monkeypatch.setattr(RbdBacking, "cluster", tracked)
    yield
    for backing in list(connected):
        backing.close()


@pytest.fixture
def empty_database_url(tmp_path):
    """The URL of a database with no tables yet, for migration tests: a SQLite file, or on
    the PostgreSQL pass a new empty database (dropped after the test)."""
    if not pgutil.URL:
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    name = "eucalite_e_" + uuid.uuid4().hex[:16]
    pgutil.create_database(name)
    yield pgutil.url_for(name)
    pgutil.drop_database(name)


def pytest_sessionfinish(session):
    if pgutil.URL:
        pgutil.drop_template()


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


@pytest.fixture
def ebs(tmp_path):
    """A live cloud with node duty on the fake hypervisor and volumes exported as files."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   max_volume_gb=100, max_total_volume_gb=150)
    yield live
    server.shutdown()
    live.services.compute.worker.shutdown()


@pytest.fixture
def roomy(tmp_path):
    """A live cloud on the fake hypervisor whose node has room for thousands of instances,
    volumes exported as files (for paging and scale tests)."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   max_volume_gb=100, max_total_volume_gb=150)
    with live.app.app_context():
        for node in db.session.execute(db.select(Node)).scalars():
            node.cores, node.memory_mb, node.disk_gb = ROOMY, ROOMY, ROOMY
        db.session.commit()
    yield live
    stop_live(live, server)
