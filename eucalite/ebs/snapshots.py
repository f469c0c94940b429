"""EBS snapshots: create (incremental, in the object store, or kept in Ceph as RBD
snapshots), delete, describe, permissions, and restoring one into a new volume.

CreateSnapshot records ``pending`` and a job (:func:`take`) takes a point-in-time copy of
the volume's data (the guest is paused for the copy when the volume is attached, so no
write lands half-way; for an RBD volume only while an RBD snapshot is taken, copied after; :func:`take_together` copies several volumes inside one such hold,
or one its caller gives), then chunks it (:mod:`eucalite.ebs.chunks`): only chunks no snapshot
stored yet are uploaded, ``Progress`` rises as it goes, and the chunk list is recorded with
``completed`` in one transaction. DeleteSnapshot drops the snapshot's list and then only the
chunk objects no other snapshot lists, so deleting one snapshot never breaks another.

A snapshot of an RBD volume with config ``rbd_snapshots = ceph`` (``Snapshot.backend`` =
``rbd``) is instead a protected RBD snapshot of the volume's image, taken inside the same
hold (instant, nothing copied), and a volume made from it is an RBD clone; removal of its
image and snapshot is deferred while they are in use (:mod:`eucalite.ebs.backing`).
Restoring works across backends: chunks into a file or an RBD volume, an RBD snapshot into
a file volume.

Functions that touch chunks or the guest take the storage controller's service object
(:class:`eucalite.ebs.service.EbsService`) for its object store and node access.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Mapping

from .. import ids, quotas, tags
from ..accounts import Principal, utcnow
from ..db import db, write_lock
from ..errors import AwsError, InvalidParameterValue
from ..errors.ec2 import IncorrectState, InvalidSnapshotInUse, InvalidSnapshotNotFound
from ..query import check_text
from . import chunks, volumes
from .models import Snapshot, SnapshotChunk, Volume
from .states import ATTACHED, AVAILABLE, COMPLETED, ERROR, IN_USE, PENDING, SNAPSHOT

log = logging.getLogger(__name__)

#: What the copies of a snapshot (or of a group taken at one point in time) are made
#: inside: a context manager factory holding the guests still for the copy.
Hold = Callable[[], ContextManager[None]]

#: Held while chunks are stored and recorded, and while unreferenced chunks are deleted: a
#: snapshot that found a chunk already stored must not see it deleted before it records it.
CHUNKS_LOCK = threading.Lock()


def not_found(snapshot_id: str) -> InvalidSnapshotNotFound:
    return InvalidSnapshotNotFound(f"The snapshot '{snapshot_id}' does not exist.")


def permissions(snapshot: Snapshot) -> list[str]:
    """Account ids (or "all") that may create volumes from *snapshot* besides its owner."""
    return list(snapshot.get_json("create_volume_permissions", []) or [])


def can_restore(account_id: str, snapshot: Snapshot) -> bool:
    granted = permissions(snapshot)
    return snapshot.owner_id == account_id or "all" in granted or account_id in granted


def find(snapshot_id: str) -> Snapshot | None:
    """The snapshot, whoever owns it (None if there is none)."""
    return db.session.get(Snapshot, snapshot_id or "")


def restorable(principal: Principal, snapshot_id: str) -> Snapshot:
    """A completed snapshot the caller may create a volume from."""
    snapshot = find(snapshot_id)
    if snapshot is None or not can_restore(principal.account_id, snapshot):
        raise not_found(snapshot_id)
    if snapshot.state != COMPLETED:
        raise IncorrectState(f"Snapshot '{snapshot.id}' is in the '{snapshot.state}' state.")
    return snapshot


def owned(principal: Principal, snapshot_id: str) -> Snapshot:
    snapshot = find(snapshot_id)
    if snapshot is None or snapshot.owner_id != principal.account_id:
        raise not_found(snapshot_id)
    return snapshot


def visible(principal: Principal, ids: list[str], owners: list[str],
            restorable_by: list[str]) -> list[Snapshot]:
    """DescribeSnapshots' set: the caller's own and those it may restore, narrowed by
    SnapshotId.N, Owner.N (``self`` or account ids) and RestorableBy.N."""
    rows = list(db.session.execute(db.select(Snapshot).order_by(Snapshot.id)).scalars())
    me = principal.account_id
    rows = [s for s in rows if can_restore(me, s)]
    if ids:
        missing = sorted(set(ids) - {s.id for s in rows})
        if missing:
            raise not_found(missing[0])
        rows = [s for s in rows if s.id in ids]
    if owners:
        wanted = {me if owner == "self" else owner for owner in owners}
        rows = [s for s in rows if s.owner_id in wanted]
    if restorable_by:
        wanted = {me if who == "self" else who for who in restorable_by}
        rows = [s for s in rows if any(can_restore(who, s) for who in wanted if who != "all")
                or ("all" in wanted and "all" in permissions(s))]
    return rows


def chunk_map(snapshot_id: str) -> dict[int, tuple[str, int]]:
    """Index -> (digest, size) of a snapshot's stored chunks."""
    return {row.index: (row.digest, row.size) for row in db.session.execute(
        db.select(SnapshotChunk).filter_by(snapshot_id=snapshot_id)).scalars()}


