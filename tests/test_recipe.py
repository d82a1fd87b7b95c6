import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from posedive.cli import app
from posedive.recipe import RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "demo", "version": "1.0.0", "source": {"format": "folder", "root": "src"},
           "generator": {"weights": "models/gen"}}


def test_paper_defaults():
    recipe = parse_recipe(MINIMAL)
    assert recipe.viewpoint.elevation_deg == [0.0, 30.0]
    assert recipe.viewpoint.azimuth_deg == [0.0, 360.0]
    assert recipe.images_per_pid == 15
    assert recipe.filter.tau_ref == 0.6
    assert (recipe.generator.width, recipe.generator.height) == (192, 384)
    assert recipe.body.model == "anny"


@pytest.mark.parametrize("name", ["demo.yaml", "market.yaml", "msmt17.yaml", "cuhk03.yaml"])
def test_shipped_recipes_load(name):
    recipe = load_recipe(REPO / "recipes" / name)
    assert recipe.name and recipe.hash


def test_unknown_key_is_named_with_file_and_path(tmp_path):
    data = dict(MINIMAL, viewpoint={"elevation_deg": [0, 30], "azimuht_deg": [0, 360]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and "viewpoint.azimuht_deg" in message and "unknown field" in message


@pytest.mark.parametrize(
    "change, field",
    [
        ({"version": "1.0"}, "version"),
        ({"name": "Has Spaces"}, "name"),
        ({"viewpoint": {"elevation_deg": [40, 10]}}, "viewpoint.elevation_deg"),
        ({"filter": {"tau_ref": 1.5}}, "filter.tau_ref"),
        ({"filter": {"reference_keypoints": ["left_knee", "tail"]}}, "filter.reference_keypoints"),
        ({"source": {"format": "duke", "root": "x"}}, "source"),
        ({"body": {"model": "smpl"}}, "body"),
    ],
)
def test_bad_values_name_the_field(change, field):
    with pytest.raises(RecipeError) as error:
        parse_recipe({**MINIMAL, **change}, source="r.yaml")
    assert f"  {field}" in str(error.value) and "r.yaml" in str(error.value)


@pytest.mark.parametrize("repo", ["my-lab/market1501-posedive", "Org_1/name.v2", "a/b"])
def test_hub_repo_accepts_org_slash_name(repo):
    assert parse_recipe({**MINIMAL, "output": {"hub_repo": repo}}).output.hub_repo == repo
    assert parse_recipe(MINIMAL).output.hub_repo is None


@pytest.mark.parametrize("repo", ["market1501-posedive", "org/", "/name", "a/b/c", "my lab/name", "org/na:me", ""])
def test_hub_repo_must_be_org_slash_name(tmp_path, repo):
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "output": {"hub_repo": repo}}))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and "  output.hub_repo: " in message and "ORG/NAME" in message


def test_hub_repo_is_part_of_the_hash_and_unset_keeps_it():
    base = parse_recipe(MINIMAL)
    published = parse_recipe({**MINIMAL, "output": {"hub_repo": "my-lab/demo"}})
    elsewhere = parse_recipe({**MINIMAL, "output": {"hub_repo": "other-lab/demo"}})
    assert len({base.hash, published.hash, elsewhere.hash}) == 3
    assert "hub_repo" not in base.canonical_json()  # recipes that do not set it keep their hash


def test_generator_compile_counts_only_when_set():
    base = parse_recipe(MINIMAL)
    generator = {**MINIMAL["generator"], "compile": True}
    compiled = parse_recipe({**MINIMAL, "generator": generator})
    assert compiled.generator.compile and not base.generator.compile
    assert compiled.hash != base.hash
    assert '"compile"' not in base.canonical_json()
    assert parse_recipe({**MINIMAL, "generator": {**generator, "compile": False}}).hash == base.hash


def test_hash_is_stable_and_ignores_output_dir():
    base = parse_recipe(MINIMAL)
    reordered = parse_recipe(dict(reversed(list(MINIMAL.items()))))
    moved = parse_recipe({**MINIMAL, "output": {"dir": "/elsewhere"}})
    changed = parse_recipe({**MINIMAL, "seed": 1})
    assert base.hash == reordered.hash == moved.hash
    assert base.hash != changed.hash


def test_validate_cli_rejects_a_wrong_field(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "images_per_id": 3}))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "images_per_id" in result.output


