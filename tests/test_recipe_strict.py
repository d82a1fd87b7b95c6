"""Recipes mean what they say: a key written twice is refused (naming it and both lines), and a number
written as a boolean or a string is an error, never silently 1 or 0."""

from __future__ import annotations

import pytest
import yaml

from posedive.recipe import RecipeError, load_recipe, parse_recipe
from posedive.yamlfile import parse_yaml

MINIMAL = {"name": "demo", "version": "1.0.0", "source": {"format": "folder", "root": "src"},
           "generator": {"weights": "models/gen"}}


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(MINIMAL, sort_keys=False) + "output:\n  dir: a\n  samples_per_shard: 8\n"
                    "  dir: b\n")
    lines = path.read_text().splitlines()
    first, second = [number for number, line in enumerate(lines, start=1) if line.strip().startswith("dir:")]
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and "duplicate key 'dir'" in message
    assert f"line {first}" in message and f"line {second}" in message


def test_a_top_level_key_given_twice_is_refused():
    with pytest.raises(RecipeError, match="duplicate key 'seed': first on line 1, again on line 3"):
        parse_yaml("seed: 0\nname: x\nseed: 1\n", "recipe.yaml", RecipeError)
    assert parse_yaml("a: {b: 1}\nc: {b: 2}\n", "ok.yaml") == {"a": {"b": 1}, "c": {"b": 2}}  # per mapping


@pytest.mark.parametrize(("section", "field", "value", "expected"), [
    ("output", "samples_per_shard", True, "must be an integer, got True"),
    ("generator", "batch_size", "8", "must be an integer, got '8'"),
    ("generator", "steps", 2.5, "must be an integer, got 2.5"),
    ("filter", "tau_ref", False, "must be a number, got False"),
    ("viewpoint", "elevation_deg", [0, True], "must be a number, got True"),
    (None, "images_per_pid", True, "must be an integer, got True"),
])
def test_numbers_must_be_written_as_numbers(section, field, value, expected):
    data = {key: dict(item) if isinstance(item, dict) else item for key, item in MINIMAL.items()}
    if section is None:
        data[field] = value
    else:
        data.setdefault(section, {})[field] = value
    with pytest.raises(RecipeError) as error:
        parse_recipe(data, source="r.yaml")
    location = field if section is None else f"{section}.{field}"
    assert f"{location}: {expected}" in str(error.value)


def test_integers_still_serve_as_floats():
    recipe = parse_recipe({**MINIMAL, "filter": {"tau_ref": 1, "eps_gen": 0}, "viewpoint": {"fov_deg": 40}})
    assert recipe.filter.tau_ref == 1.0 and recipe.filter.eps_gen == 0.0 and recipe.viewpoint.fov_deg == 40.0
