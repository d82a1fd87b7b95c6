"""One builder per shard of a release in an object store (``s3://``, ``gs://``, any fsspec URL): the
lock and the claims live in the store, beside the release, so builds driven from different machines
see each other.

The protocol is that of ``posedive.builder.claims`` (one claim per running build naming its shards;
claims made, widened and dropped only under the release's lock, so two builds never both see a shard
as free), with objects in place of files and ``flock``:

* ``.build/lock`` is created with an exclusive create (fsspec ``mode="xb"``, which is S3's
  ``If-None-Match: *``) and deleted after the few requests a build holds it for. It names its holder
  (pid, host, when taken); a lock held longer than ``LOCK_TTL_S``, or by a process gone from this
  host, is taken over with a warning.
* ``.build/claims/<host>-<pid>-<id>.json`` names a running build (pid, host, part, shards, start) and
  when it was last renewed. Nothing in an object store says whether a process on another machine is
  alive, so a claim lives while it is renewed: a thread of its build rewrites it every ``ttl_s / 4``.
  A claim not renewed for ``ttl_s`` (its build was killed, or its machine lost) is taken over with a
  warning, as is one of a process gone from this host; a live one is refused with a ``LockError``
  naming its build.

Residual races (object stores offer no more than this):

* Where the file system has no exclusive create, the lock is written only if absent and read back
  after ``SETTLE_S``: two builds writing it within that pause of each other may both think they hold it.
* A stale lock is taken over by deleting it and creating a new one; a third build deleting the same
  stale lock a moment later can delete the new one. This needs a build killed within the moment it
  holds the lock.
* Expiry compares the clock of the claim's writer with the reader's: the machines' clocks must agree
  to well within ``ttl_s`` (as NTP keeps them). A build stopped for longer than ``ttl_s`` (a suspended
  machine) loses its claim; it notices at its next renewal, says so, and does not finish the release.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Sequence

from pydantic import BaseModel, ConfigDict

from .. import formats, paths
from ..errors import FormatError, LockError, PathNotFound
from ..storage import Store
from .claims import LOCK_WAIT_S, ClaimRecord, LiveClaim, _pid_alive, refuse_held_shards

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 120.0  # a claim not renewed for this long belongs to a build that is gone
LOCK_TTL_S = 60.0  # the lock is held for a few requests; held this long, its holder is gone
SETTLE_S = 1.0  # the pause before a lock written without exclusive create is read back


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _stamp(moment: _dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _age_s(stamp: str) -> float:
    return (_now() - _dt.datetime.fromisoformat(stamp)).total_seconds()


class LockRecord(BaseModel):
    """What ``.build/lock`` of a remote release says about the build holding it."""

    model_config = ConfigDict(extra="forbid")

    pid: int
    host: str
    taken: str
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.taken})"


class StoreClaimRecord(ClaimRecord):
    """A claim in an object store: a local claim's record, and when and for how long it was renewed."""

    renewed: str
    ttl_s: float

    def stale_reason(self, host: str) -> str | None:
        """Why this claim's build is known to be gone (``None``: it may be running)."""
        if self.host == host and self.pid != os.getpid() and not _pid_alive(self.pid):
            return "no longer running"
        if _age_s(self.renewed) > self.ttl_s:
            return f"not renewed for {_age_s(self.renewed):.0f} s (more than {self.ttl_s:.0f} s)"
        return None


# ------------------------------------------------------------------------------------------ the lock
def _create_exclusive(store: Store, relpath: str, data: bytes) -> bool:
    """Create ``relpath`` holding ``data`` unless it exists; whether this call created it."""
    target = store.path(relpath)
    try:
        with store.fs.open(target, "xb") as handle:
            handle.write(data)
        return True
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError, TypeError):  # no exclusive create here: write, then read back
        pass
    if store.exists(relpath):
        return False
    store.fs.pipe_file(target, data)
    time.sleep(SETTLE_S)
    try:
        return store.read_bytes(relpath) == data
    except PathNotFound:
        return False


