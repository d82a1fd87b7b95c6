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
) -> None:
    """Draw the sampled viewpoint (azimuth x elevation) and pose distributions (poses coloured by
    tag), as in the paper's Figure 2, and print the coverage entropy (1.0 = uniform over the
    viewpoint range)."""
    from ..conditions.coverage import coverage_report
    from ..conditions.posebank import load_recipe_bank, select_poses
    from ..conditions.requests import recipe_requests
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
        (out_dir / paths.COVERAGE_REPORT).write_text(summary.model_dump_json(indent=2) + "\n")
    typer.echo(summary.model_dump_json(indent=2))
    typer.echo(f"viewpoint coverage entropy of the {summary.samples} planned conditions: "
               f"{summary.viewpoint_entropy:.3f} (1.0 = uniform; the first attempt of every work unit, before "
               f"filtering: a release's card gives it for its accepted samples)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
