"""Identity encoders against the upstream-made fixtures (tests/fixtures/upstream, float64).

TransReID + IFR must give the features and tokens Pose2ID's own code computed from the tiny
random-weight ``transformer_20.pth`` / ``IFR.pth``; the CLIP encoder must give the pixel values and
image embedding Moore-AnimateAnyone's and Champ's pipelines computed on the squashed reference. Every
key of each released file is consumed or on a written list with its reason; full-size key sets are
checked on the meta device.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from posedive.errors import CheckpointError, InputError
from posedive.generation.identity import (
    ClipIdentityEncoder,
    ClipPreprocessing,
    TransReIDIdentityEncoder,
    TransReIDViT,
    convert_clip_vision,
    convert_ifr,
    convert_pose2id_identity,
    convert_transreid,
    identity_encoder_class,
    load_identity_encoder,
)
from posedive.generation.identity.clip import CLIP_ARCHITECTURE_FIELDS
from posedive.generation.state_dicts import read_state_dict

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
TRANSREID = UPSTREAM / "transreid"
POSE2ID = UPSTREAM / "pose2id"
# The tiny fixture's ViT (tests/fixtures/upstream/transreid/case.json); heads cannot be read from shapes.
TINY_VIT = {"embed_dim": 32, "depth": 3, "num_heads": 2}
# float64 on both sides: what is left is summation order (upstream 4 calls of the local branch, one here)
TOLERANCE = 1e-12
CLIP_FAMILIES = {"animate_anyone": "ref.png", "champ": "inputs/ref.png"}


def max_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def transreid_expected():
    return load_file(TRANSREID / "expected.safetensors")


@pytest.fixture(scope="module")
def pose2id_expected():
    return load_file(POSE2ID / "expected.safetensors")


@pytest.fixture(scope="module")
def tiny_transreid_state():
    return read_state_dict(TRANSREID / "transformer_20.pth")


@pytest.fixture(scope="module")
def tiny_vit(tiny_transreid_state):
    return convert_transreid(tiny_transreid_state, TINY_VIT).build(TransReIDViT).double().eval()


@pytest.fixture(scope="module")
def pose2id_encoder():
    pretrained = POSE2ID / "pretrained"
    encoder = TransReIDIdentityEncoder.from_pose2id(pretrained / "transformer_20.pth", pretrained / "IFR.pth", TINY_VIT)
    return encoder.double()


# ----------------------------------------------------------------------------------------- TransReID
def test_transreid_reproduces_upstream_features(tiny_vit, transreid_expected):
    reference = transreid_expected["ref_pixel_values"]
    batch = torch.cat([torch.zeros_like(reference), reference]).double()  # row 0: IPG's blank input
    with torch.no_grad():
        tokens = tiny_vit.trunk_tokens(batch)
        global_feature, local = tiny_vit.branch_features(tokens)
        features = tiny_vit(batch)
    assert max_difference(tokens, transreid_expected["base_tokens"]) < TOLERANCE
    assert max_difference(global_feature, transreid_expected["global_feat"]) < TOLERANCE
    for part in range(4):
        assert max_difference(local[:, part], transreid_expected[f"local_feat_{part + 1}"]) < TOLERANCE
    assert max_difference(features, transreid_expected["features"]) < TOLERANCE


def test_reid_preprocessing_is_pose2ids(pose2id_encoder, transreid_expected):
    pixels = pose2id_encoder.preprocessor([Image.open(TRANSREID / "ref.png")])
    assert pixels.dtype == torch.float32
    torch.testing.assert_close(pixels, transreid_expected["ref_pixel_values"], rtol=0, atol=0)


def test_every_transreid_key_is_consumed_or_listed_with_a_reason(tiny_transreid_state):
    conversion = convert_transreid(tiny_transreid_state, TINY_VIT)
    (report,) = conversion.reports
    unused = {item.key for item in report.unused}
    assert report.consumed + len(unused) == len(tiny_transreid_state) == 102
    assert report.consumed == len(conversion.state_dict) == 56
    # the fixture README's list: the backbone's last block and norm, the ImageNet head, classifiers, BNNecks
    groups = {
        r"base\.blocks\.2\..+": 12,
        r"base\.norm\..+": 2,
        r"base\.fc\..+": 2,
        r"classifier(_\d)?\.weight": 5,
        r"bottleneck(_\d)?\..+": 25,
    }
    for pattern, count in groups.items():
        assert sum(re.fullmatch(pattern, key) is not None for key in unused) == count, pattern
    assert len(unused) == sum(groups.values()) == 46
    assert all(item.reason for item in report.unused)


def test_transreid_keys_may_carry_the_data_parallel_prefix(tiny_transreid_state):
    plain = convert_transreid(tiny_transreid_state, TINY_VIT)
    wrapped = convert_transreid({"module." + k: v for k, v in tiny_transreid_state.items()}, TINY_VIT)
    assert wrapped.state_dict.keys() == plain.state_dict.keys()
    assert all(torch.equal(wrapped.state_dict[k], plain.state_dict[k]) for k in plain.state_dict)
    doubled = dict(tiny_transreid_state) | {"module.base.cls_token": tiny_transreid_state["base.cls_token"]}
    with pytest.raises(CheckpointError, match=r"'base\.cls_token' appears both with and without"):
        convert_transreid(doubled, TINY_VIT)


def test_unexpected_misshapen_and_missing_transreid_keys_fail_naming_them(tiny_transreid_state):
    extra = dict(tiny_transreid_state) | {"base.sie_embed": torch.zeros(6, 1, 32)}
    with pytest.raises(CheckpointError, match=r"unexpected key 'base\.sie_embed'"):
        convert_transreid(extra, TINY_VIT)
    bad = dict(tiny_transreid_state) | {"b1.0.attn.qkv.weight": torch.zeros(96, 31)}
    with pytest.raises(CheckpointError, match=r"'b1\.0\.attn\.qkv\.weight' has shape \[96, 31\], expected \[96, 32\]"):
        convert_transreid(bad, TINY_VIT)
    short = {k: v for k, v in tiny_transreid_state.items() if k != "b2.1.bias"}
    with pytest.raises(CheckpointError, match=r"missing key for 'local_branch\.norm\.bias'"):
        convert_transreid(short, TINY_VIT)
    with pytest.raises(CheckpointError, match="depth=4 but the file has 3"):
        convert_transreid(tiny_transreid_state, TINY_VIT | {"depth": 4})
    # heads are not in the shapes: a wrong count converts, and the features then differ (see the fixture test)
    assert convert_transreid(tiny_transreid_state, {"num_heads": 2}).config == convert_transreid(
        tiny_transreid_state, TINY_VIT).config


def test_full_size_transreid_and_ifr_key_sets_convert_on_the_meta_device():
    def meta(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
        return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}

    transreid = json.loads((TRANSREID / "full_size_keys.json").read_text())["transformer_20.pth"]
    ifr = json.loads((POSE2ID / "full_size_keys.json").read_text())["IFR.pth"]
    assert json.loads((POSE2ID / "full_size_keys.json").read_text())["transformer_20.pth"] == transreid
    conversion = convert_pose2id_identity(meta(transreid), meta(ifr))  # the released sizes are the defaults
    vit_report, ifr_report = conversion.reports
    assert (vit_report.consumed, len(vit_report.unused), len(transreid)) == (164, 46, 210)
    assert (ifr_report.consumed, ifr_report.unused) == (4, ())
    assert conversion.config["num_tokens"] == 20 and conversion.config["token_dim"] == 768
    assert convert_ifr(meta(ifr)).config == {"in_features": 3840, "num_tokens": 20, "token_dim": 768}
    with torch.device("meta"):
        encoder = TransReIDIdentityEncoder(**conversion.config)
    expected = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    assert {key: tuple(value.shape) for key, value in conversion.state_dict.items()} == expected


# ----------------------------------------------------------------------------------------------- IFR
def test_pose2id_tokens_reproduce_upstream(pose2id_encoder, pose2id_expected):
    pixels = pose2id_encoder.preprocessor([Image.open(POSE2ID / "ref.png")])
    torch.testing.assert_close(pixels, pose2id_expected["reid_pixel_values"], rtol=0, atol=0)
    with torch.no_grad():
        features = pose2id_encoder.vit(torch.cat([torch.zeros_like(pixels), pixels]).double())
        tokens = pose2id_encoder.encode(pixels)
        unconditional = pose2id_encoder.unconditional_tokens(1)
    assert max_difference(features, pose2id_expected["reid_features"]) < TOLERANCE
    assert max_difference(tokens, pose2id_expected["identity_tokens_cond"]) < TOLERANCE
    # classifier-free guidance's unconditional tokens are IFR(TransReID(blank image)), not zeros
    assert max_difference(unconditional, pose2id_expected["identity_tokens_uncond"]) < TOLERANCE
    assert unconditional.abs().max() > 0.1


def test_guidance_batches_put_the_unconditional_tokens_first(pose2id_encoder, pose2id_expected):
    with torch.no_grad():
        tokens = pose2id_encoder.encode_images([Image.open(POSE2ID / "ref.png")] * 2)
        both = pose2id_encoder.guidance_tokens(tokens)
        mixed = pose2id_encoder.keep_or_unconditional(tokens, torch.tensor([True, False]))
    assert both.shape == (4, 20, 16)
    assert max_difference(both[:2], pose2id_expected["identity_tokens_uncond"].expand(2, -1, -1)) < TOLERANCE
    assert torch.equal(both[2:], tokens)
    assert torch.equal(mixed[0], tokens[0])
    assert max_difference(mixed[1], pose2id_expected["identity_tokens_uncond"][0]) < TOLERANCE


def test_ifr_that_does_not_fit_the_vit_fails(tiny_transreid_state):
    ifr = read_state_dict(POSE2ID / "pretrained" / "IFR.pth")
    narrower = dict(ifr) | {"proj_motion.weight": ifr["proj_motion.weight"][:, :128]}
    with pytest.raises(CheckpointError, match="IFR.pth takes 128-d features but transformer_20.pth gives 160-d"):
        convert_pose2id_identity(tiny_transreid_state, narrower, TINY_VIT)
    with pytest.raises(CheckpointError, match=r"unexpected key 'proj_motion\.scale'"):
        convert_ifr(dict(ifr) | {"proj_motion.scale": torch.ones(1)})
    with pytest.raises(CheckpointError, match="not a Pose2ID IFR state dict"):
        convert_ifr({"norm_motion.weight": ifr["norm_motion.weight"]})


def test_transreid_encoder_folder_is_self_describing(pose2id_encoder, tmp_path):
    pose2id_encoder.save_pretrained(tmp_path / "identity_encoder")
    config = json.loads((tmp_path / "identity_encoder" / "config.json").read_text())
    assert config["_class_name"] == "TransReIDIdentityEncoder"
    assert config["vit_config"] == {
        "image_size": [256, 128], "patch_size": 16, "patch_stride": 12, "embed_dim": 32, "depth": 3, "num_heads": 2,
        "mlp_ratio": 4.0, "qkv_bias": True, "norm_eps": 1e-6, "jpm_shift": 5, "jpm_groups": 2, "jpm_parts": 4,
    }
    loaded = load_identity_encoder(tmp_path / "identity_encoder", dtype=torch.float64)
    assert isinstance(loaded, TransReIDIdentityEncoder)
    assert loaded.spec() == pose2id_encoder.spec()
    assert loaded.spec().unconditional == "encoded-blank-image"
    reference = [Image.open(POSE2ID / "ref.png")]
    with torch.no_grad():
        assert torch.equal(loaded.encode_images(reference), pose2id_encoder.encode_images(reference))


# ---------------------------------------------------------------------------------------------- CLIP
def clip_encoder(family: str, preprocessing: str = "squash") -> ClipIdentityEncoder:
    folder = UPSTREAM / family / "base" / "image_encoder"
    architecture = json.loads((folder / "config.json").read_text())
    vision_config = {name: architecture[name] for name in CLIP_ARCHITECTURE_FIELDS}
    conversion = convert_clip_vision(read_state_dict(folder / "model.safetensors"), vision_config, preprocessing)
    return conversion.build(ClipIdentityEncoder).double().eval()


@pytest.mark.parametrize("family", sorted(CLIP_FAMILIES))
def test_clip_squash_reproduces_the_released_pipelines(family):
    expected = load_file(UPSTREAM / family / "expected.safetensors")
    encoder = clip_encoder(family)
    assert encoder.config.preprocessing == "squash"
    pixels = encoder.preprocessor([Image.open(UPSTREAM / family / CLIP_FAMILIES[family])])
    torch.testing.assert_close(pixels, expected["clip_pixel_values"], rtol=0, atol=0)
    with torch.no_grad():
        tokens = encoder.encode(pixels)
    assert max_difference(tokens[:, 0], expected["clip_image_embeds"]) < TOLERANCE
    assert max_difference(tokens, expected["identity_tokens_cond"]) < TOLERANCE
    assert torch.equal(encoder.unconditional_tokens(1), expected["identity_tokens_uncond"])


def test_clip_converter_consumes_every_key_and_names_unknown_ones():
    folder = UPSTREAM / "animate_anyone" / "base" / "image_encoder"
    state = read_state_dict(folder / "model.safetensors")
    vision_config = clip_encoder("animate_anyone").config.vision_config
    (report,) = convert_clip_vision(state, vision_config).reports
    assert report.consumed + len(report.unused) == len(state)
    assert [item.key for item in report.unused] == ["vision_model.embeddings.position_ids"]
    with pytest.raises(CheckpointError, match=r"unexpected key 'text_model\.embeddings\.token_embedding\.weight'"):
        convert_clip_vision(state | {"text_model.embeddings.token_embedding.weight": torch.zeros(1)}, vision_config)
    with pytest.raises(CheckpointError, match=r"'visual_projection\.weight' has shape \[16, 31\], expected \[16, 32\]"):
        convert_clip_vision(dict(state) | {"visual_projection.weight": torch.zeros(16, 31)}, vision_config)


def test_full_size_clip_key_set_converts_on_the_meta_device():
    """sd-image-variations' ViT-L/14 tower as transformers builds it, plus the index buffer older files hold."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from posedive.generation.architectures import CLIP_VIT_L14_VISION

    with torch.device("meta"):
        tower = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_L14_VISION))
    state = tower.state_dict() | {"vision_model.embeddings.position_ids": torch.empty(1, 257, device="meta")}
    conversion = convert_clip_vision(state, CLIP_VIT_L14_VISION)
    (report,) = conversion.reports
    assert report.consumed == len(tower.state_dict()) and len(report.unused) == 1
    assert conversion.config["vision_config"]["projection_dim"] == 768
    assert set(conversion.config["vision_config"]) == set(CLIP_ARCHITECTURE_FIELDS)


