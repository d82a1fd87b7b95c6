"""Publishing a finished release to the Hugging Face Hub: the one module that talks to ``HfApi``.

``push_release`` makes a dataset repo hold exactly the files of a release's manifest and tags that
commit ``v<version>``, so ``load_dataset("org/name", revision="v1.0.0")`` returns that release and
nothing else, forever:

* the repo is created **private** unless the caller opts in to public (the images derive from real
  people in licensed datasets); an existing repo keeps its visibility;
* the remote tree is compared with the manifest (size and sha256 for LFS files, git blob id for
  regular ones) and only what is missing or different is uploaded, in several commits of bounded
  size, so a push that was interrupted resumes where it stopped; LFS objects that reached the Hub
  before an interruption are not sent again either (the LFS batch answer skips them);
* shards under ``data/`` (and plots / rejected logs) that the release does not list are deleted in
  the last commit, which also carries the card and the manifest, so the repo at the tag holds this
  release's shards and no others (the card's default config names them one by one);
* version tags are never moved: an existing ``v<version>`` tag pointing at the same content is
  accepted (the push is idempotent), one pointing at different content is refused;
* after tagging, the remote files at the tag are checked against the manifest again;
* the commit is recorded in ``hub.json`` beside the manifest (not part of the release itself).

The token is resolved by ``huggingface_hub`` (``HF_TOKEN``, ``hf auth login``) or passed in; it is
never logged nor written anywhere.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import formats, paths
from .errors import ConfigError, HubAuthError, HubError, InputError, PathNotFound, ReleaseError

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    from .release import Release

logger = logging.getLogger(__name__)

HUB_RECORD = paths.HUB_RECORD
HUB_RECORD_FORMAT = formats.HUB_RECORD.version
REPO_TYPE = "dataset"
DEFAULT_BRANCH = "main"
DEFAULT_MAX_COMMIT_BYTES = 2 * 1024**3
DEFAULT_MAX_COMMIT_FILES = 100
# Remote folders a release owns: files there that the manifest does not list are deleted on push.
MANAGED_FOLDERS: tuple[str, ...] = (paths.DATA_DIR, paths.PLOTS_DIR, paths.REJECTED_DIR)
# Written by the Hub itself when a repo is created; never compared, never deleted.
HUB_OWNED_FILES: frozenset[str] = frozenset({".gitattributes"})


class HubPushError(HubError):
    """The Hub answered in a way that leaves the push unfinished (re-running the push resumes it)."""


class TagConflictError(HubError, ValueError):
    """The version tag already exists on the Hub and points at different content."""


class HubVerificationError(HubError):
    """The remote files at the version tag do not match the manifest."""


class PushRecord(BaseModel):
    """One publication of a release: where it went and which commit the tag points at."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    repo_id: str
    repo_type: Literal["dataset"] = REPO_TYPE
    branch: str
    tag: str
    commit_sha: str = Field(description="the commit the version tag points at")
    private: bool
    files: int = Field(description="files of the release on the Hub")
    bytes: int
    uploaded_files: int = Field(description="files this push had to upload (0 when everything was there)")
    uploaded_bytes: int
    pushed_at: str

    @property
    def url(self) -> str:
        return f"{self.endpoint}/datasets/{self.repo_id}/tree/{self.tag}"