def _read_lock(store: Store) -> LockRecord | None:
    try:
        return LockRecord.model_validate_json(store.read_bytes(paths.BUILD_LOCK))
    except PathNotFound:
        return None
    except ValueError:  # written only partly, or by something else: judged by its age alone
        return LockRecord(pid=-1, host="?", taken=_stamp(_now()), token="unreadable")


def _lock_is_stale(store: Store, holder: LockRecord, host: str) -> str | None:
    if holder.host == host and holder.pid not in (-1, os.getpid()) and not _pid_alive(holder.pid):
        return "no longer running"
    try:
        age = _age_s(holder.taken) if holder.token != "unreadable" else (
            _now() - _modified(store, paths.BUILD_LOCK)).total_seconds()
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None
    return f"held for {age:.0f} s" if age > LOCK_TTL_S else None


def _modified(store: Store, relpath: str) -> _dt.datetime:
    modified = store.fs.modified(store.path(relpath))
    return modified if modified.tzinfo else modified.replace(tzinfo=_dt.timezone.utc)


class _StoreLock:
    """``.build/lock`` of a remote release, held inside a ``with``."""

    def __init__(self, store: Store, wait_s: float) -> None:
        self.store, self.wait_s = store, wait_s

    def __enter__(self) -> "_StoreLock":
        host = socket.gethostname()
        record = LockRecord(pid=os.getpid(), host=host, taken=_stamp(_now()), token=uuid.uuid4().hex)
        data = record.model_dump_json().encode()
        deadline = time.monotonic() + self.wait_s
        while not _create_exclusive(self.store, paths.BUILD_LOCK, data):
            holder = _read_lock(self.store)
            if holder is not None and (reason := _lock_is_stale(self.store, holder, host)):
                logger.warning("%s: taking over the lock of %s, %s", self.store.url(paths.BUILD_LOCK),
                               holder.describe(), reason)
                if _read_lock(self.store) == holder:  # not taken over by another build meanwhile
                    self.store.fs.rm_file(self.store.path(paths.BUILD_LOCK))
                continue
            if time.monotonic() > deadline:
                raise LockError(
                    f"{self.store.url(paths.BUILD_LOCK)}: held by {holder.describe() if holder else 'another build'} "
                    f"for more than {self.wait_s:.0f} s",
                    hint=f"check for a hung `posedive build` of this release; a lock held for {LOCK_TTL_S:.0f} s "
                         "is taken over by the next build")
            time.sleep(0.2)
        self._data = data
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.store.read_bytes(paths.BUILD_LOCK) == self._data:
                self.store.fs.rm_file(self.store.path(paths.BUILD_LOCK))
        except (PathNotFound, FileNotFoundError):  # taken over as stale meanwhile
            pass


# ----------------------------------------------------------------------------------------- the claims
def _read_claim(store: Store, relpath: str) -> StoreClaimRecord | None:
    try:
        return formats.read_json(formats.BUILD_CLAIM, store.file(relpath), StoreClaimRecord)
    except (PathNotFound, FormatError) as error:
        logger.debug("claim %s cannot be read: %s", store.url(relpath), error)
        return None


def _live_claims(store: Store, own: str | None = None) -> list[LiveClaim]:
    """The claims of running builds; those of builds known to be gone are deleted on the way."""
    host = socket.gethostname()
    live = []
    for name in store.listdir(paths.CLAIMS_DIR):
        relpath = f"{paths.CLAIMS_DIR}/{name}"
        if relpath == own or not name.endswith(".json"):
            continue
        record = _read_claim(store, relpath)
        if record is None:
            if not store.is_file(relpath):  # dropped meanwhile
                continue
            age = (_now() - _modified(store, relpath)).total_seconds()
            if age <= CLAIM_TTL_S:
                live.append(LiveClaim(store.url(relpath), None))
                continue
            reason, who = f"unreadable and {age:.0f} s old", store.url(relpath)
        elif (reason := record.stale_reason(host)) is None:
            live.append(LiveClaim(store.url(relpath), record))
            continue
        else:
            who = record.describe()
        logger.warning("%s: taking over the claim of %s, %s", store.url(""), who, reason)
        store.fs.rm_file(store.path(relpath))
    return live


