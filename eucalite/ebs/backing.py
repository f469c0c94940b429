"""Where a volume's blocks live: the volume-backing contract and its two backends.

* :class:`FileBacking` (``file``): a sparse raw file ``<data_dir>/volumes/<vol-id>.raw``,
  exported to nodes by the export drivers (local file, tgt or LIO iSCSI).
* :class:`RbdBacking` (``rbd``): an RBD image named after the volume id in the Ceph pool
  ``rbd_pool``; QEMU opens it itself through librbd (:class:`~.export.rbd.RbdExport`), so
  no iSCSI hop is needed on nodes that reach the Ceph cluster.

A volume records its backend when it is made (``Volume.backend``, from config
``ebs_backend``) and keeps it: changing the config moves only new volumes.

Snapshots kept in Ceph (config ``rbd_snapshots = ceph``) are protected RBD snapshots named
after the snapshot id, on the image of the volume they were taken of; a volume from one is
an RBD clone (copy-on-write: nothing is copied). Ceph will not remove an image that has
snapshots nor a snapshot that has clones, so removal is deferred: an image whose volume is
gone stays (hidden: no volume row names it) until its last snapshot goes, and an RBD
snapshot whose row is gone stays until its last clone goes; the removal that frees the
last one removes the rest, up the chain of parents. Deleting a volume or a snapshot never
flattens (copies) anything.
"""
from __future__ import annotations

import abc
import contextlib
import os
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import ceph
from . import chunks

#: Reads and writes between an RBD image and a file go in blocks of this size; all-zero
#: blocks are skipped, so copies stay sparse.
IO_BLOCK = 4 * 2**20
_ZEROS = bytes(IO_BLOCK)

#: ``write(path)`` makes a sparse raw file at *path* holding a volume's data (atomically:
#: the file exists complete or not at all), e.g. :func:`eucalite.ebs.chunks.restore`.
Writer = Callable[[Path], None]


class VolumeBacking(abc.ABC):
    """How the storage controller makes, removes and reads volumes of one backend."""

    #: the name recorded in ``Volume.backend``
    name = "abstract"

    @abc.abstractmethod
    def problem(self) -> str | None:
        """None when volumes can be made here now, else one sentence saying why not and
        what to install or fix."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for the start-up banner: where volumes are, and whether it works."""

    @abc.abstractmethod
    def create(self, volume_id: str, size_bytes: int) -> None:
        """An empty (all zeros, sparse: instant at any size) volume of *size_bytes*. It
        exists complete or not at all; made again over a half-made one."""

    @abc.abstractmethod
    def restore(self, volume_id: str, size_bytes: int, write: Writer) -> None:
        """A volume of *size_bytes* holding what *write* puts in a sparse file (a
        snapshot's data), complete or not at all."""

    @abc.abstractmethod
    def delete(self, volume_id: str) -> None:
        """The volume's data is gone (or, RBD, hidden until its snapshots go).
        Idempotent."""

    @abc.abstractmethod
    def resize(self, volume_id: str, size_bytes: int) -> None:
        """The volume holds *size_bytes* (the added bytes read as zeros, sparse); never
        shrinks it, so growing again to the same size (a restart finishing a
        modification) changes nothing. The volume must exist."""

    @abc.abstractmethod
    def copy_out(self, volume_id: str, target: Path) -> None:
        """A sparse copy of the volume's data as of now into the file *target* (the
        caller holds the guest still while it is made)."""

    # for tools, benchmarks and tests: a volume's bytes, read or written in place (write
    # only to a volume no guest has attached)

    @abc.abstractmethod
    def read(self, volume_id: str, offset: int, length: int) -> bytes:
        """Up to *length* bytes at *offset* (fewer only at the end)."""

    @abc.abstractmethod
    def write(self, volume_id: str, offset: int, data: bytes) -> None:
        """*data* written at *offset*, durably."""

    @abc.abstractmethod
    def usage(self, volume_id: str) -> tuple[int, int]:
        """(size, allocated bytes): what the volume holds and what it takes up."""


