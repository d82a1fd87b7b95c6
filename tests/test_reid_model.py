"""The BoT baseline's parts (model, losses, sampler, transforms, schedule) and a tiny training run on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from posedive.errors import ConfigError, PathNotFound
from posedive.reid.data import PKSampler, read_market_layout
from posedive.reid.engine import TrainConfig, evaluate_model, learning_rate, train
from posedive.reid.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy
from posedive.reid.models import BagOfTricks
from posedive.reid.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform

TINY_RESNET = {"embedding_size": 8, "hidden_sizes": [16, 32], "depths": [1, 1], "layer_type": "basic"}


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU is shared: several intra-op threads on a busy machine are slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def band_image(pid: int, variant: int) -> Image.Image:
    """A 32x64 'person' whose four horizontal colour bands identify it, plus per-image noise."""
    bands = np.random.default_rng(pid).integers(0, 256, (4, 1, 3))
    pixels = np.repeat(np.repeat(bands, 16, axis=0), 32, axis=1).astype(np.float32)
    pixels += np.random.default_rng(10_000 * pid + variant).normal(0, 20, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_band_market(root: Path, train_pids=range(1, 9), test_pids=range(20, 26)) -> Path:
    for pid in train_pids:
        for cam in (1, 2):
            for i in range(4):
                path = root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{i:06d}_00.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                band_image(pid, 10 * cam + i).save(path)
    for pid in test_pids:
        (root / "query").mkdir(parents=True, exist_ok=True)
        band_image(pid, 0).save(root / "query" / f"{pid:04d}_c1s1_000000_00.jpg")
        for cam in (2, 3):
            (root / "bounding_box_test").mkdir(parents=True, exist_ok=True)
            band_image(pid, cam).save(root / "bounding_box_test" / f"{pid:04d}_c{cam}s1_000000_00.jpg")
    band_image(99, 0).save(root / "bounding_box_test" / "0000_c3s1_000001_00.jpg")  # distractor
    band_image(98, 0).save(root / "bounding_box_test" / "-1_c3s1_000002_00.jpg")  # junk
    return root


def tiny_config(**changes) -> TrainConfig:
    settings = dict(epochs=6, batch_p=4, batch_k=4, warmup_epochs=0, lr=3.5e-3, backbone=None,
                    resnet_config=TINY_RESNET, height=64, width=32, pad=4, num_workers=0, eval_batch_size=32)
    settings.update(changes)
    return TrainConfig(**settings)


def test_resnet50_has_last_stride_one_and_a_bnneck():
    model = BagOfTricks(num_classes=5)  # transformers' ResNetConfig defaults are ResNet-50
    with torch.no_grad():
        feature_map = model.backbone(pixel_values=torch.zeros(1, 3, 128, 64)).last_hidden_state
    assert feature_map.shape == (1, 2048, 8, 4)  # stride 16, not 32 (16x8 maps at BoT's 256x128)
    model.train()
    logits, global_feature = model(torch.randn(2, 3, 128, 64))
    assert logits.shape == (2, 5) and global_feature.shape == (2, 2048)
    assert not model.bottleneck.bias.requires_grad and model.classifier.bias is None
    strided = BagOfTricks(num_classes=5, last_stride=2)
    with torch.no_grad():
        assert strided.backbone(pixel_values=torch.zeros(1, 3, 128, 64)).last_hidden_state.shape[-2:] == (4, 2)


def test_eval_features_are_after_bn_and_survive_save_and_load(tmp_path):
    model = BagOfTricks(num_classes=3, resnet_config=TINY_RESNET)
    model.train()
    model(torch.randn(8, 3, 64, 32))  # move the BN running statistics away from their initial values
    model.eval()
    images = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        features = model(images)
        pooled = model.backbone(pixel_values=images).last_hidden_state.mean(dim=(2, 3))
        np.testing.assert_allclose(features, model.bottleneck(pooled), atol=1e-6)
    model.save(tmp_path / "run")
    loaded = BagOfTricks.load(tmp_path / "run").eval()
    with torch.no_grad():
        np.testing.assert_allclose(loaded(images), features, atol=1e-6)
    (tmp_path / "run" / "model.safetensors").unlink()
    with pytest.raises(PathNotFound, match="model.safetensors"):
        BagOfTricks.load(tmp_path / "run")


def test_label_smoothing_matches_its_definition():
    logits = torch.randn(6, 5)
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = LabelSmoothingCrossEntropy(0.1)(logits, targets)
    log_p = F.log_softmax(logits, dim=1)
    by_hand = torch.stack([-(0.9 * log_p[i, t] + 0.1 * log_p[i].mean()) for i, t in enumerate(targets)]).mean()
    assert float(ours) == pytest.approx(float(by_hand), rel=1e-6)
    with pytest.raises(ValueError):
        LabelSmoothingCrossEntropy(1.0)


def test_batch_hard_triplet_uses_hardest_pairs():
    # Identity 0 at x = 0 and 1, identity 1 at x = 1.5 and 4 (points on a line).
    features = torch.tensor([[0.0], [1.0], [1.5], [4.0]])
    targets = torch.tensor([0, 0, 1, 1])
    # Anchor by anchor: (hardest positive, hardest negative) = (1, 1.5), (1, 0.5), (2.5, 0.5), (2.5, 3).
    expected = np.mean([max(0, 1 - 1.5 + 0.3), max(0, 1 - 0.5 + 0.3), max(0, 2.5 - 0.5 + 0.3), max(0, 2.5 - 3 + 0.3)])
    assert float(BatchHardTripletLoss(0.3)(features, targets)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=">= 2 images"):
        BatchHardTripletLoss(0.3)(features, torch.tensor([0, 1, 2, 2]))


def test_pk_sampler_batches_p_identities_of_k_images():
    pids = [pid for pid in range(10) for _ in range(3 + pid % 4)] + [42]  # 42: a single image
    sampler = PKSampler(pids, p=4, k=2, seed=3)
    indices = list(sampler)
    assert len(indices) == len(sampler) > 0 and len(indices) % 8 == 0
    for start in range(0, len(indices), 8):
        batch = [pids[i] for i in indices[start:start + 8]]
        assert len(set(batch)) == 4 and all(batch.count(pid) == 2 for pid in set(batch))
    assert list(PKSampler(pids, p=4, k=2, seed=3)) == indices
    sampler.set_epoch(1)
    assert list(sampler) != indices
    with pytest.raises(ConfigError, match="only 11"):
        PKSampler(pids, p=12, k=2)


def test_transforms_resize_normalise_and_augment():
    image = Image.fromarray(np.full((40, 20, 3), 128, np.uint8))
    evaluated = EvalTransform(64, 32)(image)
    assert evaluated.shape == (3, 64, 32)
    for channel in range(3):
        assert float(evaluated[channel].mean()) == pytest.approx((128 / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel], abs=1e-4)
    plain = TrainTransform(64, 32, flip_p=0.0, pad=0, erase_p=0.0)(image)
    torch.testing.assert_close(plain, evaluated)
    torch.manual_seed(0)
    # Padding with zeros then cropping shifts the image: some border pixels become black.
    augmented = torch.stack([TrainTransform(64, 32, flip_p=0.0, pad=6, erase_p=0.0)(image) for _ in range(8)])
    black = torch.tensor([(0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(1, 3, 1, 1)
    assert ((augmented - black).abs() < 1e-5).all(dim=1).any()
    erased = TrainTransform(64, 32, flip_p=0.0, pad=0, erase_p=1.0)(image)
    assert (erased == 0).all(dim=0).any() and not (evaluated == 0).all(dim=0).any()


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig()
    assert learning_rate(config, 0) == pytest.approx(3.5e-5)
    assert learning_rate(config, 5) == pytest.approx((0.1 * 0.5 + 0.5) * 3.5e-4)
    assert learning_rate(config, 10) == pytest.approx(3.5e-4) == learning_rate(config, 39)
    assert learning_rate(config, 40) == pytest.approx(3.5e-5)
    assert learning_rate(config, 70) == pytest.approx(3.5e-6)


def test_tiny_training_lowers_the_loss_and_evaluates(tmp_path):
    data = read_market_layout(make_band_market(tmp_path / "market"))
    assert len(data.gallery) == 13 and 0 in {item.pid for item in data.gallery}  # junk dropped, distractor kept
    config = tiny_config()
    result = train(config, data.train, show_progress=False)
    losses = [record["loss"] for record in result.losses]
    assert len(losses) >= 15 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    metrics = evaluate_model(result.model, data, config, show_progress=False)
    assert metrics.num_queries == 6 and len(metrics.cmc) == 13
    assert 0.0 <= metrics.mINP <= metrics.mAP <= 1.0 and metrics.cmc[-1] == 1.0
    # The same seed gives the same run.
    again = train(config.model_copy(update={"epochs": 1}), data.train, show_progress=False)
    assert [r["loss"] for r in again.losses] == losses[: len(again.losses)]


def test_build_loads_backbone_weights_and_falls_back_to_random_ones(tmp_path, caplog):
    from transformers import ResNetConfig, ResNetModel

    saved = ResNetModel(ResNetConfig(**TINY_RESNET))
    saved.save_pretrained(tmp_path / "tiny-resnet")
    model = BagOfTricks.build(3, backbone=str(tmp_path / "tiny-resnet"))
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], tensor)
    last_block = model.backbone.encoder.stages[-1].layers[0]
    assert all(m.stride == (1, 1) for m in last_block.modules() if isinstance(m, torch.nn.Conv2d))

    with caplog.at_level("WARNING", logger="posedive.reid.models"):
        fallback = BagOfTricks.build(3, backbone=str(tmp_path / "missing"), resnet_config=TINY_RESNET)
    assert "starting from random weights" in caplog.text
    assert fallback.feature_dim == TINY_RESNET["hidden_sizes"][-1]
