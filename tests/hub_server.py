"""A small, in-memory Hugging Face Hub-compatible HTTP server for offline tests.

It speaks the subset of the Hub protocol that the unmodified ``huggingface_hub`` and ``datasets``
clients use to create dataset repos, upload (preupload, LFS basic transfer, NDJSON commits), tag,
list trees and refs, and download (``resolve`` with ``X-Repo-Commit`` / ``ETag`` headers and byte
ranges for streaming; model repos at ``/ORG/NAME/resolve/REVISION/PATH``). Errors carry
``X-Error-Code`` like the Hub's, so the clients raise their usual typed errors
(``RepositoryNotFoundError``, ``RevisionNotFoundError``, ``EntryNotFoundError``).

Repositories are a chain of immutable commits (each holds its whole tree); branches move, tags do
not. LFS objects are checked against their sha256 on upload and commits that reference an unknown
object are refused, as on the Hub. Private repositories are only visible with a known token, and a
token may write only to repos of its own user's namespace (or of one ``HubState.writers`` grants it):
other writes answer 403, as the Hub does.

Tests reach into ``HubServer.state`` to assert what was stored, use ``HubServer.pause_lfs_upload``
to interrupt a client in the middle of a push, and ``HubServer.fail_commits`` to have the Hub answer
an HTTP 5xx to commits (an outage in the middle of a push). The server binds 127.0.0.1 on an ephemeral port.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

logger = logging.getLogger(__name__)

LFS_THRESHOLD_BYTES = 10 * 1024 * 1024
LFS_EXTENSIONS = (".tar", ".png", ".jpg", ".jpeg", ".parquet", ".arrow", ".safetensors", ".bin", ".npz")
GITATTRIBUTES = "".join(f"*{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in LFS_EXTENSIONS).encode()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of a tree: inline content (regular git blob) or a reference to an LFS object."""

    size: int
    content: bytes | None = None
    lfs_sha256: str | None = None

    @property
    def blob_id(self) -> str:
        if self.lfs_sha256 is not None:
            return git_blob_sha1(lfs_pointer(self.lfs_sha256, self.size))
        assert self.content is not None
        return git_blob_sha1(self.content)


@dataclasses.dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    date: str
    tree: dict[str, Entry]


@dataclasses.dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    branches: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    lfs: dict[str, bytes] = dataclasses.field(default_factory=dict)  # LFS objects by sha256

    def resolve(self, revision: str) -> Commit | None:
        """Branch, tag or full commit id -> commit (``refs/heads/x`` and ``refs/tags/x`` too)."""
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if revision.startswith(prefix):
                oid = table.get(revision[len(prefix):])
                return self.commits.get(oid) if oid else None
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(oid)