class FileBacking(VolumeBacking):
    """Volumes as sparse raw files in *volumes_dir* (see the module docstring)."""

    name = "file"

    def __init__(self, volumes_dir: Path):
        self.volumes_dir = volumes_dir

    def path(self, volume_id: str) -> Path:
        """The volume's data file."""
        return self.volumes_dir / f"{volume_id}.raw"

    def problem(self) -> str | None:
        return None

    def describe(self) -> str:
        return f"volumes in files under {self.volumes_dir}"

    def create(self, volume_id: str, size_bytes: int) -> None:
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        path = self.path(volume_id)
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as f:
            f.truncate(size_bytes)              # sparse: a 100 GiB volume is instant
            os.fsync(f.fileno())
        partial.replace(path)

    def restore(self, volume_id: str, size_bytes: int, write: Writer) -> None:
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        write(self.path(volume_id))

    def delete(self, volume_id: str) -> None:
        self.path(volume_id).unlink(missing_ok=True)
        self.path(volume_id).with_suffix(".partial").unlink(missing_ok=True)

    def resize(self, volume_id: str, size_bytes: int) -> None:
        with open(self.path(volume_id), "r+b") as f:      # r+: a missing volume is an error
            if os.fstat(f.fileno()).st_size < size_bytes:
                f.truncate(size_bytes)
                os.fsync(f.fileno())

    def copy_out(self, volume_id: str, target: Path) -> None:
        source = self.path(volume_id)
        with open(source, "rb") as src, open(target, "wb") as dst:
            dst.truncate(os.fstat(src.fileno()).st_size)
            for start, end in chunks.data_ranges(source):
                _copy_range(src.fileno(), dst.fileno(), start, end)

    def read(self, volume_id: str, offset: int, length: int) -> bytes:
        with open(self.path(volume_id), "rb") as f:
            return os.pread(f.fileno(), length, offset)

    def write(self, volume_id: str, offset: int, data: bytes) -> None:
        with open(self.path(volume_id), "r+b") as f:
            os.pwrite(f.fileno(), data, offset)
            os.fsync(f.fileno())

    def usage(self, volume_id: str) -> tuple[int, int]:
        stat = self.path(volume_id).stat()
        return stat.st_size, stat.st_blocks * 512


def _copy_range(src_fd: int, dst_fd: int, start: int, end: int) -> None:
    while start < end:
        block = os.pread(src_fd, min(end - start, IO_BLOCK), start)
        if not block:
            break
        os.pwrite(dst_fd, block, start)
        start += len(block)


