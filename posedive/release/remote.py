"""A release at an fsspec URL (``s3://bucket/releases/<name>/<version>``), opened with errors that say
what is wrong.

fsspec's file systems answer "no such file" for any failed probe (``isfile`` is ``False`` for a
missing key, missing credentials and a refused connection alike), so when the manifest is not found
the location is asked once more and the failure is named: no credentials, credentials refused, an
endpoint that cannot be reached, a bucket that does not exist, or a location that holds no finished
release.
"""

from __future__ import annotations

import re

from .. import paths
from ..errors import MissingDependency, PathNotFound, PosediveError, ReleaseError, StorageAccessError
from ..storage import Store, open_store

OPTIONS_HINT = ("the endpoint and credentials come from fsspec's configuration: for S3, FSSPEC_S3_ENDPOINT_URL, "
                "FSSPEC_S3_KEY and FSSPEC_S3_SECRET (or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                "and ~/.aws)")


def _names(error: BaseException) -> str:
    return " ".join(kind.__name__ for kind in type(error).__mro__)


def access_error(url: str, error: BaseException) -> PosediveError:
    """The user-facing error for a store operation on ``url`` that failed with ``error``."""
    names, text = _names(error), str(error)
    if "Credential" in names or "credentials" in text.lower():
        return StorageAccessError(f"{url}: no credentials for this store ({text})",
                                  hint=f"set the store's credentials; {OPTIONS_HINT}")
    if "Connect" in names or "Timeout" in names or isinstance(error, (ConnectionError, TimeoutError)):
        return StorageAccessError(f"{url}: the store's endpoint cannot be reached ({text})",
                                  hint=f"check the network and the endpoint URL; {OPTIONS_HINT}")
    if isinstance(error, PermissionError) or re.search(r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|403",
                                                         text):
        return StorageAccessError(f"{url}: the store refused these credentials ({text})",
                                  hint=f"use credentials that may read this location; {OPTIONS_HINT}")
    if isinstance(error, FileNotFoundError) and "bucket" in text.lower():
        return PathNotFound(f"{url}: {text}", hint="check the bucket's name in the URL")
    return StorageAccessError(f"{url}: the store failed: {type(error).__name__}: {text}",
                              hint=f"check the URL and the store's settings; {OPTIONS_HINT}")


def open_release_store(url: str) -> Store:
    """The store of the release at ``url``, once its manifest is known to be there; otherwise the reason
    it is not, as a posedive error naming the URL."""
    try:
        store = open_store(url)
    except ImportError as error:
        protocol = url.split("://", 1)[0]
        raise MissingDependency(f"{url}: fsspec has no file system for {protocol}:// here ({error})",
                                hint=f"install the package fsspec names for {protocol}:// (for s3://: pip install s3fs)") \
            from None
    except (ValueError, TypeError) as error:
        raise StorageAccessError(f"{url}: not a URL fsspec can open ({error})",
                                 hint="give a release folder or a URL such as s3://bucket/releases/<name>/<version>") \
            from None
    if store.is_file(paths.MANIFEST):
        return store
    try:
        store.fs.info(store.path(paths.MANIFEST))
    except FileNotFoundError as error:
        if "bucket" in str(error).lower():
            raise access_error(url, error) from None
    except Exception as error:  # noqa: BLE001 - whatever the file system raises is named for the user
        raise access_error(url, error) from None
    else:
        return store  # there after all (written a moment ago)
    what = "holds no files" if not store.top_level_names() else f"holds no {paths.MANIFEST}"
    raise ReleaseError(f"{url}: {what}; not a finished posedive release",
                       hint="give the URL of a release (<output.dir>/<name>/<version>); an unfinished build "
                            "resumes with `posedive build RECIPE`")


def check_store_access(store: Store) -> None:
    """Raise the posedive error of ``access_error`` when the remote location cannot be listed (no
    credentials, an unreachable endpoint, no such bucket); an empty location is fine (a new release)."""
    if store.local:
        return
    try:
        store.fs.ls(store.root, detail=False)
    except FileNotFoundError as error:
        if "bucket" in str(error).lower():
            raise access_error(store.location, error) from None
    except Exception as error:  # noqa: BLE001 - whatever the file system raises is named for the user
        raise access_error(store.location, error) from None