class HubState:
    """Everything the server stores, guarded by one lock; tests may read it directly."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.lock = threading.RLock()
        self.tokens = dict(tokens)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_puts: Counter[tuple[str, str]] = Counter()  # (repo id, sha256) -> accepted uploads
        self.writers: dict[str, set[str]] = {}  # namespace -> users other than its owner who may write there
        self.commit_failure: tuple[int, int] | None = None  # (commits still accepted, status answered after)

    def may_write(self, user: str, repo_id: str) -> bool:
        namespace = repo_id.split("/")[0]
        return namespace == user or user in self.writers.get(namespace, set())

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def commit(self, repo: Repo, branch: str, tree: dict[str, Entry], title: str) -> Commit:
        parent = repo.branches.get(branch)
        date = _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
        digest = hashlib.sha1()
        digest.update(f"{parent}\n{title}\n{date}\n{len(repo.commits)}\n".encode())
        for path in sorted(tree):
            digest.update(f"{path}\0{tree[path].blob_id}\n".encode())
        commit = Commit(oid=digest.hexdigest(), parent=parent, title=title, date=date, tree=tree)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    # ------------------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("hub %s", format % args)

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        self.parts = [unquote(part) for part in split.path.split("/")[1:]]
        with hub.state.lock:
            hub.state.requests.append((method, unquote(split.path)))
        self.body = self._read_body()
        try:
            self._route(method)
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send_json({"error": error.message}, status=error.status, headers=headers)
        except Exception as error:  # a bug in the server: answer 500 and keep serving
            logger.exception("hub server error")
            self._send_json({"error": f"server error: {error}"}, status=500)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send(self, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None,
              content_type: str = "application/octet-stream", method: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(json.dumps(data).encode(), status=status, headers=headers, content_type="application/json")

    def _json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"invalid JSON body: {error}") from None

    # ------------------------------------------------------------------------------ auth
    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return self.server.hub.state.tokens.get(header[7:].strip())
        return None

    def _require_user(self) -> str:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        repo = self.server.hub.state.repo(repo_type, repo_id)
        user = self._user()
        if repo is None or (repo.private and user is None):
            raise HubError(404 if user else 401, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        if write and user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        if write and not self.server.hub.state.may_write(user, repo_id):
            raise HubError(403, f"You don't have write access to {repo_type} {repo_id}")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ------------------------------------------------------------------------------ routing
    def _route(self, method: str) -> None:
        p = self.parts
        if p[:2] == ["api", "whoami-v2"]:
            user = self._require_user()
            return self._send_json({"type": "user", "name": user, "orgs": [],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if p[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if p[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo()
        if len(p) >= 4 and p[0] == "api" and p[1] in ("datasets", "models"):
            repo_type = p[1][:-1]
            repo_id = f"{p[2]}/{p[3]}"
            action, rest = (p[4] if len(p) > 4 else ""), p[5:]
            return self._repo_api(method, repo_type, repo_id, action, rest)
        if len(p) >= 6 and p[0] == "datasets" and p[3] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve("dataset", f"{p[1]}/{p[2]}", p[4], "/".join(p[5:]))
        if len(p) >= 6 and p[0] == "datasets" and p[2].endswith(".git") and p[3:6] == ["info", "lfs", "objects"]:
            return self._lfs_batch("dataset", f"{p[1]}/{p[2][:-4]}")
        if len(p) >= 5 and p[2] == "resolve" and p[0] not in ("api", "datasets") and method in ("GET", "HEAD"):
            return self._resolve("model", f"{p[0]}/{p[1]}", p[3], "/".join(p[4:]))
        if p[:1] == ["lfs-upload"] and method == "PUT" and len(p) == 5:
            return self._lfs_put(p[1], f"{p[2]}/{p[3]}", p[4])
        if p[:1] == ["lfs-verify"] and method == "POST" and len(p) == 5:
            return self._lfs_verify(p[1], f"{p[2]}/{p[3]}", p[4])
        raise HubError(404, f"no route for {method} {self.path}")

    def _repo_api(self, method: str, repo_type: str, repo_id: str, action: str, rest: list[str]) -> None:
        if action == "" and method == "GET":
            return self._repo_info(repo_type, repo_id, "main")
        if action == "revision" and method == "GET" and rest:
            return self._repo_info(repo_type, repo_id, "/".join(rest))
        if action == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if action == "tree" and method == "GET" and rest:
            return self._tree(repo_type, repo_id, rest[0], "/".join(rest[1:]))
        if action == "paths-info" and method == "POST" and rest:
            return self._paths_info(repo_type, repo_id, "/".join(rest))
        if action == "preupload" and method == "POST" and rest:
            return self._preupload(repo_type, repo_id, "/".join(rest))
        if action == "commit" and method == "POST" and rest:
            return self._commit_ndjson(repo_type, repo_id, "/".join(rest))
        if action == "tag" and method == "POST" and rest:
            return self._create_tag(repo_type, repo_id, "/".join(rest))
        if action == "branch" and method == "POST" and rest:
            return self._create_branch(repo_type, repo_id, "/".join(rest))
        if action == "commits" and method == "GET" and rest:
            return self._commits(repo_type, repo_id, "/".join(rest))
        raise HubError(404, f"no route for {method} {self.path}")

    # ------------------------------------------------------------------------------ endpoints
    def _validate_yaml(self) -> None:
        content = self._json_body().get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                return self._send_json({"errors": [{"message": f"invalid YAML: {error}"}]}, status=400)
            if data is not None and not isinstance(data, dict):
                return self._send_json({"errors": [{"message": "metadata must be a mapping"}]}, status=400)
        self._send_json({"errors": [], "warnings": []})

    def _create_repo(self) -> None:
        user = self._require_user()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        namespace = body.get("organization") or user
        repo_id = f"{namespace}/{body['name']}"
        state = self.server.hub.state
        if not state.may_write(user, repo_id) and state.repo(repo_type, repo_id) is None:
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace}")
        prefix = "datasets/" if repo_type == "dataset" else ""
        url = f"{self.server.hub.url}/{prefix}{repo_id}"
        with state.lock:
            if state.repo(repo_type, repo_id) is not None:
                message = f"You already created this {repo_type} repo"
                return self._send_json({"error": message, "url": url}, status=409, headers={"X-Error-Message": message})
            private = body.get("visibility", "public") == "private" or bool(body.get("private"))
            repo = Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            state.repos[(repo_type, repo_id)] = repo
            state.commit(repo, "main", {".gitattributes": Entry(len(GITATTRIBUTES), GITATTRIBUTES)}, "initial commit")
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, revision)
            card = None
            readme = commit.tree.get("README.md")
            if readme is not None and readme.content is not None:
                match = re.match(r"^---\s*\n(.*?)\n---", readme.content.decode(), re.DOTALL)
                card = yaml.safe_load(match.group(1)) if match else None
            info = {
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "cardData": card,
                "siblings": [{"rfilename": path} for path in sorted(commit.tree)],
            }
        self._send_json(info)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            data = {
                "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in repo.branches.items()],
                "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in repo.tags.items()],
                "converts": [],
                "pullRequests": [],
            }
        self._send_json(data)

    @staticmethod
    def _file_info(path: str, entry: Entry, commit: Commit | None) -> dict[str, Any]:
        info: dict[str, Any] = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
        if entry.lfs_sha256 is not None:
            info["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size,
                           "pointerSize": len(lfs_pointer(entry.lfs_sha256, entry.size))}
        if commit is not None:
            info["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return info

    @staticmethod
    def _folder_info(path: str, tree: dict[str, Entry]) -> dict[str, Any]:
        digest = hashlib.sha1(path.encode())
        for name in sorted(tree):
            if name.startswith(path + "/"):
                digest.update(f"{name}\0{tree[name].blob_id}".encode())
        return {"type": "directory", "oid": digest.hexdigest(), "path": path}

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[0].lower() in ("1", "true")
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, revision)
            tree = commit.tree
        path = path.strip("/")
        prefix = f"{path}/" if path else ""
        if path and path in tree:
            raise HubError(400, f"{path} is a file, not a folder")
        if path and not any(name.startswith(prefix) for name in tree):
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        files: list[dict[str, Any]] = []
        folders: dict[str, dict[str, Any]] = {}
        for name in sorted(tree):
            if not name.startswith(prefix):
                continue
            relative = name[len(prefix):].split("/")
            for depth in range(1, len(relative)):
                if depth > 1 and not recursive:
                    break
                folder = prefix + "/".join(relative[:depth])
                folders.setdefault(folder, self._folder_info(folder, tree))
            if recursive or len(relative) == 1:
                files.append(self._file_info(name, tree[name], commit if expand else None))
        self._send_json(list(folders.values()) + files)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        form = parse_qs(self.body.decode()) if self.body else {}
        if not form and self.headers.get("Content-Type", "").startswith("application/json"):
            form = {"paths": self._json_body().get("paths", [])}
        expand = form.get("expand", ["False"])[0].lower() in ("1", "true")
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, revision)
        answer = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.tree:
                answer.append(self._file_info(path, commit.tree[path], commit if expand else None))
            elif any(name.startswith(path + "/") for name in commit.tree):
                answer.append(self._folder_info(path, commit.tree))
        self._send_json(answer)

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id, write=True)
            commit = self._commit(repo, revision)
        files = []
        for item in self._json_body().get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            path, size = item["path"], int(item.get("size", 0))
            lfs = size >= LFS_THRESHOLD_BYTES or b"\0" in sample or path.lower().endswith(LFS_EXTENSIONS)
            entry = commit.tree.get(path)
            oid = None
            if entry is not None:
                oid = entry.lfs_sha256 if entry.lfs_sha256 is not None else git_blob_sha1(entry.content or b"")
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send_json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        with self.server.hub.state.lock:
            self._repo(repo_type, repo_id, write=True)
        body = self._json_body()
        if body.get("operation") != "upload":
            raise HubError(400, "this server only accepts LFS uploads")
        objects = []
        base = self.server.hub.url
        for item in body.get("objects", []):
            oid, size = item["oid"], int(item["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            with self.server.hub.state.lock:
                present = oid in self.server.hub.state.repo(repo_type, repo_id).lfs
            if not present:
                answer["actions"] = {
                    # a presigned URL, as the Hub's storage hands out: the signature is the authorisation
                    "upload": {"href": f"{base}/lfs-upload/{repo_type}/{repo_id}/{oid}"
                                       f"?signature={self.server.hub.sign(repo_id, oid)}"},
                    "verify": {"href": f"{base}/lfs-verify/{repo_type}/{repo_id}/{oid}"},
                }
            objects.append(answer)
        self._send(json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, repo_type: str, repo_id: str, oid: str) -> None:
        hub = self.server.hub
        if self.query.get("signature", [""])[0] != hub.sign(repo_id, oid):
            raise HubError(403, "invalid upload signature")
        with hub.state.lock:
            repo = hub.state.repo(repo_type, repo_id)
        if repo is None:
            raise HubError(404, f"no repo {repo_id}")
        hub._maybe_pause(oid)
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        with hub.state.lock:
            repo.lfs[oid] = self.body
            hub.state.lfs_puts[(repo_id, oid)] += 1
        self._send(b"", status=200)

    def _lfs_verify(self, repo_type: str, repo_id: str, oid: str) -> None:
        body = self._json_body()
        with self.server.hub.state.lock:
            data = self._repo(repo_type, repo_id, write=True).lfs.get(oid)
        if data is None or len(data) != int(body.get("size", -1)):
            raise HubError(404, f"LFS object {oid} was not uploaded")
        self._send_json({"ok": True})

    def _commit_ndjson(self, repo_type: str, repo_id: str, revision: str) -> None:
        state = self.server.hub.state
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with a header line")
        header = lines[0]["value"]
        with state.lock:
            repo = self._repo(repo_type, repo_id, write=True)
            if state.commit_failure is not None:
                accepted, status = state.commit_failure
                if accepted <= 0:
                    raise HubError(status, "Service temporarily unavailable")
                state.commit_failure = (accepted - 1, status)
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision} is not a branch", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {revision}")
            tree = dict(head.tree)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"].strip("/")
                if key == "file":
                    content = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
                    tree[path] = Entry(len(content), content=content)
                elif key == "lfsFile":
                    oid = value["oid"]
                    if oid not in repo.lfs:
                        raise HubError(422, f"LFS object {oid} for {path} was never uploaded")
                    tree[path] = Entry(len(repo.lfs[oid]), lfs_sha256=oid)
                elif key == "deletedFile":
                    if tree.pop(path, None) is None:
                        raise HubError(404, f"cannot delete {path}: it does not exist", "EntryNotFound")
                elif key == "deletedFolder":
                    for name in [n for n in tree if n.startswith(path + "/")]:
                        del tree[name]
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            commit = state.commit(repo, revision, tree, header.get("summary", ""))
        prefix = "datasets/" if repo_type == "dataset" else ""
        self._send_json({"commitUrl": f"{self.server.hub.url}/{prefix}{repo_id}/commit/{commit.oid}",
                         "commitOid": commit.oid, "pullRequestUrl": None})

    def _create_tag(self, repo_type: str, repo_id: str, revision: str) -> None:
        body = self._json_body()
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id, write=True)
            commit = self._commit(repo, revision)
            tag = body["tag"]
            if tag in repo.tags or tag in repo.branches:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = commit.oid
        self._send_json({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": commit.oid})

    def _create_branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        body = self._json_body()
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id, write=True)
            if branch in repo.branches or branch in repo.tags:
                raise HubError(409, f"Reference {branch} already exists")
            commit = self._commit(repo, body.get("startingPoint") or "main")
            repo.branches[branch] = commit.oid
        self._send_json({})

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit: Commit | None = self._commit(repo, revision)
            history = []
            while commit is not None:
                history.append({"id": commit.oid, "title": commit.title, "message": "", "date": commit.date,
                                "authors": [{"user": "posedive-test"}]})
                commit = repo.commits.get(commit.parent) if commit.parent else None
        self._send_json(history)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.server.hub.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, revision)
            entry = commit.tree.get(path)
            if entry is None:
                raise_headers = {"X-Repo-Commit": commit.oid}
                self._send_json({"error": f"Entry not found: {path}"}, status=404,
                                headers={**raise_headers, "X-Error-Code": "EntryNotFound",
                                         "X-Error-Message": "Entry not found"})
                return
            data = entry.content if entry.content is not None else repo.lfs[entry.lfs_sha256 or ""]
        etag = f'"{entry.lfs_sha256 or entry.blob_id}"'
        headers = {"X-Repo-Commit": commit.oid, "ETag": etag, "Accept-Ranges": "bytes"}
        if entry.lfs_sha256 is not None:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(entry.size)})
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match is None:
                raise HubError(416, f"unsupported range {range_header}")
            first, last = match.groups()
            if first == "":
                start, end = max(0, len(data) - int(last)), len(data) - 1
            else:
                start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            if start >= len(data) and len(data) > 0:
                raise HubError(416, f"range {range_header} outside a file of {len(data)} bytes")
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], HTTPStatus.PARTIAL_CONTENT
        self._send(data, status=status, headers=headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: "HubServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that disappears mid-request (a killed push) is expected here, not an error."""
        logger.debug("connection from %s ended abruptly", client_address, exc_info=True)


