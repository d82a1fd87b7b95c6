"""``posedive report RECIPE``: how well the recipe's conditions cover viewpoints and poses."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import paths
from ._common import user_errors


def report(
    recipe_path: Path = typer.Argument(..., help="recipe YAML file"),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="folder for viewpoints.png, poses.png, coverage.json "
        "(default: coverage/<version> beside the recipe's release folders, <output.dir>/<name>/)"
    ),
    count: Optional[int] = typer.Option(None, "--count", "-n", help="sample this many conditions instead of the plan's"),
    bodies: bool = typer.Option(True, "--bodies/--no-bodies", help="also draw bodies.png: each planned identity's "
                                "body shape and a few reference-vs-target silhouettes (fits the shapes, renders "
                                "a few bodies; needs the source)"),
) -> None:
    """Draw the sampled viewpoint (azimuth x elevation) and pose distributions (poses coloured by
    tag), as in the paper's Figure 2, and the body-shape panel a release shows, and print the
    coverage entropy (1.0 = uniform over the viewpoint range)."""
    from ..conditions.coverage import coverage_report
    from ..conditions.posebank import load_recipe_bank, select_poses
    from ..conditions.requests import recipe_requests
    from ..files import atomic_write_text
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
        bank = select_poses(load_recipe_bank(recipe.poses, recipe.resolve), recipe.poses)
        requests = recipe_requests(recipe, [str(i) for i in bank.ids], count, first_attempt_only=True)
        out_dir = out if out is not None else paths.coverage_dir(recipe.release_dir.parent, recipe.version)
        summary = coverage_report(
            requests,
            bank,
            elevation_range=recipe.viewpoint.elevation_deg,
            azimuth_range=recipe.viewpoint.azimuth_deg,
            out_dir=out_dir,
        )
        if bodies:
            body_plot = out_dir / paths.COVERAGE_BODIES_PLOT
            panel = _body_panel(recipe, [str(i) for i in bank.ids], body_plot)
            if panel is not None:
                summary = summary.model_copy(update={"body_plot": str(body_plot), "bodies": panel})
        atomic_write_text(out_dir / paths.COVERAGE_REPORT, summary.model_dump_json(indent=2) + "\n")
    typer.echo(summary.model_dump_json(indent=2))
    typer.echo(f"viewpoint coverage entropy of the {summary.samples} planned conditions: "
               f"{summary.viewpoint_entropy:.3f} (1.0 = uniform; the first attempt of every work unit, before "
               f"filtering: a release's card gives it for its accepted samples)")


def _body_panel(recipe, pose_ids: list[str], path: Path):
    """The recipe's planned body-shape panel, drawn to ``path``; None (with a note) without a readable source."""
    import functools

    from ..builder.stages import close_stage, load_conditions, load_shapes
    from ..conditions.body_panel import segment_references
    from ..conditions.body_preview import planned_body_panel
    from ..sources import read_source

    try:
        read_source(recipe.source, recipe.base_dir)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(f"no body-shape panel: the source cannot be read ({error})", err=True)
        return None
    renderer, shapes = load_conditions(recipe), load_shapes(recipe)
    try:
        # Reference silhouettes when shapes are fitted: the fit's own segmentation (already loaded for it).
        segmenter = (functools.partial(segment_references, estimator=shapes.estimator)
                     if recipe.body.shape == "reference" and shapes is not None else None)
        return planned_body_panel(recipe, pose_ids, renderer, shapes, path, segmenter=segmenter)
    finally:
        close_stage(renderer)
        close_stage(shapes)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
