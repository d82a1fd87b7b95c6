"""One builder per shard: the claims running builds hold on the shards of a release folder.

Before a build touches a release folder it claims the shards it is going to build (every shard, or
those of its ``--part``); two builds never hold the same shard, so one never deletes or overwrites the
other's files. Builds of different parts run at once; a second build of the same shards is refused
with a ``LockError`` naming the build that holds them. A build finishes the release only once it can
claim every shard, that is when no other build is running.

A claim is a file in ``.build/claims/`` naming its build (pid, host, part, shards, start time), held
open with an exclusive ``flock`` for as long as the build runs. The kernel drops the lock when the
process ends however it ends, so a claim file whose lock can be taken was left by a build that was
killed: on this host, with its pid gone, it is taken over with a warning; from another host (a folder
shared over the network) nothing proves that build dead, so it is refused with the file to delete.
Claims are made, widened and dropped under ``.build/lock``, held only for those moments, so two
builds never both see a shard as free.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from pydantic import BaseModel, ConfigDict

from .. import formats, paths
from ..errors import FormatError, LockError

logger = logging.getLogger(__name__)

LOCK_WAIT_S = 30.0  # the folder lock is held for milliseconds; waiting longer means something hangs


class ClaimRecord(BaseModel):
    """What a claim file says about the build that holds it."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = formats.BUILD_CLAIM.version
    pid: int
    host: str
    part: str | None
    shards: list[int]
    started: str

    def describe(self) -> str:
        what = f"part {self.part}" if self.part else "every shard"
        return f"pid {self.pid} on {self.host} ({what}, since {self.started})"


@dataclass(frozen=True)
class LiveClaim:
    """A claim whose build is running: its file (a path, or an object's URL in a store), and what the
    file says (``None`` when it cannot be read, and the build is taken to hold every shard)."""

    location: Path | str
    record: ClaimRecord | None

    def describe(self) -> str:
        if self.record is not None:
            return self.record.describe()
        return f"a build whose claim {self.location} cannot be read"

    def overlap(self, shards: set[int]) -> list[int]:
        return sorted(shards if self.record is None else shards & set(self.record.shards))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _folder_lock(release_dir: Path, wait_s: float) -> Iterator[None]:
    path = release_dir / paths.BUILD_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while not _try_flock(fd):
            if time.monotonic() > deadline:
                raise LockError(f"{path}: another build has held this lock for {wait_s:.0f} s",
                                hint="check for a hung `posedive build` of this release; the lock is released when "
                                     "it exits")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the file drops the lock


def _read_record(path: Path) -> ClaimRecord | None:
    try:
        return formats.read_json(formats.BUILD_CLAIM, path, ClaimRecord)
    except (OSError, FormatError) as error:
        # Written only partly by a build killed while claiming, or by another posedive: its build holds every shard.
        logger.debug("claim %s cannot be read: %s", path, error)
        return None


class ShardClaim:
    """The claim of one running build; release it with ``close`` (or use it as a context manager)."""

    def __init__(self, release_dir: Path, path: Path, fd: int, record: ClaimRecord, alone: bool) -> None:
        self.release_dir, self.path, self.record = release_dir, path, record
        self.alone = alone
        """No other build held a claim when this one was made (so the folder's shared files are this build's)."""
        self._fd: int | None = fd

    def __enter__(self) -> "ShardClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def claim_all(self, shards: Sequence[int], wait_s: float = LOCK_WAIT_S) -> list[LiveClaim]:
        """Widen this claim to ``shards`` (every shard of the release) unless other builds are running;
        returns those builds' claims (empty when the claim was widened).

        When others are running this claim is given up at once, under the same hold of the folder lock:
        of several builds that find every shard built at the same time, each but the last gives up, and
        the last finds itself alone and finishes the release."""
        with _folder_lock(self.release_dir, wait_s):
            others = _live_claims(self.release_dir, own=self.path)
            if others:
                self._drop()
            else:
                self.record = self.record.model_copy(update={"shards": sorted(shards)})
                _write_record(self._fd, self.record)
            return others

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            with _folder_lock(self.release_dir, LOCK_WAIT_S):
                self._drop()
        finally:
            if self._fd is not None:  # the folder lock was not had: the next build takes the claim over
                os.close(self._fd)
                self._fd = None

    def _drop(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def _write_record(fd: int, record: ClaimRecord) -> None:
    data = (record.model_dump_json(indent=2) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _live_claims(release_dir: Path, own: Path | None = None) -> list[LiveClaim]:
    """The claims of running builds; claims left by killed builds on this host are removed on the way."""
    folder = release_dir / paths.CLAIMS_DIR
    if not folder.is_dir():
        return []
    host = socket.gethostname()
    live = []
    for path in sorted(folder.glob("*.json")):
        if path == own:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            record = _read_record(path)
            if not _try_flock(fd):
                live.append(LiveClaim(path, record))
                continue
            if record is not None and record.host != host:
                raise LockError(
                    f"{release_dir}: {path} says {record.describe()} is building this release; this host "
                    f"({host}) cannot tell whether that build is still running",
                    hint=f"if no build of this release runs on {record.host}, delete {path} and build again",
                )
            if record is not None and record.pid != os.getpid() and _pid_alive(record.pid):
                raise LockError(
                    f"{release_dir}: {path} says {record.describe()} is building this release and that process "
                    f"is running, but does not hold the claim's lock",
                    hint=f"if pid {record.pid} is not a `posedive build` of this release, delete {path} and build again",
                )
            logger.warning("%s: taking over the claim of %s, which is no longer running", release_dir,
                           record.describe() if record is not None else f"a build that was killed while claiming ({path})")
            path.unlink()
        finally:
            os.close(fd)
    return live


def refuse_held_shards(release: str, others: Sequence, wanted: set[int], part: str | None,
                       taken_over: Callable[[object], str]) -> None:
    """Raise ``LockError`` if a live claim among ``others`` (local or in a store) holds any of ``wanted``
    or the same ``part``; ``taken_over`` says, for that claim, how a killed build's claim is undone."""
    for other in others:
        overlap = other.overlap(wanted)
        if overlap or (part is not None and other.record is not None and other.record.part == part):
            held = f"shards {overlap}" if overlap else f"part {part}"
            raise LockError(
                f"{release}: {held} of this release are being built by {other.describe()}",
                hint="wait for that build to end (it finishes the release when every shard is built), or build "
                     f"another --part; {taken_over(other)}",
            )


def claim_shards(release_dir: Path, shards: Sequence[int], part: str | None = None,
                 wait_s: float = LOCK_WAIT_S) -> ShardClaim:
    """Claim ``shards`` of the release folder for this build, or raise ``LockError`` naming the running
    build that holds some of them (or the same part)."""
    wanted = set(shards)
    with _folder_lock(release_dir, wait_s):
        others = _live_claims(release_dir)
        refuse_held_shards(str(release_dir), others, wanted, part,
                           lambda other: f"if it was killed on another machine, delete its file in "
                                         f"{release_dir / paths.CLAIMS_DIR}")
        folder = release_dir / paths.CLAIMS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        if not _try_flock(fd):  # a fresh file nobody else has opened: cannot happen where flock works
            os.close(fd)
            raise LockError(f"{path}: cannot lock a file this build just made", hint="build on a local file system")
        record = ClaimRecord(pid=os.getpid(), host=socket.gethostname(), part=part, shards=sorted(wanted),
                             started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        _write_record(fd, record)
    return ShardClaim(release_dir, path, fd, record, alone=not others)
