"""The quality report's Re-ID similarity (``quality.reid_encoder``): a tiny TransReID beside the generator's
own identity encoder, checked against the encoder run here on the stored images."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from doubles import double_stages
from frame_helpers import frame_recipe
from PIL import Image

from posedive import paths
from posedive.builder import build_release
from posedive.builder.stages import load_reid
from posedive.errors import CheckpointError, PathNotFound
from posedive.generation.identity import ReidPreprocessing, TransReIDIdentityEncoder, TransReIDViT, convert_transreid
from posedive.generation.identity.reid_features import load_reid_encoder
from posedive.generation.state_dicts import public_config, read_state_dict
from posedive.recipe import parse_recipe
from posedive.release import Release
from posedive.release.quality import describe, quality_of

TRANSREID = Path(__file__).parent / "fixtures" / "upstream" / "transreid"
TINY_VIT = {"embed_dim": 32, "depth": 3, "num_heads": 2}  # the fixture's ViT (case.json): heads are not in the shapes


def tiny_vit() -> TransReIDViT:
    state = read_state_dict(TRANSREID / "transformer_20.pth")
    return convert_transreid(state, TINY_VIT).build(TransReIDViT).eval()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid")
    tiny_vit().save_pretrained(root / "transreid")
    recipe = frame_recipe(root, output={"image_format": "png"}, quality={"reid_encoder": "./transreid"})
    stages = dataclasses.replace(double_stages(), reid=load_reid(recipe))
    return recipe, build_release(recipe, stages=stages, show_progress=False)


def test_every_sample_records_the_reid_cosine_of_its_image_and_its_reference(built):
    recipe, report = built
    vit, preprocess = tiny_vit(), ReidPreprocessing()  # the encoder run directly, on one thread or not
    samples = list(Release.open(recipe.release_dir).iter_samples())
    assert samples
    cosines = []
    for sample in samples:
        provenance = sample["provenance"]
        reference = Image.open(recipe.resolve(recipe.source.root) / provenance["source"]["image"]).convert("RGB")
        with torch.no_grad():
            a, b = vit(preprocess([reference, sample["image"]])).numpy()
        assert provenance["reid_identity"]["encoder"] == "transreid from ./transreid"
        assert provenance["reid_identity"]["cosine"] == pytest.approx(cosine(a, b), abs=1e-5)
        assert provenance["identity"]["encoder"] == "pixels-double"  # the generator's own, beside it
        cosines.append(provenance["reid_identity"]["cosine"])
    assert np.ptp(cosines) > 0  # the random ViT still tells the images apart

    quality = report.manifest.quality
    reid = quality.reid_similarity
    assert reid.encoder == "transreid from ./transreid" and reid.accepted.count == len(samples)
    assert reid.accepted.mean == pytest.approx(np.mean(cosines), abs=1e-6)
    assert quality.identity_similarity.encoder == "pixels-double"
    rejected = [json.loads(line) for shard in range(len(report.manifest.shards))
                for line in (recipe.release_dir / paths.rejected_name(shard)).read_text().splitlines()]
    after = [e["scores"] for e in rejected if e["stage"] == "generated"]
    assert reid.rejected.count == len(after) > 0 and all("reid_cosine" in scores for scores in after)
    assert quality_of(Release.open(recipe.release_dir)) == quality


def test_the_card_the_plot_and_stats_name_both_similarities(built):
    recipe, report = built
    card = (recipe.release_dir / paths.CARD).read_text()
    assert "| identity similarity (pixels-double, cosine), median |" in card
    assert "| Re-ID similarity (transreid from ./transreid, cosine), median |" in card
    assert "`quality.reid_encoder`" in card
    lines = describe(report.manifest.quality)
    assert lines[-2].startswith("identity similarity (pixels-double): accepted n=")
    assert lines[-1].startswith("Re-ID similarity (transreid from ./transreid): accepted n=")
    width, _ = Image.open(recipe.release_dir / "plots/quality.png").size
    assert width == 1595  # four panels (14.5 in at 110 dpi): pass rates, eq. 12, identity, Re-ID


def test_without_a_reid_encoder_nothing_changes_and_the_hash_stays(tmp_path):
    plain = frame_recipe(tmp_path)
    assert plain.quality.reid_encoder is None and load_reid(plain) is None
    assert '"quality"' not in plain.canonical_json()  # recipes written before the field keep their hash
    explicit = frame_recipe(tmp_path, quality={"reid_encoder": None})
    assert explicit.hash == plain.hash
    assert frame_recipe(tmp_path, quality={"reid_encoder": "./transreid"}).hash != plain.hash


def upstream_layout(vit: TransReIDViT) -> dict[str, torch.Tensor]:
    """``vit``'s weights under the key names of a released ``transformer_20.pth`` (TransReID's
    ``build_transformer_local``), the backbone's last block copied from the global branch."""
    last = vit.config.depth - 1
    trunk = {"class_token": "base.cls_token", "position_embedding": "base.pos_embed",
             "patch_embedding.weight": "base.patch_embed.proj.weight", "patch_embedding.bias": "base.patch_embed.proj.bias"}
    branches = {"global_branch.block.": "b1.0.", "global_branch.norm.": "b1.1.",
                "local_branch.block.": "b2.0.", "local_branch.norm.": "b2.1."}
    state = {}
    for key, value in vit.state_dict().items():
        if key in trunk:
            state[trunk[key]] = value
        elif key.startswith("blocks."):
            state["base." + key] = value
        else:
            prefix = next(p for p in branches if key.startswith(p))
            state[branches[prefix] + key.removeprefix(prefix)] = value
            if prefix == "global_branch.block.":  # unused by inference, present in the released file
                state[f"base.blocks.{last}." + key.removeprefix(prefix)] = value.clone()
    return state