# --- the API -------------------------------------------------------------------------------

def record(principal: Principal, volume_id: str, description: str,
           tag_map: Mapping[str, str] | None, chunk_size: int,
           backend_for: Callable[[Volume], str] = lambda _volume: "objectstore") -> Snapshot:
    """CreateSnapshot's request half: checks, then the snapshot recorded ``pending`` with
    its tags, kept where *backend_for(volume)* says (the caller starts :func:`take`)."""
    volume = volumes.owned(principal, volume_id)
    if volume.state not in (AVAILABLE, IN_USE):
        raise volumes.incorrect_state(volume)
    if len(description) > 255:
        raise InvalidParameterValue("The description must be at most 255 characters.")
    check_text(description, "Description")
    tag_map = tags.check_new_tags(tag_map)
    write_lock()
    quotas.check(principal, "ec2:CreateSnapshot", {"ec2:quota-snapshotnumber": 1})
    snapshot = Snapshot(id=ids.resource_id("snap"), owner_id=principal.account_id,
                        volume_id=volume.id, volume_size_gb=volume.size_gb, state=PENDING,
                        progress=0, description=description, started=utcnow(),
                        chunk_size=chunk_size, creator_user_id=quotas.creator(principal),
                        backend=backend_for(volume))
    db.session.add(snapshot)
    db.session.flush()
    tags.tag_new_resources(principal, "snapshot", [snapshot.id], tag_map)
    db.session.commit()
    return snapshot


def delete(ebs, principal: Principal, snapshot_id: str) -> None:
    """DeleteSnapshot: a completed or failed snapshot no image is made from; its unshared
    chunks go too."""
    snapshot = owned(principal, snapshot_id)
    if snapshot.state == PENDING:
        raise IncorrectState(f"Snapshot '{snapshot.id}' is still being taken.")
    image_id = ebs.cloud.image_using_snapshot(snapshot.id)
    if image_id is not None:
        raise InvalidSnapshotInUse(f"The snapshot {snapshot.id} is currently in use by "
                                   f"{image_id}")
    candidates = {digest for digest, _size in chunk_map(snapshot.id).values()}
    # a failed one's RBD snapshot may exist too (taken before a restart cut it short)
    in_ceph = (snapshot.volume_id, snapshot.id) if snapshot.backend == "rbd" else None
    write_lock()
    db.session.execute(db.delete(SnapshotChunk).where(SnapshotChunk.snapshot_id == snapshot.id))
    tags.delete_all(snapshot.id)
    db.session.delete(snapshot)
    db.session.commit()
    if in_ceph is not None:
        try:
            ebs.rbd().drop_snapshot(*in_ceph)
        except Exception as error:  # noqa: BLE001 - the volume's deletion removes it later
            log.warning("removing the RBD snapshot %s@%s failed: %s", *in_ceph, error)
    with CHUNKS_LOCK:
        _drop_unreferenced(ebs, candidates)


def _drop_unreferenced(ebs, candidates: set[str]) -> int:
    if not candidates:
        return 0
    still = set(db.session.execute(db.select(SnapshotChunk.digest).where(
        SnapshotChunk.digest.in_(candidates))).scalars())
    return chunks.delete_unreferenced(candidates, still, ebs.chunk_store())


def modify_permission(principal: Principal, snapshot_id: str, add: list[str],
                      remove: list[str]) -> None:
    """ModifySnapshotAttribute createVolumePermission: accounts (12 digits) or "all"."""
    snapshot = owned(principal, snapshot_id)
    for who in add + remove:
        if who != "all" and not (who.isascii() and who.isdigit() and len(who) == 12):
            raise InvalidParameterValue(f"Invalid user or group: {who}")
    granted = [who for who in permissions(snapshot) if who not in remove]
    granted += [who for who in add if who not in granted]
    write_lock()
    snapshot.set_json("create_volume_permissions", granted)
    db.session.commit()


# --- the jobs ------------------------------------------------------------------------------

def _progress_updater(snapshot_id: str):
    """``progress(percent)`` that records every 5 % step (not every chunk)."""
    last = [-1]

    def progress(percent: int) -> None:
        percent = min(int(percent), 99)           # 100 only when the list is recorded
        if percent >= last[0] + 5:
            last[0] = percent
            SNAPSHOT.note(snapshot_id, {PENDING}, progress=percent)
    return progress