class HubRecord(BaseModel):
    """``hub.json``: every place the release was published, one entry per (endpoint, repo, tag)."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = HUB_RECORD_FORMAT
    name: str
    version: str
    pushes: list[PushRecord] = Field(default_factory=list)


@dataclass(frozen=True)
class _LocalFile:
    relpath: str
    path: Path
    sha256: str
    bytes: int


def version_tag(version: str) -> str:
    """The Git tag a release version is published under."""
    return f"v{version}"


def read_hub_record(release_dir: Path | str) -> HubRecord | None:
    """The ``hub.json`` of a release (a folder or an fsspec URL), or ``None`` if it was never pushed."""
    from .storage import open_store

    store = open_store(release_dir)
    if not store.is_file(HUB_RECORD):
        return None
    return formats.read_json(formats.HUB_RECORD, store.file(HUB_RECORD), HubRecord)


def _write_hub_record(release: "Release", push: PushRecord) -> str:
    """Record the push in ``hub.json`` beside the manifest (in the store, for a remote release)."""
    store = release.store
    record = read_hub_record(store.location) or HubRecord(name=release.manifest.name, version=release.manifest.version)
    kept = [p for p in record.pushes if (p.endpoint, p.repo_id, p.tag) != (push.endpoint, push.repo_id, push.tag)]
    record.pushes = [*kept, push]
    store.write_text(HUB_RECORD, record.model_dump_json(indent=2) + "\n")
    return store.url(HUB_RECORD)


def _hash_file(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file in one read."""
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def _local_files(release: "Release", root: Path) -> dict[str, _LocalFile]:
    """The release's files in the local folder ``root`` (the release's own, or its staged copy)."""
    files: dict[str, _LocalFile] = {}
    for relpath, entry in release.files().items():
        path = root / relpath
        if not path.is_file():
            raise PathNotFound(f"{path}: listed in {root / paths.MANIFEST} but missing",
                               hint="rebuild the release with `posedive build RECIPE`")
        if path.stat().st_size != entry.bytes:
            raise ReleaseError(f"{path}: {path.stat().st_size} bytes but the manifest says {entry.bytes}; the "
                               f"release was modified after it was built",
                               hint="rebuild it with `posedive build RECIPE`")
        files[relpath] = _LocalFile(relpath, path, entry.sha256, entry.bytes)
    return files


def _remote_tree(api: "HfApi", repo_id: str, revision: str) -> dict[str, "RepoFile"]:
    from huggingface_hub.hf_api import RepoFile

    return {
        item.path: item
        for item in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=revision, recursive=True)
        if isinstance(item, RepoFile)
    }


class _Comparer:
    """Decides whether a remote file is the local one; regular (non-LFS) remote files are compared by
    git blob id, which needs the local bytes, so their local sha256 is checked on the same read."""

    def __init__(self) -> None:
        self._sha1: dict[Path, str] = {}

    def git_sha1(self, local: _LocalFile) -> str:
        if local.path not in self._sha1:
            sha256, sha1 = _hash_file(local.path)
            if sha256 != local.sha256:
                raise ReleaseError(f"{local.path}: content differs from the manifest; the release was modified "
                                   f"after it was built", hint="rebuild it with `posedive build RECIPE`")
            self._sha1[local.path] = sha1
        return self._sha1[local.path]

    def same(self, local: _LocalFile, remote: "RepoFile | None") -> bool:
        if remote is None or remote.size != local.bytes:
            return False
        if remote.lfs is not None:
            return remote.lfs.sha256 == local.sha256
        return remote.blob_id == self.git_sha1(local)


def _differences(local: dict[str, _LocalFile], remote: dict[str, "RepoFile"], comparer: _Comparer) -> list[str]:
    """What keeps ``remote`` from being exactly the release (for the managed folders and listed files)."""
    problems = [f"{rel}: missing on the Hub" for rel in local if rel not in remote]
    problems += [f"{rel}: differs from the manifest" for rel in local if rel in remote and not comparer.same(local[rel], remote[rel])]
    problems += [f"{rel}: not part of the release" for rel in _stale(local, remote)]
    return sorted(problems)


def _stale(local: dict[str, _LocalFile], remote: dict[str, "RepoFile"]) -> list[str]:
    return sorted(rel for rel in remote if rel not in local and rel.split("/", 1)[0] in MANAGED_FOLDERS
                  and "/" in rel and rel not in HUB_OWNED_FILES)


def _batches(files: list[_LocalFile], max_bytes: int, max_files: int) -> list[list[_LocalFile]]:
    batches: list[list[_LocalFile]] = []
    current: list[_LocalFile] = []
    size = 0
    for item in files:
        if current and (size + item.bytes > max_bytes or len(current) >= max_files):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.bytes
    if current:
        batches.append(current)
    return batches