class RbdBacking(VolumeBacking):
    """Volumes as RBD images in the pool ``rbd_pool`` (see the module docstring). One
    connection to the cluster is made on first use and kept (librados is thread-safe);
    a failed connect is tried again at the next call. The connection (a dozen librados
    threads) is shut by :meth:`close`, once no call is using it, or when the backing is
    garbage-collected."""

    name = "rbd"

    def __init__(self, config: Mapping[str, Any], scratch_dir: Path):
        self.config = config
        self.pool = str(config.get("rbd_pool") or "eucalite-volumes")
        self.conf = ceph.settings(config)[0]
        self.scratch_dir = scratch_dir          # restores stage snapshot data here
        self._cluster = None
        self._shut = None                       # weakref.finalize: shuts _cluster
        # guards _cluster; counts the calls using it (_users), which close() waits out
        self._state = threading.Condition(threading.RLock())
        self._users = 0
        #: wanted(name): a volume or snapshot of that id still exists (its row), so its
        #: image or RBD snapshot must stay. The storage controller binds its database's
        #: answer; until then nothing is removed on the way up a clone's parents.
        self.wanted: Callable[[str], bool] = lambda _name: True

    # --- the connection ----------------------------------------------------------------

    def cluster(self):
        """The connected ``rados.Rados``; CephUnavailable saying why it cannot be. Hold it
        with :meth:`_connection` for anything but a check: close() may shut it."""
        with self._state:
            if self._cluster is None:
                cluster = ceph.connect(self.config)
                if not cluster.pool_exists(self.pool):
                    cluster.shutdown()
                    raise ceph.CephUnavailable(
                        f"the Ceph cluster of {self.conf} has no pool {self.pool}: create "
                        f"it (ceph osd pool create {self.pool}; rbd pool init {self.pool}) "
                        "or set rbd_pool")
                self._cluster = cluster
                # librados never shuts a connection it merely forgets: without this an
                # app that goes away would leave its threads behind
                self._shut = weakref.finalize(self, cluster.shutdown)
            return self._cluster

    def close(self) -> None:
        """Shut the connection once no call is using it (librados aborts the process when
        a connection is shut under an open image). Idempotent; a later call connects
        again."""
        with self._state:
            self._state.wait_for(lambda: self._users == 0)
            if self._shut is not None:
                self._shut()
            self._cluster = self._shut = None

    @contextlib.contextmanager
    def _connection(self):
        """The connected cluster, kept open by close() until the block ends."""
        with self._state:
            cluster = self.cluster()
            self._users += 1
        try:
            yield cluster
        finally:
            with self._state:
                self._users -= 1
                self._state.notify_all()

    @contextlib.contextmanager
    def _ioctx(self):
        """An I/O context on the pool, the connection held (see :meth:`_connection`)."""
        with self._connection() as cluster, cluster.open_ioctx(self.pool) as ioctx:
            yield ioctx

    def _image(self, ioctx, name: str, snapshot: str | None = None, read_only=False):
        _rados, rbd = ceph.modules()
        return rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)

    def problem(self) -> str | None:
        try:
            self.cluster()
        except ceph.CephUnavailable as error:
            return str(error)
        return None

    def describe(self) -> str:
        problem = self.problem()
        state = "reachable" if problem is None else f"UNREACHABLE: {problem}"
        return f"volumes as RBD images in pool {self.pool} of the Ceph cluster in " \
               f"{self.conf} ({state})"

    def disk_source(self) -> dict:
        """What a node needs to open this pool's images: ``hosts`` (the monitors),
        ``username`` (the cephx user) and ``key`` (its cephx key, base64)."""
        _conf, user, _keyring = ceph.settings(self.config)
        with self._connection() as cluster:
            return {"hosts": ceph.mon_hosts(cluster), "username": user,
                    "key": ceph.cephx_key(self.config, cluster)}

    # --- the contract ------------------------------------------------------------------

    def create(self, volume_id: str, size_bytes: int) -> None:
        """An image is made in one step, so one already there (a restart interrupted the
        job after it) is whole: it stays."""
        _rados, rbd = ceph.modules()
        with self._ioctx() as ioctx:
            try:
                rbd.RBD().create(ioctx, volume_id, size_bytes, old_format=False)
            except rbd.ImageExists:
                pass

    def restore(self, volume_id: str, size_bytes: int, write: Writer) -> None:
        """Stage the data in a sparse file in *scratch_dir*, then write its allocated
        extents into a new image (all-zero blocks skipped)."""
        _rados, rbd = ceph.modules()
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        staged = self.scratch_dir / f"{volume_id}.restore.raw"
        try:
            write(staged)
            with self._ioctx() as ioctx:
                self._remove_half_made(ioctx, volume_id)
                rbd.RBD().create(ioctx, volume_id, size_bytes, old_format=False)
                try:
                    with self._image(ioctx, volume_id) as image, open(staged, "rb") as src:
                        for start, end in chunks.data_ranges(staged):
                            _file_to_image(src.fileno(), image, start, min(end, size_bytes))
                        image.flush()
                except BaseException:
                    self._remove_quietly(ioctx, volume_id)
                    raise
        finally:
            staged.unlink(missing_ok=True)

    def delete(self, volume_id: str) -> None:
        """Remove the image (its snapshots no row names and no clone uses first), unless
        snapshots of it remain: then it stays, hidden, until its last snapshot goes. A
        clone's parent snapshot (and image) whose removal waited for it goes with it."""
        with self._ioctx() as ioctx:
            for snap in self._snapshots(ioctx, volume_id):
                if not self.wanted(snap):
                    self._remove_snapshot_if_unused(ioctx, volume_id, snap)
            self._remove_upwards(ioctx, volume_id)

    def copy_out(self, volume_id: str, target: Path) -> None:
        with self._ioctx() as ioctx, self._image(ioctx, volume_id, read_only=True) as image:
            _image_to_file(image, target)

    def read(self, volume_id: str, offset: int, length: int) -> bytes:
        with self._ioctx() as ioctx, self._image(ioctx, volume_id, read_only=True) as image:
            return image.read(offset, max(0, min(length, image.size() - offset)))

    def write(self, volume_id: str, offset: int, data: bytes) -> None:
        with self._ioctx() as ioctx, self._image(ioctx, volume_id) as image:
            image.write(data, offset)
            image.flush()

    def usage(self, volume_id: str) -> tuple[int, int]:
        """The allocated bytes count whole RADOS objects (4 MiB), parent's included."""
        with self._ioctx() as ioctx, self._image(ioctx, volume_id, read_only=True) as image:
            return image.size(), sum(length for _offset, length in _extents(image))

    # --- the contract's resize; RBD's own: snapshots in Ceph, clones ---------------------

    def resize(self, volume_id: str, size_bytes: int) -> None:
        with self._ioctx() as ioctx, self._image(ioctx, volume_id) as image:
            if image.size() < size_bytes:
                image.resize(size_bytes)

    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """A protected RBD snapshot *snapshot_id* of the volume's image (clones may be
        made of it). Idempotent."""
        with self._ioctx() as ioctx, self._image(ioctx, volume_id) as image:
            names = {snap["name"] for snap in image.list_snaps()}
            if snapshot_id not in names:
                image.create_snap(snapshot_id)
            if not image.is_protected_snap(snapshot_id):
                image.protect_snap(snapshot_id)

    def freeze(self, volume_id: str, name: str) -> None:
        """An RBD snapshot *name* of the image (unprotected: nothing clones it), for a
        copy made after the guest is let go (:meth:`thaw` removes it)."""
        with self._ioctx() as ioctx, self._image(ioctx, volume_id) as image:
            image.create_snap(name)

    def thaw(self, volume_id: str, name: str) -> None:
        """Remove the snapshot :meth:`freeze` took (idempotent)."""
        with self._ioctx() as ioctx:
            self._remove_snapshot_if_unused(ioctx, volume_id, name)

    def clone(self, parent_volume: str, snapshot_id: str, volume_id: str,
              size_bytes: int) -> None:
        """The new volume's image as a copy-on-write clone of the snapshot, grown to
        *size_bytes* if that is larger."""
        _rados, rbd = ceph.modules()
        with self._ioctx() as ioctx:
            self._remove_half_made(ioctx, volume_id)
            rbd.RBD().clone(ioctx, parent_volume, snapshot_id, ioctx, volume_id,
                            features=rbd.RBD_FEATURE_LAYERING)
            try:
                with self._image(ioctx, volume_id) as image:
                    if image.size() < size_bytes:
                        image.resize(size_bytes)
            except BaseException:
                self._remove_quietly(ioctx, volume_id)
                raise

    def copy_snapshot_out(self, volume_id: str, snapshot_id: str, target: Path) -> None:
        """A sparse copy of the RBD snapshot's data into the file *target* (a snapshot
        kept in Ceph restored into a file volume)."""
        with self._ioctx() as ioctx, \
                self._image(ioctx, volume_id, snapshot=snapshot_id, read_only=True) as image:
            _image_to_file(image, target)

    def drop_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """The snapshot's row is gone: remove the RBD snapshot unless clones still use it
        (then the last clone's removal does), and the image too when its volume is gone
        and this was its last snapshot."""
        with self._ioctx() as ioctx:
            if self._remove_snapshot_if_unused(ioctx, volume_id, snapshot_id) and \
                    not self.wanted(volume_id):
                self._remove_upwards(ioctx, volume_id)

    def images(self) -> list[str]:
        """The names of the images in the pool."""
        _rados, rbd = ceph.modules()
        with self._ioctx() as ioctx:
            return list(rbd.RBD().list(ioctx))

    # --- deferred removal --------------------------------------------------------------

    def _snapshots(self, ioctx, volume_id: str) -> list[str]:
        _rados, rbd = ceph.modules()
        try:
            with self._image(ioctx, volume_id, read_only=True) as image:
                return [snap["name"] for snap in image.list_snaps()]
        except rbd.ImageNotFound:
            return []

    def _remove_upwards(self, ioctx, volume_id: str) -> None:
        """The image of a volume that is gone: remove it if it has no snapshots; then, if
        it was a clone, its parent snapshot when no row names it and no other clone uses
        it, and the parent image when its volume is gone too, and so on up."""
        while True:
            parent = self._parent(ioctx, volume_id)
            if not self._remove_if_bare(ioctx, volume_id) or parent is None:
                return
            volume_id, snapshot_id = parent
            if self.wanted(snapshot_id) or \
                    not self._remove_snapshot_if_unused(ioctx, volume_id, snapshot_id):
                return
            if self.wanted(volume_id):
                return

    def _remove_snapshot_if_unused(self, ioctx, volume_id: str, snapshot_id: str) -> bool:
        """Unprotect and remove the snapshot unless a clone uses it; True if it is gone."""
        _rados, rbd = ceph.modules()
        try:
            with self._image(ioctx, volume_id) as image:
                if snapshot_id not in {s["name"] for s in image.list_snaps()}:
                    return True
                if list(image.list_children()):
                    return False
                if image.is_protected_snap(snapshot_id):
                    try:
                        image.unprotect_snap(snapshot_id)
                    except rbd.ImageBusy:
                        return False            # a clone appeared meanwhile
                image.remove_snap(snapshot_id)
                return True
        except rbd.ImageNotFound:
            return True

    def _remove_if_bare(self, ioctx, volume_id: str) -> bool:
        """Remove the image unless it has snapshots; True if it is gone."""
        _rados, rbd = ceph.modules()
        try:
            with self._image(ioctx, volume_id, read_only=True) as image:
                if list(image.list_snaps()):
                    return False
            rbd.RBD().remove(ioctx, volume_id)
        except rbd.ImageNotFound:
            pass
        except rbd.ImageHasSnapshots:
            return False
        return True

    def _parent(self, ioctx, volume_id: str) -> tuple[str, str] | None:
        """(image, snapshot) the image is a clone of, None if it is none (or gone)."""
        _rados, rbd = ceph.modules()
        try:
            with self._image(ioctx, volume_id, read_only=True) as image:
                try:
                    spec = image.get_parent_image_spec()
                except rbd.ImageNotFound:
                    return None
                return spec["image_name"], spec["snap_name"]
        except rbd.ImageNotFound:
            return None

    def _remove_half_made(self, ioctx, volume_id: str) -> None:
        """A restart cut the making of this volume short: its half-made image goes first
        (a volume being made has no snapshots)."""
        self._remove_quietly(ioctx, volume_id)

    def _remove_quietly(self, ioctx, volume_id: str) -> None:
        _rados, rbd = ceph.modules()
        try:
            rbd.RBD().remove(ioctx, volume_id)
        except rbd.ImageNotFound:
            pass


