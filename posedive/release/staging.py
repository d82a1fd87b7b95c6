"""The local copy of a remote release, for the one reader that needs files on disk.

Every command reads a remote release through fsspec (``Release.store``) but ``push``: the Hub client
uploads files by path. ``staged_copy`` copies the release into
``<posedive cache>/remote-releases/<url>/`` (``posedive.paths.cache_dir``): outside the user's data,
named after the URL, and reused: a file already there with the manifest's size and sha256 is not
fetched again, and every file fetched is checked against the manifest before it takes its name.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from .. import paths
from ..errors import PathNotFound, ReleaseError
from ..files import sha256_file, temporary_path
from .manifest import Release

logger = logging.getLogger(__name__)

STAGING_FOLDER = "remote-releases"


def staging_dir(url: str) -> Path:
    """The local folder a remote release is copied to: under posedive's cache, named after its URL."""
    protocol, _, rest = url.partition("://")
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", part) for part in [protocol, *rest.strip("/").split("/")] if part]
    return paths.cache_dir() / STAGING_FOLDER / Path(*parts)


def staged_copy(release: Release) -> Path:
    """A local copy of a remote release's files (every file the manifest lists), each checked against
    the manifest; files already staged with the right hash are kept. Returns the copy's folder."""
    store = release.store
    folder = staging_dir(store.location)
    fetched = 0
    for relpath, entry in release.files().items():
        target = folder / relpath
        if target.is_file() and target.stat().st_size == entry.bytes and sha256_file(target) == entry.sha256:
            continue
        # Streamed to a temporary name and renamed once checked: a shard is never held in memory whole.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = temporary_path(target)
        try:
            store.fs.get_file(store.path(relpath), str(partial))
        except FileNotFoundError:
            raise PathNotFound(f"{store.url(relpath)}: listed in {store.url(paths.MANIFEST)} but missing",
                               hint="rebuild the release with `posedive build RECIPE`") from None
        if partial.stat().st_size != entry.bytes or sha256_file(partial) != entry.sha256:
            partial.unlink()
            raise ReleaseError(f"{store.url(relpath)}: content differs from the manifest; the release was modified "
                               f"after it was built", hint="rebuild it with `posedive build RECIPE`")
        os.replace(partial, target)
        fetched += 1
    logger.info("%s: staged in %s (%d file(s) fetched, the others already there)", store.location, folder, fetched)
    return folder
