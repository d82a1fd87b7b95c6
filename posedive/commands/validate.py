"""``posedive validate RECIPE``: check a recipe and everything it points at, without building.

Problems come first and alone (the resolved recipe would bury them); a valid recipe is printed
resolved, with its hash and release folder. ``--show`` prints the resolved recipe in either case.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._common import console, escape, user_errors


def validate(
    recipe_path: Path = typer.Argument(..., help="recipe YAML file"),
    show: bool = typer.Option(False, "--show", help="print the resolved recipe even when it has problems"),
) -> None:
    """Validate a recipe and check that its paths exist; print it resolved, with its hash, once it is valid."""
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
    problems = recipe.check_paths()
    for problem in problems:
        console.print(f"[bold red]error:[/] {escape(f'{recipe_path}: {problem}')}", highlight=False, soft_wrap=True)
    if show or not problems:
        typer.echo(json.dumps(recipe.model_dump(mode="json"), indent=2))
        typer.echo(f"recipe hash: {recipe.hash}")
        typer.echo(f"release folder: {recipe.release_dir}")
    if problems:
        if not show:
            console.print("(`posedive validate --show` also prints the resolved recipe)", highlight=False)
        raise typer.Exit(code=2)
    typer.echo("recipe is valid")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
