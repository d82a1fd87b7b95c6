"""``posedive gallery`` renders and shows the maps the recipe's generator reads: its condition contract's."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image
from test_conditions_cli import _invoke, project  # noqa: F401 - the fixture of a tiny recipe and pose bank

from posedive.builder.stages import contract_forms, recipe_contract
from posedive.conditions.gallery import SHEET_HEADER, SHEET_PAD, load_gallery
from posedive.conditions.render import CHAMP_PART_COLOURS
from posedive.conditions.renderer import BodyConditionRenderer, renderer_spec
from posedive.conditions.requests import recipe_requests
from posedive.generation.condition_forms import guider_views
from posedive.generation.families.champ import CHAMP
from posedive.generation.families.pose2id import POSE2ID
from posedive.recipe import load_recipe

WIDTH, HEIGHT = 48, 96


def _family_recipe(project, family: str):  # noqa: F811
    path = project / "recipe.yaml"
    data = yaml.safe_load(path.read_text())
    # a generator not converted yet: its family's contract is what the build will read
    data["generator"] = {"weights": "./not-converted-yet", "family": family, "width": WIDTH, "height": HEIGHT}
    path.write_text(yaml.safe_dump(data))
    _invoke("posebank", "build", "--format", "fits", str(project / "dancer"), "--out", str(project / "bank.npz"))
    return load_recipe(path)


def test_a_champ_gallery_caches_what_the_build_reads_and_shows_its_four_maps(project):  # noqa: F811
    recipe = _family_recipe(project, "champ")
    assert recipe_contract(recipe) == CHAMP.contract
    sheet = project / "sheet.png"
    result = _invoke("gallery", str(project / "recipe.yaml"), "-j", "1", "--contact-sheet", str(sheet))

    # the build's renderer (its spec names Champ's depth and semantic map) finds every set in the cache
    build_spec = renderer_spec(recipe, forms=contract_forms(recipe))
    renderer = BodyConditionRenderer(build_spec)
    requests = recipe_requests(recipe, renderer.pose_ids(), None)
    assert requests and all(renderer.cache.has(renderer.condition_id(r)) for r in requests)
    assert CHAMP.contract.describe() in " ".join(result.output.split())  # the sheet says whose maps it shows

    conditions = load_gallery(build_spec, requests[:2])
    views = guider_views(conditions[0], CHAMP.contract)
    assert [label for label, _ in views] == ["depth/champ", "normal/champ", "semantic_map/champ-parts",
                                             "skeleton/dwpose-rgb"]
    semantic = views[2][1]
    colours = {tuple(c) for c in semantic.reshape(-1, 3)}
    assert len(colours) > 3 and colours <= set(CHAMP_PART_COLOURS) | {(0, 0, 0)}
    np.testing.assert_array_equal(views[0][1], conditions[0].forms["depth_champ"])

    # the sheet's first set: Champ's four maps side by side, as the guidance encoders read them
    assert_sheet_shows(sheet, views)


def assert_sheet_shows(sheet, views):
    """The first condition set's tiles on ``sheet`` are ``views`` (scale 0.5, 2 px apart)."""
    x0, y0 = SHEET_PAD, SHEET_HEADER + SHEET_PAD
    tw, th = WIDTH // 2, HEIGHT // 2
    with Image.open(sheet) as image:
        drawn = np.asarray(image.convert("RGB"))
    for k, (_, view) in enumerate(views):
        expected = np.asarray(Image.fromarray(view).resize((tw, th), Image.BILINEAR))
        left = x0 + k * (tw + 2)
        np.testing.assert_array_equal(drawn[y0:y0 + th, left:left + tw], expected)


def test_a_pose2id_sheet_shows_the_skeleton_in_the_bgr_order_its_guider_reads(project):  # noqa: F811
    recipe = _family_recipe(project, "pose2id")
    sheet = project / "sheet.png"
    _invoke("gallery", str(project / "recipe.yaml"), "-j", "1", "--contact-sheet", str(sheet), "--sheet-size", "2")
    spec = renderer_spec(recipe, forms=contract_forms(recipe))
    condition = load_gallery(spec, recipe_requests(recipe, BodyConditionRenderer(spec).pose_ids(), None)[:1])[0]
    ((label, skeleton),) = guider_views(condition, POSE2ID.contract)
    assert label == "skeleton/openpose18-bgr" and condition.skeleton.any()
    np.testing.assert_array_equal(skeleton, condition.skeleton[:, :, ::-1])
    assert_sheet_shows(sheet, [(label, skeleton)])  # the skeleton alone, red and blue swapped, not posedive's three


@pytest.mark.parametrize("family", ["posedive"])
def test_posedive_sheets_still_show_depth_normal_and_skeleton(project, family):  # noqa: F811
    recipe = _family_recipe(project, family)
    spec = renderer_spec(recipe, forms=contract_forms(recipe))
    condition = load_gallery(spec, recipe_requests(recipe, BodyConditionRenderer(spec).pose_ids(), None)[:1])[0]
    labels = [label for label, _ in guider_views(condition, recipe_contract(recipe))]
    assert labels == ["depth/near-bright", "normal/camera-opengl", "skeleton/openpose18-rgb"]
