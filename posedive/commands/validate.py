"""``posedive validate RECIPE``: check a recipe and everything it points at, without building.

Besides the paths, the generator's condition contract is read from its config files (a local folder,
or the Hub at the pinned revision when it can be reached; the weights are never loaded) and checked
against the recipe: the resolution it was trained at and the maps it takes.

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
    check_images: bool = typer.Option(False, "--check-images", help="also decode every image of the source and "
                                      "list those that cannot be read (a build checks each one as it loads it)"),
) -> None:
    """Validate a recipe, check that its paths exist and that its generator was trained for what the
    recipe asks (resolution, condition maps); print it resolved, with its hash, once it is valid."""
    from ..generation.checkpoint import check_generator
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
    problems = recipe.check_paths()
    missing = any(problem.startswith("generator.weights") for problem in problems)
    check = None if missing else check_generator(recipe.generator, recipe.base_dir)
    problems += check.problems if check is not None else []
    if check_images and not any(problem.startswith("source") for problem in problems):
        _list_unreadable_images(recipe)
    for problem in problems:
        console.print(f"[bold red]error:[/] {escape(f'{recipe_path}: {problem}')}", highlight=False, soft_wrap=True)
    if show or not problems:
        typer.echo(json.dumps(recipe.model_dump(mode="json"), indent=2))
        typer.echo(f"recipe hash: {recipe.hash}")
        typer.echo(f"release folder: {recipe.release_location}")
        if check is not None and check.summary is not None:
            typer.echo(f"generator conditions: {check.summary}")
    if problems:
        if not show:
            console.print("(`posedive validate --show` also prints the resolved recipe)", highlight=False)
        raise typer.Exit(code=2)
    typer.echo("recipe is valid")


def _list_unreadable_images(recipe) -> None:
    """Decode every source image; name each one that cannot be read and go on (a build skips them)."""
    from ..sources import read_source

    with user_errors():
        index = read_source(recipe.source, recipe.base_dir, check_images=True)
    for relpath in index.unreadable:
        console.print(f"[bold yellow]warning:[/] {escape(f'source image {index.root / relpath} cannot be decoded')}",
                      highlight=False, soft_wrap=True)
    typer.echo(f"source images checked: {len(index.records) + len(index.unreadable)}, "
               f"{len(index.unreadable)} unreadable")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
