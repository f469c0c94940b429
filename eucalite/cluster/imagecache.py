"""The node's image cache and each instance's work files.

Cache: ``<data_dir>/image-cache/<image id>/<part>`` (part = kernel | ramdisk | root), one
directory per image, filled once from the object store by a caller-given ``fill`` function
(which verifies the bundle against its manifest as it writes), written to a temporary name
and renamed, so a crash never leaves a half image that looks whole. The cache is kept under
a size limit by evicting the least recently used images that no live instance uses.

Work files: ``<data_dir>/instances/<instance id>/``: ``root.qcow2``, a copy-on-write overlay
on the cached base (a second launch of an image copies nothing), ``ephemeral0.qcow2`` (sparse,
the rest of the instance type's disk, as in Eucalyptus' m1.small layout) and
``console.log``. The disks go when the instance ends; the console log stays until the
instance is forgotten, so GetConsoleOutput still answers for a terminated instance.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

PARTS = ("kernel", "ramdisk", "root")
STAMP = ".last-used"
TMP_SUFFIX = ".partial"
GiB = 2**30
QCOW2_MAGIC = b"QFI\xfb"


class CacheError(Exception):
    """An image could not be cached or an instance's disks could not be made."""


class ImageCache:
    """Cached image parts under *root*, at most *limit_bytes* (beyond what is in use)."""

    def __init__(self, root: str | os.PathLike, limit_bytes: int):
        self.root = Path(root)
        self.limit_bytes = int(limit_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.misses = 0             # fills done (for tests and the benchmark)

    def path(self, image_id: str, part: str) -> Path:
        if part not in PARTS or not image_id or "/" in image_id or image_id.startswith("."):
            raise ValueError(f"bad cache entry {image_id!r}/{part!r}")
        return self.root / image_id / part

    def _lock(self, image_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(image_id, threading.Lock())

    def ensure(self, image_id: str, part: str, fill: Callable[[BinaryIO], object]) -> Path:
        """The cached file for *image_id*'s *part*, calling ``fill(file)`` to write it first
        if it is not cached. *fill* raises to refuse (a corrupt bundle): nothing is kept."""
        target = self.path(image_id, part)
        with self._lock(image_id):
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + TMP_SUFFIX)
                try:
                    with open(partial, "wb") as out:
                        fill(out)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(partial, target)
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
                self.misses += 1
            (target.parent / STAMP).touch()
        return target

    def entries(self) -> dict[str, tuple[float, int]]:
        """Image id -> (last used, bytes) for every cached image."""
        result = {}
        if not self.root.is_dir():
            return result
        for entry in self.root.iterdir():
            if not entry.is_dir():
                continue
            stamp = entry / STAMP
            used = stamp.stat().st_mtime if stamp.exists() else 0.0
            size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            result[entry.name] = (used, size)
        return result

    def evict(self, in_use: Iterable[str]) -> list[str]:
        """Drop least recently used images not in *in_use* until the cache fits its limit;
        returns the evicted ids. Images in use stay even when they alone exceed it."""
        keep = set(in_use)
        entries = self.entries()
        total = sum(size for _used, size in entries.values())
        evicted = []
        for image_id, (_used, size) in sorted(entries.items(), key=lambda item: item[1][0]):
            if total <= self.limit_bytes:
                break
            if image_id in keep:
                continue
            with self._lock(image_id):
                shutil.rmtree(self.root / image_id, ignore_errors=True)
            total -= size
            evicted.append(image_id)
            log.info("image cache: evicted %s (%d bytes)", image_id, size)
        return evicted

    def recover(self) -> None:
        """Remove partial files a crash left (call before serving)."""
        if self.root.is_dir():
            for partial in self.root.glob(f"*/*{TMP_SUFFIX}"):
                partial.unlink(missing_ok=True)


# --- an instance's work files ------------------------------------------------------------

def work_dir(data_dir: str | os.PathLike, instance_id: str) -> Path:
    return Path(data_dir) / "instances" / instance_id


def _qemu_img(*args: str) -> None:
    try:
        subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True,
                       timeout=120)
    except FileNotFoundError as exc:
        raise CacheError("qemu-img is not installed (apt install qemu-utils)") from exc
    except subprocess.CalledProcessError as exc:
        raise CacheError(f"qemu-img {args[0]} failed: {exc.stderr.strip()}") from exc


def image_format(path: Path) -> str:
    """qcow2 when the file is a qcow2 image, else raw (what bundled images are)."""
    with open(path, "rb") as f:
        return "qcow2" if f.read(4) == QCOW2_MAGIC else "raw"


def virtual_size(path: Path) -> int:
    """The disk size a guest sees for the image at *path* (qcow2 header, else file size)."""
    with open(path, "rb") as f:
        header = f.read(32)
    if header[:4] == QCOW2_MAGIC:
        return int.from_bytes(header[24:32], "big")
    return path.stat().st_size


def make_disks(work: Path, base: Path, disk_gb: int) -> dict[str, Path]:
    """Create *work*'s root overlay on *base* and its ephemeral disk; returns
    {"root": path, "ephemeral0": path or absent}. Idempotent (a restarted spawn reuses
    what exists)."""
    work.mkdir(parents=True, exist_ok=True)
    root = work / "root.qcow2"
    if not root.exists():
        partial = work / ("root.qcow2" + TMP_SUFFIX)
        _qemu_img("create", "-q", "-f", "qcow2", "-F", image_format(base), "-b",
                  str(base.resolve()), str(partial))
        os.replace(partial, root)
    disks = {"root": root}
    ephemeral_bytes = int(disk_gb) * GiB - virtual_size(base)
    if ephemeral_bytes >= GiB:
        ephemeral = work / "ephemeral0.qcow2"
        if not ephemeral.exists():
            partial = work / ("ephemeral0.qcow2" + TMP_SUFFIX)
            _qemu_img("create", "-q", "-f", "qcow2", str(partial),
                      str(ephemeral_bytes // GiB * GiB))
            os.replace(partial, ephemeral)
        disks["ephemeral0"] = ephemeral
    return disks


def remove_disks(work: Path) -> None:
    """Remove an ended instance's disks, keeping its console log."""
    if not work.is_dir():
        return
    for entry in work.iterdir():
        if entry.name != "console.log":
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def remove_work(work: Path) -> None:
    """Remove everything of a forgotten instance."""
    shutil.rmtree(work, ignore_errors=True)


def sweep_work_dirs(data_dir: str | os.PathLike, known: Mapping[str, bool]) -> list[str]:
    """Remove work files nobody needs: all of an instance not in *known* (instance id ->
    whether it ended), the disks of one that ended. Returns the instance ids tidied (run
    at start, after a crash)."""
    root = Path(data_dir) / "instances"
    tidied = []
    if not root.is_dir():
        return tidied
    for work in root.iterdir():
        ended = known.get(work.name)
        if ended is None:
            remove_work(work)
            tidied.append(work.name)
        elif ended and any(entry.name != "console.log" for entry in work.iterdir()):
            remove_disks(work)
            tidied.append(work.name)
    return tidied