def two_by_one_pedestrian() -> Image.Image:
    """A 64x128 (1:2) crop: a red head in the top eighth, a blue pair of feet in the bottom eighth, grey body."""
    array = np.full((128, 64, 3), 128, dtype=np.uint8)
    array[:16] = (255, 0, 0)
    array[-16:] = (0, 0, 255)
    return Image.fromarray(array)


def colour_rows(pixels: torch.Tensor, preprocessing: ClipPreprocessing, colour: tuple[int, int, int]) -> int:
    """How many rows of CLIP's input show ``colour`` (in normalised units) in their middle column."""
    target = (torch.tensor(colour) / 255 - torch.tensor(preprocessing.mean)) / torch.tensor(preprocessing.std)
    middle = pixels[0, :, :, preprocessing.size // 2].T  # (rows, 3)
    return int(((middle - target).abs().max(dim=1).values < 0.05).sum())


def test_clip_input_sees_the_head_and_feet_of_a_pedestrian():
    """The default preprocessing keeps the whole person; the centre crop used before dropped the top
    and bottom quarter of a 1:2 crop, head and feet with them."""
    image = two_by_one_pedestrian()
    squash = ClipPreprocessing()
    pixels = squash([image])
    assert pixels.shape == (1, 3, 224, 224)
    assert colour_rows(pixels, squash, (255, 0, 0)) >= 20  # 1/8 of 224 = 28 rows, less the blended edge
    assert colour_rows(pixels, squash, (0, 0, 255)) >= 20
    crop = ClipPreprocessing(mode="crop")
    cropped = crop([image])
    assert colour_rows(cropped, crop, (255, 0, 0)) == colour_rows(cropped, crop, (0, 0, 255)) == 0


def test_squash_is_the_default_and_the_mode_is_recorded(tmp_path):
    vision_config = clip_encoder("animate_anyone").config.vision_config
    fresh = ClipIdentityEncoder(vision_config)
    assert fresh.config.preprocessing == "squash" and fresh.preprocessor.mode == "squash"
    assert fresh.spec().unconditional == "zeros" and fresh.spec().num_tokens == 1
    legacy = ClipIdentityEncoder(vision_config, preprocessing="crop")
    legacy.save_pretrained(tmp_path / "identity_encoder")
    assert json.loads((tmp_path / "identity_encoder" / "config.json").read_text())["preprocessing"] == "crop"
    loaded = load_identity_encoder(tmp_path / "identity_encoder")
    assert isinstance(loaded, ClipIdentityEncoder) and loaded.preprocessor.mode == "crop"
    with pytest.raises(InputError, match="preprocessing 'pad' is not one of squash, crop"):
        ClipIdentityEncoder(vision_config, preprocessing="pad")
    with pytest.raises(InputError, match=r"unknown fields \['dropout'\]"):
        ClipIdentityEncoder(vision_config | {"dropout": 0.1})


def test_from_clip_wraps_a_loaded_tower_with_its_processor_settings():
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

    folder = UPSTREAM / "animate_anyone" / "base"
    tower = CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder").double().eval()
    processor = CLIPImageProcessorPil.from_pretrained(folder / "feature_extractor")
    wrapped = ClipIdentityEncoder.from_clip(tower, processor, preprocessing="crop")
    assert wrapped.dtype == torch.float64 and wrapped.preprocessor.mode == "crop"
    reference = [Image.open(UPSTREAM / "animate_anyone" / "ref.png")]
    with torch.no_grad():
        # crop mode is exactly the processor alone: the preprocessing generators trained before used
        processed = processor(images=reference, return_tensors="pt").pixel_values
        torch.testing.assert_close(wrapped.preprocessor(reference), processed, rtol=0, atol=0)
        expected = tower(processed.double()).image_embeds
        assert torch.equal(wrapped.encode_images(reference)[:, 0], expected)
    processor.crop_size = {"height": 200, "width": 200}
    with pytest.raises(CheckpointError, match="crops 200x200, but the image encoder takes 224x224"):
        ClipIdentityEncoder.from_clip(tower, processor, preprocessing="squash")


def test_preprocessors_travel_to_data_loader_workers():
    image = [two_by_one_pedestrian()]
    for preprocessing in (clip_encoder("animate_anyone").preprocessor, TransReIDIdentityEncoder.from_pose2id(
            POSE2ID / "pretrained" / "transformer_20.pth", POSE2ID / "pretrained" / "IFR.pth", TINY_VIT).preprocessor):
        copy = pickle.loads(pickle.dumps(preprocessing))
        assert copy == preprocessing
        assert torch.equal(copy(image), preprocessing(image))


def test_registry_names_the_kinds(tmp_path):
    assert identity_encoder_class("transreid-ifr") is TransReIDIdentityEncoder
    assert identity_encoder_class("clip-image-embedding") is ClipIdentityEncoder
    with pytest.raises(InputError, match="unknown identity encoder 'dino'"):
        identity_encoder_class("dino")
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(CheckpointError, match="'UNet2DConditionModel' is not an identity encoder"):
        load_identity_encoder(tmp_path)
    with pytest.raises(CheckpointError, match="not an identity encoder config"):
        load_identity_encoder(tmp_path / "missing")


def test_read_state_dict_refuses_what_is_not_a_flat_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="IFR.pth does not exist"):
        read_state_dict(tmp_path / "IFR.pth")
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 20}, wrapped)
    with pytest.raises(CheckpointError, match="wrapped.pth is not a flat state dict of tensors"):
        read_state_dict(wrapped)
    pickled = tmp_path / "code.pth"
    torch.save({"w": torch.zeros(1), "optimizer": torch.optim.SGD}, pickled)  # needs unpickling a class
    with pytest.raises(CheckpointError, match="code.pth cannot be read as a state dict"):
        read_state_dict(pickled)
    assert list(read_state_dict(UPSTREAM / "animate_anyone" / "base" / "image_encoder" / "model.safetensors"))