def guests_paused(ebs, volumes: list[Volume]) -> Hold:
    """The default hold: the running guest of each attached volume is paused (once, however
    many of its volumes are copied) and resumed after, so no write lands half-way through
    a copy and one guest's volumes are copied at one instant."""
    nodes = {}
    for volume in volumes:
        if volume.attach_state == ATTACHED and volume.instance_id:
            instance = ebs.cloud.instance(volume.instance_id)
            if instance is not None and instance.node_id:
                nodes[instance.id] = ebs.cluster.node_for(instance.node_id)

    @contextmanager
    def hold():
        paused = []
        try:
            for instance_id, node in sorted(nodes.items()):
                node.pause(instance_id)
                paused.append(instance_id)
            yield
        finally:
            for instance_id in paused:
                nodes[instance_id].resume(instance_id)
    return hold


#: What is left to do after the hold for a copy (:func:`point_in_time_copy`):
#: ``finish(copy=True)`` writes ``copy.raw``; ``finish(copy=False)`` only lets go of what
#: the capture holds (the copy is not wanted any more).
Finish = Callable[..., None]


def point_in_time_copy(ebs, volume: Volume, work_dir: Path | None,
                       keep_as: str | None = None) -> Finish | None:
    """The volume's data as of now, captured while the caller holds the guest still
    (:data:`Hold`). A file volume, or an RBD volume no guest has: copied now, sparse, to
    ``copy.raw`` in *work_dir*. An RBD volume a guest has: an RBD snapshot taken now,
    copied to ``copy.raw`` by the Finish returned, after the hold, so the guest waits for
    the snapshot only, not the copy (an unattached one is not: the snapshot's two monitor
    round trips, up to a second each, would only add to the copy). With *keep_as* (the id
    of a snapshot kept in Ceph) an RBD snapshot of that name is the snapshot itself, and
    nothing is copied. Returns what is left to do after the hold, or None."""
    if keep_as is not None:
        ebs.rbd().snapshot(volume.id, keep_as)
        return None
    copy = work_dir / "copy.raw"
    backing = ebs.backing_of(volume)
    if backing.name != "rbd" or volume.attach_state is None:
        backing.copy_out(volume.id, copy)
        return None
    frozen = f"{work_dir.name}.copy"        # snap-...-xxxx.copy: no row names it
    backing.freeze(volume.id, frozen)

    def finish(copy_it: bool = True) -> None:
        try:
            if copy_it:
                backing.copy_snapshot_out(volume.id, frozen, copy)
        finally:
            backing.thaw(volume.id, frozen)
    return finish


def take(ebs, snapshot_id: str) -> None:
    """pending -> completed: copy, chunk and record the snapshot (error on failure)."""
    take_together(ebs, [snapshot_id])


def take_together(ebs, snapshot_ids: list[str], hold: Hold | None = None) -> None:
    """pending -> completed for snapshots taken at one point in time: every volume is
    captured inside ONE *hold* (the caller's, e.g. the guest shut off; by default
    :func:`guests_paused`; :func:`point_in_time_copy`), then each copy is finished, chunked
    and recorded (a snapshot kept in Ceph is complete once captured). A failed hold or
    capture ends them all in ``error``; a failed copy or upload ends its own snapshot
    only."""
    rows = [row for row in (db.session.get(Snapshot, sid) for sid in snapshot_ids)
            if row is not None and row.state == PENDING]
    work_dirs: dict[str, Path] = {}
    finishes: dict[str, Finish | None] = {}
    try:
        volumes = {row.id: db.session.get(Volume, row.volume_id) for row in rows}
        plan = [(row.id, row.volume_id, row.chunk_size, _previous_chunks(row)) for row in rows]
        in_ceph = {row.id for row in rows if row.backend == "rbd"}
        try:
            gone = [row.volume_id for row in rows if volumes[row.id] is None]
            if gone:
                raise AwsError(f"The volume {gone[0]} is gone.")
            hold = hold or guests_paused(ebs, list(volumes.values()))
            for volume in set(volumes.values()):
                db.session.expunge(volume)      # read as they are now, not again
            db.session.rollback()       # nothing held across the copies
            ebs.volumes_dir.mkdir(parents=True, exist_ok=True)
            for snapshot_id, _vid, _size, _prev in plan:
                if snapshot_id not in in_ceph:
                    work_dirs[snapshot_id] = Path(tempfile.mkdtemp(prefix=f"{snapshot_id}-",
                                                                   dir=ebs.volumes_dir))
            with hold():
                for snapshot_id, _vid, _size, _prev in plan:
                    finishes[snapshot_id] = point_in_time_copy(
                        ebs, volumes[snapshot_id], work_dirs.get(snapshot_id),
                        snapshot_id if snapshot_id in in_ceph else None)
        except Exception as error:  # noqa: BLE001 - any failure ends the snapshots in error
            for finish in finishes.values():
                if finish is not None:
                    _quietly(finish, copy_it=False)
            finishes.clear()
            for snapshot_id, *_rest in plan:
                fail(snapshot_id, error)
            return
        for snapshot_id, _vid, chunk_size, earlier in plan:
            if snapshot_id in in_ceph:
                _record(snapshot_id, chunks.SnapshotResult(chunks={}, stored_bytes=0))
                continue
            try:
                if finishes.get(snapshot_id) is not None:
                    finishes.pop(snapshot_id)()
                with CHUNKS_LOCK:
                    result = chunks.snapshot(work_dirs[snapshot_id] / "copy.raw",
                                             chunk_size=chunk_size, previous=earlier,
                                             chunks=ebs.chunk_store(),
                                             progress=_progress_updater(snapshot_id))
                    _record(snapshot_id, result)
            except Exception as error:  # noqa: BLE001 - this snapshot ends in error
                fail(snapshot_id, error)
    finally:
        for finish in finishes.values():        # copies never made (a bug cut us short)
            if finish is not None:
                _quietly(finish, copy_it=False)
        for work_dir in work_dirs.values():
            shutil.rmtree(work_dir, ignore_errors=True)


