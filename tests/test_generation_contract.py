"""The condition contract: saved in the pose guider's config, read without the weights, checked against
recipes by ``posedive validate``, ``posedive build`` and ``load_generator``."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from generation_tiny import HEIGHT, POSE_GUIDER, WIDTH, make_pipeline, one_torch_thread, random_maps, request
from hub_server import Entry, HubServer, Repo, client_env
from layouts import make_market
from typer.testing import CliRunner

from posedive.cli import app
from posedive.errors import CheckpointError, InputError
from posedive.generation import (
    POSEDIVE_CONTRACT,
    ConditionContract,
    ConditionMap,
    GeneratorMetadata,
    PoseDivePipeline,
    PoseGuider,
    check_generator,
    conditions_to_tensor,
    load_generator,
    read_contract,
)
from posedive.generation.checkpoint import GUIDER_CONFIG, METADATA_FILE, fetch_contract
from posedive.recipe import GeneratorConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
BGR_SKELETON_THEN_DEPTH = ConditionContract(
    maps=(ConditionMap(name="skeleton", encoding="openpose18-bgr", channels=3),
          ConditionMap(name="depth", encoding="near-bright", channels=1)),
    guiders="per_map",
    resolution=(WIDTH, HEIGHT),
)

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def _guider(contract: ConditionContract, seed: int = 0) -> PoseGuider:
    torch.manual_seed(seed)
    guider = PoseGuider(conditioning_channels=contract.channels, block_out_channels=tuple(POSE_GUIDER["block_out_channels"]),
                        conditioning_embedding_channels=32, conditions=contract.to_config())
    for parameter in guider.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    return guider.eval()


def _save(folder: Path, contract: ConditionContract | None = None, metadata: tuple[int, int] | None = None) -> Path:
    pipe = make_pipeline(seed=0)
    if contract is not None:
        pipe = PoseDivePipeline(**{**pipe.components, "pose_guider": _guider(contract)})
    pipe.save_pretrained(folder)
    if metadata is not None:
        GeneratorMetadata(description="tiny test model", resolution=metadata).save(folder)
    return folder


def _junk_weights(folder: Path) -> None:
    """Weights nobody can load: a check that passes or fails on them read the config files only."""
    for path in folder.rglob("*.safetensors"):
        path.write_bytes(b"not a safetensors file")


# ------------------------------------------------------------------------------------ the contract
def test_the_guider_config_carries_the_contract(tmp_path):
    folder = _save(tmp_path / "gen", BGR_SKELETON_THEN_DEPTH)
    saved = json.loads((folder / GUIDER_CONFIG).read_text())
    assert saved["conditions"] == BGR_SKELETON_THEN_DEPTH.to_config()
    assert read_contract(folder) == BGR_SKELETON_THEN_DEPTH
    assert PoseDivePipeline.from_pretrained(folder).pose_guider.contract == BGR_SKELETON_THEN_DEPTH
    generator = load_generator(GeneratorConfig(weights=str(folder), steps=2, width=WIDTH, height=HEIGHT), tmp_path)
    assert generator.contract == BGR_SKELETON_THEN_DEPTH
    assert generator.info.conditions == BGR_SKELETON_THEN_DEPTH.describe()  # what provenance records per sample
    assert [image.size for image in generator.generate([request(1), request(2)])] == [(WIDTH, HEIGHT)] * 2
    assert "skeleton/openpose18-bgr" in BGR_SKELETON_THEN_DEPTH.describe() and "per map" in BGR_SKELETON_THEN_DEPTH.describe()


def test_checkpoints_without_a_contract_imply_posedive_maps(tmp_path):
    """Folders saved before contracts: depth + normal + skeleton on one guider, at the resolution of
    posedive_generator.json when there is one."""
    with_metadata = _save(tmp_path / "old", metadata=(WIDTH, HEIGHT))
    config = json.loads((with_metadata / GUIDER_CONFIG).read_text())
    config.pop("conditions")  # written before the field existed
    (with_metadata / GUIDER_CONFIG).write_text(json.dumps(config))
    assert read_contract(with_metadata) == POSEDIVE_CONTRACT.with_resolution(WIDTH, HEIGHT)
    assert PoseDivePipeline.from_pretrained(with_metadata).pose_guider.contract == POSEDIVE_CONTRACT
    assert read_contract(_save(tmp_path / "bare")).resolution is None
    assert POSEDIVE_CONTRACT.map_names == ("depth", "normal", "skeleton") and POSEDIVE_CONTRACT.channels == 7


def test_the_demo_generator_is_posedive_maps_at_192x384():
    contract = read_contract(REPO_ROOT / "models" / "demo-generator")
    assert contract == POSEDIVE_CONTRACT.with_resolution(192, 384)


def test_conditions_follow_the_contract_order_and_encoding():
    maps = random_maps(3)
    tensor = conditions_to_tensor([maps], HEIGHT, WIDTH, BGR_SKELETON_THEN_DEPTH)
    assert tensor.shape == (1, 4, HEIGHT, WIDTH)
    np.testing.assert_allclose(tensor[0, 0:3].permute(1, 2, 0).numpy(), maps["skeleton"][:, :, ::-1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(tensor[0, 3].numpy(), maps["depth"] / 255.0, atol=1e-6)
    with pytest.raises(InputError, match="no 'skeleton' map"):
        conditions_to_tensor([{"depth": maps["depth"]}], HEIGHT, WIDTH, BGR_SKELETON_THEN_DEPTH)
    semantic = ConditionContract(maps=(ConditionMap(name="semantic", encoding="champ-parts", channels=3),))
    with pytest.raises(CheckpointError, match="semantic/champ-parts"):
        conditions_to_tensor([maps], HEIGHT, WIDTH, semantic)


def test_a_per_map_guider_sums_one_stack_per_map():
    guider = _guider(BGR_SKELETON_THEN_DEPTH)
    assert {key.split(".")[1] for key in guider.state_dict()} == {"skeleton", "depth"}
    conditions = torch.rand(2, 4, HEIGHT, WIDTH)
    with torch.no_grad():
        expected = guider.guiders["skeleton"](conditions[:, 0:3]) + guider.guiders["depth"](conditions[:, 3:4])
        torch.testing.assert_close(guider(conditions), expected)
        fresh = PoseGuider(conditioning_channels=4, block_out_channels=(8, 8, 16, 16), conditioning_embedding_channels=32,
                           conditions=BGR_SKELETON_THEN_DEPTH.to_config())
        assert torch.count_nonzero(fresh(conditions)) == 0  # every map's last layer starts at zero
    concatenated = PoseGuider(conditioning_channels=7, block_out_channels=(8, 8, 16, 16), conditioning_embedding_channels=32)
    assert "conv_in.weight" in concatenated.state_dict()  # the parameter names every saved checkpoint uses
    with pytest.raises(CheckpointError, match="7 channels"):
        PoseGuider(conditioning_channels=4, conditions=POSEDIVE_CONTRACT.to_config())


# ------------------------------------------------------------------------------ checks at load time
def test_load_generator_refuses_another_resolution_before_loading_weights(tmp_path):
    folder = _save(tmp_path / "gen", POSEDIVE_CONTRACT.with_resolution(192, 384))
    _junk_weights(folder)
    with pytest.raises(CheckpointError, match="asks for 256x128 .* trained at 192x384"):
        load_generator(GeneratorConfig(weights=str(folder), width=256, height=128), tmp_path)


# ------------------------------------------------------------------------- validate and build (CLI)
def _recipe(tmp_path: Path, weights: str, width: int, height: int, revision: str | None = None) -> Path:
    root = tmp_path / "market"
    if not root.exists():
        make_market(root)
    path = tmp_path / "recipe.yaml"
    generator = {"weights": weights, "width": width, "height": height, "revision": revision}
    path.write_text(yaml.safe_dump({"name": "contract-test", "version": "1.0.0",
                                    "source": {"format": "market1501", "root": "market"},
                                    "generator": generator, "output": {"dir": "out"}}))
    return path


def test_validate_names_both_resolutions_from_the_config_alone(tmp_path):
    folder = _save(tmp_path / "gen", POSEDIVE_CONTRACT.with_resolution(192, 384))
    _junk_weights(folder)
    result = CliRunner().invoke(app, ["validate", str(_recipe(tmp_path, str(folder), 256, 128))])
    assert result.exit_code == 2, result.output
    assert "generator.width/height" in result.output and "256x128" in result.output and "192x384" in result.output
    result = CliRunner().invoke(app, ["validate", str(_recipe(tmp_path, str(folder), 192, 384))])
    assert result.exit_code == 0, result.output
    assert "generator conditions: depth/near-bright (1 ch) + normal/camera-opengl (3 ch)" in result.output


def test_validate_refuses_maps_the_conditions_do_not_provide(tmp_path):
    folder = _save(tmp_path / "gen", POSEDIVE_CONTRACT.with_resolution(WIDTH, HEIGHT))
    config = json.loads((folder / GUIDER_CONFIG).read_text())
    config["conditions"]["maps"] = [{"name": "semantic", "encoding": "champ-parts", "channels": 3},
                                    {"name": "depth", "encoding": "near-bright", "channels": 1},
                                    {"name": "normal", "encoding": "camera-opengl", "channels": 3}]
    (folder / GUIDER_CONFIG).write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["validate", str(_recipe(tmp_path, str(folder), WIDTH, HEIGHT))])
    assert result.exit_code == 2, result.output
    assert "semantic/champ-parts" in result.output and "provide depth/near-bright" in result.output


def test_build_stops_before_any_shard_on_another_resolution(tmp_path):
    folder = _save(tmp_path / "gen", POSEDIVE_CONTRACT.with_resolution(192, 384))
    _junk_weights(folder)
    result = CliRunner().invoke(app, ["build", str(_recipe(tmp_path, str(folder), 256, 128)), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "256x128" in result.output and "192x384" in result.output
    assert not list((tmp_path / "out").rglob("*.tar"))


# ------------------------------------------------------------------------------------- from the Hub
@pytest.fixture(scope="module")
def hub():
    server = HubServer().start()
    yield server
    server.stop()


def _publish(hub, repo_id: str, contract: ConditionContract) -> str:
    """Commit a generator's config files (no weights are needed to check a contract); the commit id."""
    state = hub.state
    with state.lock:
        repo = state.repos.setdefault(("model", repo_id), Repo(repo_id=repo_id, repo_type="model", private=False))
        guider = json.dumps({"_class_name": "PoseGuider", "conditioning_channels": contract.channels,
                             "conditions": contract.to_config()}).encode()
        metadata = json.dumps({"description": "hub test", "resolution": list(contract.resolution)}).encode()
        tree = {GUIDER_CONFIG: Entry(size=len(guider), content=guider), METADATA_FILE: Entry(size=len(metadata), content=metadata)}
        return state.commit(repo, "main", tree, f"contract at {contract.resolution}").oid