def _upload_order(relpath: str) -> tuple[int, str]:
    """Shards first, then plots and logs; the card and the manifest go last (with the deletions), so the
    branch only advertises the new release once its data is there."""
    if relpath in (paths.CARD, paths.MANIFEST):
        return (2, relpath)
    return (0 if relpath.startswith(paths.DATA_DIR + "/") else 1, relpath)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of a broken connection: OS errors and the Hub client's HTTP library's transport errors."""
    errors: list[type[BaseException]] = [OSError]
    for library in ("httpx2", "httpx"):
        try:
            errors.append(__import__(library).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


class HubUnavailable(HubPushError):
    """The Hub failed a request (HTTP 5xx, or the connection broke) in the middle of a push."""


def _hub_call(what: str, repo_id: str, call, *args, **kwargs):
    """Run one ``HfApi`` call, turning the Hub's refusals into errors that say what to do about them."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    login = "`hf auth login` or HF_TOKEN"
    try:
        return call(*args, **kwargs)
    except RepositoryNotFoundError as error:
        raise HubAuthError(f"{what}: dataset repo {repo_id} not found or not accessible with this token",
                           hint=f"check the repo id and log in with a token that may write to it ({login})") from error
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise HubAuthError(f"{what}: the Hub did not accept the token for {repo_id} (HTTP 401: missing, "
                               f"invalid or expired)", hint=f"log in again with a valid token ({login})") from error
        if status == 403:
            raise HubAuthError(f"{what}: this token may not write to {repo_id} (HTTP 403)",
                               hint=f"use a token with write access to {repo_id.split('/')[0]} ({login}), or push "
                                    f"to a repo in a namespace you own") from error
        if status is not None and status >= 500:
            raise HubUnavailable(f"{what}: the Hub failed the request for {repo_id} (HTTP {status})",
                                 hint="run the same push again: files already on the Hub are not uploaded again, "
                                      "and the version is only tagged once every file is there") from error
        raise
    except _transport_errors() as error:  # connection refused, reset or timed out
        raise HubUnavailable(f"{what}: could not reach the Hub for {repo_id}: {error}",
                             hint="check the network (and HF_ENDPOINT), then run the same push again to resume") \
            from error


def recipe_hub_repo(release: "Release") -> str | None:
    """``output.hub_repo`` of the recipe stored in the release (``recipe.yaml``), or None when unset.

    Only that field is read, so a release whose recipe an older or newer posedive wrote still pushes."""
    import yaml

    from .recipe import check_hub_repo

    path = release.store.file(paths.RECIPE)
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}",
                          hint="restore the recipe.yaml the build wrote, or rebuild the release") from None
    output = data.get("output") if isinstance(data, dict) else None
    hub_repo = output.get("hub_repo") if isinstance(output, dict) else None
    if hub_repo is None:
        return None
    try:
        return check_hub_repo(hub_repo)
    except ValueError as error:
        raise ConfigError(f"{path}: output.hub_repo: {error}", hint="pass --repo ORG/NAME to push elsewhere") from None


