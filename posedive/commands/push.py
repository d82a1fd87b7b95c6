"""``posedive push RELEASE [--repo ORG/NAME]``: publish a finished release to the Hugging Face Hub."""

from __future__ import annotations

import logging
from typing import Optional

import typer

from ._common import RELEASE_HELP, console, release_location, user_errors


def quiet_http_logs() -> None:
    """The HTTP client logs every request at INFO; keep those for ``--verbose`` only."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)


def push(
    release: str = typer.Argument(..., help=RELEASE_HELP + " holding manifest.json (a remote release is staged in "
                                  "posedive's cache folder, remote-releases/, to be uploaded)"),
    repo: Optional[str] = typer.Option(None, "--repo", help="dataset repo ORG/NAME (created if missing); default: "
                                       "the recipe's output.hub_repo"),
    public: bool = typer.Option(False, "--public", help="publish publicly: create the repo public, or push to an "
                                "existing public repo (default: private, and a public repo is refused; the images "
                                "derive from real people in research-only datasets)"),
    revision: str = typer.Option("main", "--revision", help="branch to commit to"),
    commit_mb: int = typer.Option(2048, "--commit-mb", min=1, help="upload at most this many MB per commit "
                                  "(a re-run after an interruption skips finished commits)"),
    commit_files: int = typer.Option(100, "--commit-files", min=1, help="upload at most this many files per commit"),
) -> None:
    """Upload a release (shards, manifest, card, plots, rejected logs), tag it v<version>, verify it,
    and record the commit in hub.json beside the manifest. The token comes from `hf auth login` or
    HF_TOKEN."""
    from ..hub import push_release

    quiet_http_logs()
    with user_errors():
        record = push_release(release_location(release), repo, private=not public, branch=revision,
                              max_commit_bytes=commit_mb * 1024**2, max_commit_files=commit_files)
    console.print(f"pushed {record.repo_id}@{record.tag}: {record.files} files, {record.uploaded_files} uploaded "
                  f"now ({'private' if record.private else 'public'})", highlight=False)
    typer.echo(record.commit_sha)


def register(app: typer.Typer) -> None:
    app.command("push")(push)
