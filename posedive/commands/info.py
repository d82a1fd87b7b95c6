"""``posedive info RELEASE``: what a finished release holds, from its manifest."""

from __future__ import annotations

import typer
from rich.table import Table

from ._common import RELEASE_HELP, console, user_errors


def info(
    release_path: str = typer.Argument(..., help=RELEASE_HELP),
    verify: bool = typer.Option(False, "--verify", help="also check every file's sha256 against the manifest"),
) -> None:
    """Print the manifest summary of a release."""
    from ..release import Release

    with user_errors():
        release = Release.open(release_path)
    manifest = release.manifest
    table = Table(title=f"{manifest.name} {manifest.version}", show_header=False)
    table.add_row("samples", f"{manifest.samples} in {len(manifest.shards)} shard(s)")
    table.add_row("identities", f"{manifest.identities} ({len(manifest.short_pids)} short)")
    table.add_row("source", f"{manifest.source.dataset} ({manifest.source.format})")
    table.add_row("acceptance", ", ".join(f"{k} {v * 100:.1f}%" for k, v in manifest.totals.rates().items()))
    table.add_row("generator", f"{manifest.generator.id} ({manifest.generator.sha256[:12]})")
    table.add_row("estimator", manifest.estimator)
    table.add_row("recipe hash", manifest.recipe_hash)
    table.add_row("posedive", manifest.posedive_version)
    console.print(table)
    if verify:
        problems = release.verify()
        for problem in problems:
            console.print(f"[bold red]{problem}[/]", highlight=False)
        if problems:
            raise typer.Exit(code=1)
        console.print("every file matches the manifest")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