class StoreShardClaim:
    """The claim of one running build on a remote release; ``close`` gives it back. The same interface
    as ``posedive.builder.claims.ShardClaim``: ``record``, ``alone``, ``claim_all``, ``close``."""

    def __init__(self, store: Store, relpath: str, record: StoreClaimRecord, alone: bool,
                 wait_s: float = LOCK_WAIT_S) -> None:
        self.store, self.relpath, self.record, self.alone = store, relpath, record, alone
        self._wait_s = wait_s
        self._stop = threading.Event()
        self._write_guard = threading.Lock()
        self.lost: str | None = None
        """Why this claim is no longer held (another build took it over), once a renewal found that."""
        self._renewer = threading.Thread(target=self._renew_until_closed, name="posedive-claim-renewal", daemon=True)
        self._renewer.start()

    def __enter__(self) -> "StoreShardClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self) -> None:
        self.record = self.record.model_copy(update={"renewed": _stamp(_now())})
        self.store.fs.pipe_file(self.store.path(self.relpath), (self.record.model_dump_json(indent=2) + "\n").encode())

    def _renew_until_closed(self) -> None:
        while not self._stop.wait(self.record.ttl_s / 4):
            with self._write_guard:
                if self._stop.is_set():
                    return
                try:
                    if not self.store.is_file(self.relpath):
                        self.lost = "its claim was taken over by another build (not renewed in time)"
                        logger.error("%s: %s; this build will not finish the release", self.store.url(self.relpath),
                                     self.lost)
                        return
                    self._write()
                except OSError as error:  # the store is unreachable for a moment: try again at the next renewal
                    logger.warning("%s: could not renew the claim: %s", self.store.url(self.relpath), error)

    def claim_all(self, shards: Sequence[int], wait_s: float = LOCK_WAIT_S) -> list[LiveClaim]:
        """Widen this claim to ``shards`` unless other builds run (see ``ShardClaim.claim_all``); their claims."""
        if self.lost:
            raise LockError(f"{self.store.url(self.relpath)}: {self.lost}",
                            hint="build again: the shards this build wrote are checked and kept")
        with _StoreLock(self.store, wait_s):
            others = _live_claims(self.store, own=self.relpath)
            with self._write_guard:
                if others:
                    self._drop()
                else:
                    self.record = self.record.model_copy(update={"shards": sorted(shards)})
                    self._write()
            return others

    def close(self) -> None:
        if self._stop.is_set():
            return
        with _StoreLock(self.store, self._wait_s), self._write_guard:
            self._drop()

    def _drop(self) -> None:
        self._stop.set()
        if self.store.is_file(self.relpath):
            self.store.fs.rm_file(self.store.path(self.relpath))


def claim_store_shards(store: Store, shards: Sequence[int], part: str | None = None,
                       wait_s: float = LOCK_WAIT_S, ttl_s: float = CLAIM_TTL_S) -> StoreShardClaim:
    """Claim ``shards`` of the remote release in ``store`` for this build, or raise ``LockError`` naming
    the running build that holds some of them (or the same part)."""
    wanted = set(shards)
    with _StoreLock(store, wait_s):
        others = _live_claims(store)
        refuse_held_shards(store.url(""), others, wanted, part,
                           lambda other: f"a build that was killed is taken over once its claim ({other.location}) has "
                                         f"not been renewed for {other.record.ttl_s if other.record else CLAIM_TTL_S:.0f} s")
        host, started = socket.gethostname(), _stamp(_now())
        relpath = f"{paths.CLAIMS_DIR}/{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        record = StoreClaimRecord(pid=os.getpid(), host=host, part=part, shards=sorted(wanted), started=started,
                                  renewed=started, ttl_s=ttl_s)
        store.fs.pipe_file(store.path(relpath), (record.model_dump_json(indent=2) + "\n").encode())
    return StoreShardClaim(store, relpath, record, alone=not others, wait_s=wait_s)
