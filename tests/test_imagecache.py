"""The node's image cache (eucalite/cluster/imagecache.py): fills once, refuses atomically,
evicts least recently used images nobody uses; instance work files (qcow2 overlays on the
cached base, sparse ephemeral disk); and the real fill path from a registered bundle."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import storeutil
from liveutil import start_live
from eucalite.cluster import imagecache
from eucalite.cluster.imagecache import GiB, ImageCache

MiB = 2**20


def writer(data: bytes, calls: list | None = None, delay: float = 0):
    """A fill writing *data* (recording each call in *calls*)."""
    def fill(out):
        if calls is not None:
            calls.append(threading.current_thread().name)
        if delay:
            time.sleep(delay)
        out.write(data)
    return fill


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# --- ImageCache ----------------------------------------------------------------------------

def test_fill_runs_once_per_image_and_part(tmp_path):
    cache = ImageCache(tmp_path / "cache", GiB)
    calls = []
    first = cache.ensure("emi-1", "root", writer(b"root bytes", calls))
    assert first == tmp_path / "cache" / "emi-1" / "root" == cache.path("emi-1", "root")
    assert first.read_bytes() == b"root bytes"
    assert (cache.misses, len(calls)) == (1, 1)

    again = cache.ensure("emi-1", "root", writer(b"other", calls))
    assert again == first and again.read_bytes() == b"root bytes"
    assert (cache.misses, len(calls)) == (1, 1)                # a hit: no fill

    cache.ensure("emi-1", "kernel", writer(b"kernel", calls))  # another part: filled
    cache.ensure("emi-2", "root", writer(b"root 2", calls))    # another image: filled
    assert (cache.misses, len(calls)) == (3, 3)
    cache.ensure("emi-1", "kernel", writer(b"x", calls))
    assert cache.misses == 3


@pytest.mark.parametrize("image_id, part", [("emi-1", "disk"), ("", "root"), ("a/b", "root"),
                                            (".hidden", "root"), ("..", "root")])
def test_bad_entries_refused(tmp_path, image_id, part):
    cache = ImageCache(tmp_path / "cache", GiB)
    with pytest.raises(ValueError):
        cache.ensure(image_id, part, writer(b"x"))
    assert not (tmp_path / "cache").exists()


def test_failed_fill_leaves_nothing(tmp_path):
    cache = ImageCache(tmp_path / "cache", GiB)

    def broken(out):
        out.write(b"half an image")
        raise RuntimeError("corrupt bundle")

    with pytest.raises(RuntimeError, match="corrupt bundle"):
        cache.ensure("emi-1", "root", broken)
    assert not cache.path("emi-1", "root").exists()
    assert not list((tmp_path / "cache").glob("*/*" + imagecache.TMP_SUFFIX))
    assert cache.misses == 0
    # a later fill that works is not confused by the failure
    assert cache.ensure("emi-1", "root", writer(b"whole")).read_bytes() == b"whole"
    assert cache.misses == 1
    assert leftovers(tmp_path / "cache" / "emi-1") == [imagecache.STAMP, "root"]


def test_recover_removes_partial_files(tmp_path):
    cache = ImageCache(tmp_path / "cache", GiB)
    cache.recover()                                    # no cache directory yet: fine
    cache.ensure("emi-1", "root", writer(b"whole"))
    (tmp_path / "cache" / "emi-1" / "kernel.partial").write_bytes(b"half")
    (tmp_path / "cache" / "emi-2").mkdir()
    (tmp_path / "cache" / "emi-2" / "root.partial").write_bytes(b"half")
    cache.recover()
    assert leftovers(tmp_path / "cache" / "emi-1") == [imagecache.STAMP, "root"]
    assert leftovers(tmp_path / "cache" / "emi-2") == []
    assert cache.path("emi-1", "root").read_bytes() == b"whole"
    # the crashed part is filled again on next use
    cache.ensure("emi-1", "kernel", writer(b"kernel"))
    assert cache.path("emi-1", "kernel").read_bytes() == b"kernel"


def _fill_aged(cache, ages: dict[str, float]):
    """Cache 100 bytes per image, last used at the given times (seconds since the epoch)."""
    for image_id, when in ages.items():
        cache.ensure(image_id, "root", writer(b"x" * 100))
        os.utime(cache.root / image_id / imagecache.STAMP, (when, when))


def test_evict_least_recently_used_first(tmp_path):
    cache = ImageCache(tmp_path / "cache", 250)
    _fill_aged(cache, {"emi-c": 3000, "emi-a": 1000, "emi-d": 4000, "emi-b": 2000})
    assert {k: v[1] for k, v in cache.entries().items()} == dict.fromkeys(
        ["emi-a", "emi-b", "emi-c", "emi-d"], 100)
    assert cache.evict(in_use=[]) == ["emi-a", "emi-b"]
    assert sorted(cache.entries()) == ["emi-c", "emi-d"]
    assert not (cache.root / "emi-a").exists()
    assert cache.evict(in_use=[]) == []                # fits now


def test_evict_skips_images_in_use(tmp_path):
    cache = ImageCache(tmp_path / "cache", 250)
    _fill_aged(cache, {"emi-a": 1000, "emi-b": 2000, "emi-c": 3000, "emi-d": 4000})
    assert cache.evict(in_use={"emi-a", "emi-c"}) == ["emi-b", "emi-d"]
    assert sorted(cache.entries()) == ["emi-a", "emi-c"]


def test_images_in_use_stay_even_beyond_the_limit(tmp_path):
    cache = ImageCache(tmp_path / "cache", 50)
    _fill_aged(cache, {"emi-a": 1000, "emi-b": 2000})
    assert cache.evict(in_use={"emi-a", "emi-b"}) == []
    assert sorted(cache.entries()) == ["emi-a", "emi-b"]
    assert cache.evict(in_use={"emi-b"}) == ["emi-a"]
    assert sorted(cache.entries()) == ["emi-b"]


def test_a_hit_makes_an_image_recently_used(tmp_path):
    cache = ImageCache(tmp_path / "cache", 250)
    _fill_aged(cache, {"emi-a": 1000, "emi-b": 2000, "emi-c": 3000})
    cache.ensure("emi-a", "root", writer(b"unused"))        # a hit, stamped now
    assert cache.misses == 3
    assert cache.evict(in_use=()) == ["emi-b"]
    assert sorted(cache.entries()) == ["emi-a", "emi-c"]
    # an evicted image is filled again on its next use
    cache.ensure("emi-b", "root", writer(b"again"))
    assert cache.misses == 4 and cache.path("emi-b", "root").read_bytes() == b"again"


def test_concurrent_ensure_fills_once(tmp_path):
    cache = ImageCache(tmp_path / "cache", GiB)
    calls, results, errors = [], [], []
    start = threading.Barrier(4)

    def worker():
        try:
            start.wait()
            results.append(cache.ensure("emi-1", "root", writer(b"y" * 4096, calls, 0.2)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(calls) == 1 and cache.misses == 1
    assert len(results) == 4 and len(set(results)) == 1
    assert results[0].read_bytes() == b"y" * 4096


# --- work files ----------------------------------------------------------------------------

@pytest.fixture
def qemu_img():
    path = shutil.which("qemu-img")
    if path is None:
        reason = "qemu-img is not installed (apt install qemu-utils)"
        print(f"skipping: {reason}")
        pytest.skip(reason)
    return path


def info(path: Path) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                                     check=True, capture_output=True, text=True).stdout)


def on_disk(path: Path) -> int:
    return path.stat().st_blocks * 512


@pytest.fixture
def base(tmp_path) -> Path:
    """A 64 MiB raw root image, every byte written (so a copy would show)."""
    path = tmp_path / "cache" / "emi-1" / "root"
    path.parent.mkdir(parents=True)
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(block)
    return path


def test_work_dir(tmp_path):
    assert imagecache.work_dir(tmp_path, "i-12345678") == tmp_path / "instances" / "i-12345678"
    assert imagecache.work_dir(str(tmp_path), "i-1") == tmp_path / "instances" / "i-1"


def test_image_format(tmp_path, base, qemu_img):
    assert imagecache.image_format(base) == "raw"
    qcow = tmp_path / "disk.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(qcow), "16M"], check=True)
    assert imagecache.image_format(qcow) == "qcow2"
    short = tmp_path / "short"
    short.write_bytes(b"QF")
    assert imagecache.image_format(short) == "raw"


def test_make_disks_root_is_an_overlay_copying_nothing(tmp_path, base, qemu_img):
    work = imagecache.work_dir(tmp_path, "i-1")
    disks = imagecache.make_disks(work, base, 1)      # 1 GiB: no room for an ephemeral disk
    assert disks == {"root": work / "root.qcow2"}
    root = disks["root"]
    details = info(root)
    assert details["format"] == "qcow2"
    assert details["backing-filename"] == str(base.resolve())
    assert details.get("backing-filename-format", "raw") == "raw"
    assert details["virtual-size"] == 64 * MiB
    assert imagecache.image_format(root) == "qcow2"
    assert on_disk(root) < MiB < on_disk(base) // 32          # nothing copied
    assert not list(work.glob("*" + imagecache.TMP_SUFFIX))


def test_make_disks_ephemeral_sparse(tmp_path, base, qemu_img):
    work = imagecache.work_dir(tmp_path, "i-2")
    disks = imagecache.make_disks(work, base, 3)
    assert set(disks) == {"root", "ephemeral0"}
    ephemeral = disks["ephemeral0"]
    assert ephemeral == work / "ephemeral0.qcow2"
    details = info(ephemeral)
    assert details["format"] == "qcow2" and "backing-filename" not in details
    # the rest of the 3 GiB disk after the 64 MiB root, in whole GiB
    assert details["virtual-size"] == 2 * GiB
    assert on_disk(ephemeral) < MiB                            # sparse


def test_make_disks_ephemeral_needs_a_whole_gib(tmp_path, qemu_img):
    base = tmp_path / "base.raw"
    with open(base, "wb") as f:
        f.truncate(GiB + 1)                # disk_gb 2 leaves just under 1 GiB
    assert set(imagecache.make_disks(tmp_path / "a", base, 2)) == {"root"}
    with open(base, "wb") as f:
        f.truncate(GiB)                    # disk_gb 2 leaves exactly 1 GiB
    disks = imagecache.make_disks(tmp_path / "b", base, 2)
    assert set(disks) == {"root", "ephemeral0"}
    assert info(disks["ephemeral0"])["virtual-size"] == GiB


def test_make_disks_on_a_qcow2_base(tmp_path, qemu_img):
    base = tmp_path / "base.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(base), "32M"], check=True)
    root = imagecache.make_disks(tmp_path / "w", base, 1)["root"]
    details = info(root)
    assert details["backing-filename"] == str(base.resolve())
    assert details["backing-filename-format"] == "qcow2"


def test_make_disks_idempotent(tmp_path, base, qemu_img):
    work = imagecache.work_dir(tmp_path, "i-3")
    first = imagecache.make_disks(work, base, 3)
    stats = {name: (path.stat().st_ino, path.stat().st_mtime_ns)
             for name, path in first.items()}
    with open(first["root"], "ab") as f:       # a guest wrote to its disk meanwhile
        f.write(b"\0" * 512)
    size = first["root"].stat().st_size
    again = imagecache.make_disks(work, base, 3)
    assert again == first
    assert {name: (path.stat().st_ino, path.stat().st_mtime_ns)
            for name, path in again.items() if name != "root"} == \
        {name: stat for name, stat in stats.items() if name != "root"}
    assert again["root"].stat().st_ino == stats["root"][0]
    assert again["root"].stat().st_size == size               # not recreated
    assert leftovers(work) == ["ephemeral0.qcow2", "root.qcow2"]


def test_make_disks_failure_is_a_cache_error(tmp_path, base, qemu_img, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(imagecache.CacheError, match="qemu-img is not installed"):
        imagecache.make_disks(tmp_path / "w", base, 1)
    monkeypatch.undo()
    broken = tmp_path / "broken.qcow2"
    broken.write_bytes(imagecache.QCOW2_MAGIC + b"not really a qcow2 image")
    with pytest.raises(imagecache.CacheError, match="qemu-img create failed"):
        imagecache.make_disks(tmp_path / "w2", broken, 1)
    assert leftovers(tmp_path / "w2") == []                   # no root, no .partial


def test_remove_disks_keeps_console_log(tmp_path, base, qemu_img):
    work = imagecache.work_dir(tmp_path, "i-4")
    imagecache.make_disks(work, base, 3)
    (work / "console.log").write_text("boot log\n")
    (work / "root.qcow2.partial").write_bytes(b"")
    (work / "leftover-dir").mkdir()
    (work / "leftover-dir" / "f").write_bytes(b"x")
    imagecache.remove_disks(work)
    assert leftovers(work) == ["console.log"]
    assert (work / "console.log").read_text() == "boot log\n"
    imagecache.remove_disks(work)                                       # idempotent
    imagecache.remove_disks(imagecache.work_dir(tmp_path, "i-none"))    # no work dir
    assert base.exists()                                                # cache untouched
    imagecache.remove_work(work)
    assert not work.exists()
    imagecache.remove_work(work)                                        # idempotent


# --- the real fill path: a registered bundle into the cache --------------------------------

@pytest.fixture
def fake_cloud(tmp_path):
    """A live server with node duty on the fake hypervisor."""
    live, server = start_live(tmp_path / "data", node=True, hypervisor="fake")
    services = live.app.extensions["eucalite"]
    with live.app.app_context():
        assert services.cluster.start_node_duty() is None
    yield live
    server.shutdown()
    services.compute.worker.shutdown()


@pytest.fixture
def imported(fake_cloud, tmp_path):
    """Kernel, ramdisk and root files bundled and registered; a launched instance of them."""
    from eucalite.cli.common import admin_principal
    from eucalite.compute.imageimport import ImageFiles

    files = {}
    for part, size in (("kernel", 200_000), ("ramdisk", 150_000), ("root", 3 * MiB + 7)):
        files[part] = tmp_path / f"orig-{part}"
        files[part].write_bytes(os.urandom(size))
    with fake_cloud.app.app_context():
        eki, eri, emi = fake_cloud.app.extensions["eucalite"].compute.import_images(
            admin_principal(), ImageFiles(files["kernel"], files["ramdisk"], files["root"]),
            name="cachetest", bucket="images").values()
    ec2 = fake_cloud.client("ec2")
    instance = ec2.run_instances(ImageId=emi, MinCount=1, MaxCount=1)["Instances"][0]
    assert (instance["KernelId"], instance.get("RamdiskId")) == (eki, eri)
    fake_cloud.app.extensions["eucalite"].compute.worker.wait()
    return SimpleNamespace(live=fake_cloud, files=files, ids={"kernel": eki, "ramdisk": eri,
                                                              "root": emi},
                           instance_id=instance["InstanceId"])


def _cached_parts(live, instance_id, node):
    """Fetch the instance's images (root, kernel, ramdisk) into *node*'s cache, as a
    launch does: part -> the cached file."""
    from eucalite.compute import lifecycle
    from eucalite.compute.models import Instance
    from eucalite.db import db

    with live.app.app_context():
        refs = lifecycle.image_refs(db.session.get(Instance, instance_id))
        return {part: Path(node.fetch_image(ref)) for part, ref in refs.items()}


def _with_cache(services, cache):
    """This host's node as a launch sees it, with another image cache."""
    from eucalite.cluster.localnode import LocalNode

    node = services.cluster.local_node
    return LocalNode(node.node_id, node.driver, cache, services.config,
                     services.cluster.image_source)


