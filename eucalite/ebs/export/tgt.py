"""The tgt export: volumes served by the user-space iSCSI target (tgtd), driven by tgtadm.

One target per volume (IQN ``iqn.2026-11.dev.eucalite:<vol-id>``), the volume file as LUN 1
(LUN 0 is tgt's controller), one CHAP account bound to the target (so a login without its
secret is refused): the volume's own for this host's node, the node's for a node on another
host (bound to that node's volumes' targets only; see :mod:`.base`), and the initiator
addresses allowed in (``ALL`` by default). tgtd keeps all this in memory only: the
credentials of each export are also saved in a 0600 file under ``state_dir``, so that after
a tgtd restart the export is re-created with the same secret and the nodes' initiators can
log in again.

Target ids (tids) are allocated under a lock (threads) and a lock file (processes), and a
failed ``--op new`` on a tid taken meanwhile moves on to the next one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

from ...cluster.virt.driver import DiskSpec
from .base import (DEFAULT_PORTAL, ExportDriver, ExportError, NodeAccounts, iqn_for,
                   iscsi_disk_spec, iscsi_record, new_chap, parse_portal, volume_of)

LUN = 1                     # tgt's LUN 0 is the target's controller
TIMEOUT = 30
# tgtadm talks to one tgtd per host: one lock for every TgtExport of this process
_LOCK = threading.RLock()


@dataclass
class TgtTarget:
    """One target as ``tgtadm --op show --mode target`` lists it."""

    tid: int
    iqn: str
    luns: dict[int, str] = field(default_factory=dict)     # LUN -> backing store path
    accounts: list[str] = field(default_factory=list)      # incoming CHAP users bound
    acls: list[str] = field(default_factory=list)          # initiator addresses allowed


_TARGET_RE = re.compile(r"^Target (\d+): (\S+)\s*$")
_LUN_RE = re.compile(r"^\s+LUN: (\d+)\s*$")
_PATH_RE = re.compile(r"^\s+Backing store path: (.*?)\s*$")


def parse_targets(text: str) -> dict[str, TgtTarget]:
    """IQN -> TgtTarget from the output of ``tgtadm --lld iscsi --op show --mode target``."""
    targets: dict[str, TgtTarget] = {}
    current: TgtTarget | None = None
    section = lun = None
    for line in text.splitlines():
        m = _TARGET_RE.match(line)
        if m:
            current = TgtTarget(int(m.group(1)), m.group(2))
            targets[current.iqn] = current
            section = lun = None
            continue
        if current is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 4 and line.rstrip().endswith(":"):
            section = line.strip()[:-1]          # "LUN information", "ACL information", ...
            continue
        if section == "LUN information":
            if (m := _LUN_RE.match(line)):
                lun = int(m.group(1))
            elif (m := _PATH_RE.match(line)) and lun is not None:
                current.luns[lun] = m.group(1)
        elif section == "Account information" and indent == 8:
            if not line.strip().endswith("(outgoing)"):
                current.accounts.append(line.strip())
        elif section == "ACL information" and indent == 8:
            current.acls.append(line.strip())
    return targets


def parse_accounts(text: str) -> set[str]:
    """User names from ``tgtadm --lld iscsi --op show --mode account``."""
    return {line.strip() for line in text.splitlines()[1:] if line.strip()}


class TgtExport(ExportDriver):
    """Volumes exported by tgtd, one target + CHAP account each."""

    name = "tgt"

    def __init__(self, state_dir: str, portal: str = DEFAULT_PORTAL,
                 initiators: str | list[str] = "ALL", tgtadm: str = "tgtadm",
                 address: str | None = None, node_accounts: NodeAccounts | None = None):
        self.state_dir = state_dir
        self.portal = parse_portal(portal)
        #: the storage host's address nodes on other hosts connect to (default: the portal's)
        self.address = address or self.portal[0]
        self.node_accounts = node_accounts or NodeAccounts(os.path.join(state_dir, "nodes"))
        if isinstance(initiators, str):
            initiators = [i.strip() for i in initiators.split(",")]
        self.initiators = [i for i in initiators if i] or ["ALL"]
        self.tgtadm = tgtadm

    # -- tgtadm --------------------------------------------------------------------------

    def _tgtadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [self.tgtadm, "--lld", "iscsi", *args]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        except FileNotFoundError as exc:
            raise ExportError(f"{self.tgtadm} not found: apt install tgt") from exc
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"`{' '.join(argv)}` did not answer in {TIMEOUT} s") from exc
        if check and result.returncode != 0:
            raise ExportError(f"`{' '.join(_redact(argv))}` failed: "
                              f"{(result.stderr or result.stdout).strip()}")
        return result

    def _targets(self) -> dict[str, TgtTarget]:
        return parse_targets(self._tgtadm("--op", "show", "--mode", "target").stdout)

    def _accounts(self) -> set[str]:
        return parse_accounts(self._tgtadm("--op", "show", "--mode", "account").stdout)

    def problem(self) -> str | None:
        if shutil.which(self.tgtadm) is None:
            return f"tgt is not installed ({self.tgtadm} not found): apt install tgt"
        result = self._tgtadm("--op", "show", "--mode", "target", check=False)
        if result.returncode != 0:
            return ("tgtd is not running (start it: tgtd, or tgtd -f --iscsi "
                    f"portal={self.portal[0]}:{self.portal[1]}; see README): "
                    f"{(result.stderr or result.stdout).strip()}")
        return None

    # -- the saved credentials -------------------------------------------------------------

    def _state_file(self, volume_id: str) -> str:
        return os.path.join(self.state_dir, f"{volume_id}.json")

    def _load(self, volume_id: str) -> dict | None:
        try:
            with open(self._state_file(volume_id)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _save(self, record: dict) -> None:
        """Write *record* atomically, readable by root only (it holds the CHAP secret)."""
        path = self._state_file(record["volume_id"])
        part = path + ".part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(part, path)

    @contextlib.contextmanager
    def _locked(self):
        """Serialize target changes among threads (one RLock) and processes (flock)."""
        with _LOCK:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            with open(os.path.join(self.state_dir, ".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield

    # -- the contract --------------------------------------------------------------------

    def create_export(self, volume_id: str, path: str, node_id: str | None = None) -> dict:
        if not os.path.isfile(path):
            raise ExportError(f"cannot export {volume_id}: no volume file {path}")
        iqn = iqn_for(volume_id)
        with self._locked():
            saved = self._load(volume_id)
            node = self.node_accounts.credentials(node_id) if node_id is not None else None
            targets = self._targets()
            current = targets.get(iqn)
            if current is not None and self._still_good(saved, current, path, node_id, node):
                if saved.get("tid") != current.tid:
                    saved["tid"] = current.tid
                    self._save(saved)
                return saved
            if current is not None:
                # half-made, stale (another file, another node) or credentials lost: rebuild
                self._delete_target(current.tid)
                del targets[iqn]
                self._drop_unbound(set(current.accounts) - {node[0] if node else None},
                                   targets)
            own = saved is not None and saved.get("iqn") == iqn and not saved.get("node_id")
            if node is not None:
                user, password, made_now = node
                if own:
                    self._delete_account(saved["username"])     # the volume's, unused now
            elif own:
                user, password = saved["username"], saved["password"]   # same secret again
            else:
                user, password = new_chap()
            tid = self._new_target(iqn, {t.tid for t in targets.values()})
            try:
                self._tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(tid),
                             "--lun", str(LUN), "-b", path)
                if node is None:
                    self._new_account(user, password)
                else:
                    self._node_account(user, password, made_now)
                self._tgtadm("--mode", "account", "--op", "bind", "--tid", str(tid),
                             "--user", user)
                for initiator in self.initiators:
                    self._tgtadm("--mode", "target", "--op", "bind", "--tid", str(tid),
                                 "-I", initiator)
            except ExportError:
                self._delete_target(tid)
                if node is None:
                    self._delete_account(user)
                raise
            portal = self.portal if node is None else (self.address, self.portal[1])
            extra = {"node_id": node_id} if node is not None else {}
            record = iscsi_record(self.name, volume_id, LUN, portal, user, password,
                                  tid=tid, initiators=list(self.initiators), **extra)
            self._save(record)
            return record

    def _still_good(self, saved: dict | None, current: TgtTarget, path: str,
                    node_id: str | None, node: tuple[str, str, bool] | None) -> bool:
        """Whether the target *current* is the export *saved* describes, for *node_id*
        (with its account *node*), so create_export has nothing to do."""
        if saved is None or saved.get("iqn") != current.iqn or saved.get("node_id") != node_id \
                or current.luns.get(LUN) != path or current.accounts != [saved["username"]] \
                or sorted(current.acls) != sorted(self.initiators):
            return False
        if node is None:
            return True
        user, password, made_now = node
        return not made_now and (saved["username"], saved["password"]) == (user, password)

    def _new_target(self, iqn: str, taken: set[int]) -> int:
        """Create target *iqn* on the lowest free tid and return the tid."""
        tid = 1
        for _attempt in range(64):
            while tid in taken:
                tid += 1
            result = self._tgtadm("--mode", "target", "--op", "new", "--tid", str(tid),
                                  "--targetname", iqn, check=False)
            if result.returncode == 0:
                return tid
            # someone outside our locks took this tid meanwhile: look again
            targets = self._targets()
            if iqn in targets:
                raise ExportError(f"cannot create target {iqn}: it appeared meanwhile")
            if tid not in {t.tid for t in targets.values()}:
                raise ExportError(f"cannot create target {iqn} (tid {tid}): "
                                  f"{(result.stderr or result.stdout).strip()}")
            taken.add(tid)
        raise ExportError(f"cannot create target {iqn}: no free tid found")

    def _drop_unbound(self, users: set[str], targets: dict[str, TgtTarget]) -> None:
        """Delete the accounts *users* that none of *targets* binds any more (a node's
        whose volume moved to another node)."""
        bound = {user for target in targets.values() for user in target.accounts}
        for user in users - bound:
            self._delete_account(user)

    def _node_account(self, user: str, password: str, made_now: bool) -> None:
        """Afterwards the node's CHAP account *user* exists with *password*; one already
        there is kept (it is bound to the node's other targets) unless the pair was just
        made (then the account left behind has a secret nobody knows)."""
        accounts = self._accounts()
        if user in accounts and made_now:
            self._delete_account(user)
            accounts.discard(user)
        if user not in accounts:
            self._tgtadm("--mode", "account", "--op", "new", "--user", user,
                         "--password", password)

    def _new_account(self, user: str, password: str) -> None:
        """Afterwards the CHAP account *user* exists with *password*."""
        if user in self._accounts():
            self._delete_account(user)      # its password may differ: make it anew
        self._tgtadm("--mode", "account", "--op", "new", "--user", user,
                     "--password", password)

    def _delete_target(self, tid: int) -> None:
        # --force: drop the initiators' sessions too, or tgtd refuses while one is logged in
        self._tgtadm("--mode", "target", "--op", "delete", "--force", "--tid", str(tid),
                     check=False)

    def _delete_account(self, user: str) -> None:
        self._tgtadm("--mode", "account", "--op", "delete", "--user", user, check=False)

    def remove_export(self, volume_id: str, export: dict) -> None:
        iqn = iqn_for(volume_id)
        with self._locked():
            current = self._targets().get(iqn)
            if current is not None:
                self._delete_target(current.tid)
                if iqn in self._targets():
                    raise ExportError(f"cannot delete target {iqn} (tid {current.tid})")
            saved = self._load(volume_id) or {}
            accounts = self._accounts()
            # the volume's own account goes; a node's goes once no target of it is left
            # (its secret stays saved, so the node keeps it when it gets a volume again)
            users = {record.get("username") for record in (export, saved)} - {None}
            bound = {user for target in self._targets().values() for user in target.accounts}
            for user in users & accounts - bound:
                self._delete_account(user)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._state_file(volume_id))

    def disk_spec(self, volume_id: str, export: dict, path: str, target: str) -> DiskSpec:
        return iscsi_disk_spec(volume_id, export, target)

    def exported(self) -> set[str]:
        return {vol for vol in map(volume_of, self._targets()) if vol}


def _redact(argv: list[str]) -> list[str]:
    """*argv* with the value after --password hidden (error messages reach logs)."""
    return ["***" if i and argv[i - 1] == "--password" else a for i, a in enumerate(argv)]