def test_validate_cli_checks_paths(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "source.root" in result.output
    (tmp_path / "src").mkdir()
    (tmp_path / "models" / "gen").mkdir(parents=True)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert parse_recipe(MINIMAL).hash in result.output


# Hashes of recipes written before `poses.kind`, computed by the posedive that wrote them: a finished
# release's recipe.yaml must keep matching the hash in its manifest. Those recipes rendered one body for
# every identity, which a recipe now says with `body.shape: fixed`.
OLD_FORM_HASHES = {
    "deepmimic": ({"source": "deepmimic", "sampling": "uniform"},
                  "196f999e64a6d14bf47d13ceaeeadc05a1ab2bbf05e12d83c84be9b2c9792199"),
    "bank file": ({"source": "banks/mine.npz"}, "1a13c952da38ec547e24800d9fc399fdbcdedff4deae72b0f388818b9b101326"),
    "dotted path": ({"source": "./banks/mine.npz", "sampling": "uniform"},
                    "68f2c37116338a045a0d4f758cf6294e3200e8adb8ff2395669a6951114c215a"),
}


@pytest.mark.parametrize("case", sorted(OLD_FORM_HASHES))
def test_old_poses_source_recipes_keep_their_meaning_and_hash(case):
    poses, expected = OLD_FORM_HASHES[case]
    recipe = parse_recipe({**MINIMAL, "poses": poses, "body": {"shape": "fixed"}})
    assert recipe.hash == expected
    if poses["source"] == "deepmimic":
        assert (recipe.poses.kind, recipe.poses.name) == ("builtin", "deepmimic")
    else:
        assert (recipe.poses.kind, recipe.poses.path) == ("file", poses["source"])
    # The same bank written the new way is the same recipe.
    new_form = {"kind": "builtin", "name": "deepmimic"} if poses["source"] == "deepmimic" else \
        {"kind": "file", "path": poses["source"]}
    assert parse_recipe({**MINIMAL, "poses": {**recipe.poses.model_dump(mode="json"), **new_form},
                         "body": {"shape": "fixed"}}).hash == expected


@pytest.mark.parametrize(
    "poses, message",
    [
        ({"kind": "smplx"}, "'builtin', 'file', 'amass', 'fits', 'bvh', 'images'"),
        ({"source": "deepmimic", "include": ["walk"]}, "kind: builtin"),
        ({"kind": "amass"}, "poses.amass.paths: required field is missing"),
        ({"kind": "images", "paths": ["x"], "every": 3}, "poses.images.every: unknown field"),
    ],
)
def test_bad_poses_sections_say_what_is_wrong(poses, message):
    with pytest.raises(RecipeError) as error:
        parse_recipe({**MINIMAL, "poses": poses}, source="r.yaml")
    assert message in str(error.value) and "r.yaml" in str(error.value)


def test_check_paths_names_missing_pose_inputs(tmp_path):
    bank = parse_recipe({**MINIMAL, "poses": {"kind": "file", "path": "bank.npz"}}, base_dir=tmp_path)
    assert any(p.startswith("poses: pose bank") and "bank.npz" in p for p in bank.check_paths())
    imported = parse_recipe({**MINIMAL, "poses": {"kind": "bvh", "paths": ["mocap", "more.bvh"]}}, base_dir=tmp_path)
    (tmp_path / "mocap").mkdir()
    problems = imported.check_paths()
    assert not any("poses.paths[0]" in p for p in problems)
    assert any(p.startswith("poses.paths[1]:") and "more.bvh" in p for p in problems)


def test_hash_is_computed_once_per_recipe_and_afresh_for_a_changed_copy(monkeypatch):
    from pydantic import ValidationError

    from posedive.recipe import Recipe

    computed = []
    canonical_json = Recipe.canonical_json
    monkeypatch.setattr(Recipe, "canonical_json", lambda self: computed.append(1) or canonical_json(self))
    recipe = parse_recipe(MINIMAL)
    first = recipe.hash
    assert all(recipe.hash == first for _ in range(1000)) and len(computed) == 1
    reseeded = recipe.model_copy(update={"seed": 1})
    assert reseeded.hash == parse_recipe({**MINIMAL, "seed": 1}).hash != first
    with pytest.raises(ValidationError):  # what a hashed recipe says cannot change under its hash
        recipe.output.samples_per_shard = 1
    assert recipe.hash == first


def test_body_shape_defaults_to_the_fit_and_fixed_hashes_as_the_one_body_did():
    default = parse_recipe(MINIMAL)
    assert default.body.shape == "reference" and default.body.shape_fit.min_confidence == 0.2
    fixed = parse_recipe({**MINIMAL, "body": {"shape": "fixed"}})
    # What the hash of the same recipe was before `body.shape` existed: its body section without it.
    before = json.loads(fixed.canonical_json())
    assert "shape" not in before["body"] and "shape_fit" not in before["body"]
    assert set(before["body"]) == set(fixed.body.model_dump()) - {"shape", "shape_fit"}
    hashes = {parse_recipe({**MINIMAL, "body": body}).hash for body in
              ({"shape": "fixed"}, {"shape": "sampled"}, {}, {"shape": "reference", "shape_fit": {"min_confidence": 0.5}},
               {"shape": "fixed", "shape_fit": {"min_confidence": 0.5}})}
    assert len(hashes) == 5 and default.hash != fixed.hash


def test_a_gender_is_only_for_the_one_fixed_body():
    with pytest.raises(RecipeError, match="body.*gender 'female'.*shape: fixed"):
        parse_recipe({**MINIMAL, "body": {"gender": "female"}})
    assert parse_recipe({**MINIMAL, "body": {"gender": "female", "shape": "fixed"}}).body.gender == "female"
    with pytest.raises(RecipeError, match="body.shape"):
        parse_recipe({**MINIMAL, "body": {"shape": "average"}})