def push_release(
    release: "Path | str | Release",
    repo_id: str | None = None,
    *,
    private: bool = True,
    branch: str = DEFAULT_BRANCH,
    token: str | None = None,
    endpoint: str | None = None,
    max_commit_bytes: int = DEFAULT_MAX_COMMIT_BYTES,
    max_commit_files: int = DEFAULT_MAX_COMMIT_FILES,
) -> PushRecord:
    """Publish ``release`` to the dataset repo ``repo_id`` and tag it ``v<version>``.

    Without ``repo_id``, the repo is the ``output.hub_repo`` of the release's recipe (the one its card
    names); a ``repo_id`` other than that one is used, with a warning that the card names the other.
    ``private`` applies when the repo is created (an existing repo keeps its visibility). ``branch``
    is the branch the commits go to. ``max_commit_bytes`` / ``max_commit_files`` bound each commit,
    which is the unit a re-run does not repeat. Returns the record also written to ``hub.json``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    from .release import Release
    from .release.staging import staged_copy

    if repo_id is not None and (repo_id.count("/") != 1 or not all(repo_id.split("/"))):
        raise InputError(f"repo id {repo_id!r} must be ORG/NAME", hint="e.g. --repo my-lab/market1501-posedive")
    if max_commit_bytes < 1 or max_commit_files < 1:
        raise InputError("max_commit_bytes and max_commit_files must be at least 1",
                         hint="give --commit-mb and --commit-files of 1 or more")
    release = release if isinstance(release, Release) else Release.open(release)
    location = release.store.url("")
    recipe_repo = recipe_hub_repo(release)
    if repo_id is None:
        if recipe_repo is None:
            raise InputError(f"{location}: no dataset repo to push to (neither --repo nor the recipe's "
                             f"output.hub_repo names one)",
                             hint="pass --repo ORG/NAME, or build the release from a recipe that sets "
                             "output.hub_repo: ORG/NAME (its card then names it)")
        repo_id = recipe_repo
    elif recipe_repo is not None and repo_id != recipe_repo:
        logger.warning("pushing to %s, but the recipe's output.hub_repo is %s: the card's loading examples name "
                       "%s", repo_id, recipe_repo, recipe_repo)
    manifest = release.manifest
    tag = version_tag(manifest.version)
    # The Hub client uploads files by path: a remote release is copied (and checked) into posedive's cache first.
    local = _local_files(release, release.root if release.root is not None else staged_copy(release))
    comparer = _Comparer()
    api = HfApi(endpoint=endpoint, token=token)
    logger.info("pushing %s %s (%d files, %d bytes) to %s/datasets/%s", manifest.name, manifest.version, len(local),
                sum(f.bytes for f in local.values()), api.endpoint, repo_id)

    # 1. The repo: created private unless asked otherwise; an existing one is left as it is.
    url = _hub_call("create repo", repo_id, api.create_repo, repo_id, repo_type=REPO_TYPE, private=private,
                    exist_ok=True)
    info = _hub_call("read repo", repo_id, api.repo_info, repo_id, repo_type=REPO_TYPE)
    if private and not info.private:
        raise HubError(f"{repo_id} is a public repo: pushing this release there would publish it, and releases are "
                       f"private unless you say otherwise",
                       hint="pass --public (public=True) to publish it, or push to a private repo")
    if not private and info.private:
        logger.warning("%s already exists and is private; posedive does not change the visibility of an existing "
                       "repo (make it public in the repo settings if you want it public)", repo_id)
    logger.info("repo %s (%s)", url, "private" if info.private else "public")

    # 2. An existing version tag is never moved: accept it only if it already is this release.
    refs = _hub_call("list refs", repo_id, api.list_repo_refs, repo_id, repo_type=REPO_TYPE)
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    uploaded_files = uploaded_bytes = 0
    if tag in tags:
        problems = _differences(local, _remote_tree(api, repo_id, tags[tag]), comparer)
        if problems:
            raise TagConflictError(
                f"{repo_id} already has tag {tag} (commit {tags[tag]}) with different content: "
                f"{'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}. Version tags are never moved: "
                f"bump `version` in the recipe and rebuild, or push to another repo")
        logger.info("tag %s already holds exactly this release; nothing to upload", tag)
        head = tags[tag]
    else:
        # 3. Upload what the branch lacks, in bounded commits.
        branches = {ref.name: ref.target_commit for ref in refs.branches}
        if branch not in branches:
            _hub_call("create branch", repo_id, api.create_branch, repo_id, branch=branch, repo_type=REPO_TYPE)
            branches[branch] = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
        head = branches[branch]
        remote = _remote_tree(api, repo_id, head)
        missing = sorted((f for rel, f in local.items() if not comparer.same(f, remote.get(rel))),
                         key=lambda f: _upload_order(f.relpath))
        stale = _stale(local, remote)
        present = len(local) - len(missing)
        if present:
            logger.info("%d of %d files are already on %s@%s; uploading the other %d", present, len(local),
                        repo_id, branch, len(missing))
        early = [f for f in missing if _upload_order(f.relpath)[0] < 2]
        last = [f for f in missing if _upload_order(f.relpath)[0] == 2]
        batches = _batches(early, max_commit_bytes, max_commit_files)
        if last or stale or not batches:
            batches.append(last)
        total = len(batches)
        for number, batch in enumerate(batches, start=1):
            final = number == total
            deletions = stale if final else []
            if not batch and not deletions:
                continue
            for item in batch:
                comparer.git_sha1(item)  # refuses a local file whose sha256 is not the manifest's
            operations = [CommitOperationAdd(path_in_repo=f.relpath, path_or_fileobj=str(f.path)) for f in batch]
            operations += [CommitOperationDelete(path_in_repo=rel) for rel in deletions]
            size = sum(f.bytes for f in batch)
            logger.info("commit %d/%d: %d files (%d bytes)%s", number, total, len(batch), size,
                        f", deleting {len(deletions)} files of an earlier release" if deletions else "")
            commit = _hub_call(
                "commit", repo_id, api.create_commit, repo_id, repo_type=REPO_TYPE, revision=branch,
                operations=operations, parent_commit=head,
                commit_message=f"{manifest.name} {manifest.version}: upload {number}/{total}",
                commit_description=f"posedive release {manifest.name} {manifest.version}, recipe {manifest.recipe_hash}",
            )
            head = commit.oid
            uploaded_files += len(batch)
            uploaded_bytes += size
        problems = _differences(local, _remote_tree(api, repo_id, head), comparer)
        if problems:
            raise HubPushError(f"{repo_id}@{branch} (commit {head}) does not hold the release after upload: "
                               f"{'; '.join(problems[:5])}; run the push again to resume")
        _hub_call("tag", repo_id, api.create_tag, repo_id, tag=tag, revision=head, repo_type=REPO_TYPE,
                  tag_message=f"posedive release {manifest.name} {manifest.version}")
        logger.info("tagged %s at commit %s", tag, head)

    # 4. Check what a user of the tag will download.
    problems = _differences(local, _remote_tree(api, repo_id, tag), comparer)
    if problems:
        raise HubVerificationError(f"{repo_id}@{tag} does not match {release.store.url(paths.MANIFEST)}: "
                                   f"{'; '.join(problems[:5])}")
    push = PushRecord(
        endpoint=api.endpoint, repo_id=repo_id, branch=branch, tag=tag, commit_sha=head, private=bool(info.private),
        files=len(local), bytes=sum(f.bytes for f in local.values()), uploaded_files=uploaded_files,
        uploaded_bytes=uploaded_bytes,
        pushed_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    )
    record_path = _write_hub_record(release, push)
    logger.info("verified %d files at %s@%s (commit %s); recorded in %s", len(local), repo_id, tag, head, record_path)
    return push


# ------------------------------------------------------------------------------------ evaluation splits
def push_splits(
    folders: "dict[str, Path | str]",
    repo_id: str,
    *,
    private: bool = True,
    branch: str = DEFAULT_BRANCH,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Publish split folders (config name -> folder written by ``posedive.analysis.splits.write_split``) to a
    dataset repo as configs of their own, one folder each, with a card whose ``configs:`` lists every
    split folder in the repo. Returns the commit id (unchanged files are not committed again)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from .release.split_folder import SplitReport, read_split_report, splits_card

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InputError(f"repo id {repo_id!r} must be ORG/NAME", hint="name the dataset repo as ORG/NAME")
    api = HfApi(endpoint=endpoint, token=token)
    _hub_call("create repo", repo_id, api.create_repo, repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    remote = _remote_tree(api, repo_id, branch)
    reports: dict[str, SplitReport] = {}
    operations = []
    for name, folder in sorted(folders.items()):
        folder = Path(folder)
        reports[name] = read_split_report(folder)
        for file in paths.split_folder_files():
            operations.append(CommitOperationAdd(path_in_repo=f"{name}/{file}", path_or_fileobj=str(folder / file)))
    for path in remote:  # split folders published before keep their config
        name, _, file = path.partition("/")
        if file == paths.SPLIT_REPORT and name not in reports:
            data = api.hf_hub_download(repo_id, path, repo_type=REPO_TYPE, revision=branch)
            reports[name] = SplitReport.model_validate_json(Path(data).read_text())
    card = splits_card(reports, repo_id)
    operations.append(CommitOperationAdd(path_in_repo=paths.CARD, path_or_fileobj=card.encode()))
    commit = _hub_call("commit", repo_id, api.create_commit, repo_id, repo_type=REPO_TYPE, revision=branch,
                       operations=operations, commit_message=f"evaluation splits: {', '.join(sorted(folders))}")
    sha = commit.oid or api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
    logger.info("published splits %s to %s@%s (commit %s)", ", ".join(sorted(folders)), repo_id, branch, sha)
    return sha
