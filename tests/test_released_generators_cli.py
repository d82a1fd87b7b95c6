"""Released generators from the command line: ``posedive convert-generator`` on the upstream-made fixtures,
``posedive validate`` against the converted folder's family, ``posedive build`` end to end on CPU with a
converted tiny Pose2ID and Moore-AnimateAnyone, and the ready ``recipes/market-pose2id.yaml``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from posedive.cli import app
from posedive.generation.families import generator_family
from posedive.release import Release

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / "tests" / "fixtures" / "upstream"
MARKET = REPO / "tests" / "fixtures" / "vtest_market"
# family -> (fixture folder, release subfolder, extra convert-generator arguments)
FIXTURES = {
    "pose2id": ("pose2id", "pretrained", ["--identity-architecture", '{"embed_dim": 32, "depth": 3, "num_heads": 2}']),
    "animate-anyone": ("animate_anyone", "pretrained_weights", ["--image-encoder", "{base}"]),
}


def convert_cli(family: str, out: Path, *extra: str):
    folder, release, options = FIXTURES[family]
    base = str(UPSTREAM / folder / "base")
    arguments = ["convert-generator", "--family", family, str(UPSTREAM / folder / release), "--out", str(out),
                 "--base", base, "--vae", base, *(base if option == "{base}" else option for option in options), *extra]
    return CliRunner().invoke(app, arguments)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    folders = {}
    for family in FIXTURES:
        result = convert_cli(family, root / family)
        assert result.exit_code == 0, result.output
        folders[family] = root / family
    return folders


def small_market(root: Path, pids: tuple[str, ...] = ("0001", "0002")) -> Path:
    """A Market-1501 folder with the real crops of a few training identities (two images each), and one
    query and one gallery image of a test identity (the reader wants every split)."""
    if root.is_dir():
        return root
    picks = {"bounding_box_train": [crop for pid in pids for crop in sorted(MARKET.glob(f"bounding_box_train/{pid}_*"))[:2]],
             "query": sorted(MARKET.glob("query/0004_*"))[:1], "bounding_box_test": sorted(MARKET.glob("bounding_box_test/0004_*"))[:1]}
    for split, crops in picks.items():
        (root / split).mkdir(parents=True)
        for crop in crops:
            shutil.copy(crop, root / split / crop.name)
    return root


def write_recipe(tmp_path: Path, family: str, weights: Path, generator: dict | None = None) -> Path:
    chosen = generator_family(family)
    small_market(tmp_path / "market")
    recipe = {
        "name": f"{family}-e2e", "version": "1.0.0",
        "source": {"format": "market1501", "root": "market"},
        "body": {"shape": "fixed"},
        "images_per_pid": 1, "max_attempts_per_image": 1,
        # random tiny weights make noise images: the filter scores them and lets them through
        "filter": {"tau_ref": 0.0, "tau_tar": 0.0, "eps_gen": 1.0, "tau_gen": 0.0},
        "generator": {"family": family, "weights": str(weights), "width": chosen.width, "height": chosen.height,
                      "steps": 2, "guidance_scale": chosen.guidance_scale, "batch_size": 2, "device": "cpu",
                      "dtype": "float32"} | (generator or {}),
        "output": {"dir": "out", "samples_per_shard": 4},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_convert_generator_prints_the_reports_and_the_recipe_section(converted, tmp_path):
    result = convert_cli("animate-anyone", tmp_path / "aa")
    assert result.exit_code == 0, result.output
    assert "denoising_unet.pth: 686 keys converted, 0 known unused" in result.output
    assert "family: animate-anyone" in result.output and f"weights: {tmp_path / 'aa'}" in result.output
    saved = json.loads((tmp_path / "aa" / "posedive_generator.json").read_text())
    assert saved["conversion"]["family"] == "animate-anyone"


def test_convert_generator_errors_name_the_flag_or_family(tmp_path):
    result = convert_cli("animate-anyone", tmp_path / "aa", "--vae", "stabilityai/sd-vae-ft-mse@")
    assert result.exit_code == 2 and "--vae" in result.output and "SOURCE[@REVISION][:SUBFOLDER]" in result.output
    result = CliRunner().invoke(app, ["convert-generator", "--family", "stylegan", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "stylegan" in result.output and "pose2id" in result.output
    result = convert_cli("pose2id", tmp_path / "p", "--identity-architecture", "[2]")
    assert result.exit_code == 2 and "--identity-architecture" in result.output
    (tmp_path / "taken").mkdir()
    result = convert_cli("animate-anyone", tmp_path / "taken")
    assert result.exit_code == 2 and "already exists" in result.output and "--overwrite" in result.output


def test_validate_refuses_a_recipe_of_another_family_naming_both(converted, tmp_path):
    recipe = write_recipe(tmp_path, "animate-anyone", converted["animate-anyone"],
                          {"family": "pose2id", "width": 512, "height": 784})
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "generator.family" in result.output and "pose2id" in result.output and "animate-anyone" in result.output
    recipe = write_recipe(tmp_path, "animate-anyone", converted["animate-anyone"])
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "animate-anyone family" in result.output


@pytest.mark.parametrize("family", sorted(FIXTURES))
def test_build_runs_end_to_end_with_a_converted_release(family, converted, tmp_path):
    recipe = write_recipe(tmp_path, family, converted[family])
    result = CliRunner().invoke(app, ["build", str(recipe), "--no-progress"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "out" / f"{family}-e2e" / "1.0.0"
    release = Release.open(root)
    assert release.verify() == []
    manifest = release.manifest
    assert manifest.samples == manifest.totals.accepted > 0
    chosen = generator_family(family)
    assert manifest.generator.description.startswith(chosen.title)
    assert f"{family} family" in manifest.generator.conditions
    # The quality report measures identity with the family's own encoder.
    encoder = {"pose2id": "transreid-ifr", "animate-anyone": "clip-image-embedding"}[family]
    assert manifest.quality.identity_similarity.encoder == encoder
    for sample in release.iter_samples():
        assert sample["image"].size == (chosen.width, chosen.height)
        assert sample["provenance"]["generator"]["sha256"] == manifest.generator.sha256
        identity = sample["provenance"]["identity"]
        assert identity["encoder"] == encoder and -1.0 <= identity["cosine"] <= 1.0


def test_market_pose2id_recipe_names_the_family_and_validates_against_a_converted_release(converted, tmp_path):
    from posedive.recipe import load_recipe

    path = REPO / "recipes" / "market-pose2id.yaml"
    recipe = load_recipe(path)
    chosen = generator_family("pose2id")
    generator = recipe.generator
    assert generator.family == "pose2id"
    assert (generator.width, generator.height, generator.steps, generator.guidance_scale) == (
        chosen.width, chosen.height, chosen.steps, chosen.guidance_scale)
    # the same recipe, pointed at a converted (tiny) Pose2ID folder and real crops, passes validate
    data = yaml.safe_load(path.read_text())
    data["source"]["root"] = str(small_market(tmp_path / "market"))
    data["generator"]["weights"] = str(converted["pose2id"])
    local = tmp_path / "market-pose2id.yaml"
    local.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["validate", str(local)])
    assert result.exit_code == 0, result.output


def test_base_components_are_source_revision_and_subfolder(tmp_path):
    from posedive.commands.convert_generator import parse_weights_source
    from posedive.errors import InputError

    hub = parse_weights_source("stabilityai/sd-vae-ft-mse@31f26fd", "--vae", None)
    assert (hub.path, hub.revision, hub.subfolder) == ("stabilityai/sd-vae-ft-mse", "31f26fd", None)
    pinned = parse_weights_source("stable-diffusion-v1-5/stable-diffusion-v1-5@451f4fe:unet", "--base", "unet")
    assert (pinned.revision, pinned.subfolder) == ("451f4fe", "unet")
    assert parse_weights_source("org/sd15", "--base", "unet").subfolder == "unet"  # a Hub id: the flag's default
    base = UPSTREAM / "animate_anyone" / "base"  # a local pipeline layout: the part's subfolder
    assert parse_weights_source(str(base), "--vae", None).model_dump() == {"path": str(base), "revision": None,
                                                                            "subfolder": "vae"}
    assert parse_weights_source(str(base / "vae"), "--vae", None).subfolder is None  # the component itself
    assert parse_weights_source(f"{base}:image_encoder", "--vae", None).subfolder == "image_encoder"
    with pytest.raises(InputError, match="--base 'org/sd15@' is not SOURCE"):
        parse_weights_source("org/sd15@", "--base", "unet")
