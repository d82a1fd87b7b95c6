"""``posedive gallery RECIPE``: render a recipe's target condition gallery into the cache, once."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer

from ._common import console, user_errors


def gallery(
    recipe_path: Path = typer.Argument(..., help="recipe YAML file"),
    count: Optional[int] = typer.Option(
        None, "--count", "-n", help="sample this many conditions instead of the build plan's (no source needed)"
    ),
    first_attempt_only: bool = typer.Option(False, help="only the first attempt of each plan unit"),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help="render processes (default: all cores)"),
    contact_sheet: Optional[Path] = typer.Option(None, "--contact-sheet", help="also write a PNG of some conditions"),
    sheet_size: int = typer.Option(16, help="conditions on the contact sheet"),
) -> None:
    """Render every condition the recipe's build will ask for (pose x viewpoint), in the maps its
    generator's condition contract reads, into the content-addressed cache ($POSEDIVE_CACHE_DIR, default
    ~/.cache/posedive); the contact sheet shows those maps as the generator reads them."""
    from ..builder.stages import recipe_contract
    from ..conditions.gallery import contact_sheet as write_sheet
    from ..conditions.gallery import load_gallery, own_views, render_gallery
    from ..conditions.renderer import BodyConditionRenderer, renderer_spec
    from ..conditions.requests import recipe_requests
    from ..recipe import load_recipe

    with user_errors():
        recipe = load_recipe(recipe_path)
        contract = recipe_contract(recipe)
        # the build's renderer spec, forms included, so the build finds these sets in the cache
        spec = renderer_spec(recipe, forms=_forms(contract))
        requests = recipe_requests(recipe, BodyConditionRenderer(spec).pose_ids(), count, first_attempt_only=first_attempt_only)
        ids = render_gallery(spec, requests, workers=workers)
    console.print(f"gallery: {len(set(ids))} condition sets cached under {spec.cache_root / 'conditions'}", highlight=False)
    if contact_sheet is not None:
        with user_errors():
            views = own_views if contract is None else functools.partial(_guider_views, contract=contract)
            write_sheet(load_gallery(spec, requests[: max(1, sheet_size)]), contact_sheet, views=views)
        shown = "posedive's own maps" if contract is None else contract.describe()
        console.print(f"contact sheet: {contact_sheet} ({shown})", highlight=False)


def _forms(contract) -> tuple[str, ...]:
    if contract is None:
        return ()
    from ..generation.contract import forms_to_render

    return forms_to_render(contract)


def _guider_views(conditions, contract):
    from ..generation.condition_forms import guider_views

    return guider_views(conditions, contract)


def register(app: typer.Typer) -> None:
    app.command("gallery")(gallery)