def test_cached_parts_fill_from_the_bundle(imported):
    live = imported.live
    services = live.app.extensions["eucalite"]
    cache = services.cluster.image_cache
    node = services.cluster.local_node
    parts = _cached_parts(live, imported.instance_id, node)
    assert set(parts) == {"kernel", "ramdisk", "root"}
    for part, path in parts.items():
        assert path == cache.path(imported.ids[part], part)
        assert path.read_bytes() == imported.files[part].read_bytes()
    assert cache.misses == 3
    assert _cached_parts(live, imported.instance_id, node) == parts
    assert cache.misses == 3                                   # second use: all hits
    with live.app.app_context():
        from eucalite.compute import lifecycle
        node_id = services.cluster.local_node_id
        assert lifecycle.images_in_use(node_id) == set(imported.ids.values())


def _corrupt_digest(live, image_id):
    from eucalite.compute.models import Image
    from eucalite.db import db

    with live.app.app_context():
        image = db.session.get(Image, image_id)
        manifest = image.get_json("manifest")
        manifest["digest"] = "0" * 40
        image.set_json("manifest", manifest)
        db.session.commit()


def _corrupt_part_on_disk(live, image_id):
    """Flip a byte in the first stored part object of *image_id*'s bundle."""
    from eucalite.compute import images
    from eucalite.compute.models import Image
    from eucalite.db import db
    from eucalite.s3 import buckets, objects

    services = live.app.extensions["eucalite"]
    with live.app.app_context():
        image = db.session.get(Image, image_id)
        filename = images.manifest_of(image).parts[0][0]
        bucket, key = images.split_location(image.location)
        part_key = f"{key.rpartition('/')[0]}/{filename}"
        version = objects.latest(buckets.find(bucket), part_key)
        segment_path = version.segments[0][0]
    storeutil.rewrite_segment(services.s3.store, segment_path,
                              lambda data: storeutil.flip_byte(data, 100))


