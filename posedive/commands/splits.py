"""``posedive splits SOURCE --by viewpoint|pose``: MSMT17-S-style evaluation splits of a source dataset."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Optional

import typer

from ._choices import choice_option
from ._common import console, user_errors


# The values of posedive.release.split_folder's SplitBy, RegionKind and OrientationKind (a test keeps
# them equal); repeated here because importing the release layer would slow every command's start.
class SplitByChoice(StrEnum):
    viewpoint = "viewpoint"
    pose = "pose"


class RegionChoice(StrEnum):
    camera_orientation = "camera+orientation"
    camera = "camera"
    orientation = "orientation"


class OrientationChoice(StrEnum):
    fit = "fit"
    landmarks = "landmarks"


def splits(
    source: Path = typer.Argument(..., help="source dataset folder (Market-1501, MSMT17, CUHK03 or a folder layout)"),
    by: SplitByChoice = choice_option(SplitByChoice, ..., "--by",
                                      help="viewpoint (camera + body orientation regions) or pose (pose clusters)"),
    format: Optional[str] = typer.Option(None, "--format", help="layout: market1501, msmt17, cuhk03, folder "
                                         "(Market-1501 is recognised without it)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the tables (default splits/<dataset>-<by>)"),
    regions: RegionChoice = choice_option(RegionChoice, "camera+orientation", "--regions",
                                          help="viewpoint regions: camera+orientation, camera (no pose estimation) "
                                          "or orientation"),
    orientation: OrientationChoice = choice_option(OrientationChoice, "fit", "--orientation",
                                                   help="body orientation of viewpoint regions: from a body-model "
                                                   "fit (fit; landmark geometry where it fails) or the landmarks alone"),
    clusters: int = typer.Option(8, "--clusters", min=2, help="pose clusters for --by pose"),
    test_fraction: float = typer.Option(0.5, "--test-fraction", help="share of kept images in test (query + gallery)"),
    seed: int = typer.Option(0, "--seed", help="seed of the group search, k-means and query choice"),
    workers: int = typer.Option(0, "--workers", "-j", help="pose estimator processes (0 = one per CPU core)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="pose cache folder (default ~/.cache/posedive/poses)"),
    push: Optional[str] = typer.Option(None, "--push", help="publish the tables as config <by> of dataset repo ORG/NAME"),
    public: bool = typer.Option(False, "--public", help="create the --push repo public (default private)"),
) -> None:
    """Split a source dataset so that train and test share no viewpoint region (or pose cluster) and no
    identity; write train/query/gallery CSV tables and split.json with sizes and measured overlaps."""
    from ..analysis.splits import describe, make_split, open_source, write_split

    with user_errors():
        index = open_source(source, format)
        result = make_split(index, by.value, regions=regions.value, clusters=clusters,  # type: ignore[arg-type]
                            test_fraction=test_fraction, seed=seed, workers=workers or (os.cpu_count() or 1),
                            cache_dir=cache_dir, orientation=orientation.value)  # type: ignore[arg-type]
        folder = write_split(result, out or Path("splits") / f"{index.dataset}-{by.value}".lower())
    console.print(describe(result.report), highlight=False, soft_wrap=True)
    overlap = result.report.overlap
    if overlap.identities or overlap.groups or overlap.images:
        console.print("[bold red]error:[/] train and test overlap", markup=True)
        raise typer.Exit(code=1)
    typer.echo(f"wrote {folder}")
    if push:
        from ..hub import push_splits
        from .push import quiet_http_logs

        quiet_http_logs()
        with user_errors():
            sha = push_splits({by.value: folder}, push, private=not public)
        typer.echo(sha)


def register(app: typer.Typer) -> None:
    app.command("splits")(splits)