def test_hub_contracts_are_read_at_the_pinned_revision(hub):
    first = _publish(hub, "lab/pose-generator", POSEDIVE_CONTRACT.with_resolution(192, 384))
    _publish(hub, "lab/pose-generator", POSEDIVE_CONTRACT.with_resolution(256, 512))
    fetch = functools.partial(fetch_contract, endpoint=hub.url)
    pinned = check_generator(GeneratorConfig(weights="lab/pose-generator", revision=first), Path("."), fetch=fetch)
    assert pinned.problems == [] and pinned.contract.resolution == (192, 384)
    latest = check_generator(GeneratorConfig(weights="lab/pose-generator"), Path("."), fetch=fetch)
    assert len(latest.problems) == 1 and "192x384" in latest.problems[0] and "256x512" in latest.problems[0]
    missing = check_generator(GeneratorConfig(weights="lab/no-such-model"), Path("."), fetch=fetch)
    assert "was not found" in missing.problems[0]
    unreachable = functools.partial(fetch_contract, endpoint="http://127.0.0.1:9")
    deferred = check_generator(GeneratorConfig(weights="lab/pose-generator"), Path("."), fetch=unreachable)
    assert deferred.problems == [] and deferred.contract is None and "could not be fetched" in deferred.summary


def test_validate_reads_a_hub_generator_through_hf_endpoint(hub, tmp_path):
    """The command as a user runs it: HF_ENDPOINT set before the client is imported."""
    _publish(hub, "lab/validate-me", POSEDIVE_CONTRACT.with_resolution(192, 384))
    recipe = _recipe(tmp_path, "lab/validate-me", 256, 128)
    done = subprocess.run([sys.executable, "-m", "posedive.cli", "validate", str(recipe)], capture_output=True,
                          text=True, timeout=300, cwd=REPO_ROOT, env=client_env(hub.url, tmp_path, extra_paths=(str(REPO_ROOT),)))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "256x128" in done.stderr and "192x384" in done.stderr
