"""``posedive stats SOURCE_OR_RECIPE [MORE...]``: how biased are a dataset's body orientations and poses?

Runs the pose estimator over a source dataset (given by a recipe, or a folder and its format) and/or
an augmented release (a folder of WebDataset shards), on all CPU cores with a content-hash cache, and
writes ``stats.json``, per-image ``*.poses.jsonl`` and PNG plots in the style of the paper's Figure 2.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Optional

import typer

from ._choices import choice_option
from ._common import console, release_location, user_errors
from .splits import OrientationChoice


class SplitChoice(StrEnum):
    """Which split of a source dataset to analyse."""

    train = "train"
    query = "query"
    gallery = "gallery"
    all = "all"


def stats(
    inputs: list[str] = typer.Argument(
        ..., help="recipe YAML, source folder, release folder (*.tar shards) or a release's URL (s3://..., any "
                  "fsspec URL); several are compared"
    ),
    format: Optional[str] = typer.Option(
        None, "--format", help="layout of a source folder: market1501, msmt17, cuhk03, folder"
    ),
    split: SplitChoice = choice_option(SplitChoice, "train", "--split",
                                       help="source split to analyse: train, query, gallery or all"),
    out: Path = typer.Option(Path("stats"), "--out", "-o", help="folder for stats.json, *.poses.jsonl and the plots"),
    workers: int = typer.Option(0, "--workers", "-j", help="estimator processes (0 = one per CPU core)"),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", help="pose cache folder (default ~/.cache/posedive/poses)"
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="analyse every image again and store nothing"),
    orientation: OrientationChoice = choice_option(
        OrientationChoice, "fit", "--orientation", help="body azimuth from a body-model fit (fit; landmark geometry "
        "where it fails) or from the landmark geometry alone (landmarks)"
    ),
) -> None:
    """Body-orientation and pose statistics of source datasets and augmented releases."""
    from ..analysis.inputs import resolve_input
    from ..analysis.stats import compute_stats, write_report
    from ..pose.cache import default_cache_dir

    with user_errors():
        resolved = [resolve_input(release_location(path), format, split.value) for path in inputs]  # type: ignore[arg-type]
        processes = workers or (os.cpu_count() or 1)
        cache = None if no_cache else (cache_dir or default_cache_dir())
        result = compute_stats(resolved, workers=processes, cache_dir=cache,  # type: ignore[arg-type]
                               orientation=orientation.value)
        path = write_report(out, result, resolved)
    report = result.report
    for item in report.inputs:
        overall = item.overall
        sectors = ", ".join(f"{name} {fraction:.0%}" for name, fraction in overall.sectors.items())
        uniformity = "n/a" if overall.azimuth_uniformity is None else f"{overall.azimuth_uniformity:.2f}"
        sources = ", ".join(f"{name} {count}" for name, count in overall.orientation_sources.items()) or "none"
        console.print(f"{item.name}: person found in {overall.persons_found}/{overall.images} images; "
                      f"orientation {sectors} (from {sources}); uniformity {uniformity}", highlight=False)
    for item in resolved:
        _print_quality(item)
    typer.echo(f"wrote {path} and {', '.join(report.plots)}")


def _print_quality(item) -> None:
    """The quality report of a finished release (pass rates, eq. 12, identity similarity), as its manifest says."""
    from .. import paths
    from ..release import Release
    from ..release.quality import describe, quality_of
    from ..storage import open_store

    if item.kind != "release" or not open_store(item.location).is_file(paths.MANIFEST):
        return
    for line in describe(quality_of(Release.open(item.location))):
        # markup=False: the quantiles' "[p5 ..., p95 ...]" is text, not a console style
        console.print(f"{item.name}: {line}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