def test_a_released_checkpoint_a_folder_holding_one_and_a_generator_folder_all_load(tmp_path):
    torch.manual_seed(3)
    # the released architecture's heads (12) at a tiny width: the number of heads is not in a .pth
    vit = TransReIDViT(embed_dim=24, depth=2, num_heads=12).eval()
    for parameter in vit.parameters():
        parameter.data.normal_(0, 0.2)
    (tmp_path / "download" / "pretrained").mkdir(parents=True)
    released = tmp_path / "download" / "pretrained" / "transformer_20.pth"
    torch.save({"module." + k: v for k, v in upstream_layout(vit).items()}, released)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 40, 3), dtype=np.uint8))
    with torch.no_grad():
        expected = vit(ReidPreprocessing()([image])).numpy()
    for spec in ("download/pretrained/transformer_20.pth", "./download"):
        encoder = load_reid_encoder(spec, tmp_path)
        np.testing.assert_allclose(encoder.features([image]), expected, rtol=0, atol=1e-6)
        assert encoder.name == f"transreid from {spec}" and len(encoder.sha256) == 64

    # a converted Pose2ID generator folder: its identity encoder's ViT
    identity = TransReIDIdentityEncoder(vit_config=public_config(vit.config), num_tokens=2, token_dim=8)
    identity.vit.load_state_dict(vit.state_dict())
    identity.save_pretrained(tmp_path / "pose2id-ipg" / "identity_encoder")
    encoder = load_reid_encoder(str(tmp_path / "pose2id-ipg"), tmp_path / "elsewhere")
    np.testing.assert_allclose(encoder.features([image]), expected, rtol=0, atol=1e-6)


def test_a_missing_or_empty_reid_encoder_fails_naming_the_field(tmp_path):
    with pytest.raises(PathNotFound, match="quality.reid_encoder"):
        load_reid_encoder("./nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="quality.reid_encoder: .*holds no TransReID encoder"):
        load_reid_encoder("./empty", tmp_path)
    recipe = frame_recipe(tmp_path, quality={"reid_encoder": "./nowhere"})
    assert any(p.startswith("quality.reid_encoder:") for p in recipe.check_paths())
    with pytest.raises(Exception, match="quality.reid_encoder"):
        parse_recipe({**json.loads(frame_recipe(tmp_path).model_dump_json()), "quality": {"reid_encoder": "x@"}})


def test_the_release_verifies_and_loads_with_the_reid_column_typed(built):
    import datasets

    recipe, _ = built
    root = recipe.release_dir
    assert Release.open(root).verify() == []
    rows = datasets.load_dataset(str(root), split="train", cache_dir=str(root.parent / "hf-cache"))
    reid = rows[0]["json"]["reid_identity"]
    assert reid["encoder"] == "transreid from ./transreid" and -1 <= reid["cosine"] <= 1


def test_a_hub_encoder_is_read_at_its_pinned_revision(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants
    from hub_server import Entry, HubServer, Repo

    def folder_files(vit: TransReIDViT) -> dict[str, Entry]:
        vit.save_pretrained(tmp_path / "saved")
        files = {p.name: p.read_bytes() for p in sorted((tmp_path / "saved").iterdir())}
        return {name: Entry(size=len(data), content=data) for name, data in files.items()} | {
            "README.md": Entry(size=5, content=b"model")}

    first, second = tiny_vit(), tiny_vit()
    for parameter in second.parameters():
        parameter.data.add_(0.5)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (128, 64, 3), dtype=np.uint8))
    server = HubServer().start()
    try:
        with server.state.lock:
            repo = server.state.repos.setdefault(("model", "lab/transreid"),
                                                 Repo(repo_id="lab/transreid", repo_type="model", private=False))
            pinned = server.state.commit(repo, "main", folder_files(first), "first").oid
            server.state.commit(repo, "main", folder_files(second), "second")
        # the client reads its endpoint when imported; point this process's at the test Hub
        monkeypatch.setattr(hub_constants, "ENDPOINT", server.url)
        monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setattr(hub_constants, "HF_HUB_DISABLE_XET", True)
        encoder = load_reid_encoder(f"lab/transreid@{pinned}", tmp_path)
        with torch.no_grad():
            expected = first(ReidPreprocessing()([image])).numpy()
        np.testing.assert_allclose(encoder.features([image]), expected, rtol=0, atol=1e-6)
        assert encoder.name == f"transreid from lab/transreid@{pinned}"
        latest = load_reid_encoder("lab/transreid", tmp_path)
        assert np.abs(latest.features([image]) - expected).max() > 1e-3
        with pytest.raises(CheckpointError, match="cannot be fetched from the Hub"):
            load_reid_encoder("lab/no-such-encoder@main", tmp_path)
    finally:
        server.stop()