def _quietly(finish: Finish, **how) -> None:
    try:
        finish(**how)
    except Exception as error:  # noqa: BLE001 - the volume's deletion removes what stays
        log.warning("letting go of a point-in-time copy failed: %s", error)


def _previous_chunks(snapshot: Snapshot) -> dict[int, str]:
    """Index -> digest of the last completed snapshot of the same volume and chunk size
    (the chunks an incremental snapshot need not upload again)."""
    previous = db.session.execute(db.select(Snapshot).where(
        Snapshot.volume_id == snapshot.volume_id, Snapshot.state == COMPLETED,
        Snapshot.chunk_size == snapshot.chunk_size).order_by(
        Snapshot.started.desc()).limit(1)).scalar()
    return {i: d for i, (d, _s) in chunk_map(previous.id).items()} if previous else {}


def fail(snapshot_id: str, error: Exception) -> None:
    """A pending snapshot ends in ``error`` with *error*'s message."""
    log.warning("snapshot %s failed: %s", snapshot_id, error)
    db.session.rollback()
    SNAPSHOT.transition(snapshot_id, ERROR, expected={PENDING},
                        state_message=str(error)[:255])


def _record(snapshot_id: str, result: chunks.SnapshotResult) -> None:
    """The snapshot's chunk list and ``completed``, in one transaction."""
    def add_chunks() -> None:
        for index, (digest, size) in result.chunks.items():
            db.session.add(SnapshotChunk(snapshot_id=snapshot_id, index=index, digest=digest,
                                         size=size))
    SNAPSHOT.transition(snapshot_id, COMPLETED, expected={PENDING}, on_win=add_chunks,
                        progress=100, stored_bytes=result.stored_bytes)


def interrupted(snapshot_id: str) -> bool:
    """A snapshot a restart cut short ends in ``error`` (its copy is gone)."""
    return SNAPSHOT.transition(snapshot_id, ERROR, expected={PENDING},
                               state_message="interrupted by a restart of the storage "
                                             "controller")


def restore_into(ebs, snapshot_id: str, volume: Volume) -> None:
    """Make the new *volume* (of its size, on its backend) holding the snapshot's data: an
    RBD clone of a snapshot kept in Ceph for an RBD volume, else the data written in."""
    snapshot = find(snapshot_id)
    if snapshot is None:
        raise AwsError(f"The snapshot {snapshot_id} is gone.")
    size = volume.size_gb * 2**30
    volume_id, backend = volume.id, volume.backend
    source, mapping = (snapshot.volume_id, snapshot.id), chunk_map(snapshot_id)
    in_ceph, chunk_size = snapshot.backend == "rbd", snapshot.chunk_size
    target = ebs.backing_of(volume)
    db.session.rollback()
    if in_ceph and backend == "rbd":
        ebs.rbd().clone(*source, volume_id, size)
    elif in_ceph:
        target.restore(volume_id, size, lambda path: _write_atomically(
            path, size, lambda part: ebs.rbd().copy_snapshot_out(*source, part)))
    else:
        target.restore(volume_id, size, lambda path: chunks.restore(
            path, size, mapping, ebs.chunk_store(), chunk_size=chunk_size))


def _write_atomically(path: Path, size: int, write: Callable[[Path], None]) -> None:
    """*write(part)* fills a file beside *path*, which is then made *size* bytes long and
    renamed over *path*: *path* holds all of it or nothing new."""
    part = path.with_name(f".{path.name}.part")
    try:
        write(part)
        with open(part, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