class HubServer:
    """Run the Hub-compatible server in a background thread (``with HubServer(tokens) as hub:``)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.state = HubState(tokens or {})
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._secret = secrets.token_hex(16)
        self._pause_at: int | None = None
        self._puts_seen = 0
        self.paused = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sign(self, repo_id: str, oid: str) -> str:
        return hashlib.sha256(f"{self._secret}:{repo_id}:{oid}".encode()).hexdigest()[:32]

    def fail_commits(self, after: int, status: int = 503) -> None:
        """Accept ``after`` more commits, then answer ``status`` to every commit until ``restore``."""
        with self.state.lock:
            self.state.commit_failure = (after, status)

    def restore(self) -> None:
        with self.state.lock:
            self.state.commit_failure = None

    def pause_lfs_upload(self, nth: int) -> None:
        """Hold the ``nth`` LFS PUT from now on (1-based) until ``release`` is set; ``paused`` is set
        when it arrives, so a test can kill the client in the middle of a push. A held upload is
        then refused, as a dropped connection would lose it."""
        with self.state.lock:
            self._pause_at = self._puts_seen + nth
            self.paused.clear()
            self.release.clear()

    def _maybe_pause(self, oid: str) -> None:
        with self.state.lock:
            self._puts_seen += 1
            hold = self._pause_at is not None and self._puts_seen == self._pause_at
        if hold:
            self.paused.set()
            self.release.wait(timeout=60)
            with self.state.lock:
                self._pause_at = None
            raise HubError(503, "upload interrupted")

    def tree(self, repo_id: str, revision: str, repo_type: str = "dataset") -> dict[str, Entry]:
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id)
            commit = repo.resolve(revision) if repo else None
            if commit is None:
                raise KeyError(f"{repo_type} {repo_id}@{revision}")
            return dict(commit.tree)

    def read(self, repo_id: str, revision: str, path: str, repo_type: str = "dataset") -> bytes:
        entry = self.tree(repo_id, revision, repo_type)[path]
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id)
            return entry.content if entry.content is not None else repo.lfs[entry.lfs_sha256 or ""]


def client_env(endpoint: str, home: "os.PathLike[str] | str", token: str | None = None,
               extra_paths: tuple[str, ...] = ()) -> dict[str, str]:
    """Environment for a subprocess running the unmodified clients against ``endpoint``: the Hub
    variables are set before anything imports ``huggingface_hub`` or ``datasets``, caches live under
    ``home``, and no token or setting of the calling environment leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1", HF_HOME=os.path.join(home, "hf-home"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1",
               PYTHONPATH=os.pathsep.join([*extra_paths, env.get("PYTHONPATH", "")]))
    if token:
        env["HF_TOKEN"] = token
    return env
