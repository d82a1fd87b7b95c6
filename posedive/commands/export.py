"""``posedive export RELEASE --format market1501``: a release plus its source in a Re-ID codebase's layout."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from ._choices import choice_option
from ._common import RELEASE_HELP, console, escape, release_location, user_errors


class ExportFormat(StrEnum):
    market1501 = "market1501"


def export(
    release: str = typer.Argument(..., help=RELEASE_HELP),
    fmt: ExportFormat = choice_option(ExportFormat, ..., "--format", help="layout to write"),
    source_root: Path = typer.Option(..., "--source-root", help="the source dataset the release was built from"),
    out: Path = typer.Option(..., "--out", help="new folder to write"),
    camid: str = typer.Option("reference", help="camera id of generated images: 'reference' (each takes its reference "
                                                "image's camera; every Re-ID reader loads the folder), 'new' (the "
                                                "first id the source lacks) or a number 1..9 (readers accept 1..6)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Write the source's train/query/gallery plus every generated image, named so Re-ID readers parse them."""
    from ..reid.export import export_market1501

    exporters = {ExportFormat.market1501: export_market1501}
    with user_errors():
        choice = int(camid) if camid.isdigit() else camid
        report = exporters[fmt](release_location(release), source_root, out, camid=choice, show_progress=progress)
    console.print(escape(report.summary()), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
