"""``posedive validate RECIPE``: check a recipe and everything it points at, without building.

Besides the paths, the generator's condition contract is read from its config files (a local folder,
or the Hub at the pinned revision when it can be reached; the weights are never loaded) and checked
against the recipe: the resolution it was trained at and the maps it takes.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._common import console, escape, user_errors


def validate(recipe_path: Path = typer.Argument(..., help="recipe YAML file")) -> None:
    """Validate a recipe, print it resolved with its hash, check that its paths exist and that its
    generator was trained for what the recipe asks (resolution, condition maps)."""
    from ..generation.checkpoint import check_generator
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
    problems = recipe.check_paths()
    missing = any(problem.startswith("generator.weights") for problem in problems)
    check = None if missing else check_generator(recipe.generator, recipe.base_dir)
    problems += check.problems if check is not None else []
    typer.echo(json.dumps(recipe.model_dump(mode="json"), indent=2))
    typer.echo(f"recipe hash: {recipe.hash}")
    typer.echo(f"release folder: {recipe.release_dir}")
    if check is not None and check.summary is not None:
        typer.echo(f"generator conditions: {check.summary}")
    if problems:
        for problem in problems:
            console.print(f"[bold red]error:[/] {escape(f'{recipe_path}: {problem}')}", highlight=False)
        raise typer.Exit(code=2)
    typer.echo("recipe is valid")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
