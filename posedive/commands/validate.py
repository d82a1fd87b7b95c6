"""``posedive validate RECIPE``: check a recipe and everything it points at, without building."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._common import console, escape, user_errors


def validate(recipe_path: Path = typer.Argument(..., help="recipe YAML file")) -> None:
    """Validate a recipe, print it resolved with its hash, and check that its paths exist."""
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
    problems = recipe.check_paths()
    typer.echo(json.dumps(recipe.model_dump(mode="json"), indent=2))
    typer.echo(f"recipe hash: {recipe.hash}")
    typer.echo(f"release folder: {recipe.release_dir}")
    if problems:
        for problem in problems:
            console.print(f"[bold red]error:[/] {escape(f'{recipe_path}: {problem}')}", highlight=False)
        raise typer.Exit(code=2)
    typer.echo("recipe is valid")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