@pytest.mark.parametrize("corrupt", [_corrupt_digest, _corrupt_part_on_disk],
                         ids=["manifest-digest", "part-on-disk"])
def test_a_corrupt_bundle_is_refused(imported, tmp_path, corrupt):
    from eucalite.compute import bundle

    live = imported.live
    services = live.app.extensions["eucalite"]
    emi = imported.ids["root"]
    corrupt(live, emi)
    fresh = ImageCache(tmp_path / "fresh-cache", GiB)
    with pytest.raises(bundle.CorruptBundle):
        _cached_parts(live, imported.instance_id, _with_cache(services, fresh))
    assert not fresh.path(emi, "root").exists()
    assert leftovers(fresh.root / emi) == []                  # no part, no .partial
    assert fresh.misses == 0


def test_startup_sweep_removes_work_files_nobody_needs(tmp_path):
    """After a crash: a forgotten instance's whole dir goes, an ended instance keeps only
    its console log, a live instance keeps everything."""
    root = tmp_path / "instances"
    for iid in ("i-gone", "i-ended", "i-live"):
        (root / iid).mkdir(parents=True)
        (root / iid / "root.qcow2").write_bytes(b"disk")
        (root / iid / "console.log").write_bytes(b"log")
    recorded = {"i-ended": True, "i-live": False}      # instance id -> whether it ended
    tidied = imagecache.sweep_work_dirs(str(tmp_path), recorded)
    assert sorted(tidied) == ["i-ended", "i-gone"]
    assert not (root / "i-gone").exists()
    assert sorted(p.name for p in (root / "i-ended").iterdir()) == ["console.log"]
    assert sorted(p.name for p in (root / "i-live").iterdir()) == ["console.log", "root.qcow2"]
    assert imagecache.sweep_work_dirs(str(tmp_path), recorded) == []