def _extents(image) -> list[tuple[int, int]]:
    """The image's allocated (offset, length) extents, a clone's parent's included, by
    whole RADOS objects (fast with the object map; everything else reads as zeros)."""
    extents: list[tuple[int, int]] = []
    image.diff_iterate(0, image.size(), None, lambda offset, length, exists:
                       extents.append((offset, length)) if exists else None,
                       include_parent=True, whole_object=True)
    return extents


def _image_to_file(image, target: Path) -> None:
    """The image's allocated extents into a sparse file."""
    with open(target, "wb") as dst:
        dst.truncate(image.size())
        fd = dst.fileno()
        for offset, length in _extents(image):
            end = offset + length
            while offset < end:
                block = image.read(offset, min(end - offset, IO_BLOCK))
                if not block:
                    break
                if block.count(0) != len(block):
                    os.pwrite(fd, block, offset)
                offset += len(block)
        os.fsync(fd)


def _file_to_image(src_fd: int, image, start: int, end: int) -> None:
    while start < end:
        block = os.pread(src_fd, min(end - start, IO_BLOCK), start)
        if not block:
            break
        if block.count(0) != len(block):
            image.write(block, start)
        start += len(block)


def make(name: str, config: Mapping[str, Any], volumes_dir: Path) -> VolumeBacking:
    """The backing called *name* (``file`` or ``rbd``); ValueError for another name."""
    if name == "file":
        return FileBacking(volumes_dir)
    if name == "rbd":
        return RbdBacking(config, volumes_dir)
    raise ValueError(f"unknown ebs_backend {name!r}: use file or rbd")

