"""Training and evaluation of the BoT baseline.

``TrainConfig`` holds every setting of a run with BoT's values as defaults (Luo et al. 2019): 120
epochs of PxK = 16x4 batches, Adam at 3.5e-4 with weight decay 5e-4, a linear warm-up from 3.5e-5 over
10 epochs and a x0.1 decay at epochs 40 and 70, label smoothing 0.1, triplet margin 0.3, 256x128
inputs. Evaluation ranks the gallery by cosine distance between L2-normalised features after the BNNeck.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import PathNotFound
from .data import ReidData, ReidItem
from .metrics import EvalResult, cosine_distance, evaluate

logger = logging.getLogger(__name__)

TRAIN_CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.json"
LOSSES_FILE = "losses.jsonl"
RUN_FILE = "run.json"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(120, ge=1)
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cut epochs short (quick runs and tests)")
    batch_p: int = Field(16, ge=2, description="identities per batch")
    batch_k: int = Field(4, ge=2, description="images per identity in a batch")
    lr: float = Field(3.5e-4, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: int = Field(10, ge=0)
    warmup_factor: float = Field(0.1, gt=0, le=1, description="learning rate at epoch 0, as a fraction of lr")
    decay_epochs: list[int] = Field(default_factory=lambda: [40, 70])
    decay_gamma: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    triplet_margin: float = Field(0.3, ge=0)
    height: int = Field(256, ge=8)
    width: int = Field(128, ge=8)
    pad: int = Field(10, ge=0)
    flip_p: float = Field(0.5, ge=0, le=1)
    erase_p: float = Field(0.5, ge=0, le=1)
    backbone: str | None = Field("microsoft/resnet-50", description="ImageNet weights; null = random init")
    resnet_config: dict[str, Any] | None = Field(None, description="ResNetConfig overrides (null = ResNet-50)")
    last_stride: int = Field(1, ge=1, le=2)
    num_workers: int = Field(4, ge=0)
    eval_batch_size: int = Field(128, ge=1)
    device: str = Field("auto", description="'auto' picks cuda when available")
    seed: int = 0


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """BoT's schedule: linear warm-up to ``lr`` over ``warmup_epochs``, then x``decay_gamma`` at each decay epoch."""
    if epoch < config.warmup_epochs:
        alpha = epoch / config.warmup_epochs
        factor = config.warmup_factor * (1 - alpha) + alpha
    else:
        factor = 1.0
    return config.lr * factor * config.decay_gamma ** sum(epoch >= e for e in config.decay_epochs)


@dataclass
class TrainResult:
    model: Any  # BagOfTricks
    losses: list[dict[str, float]] = field(default_factory=list)  # one entry per step
    labels: dict[int, int] = field(default_factory=dict)  # pid -> class index


class ImageDataset:
    """Map-style dataset of ``(image tensor, class index, camid)``."""

    def __init__(self, items: Sequence[ReidItem], transform, labels: dict[int, int] | None = None):
        self.items, self.transform, self.labels = list(items), transform, labels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        label = self.labels[item.pid] if self.labels is not None else item.pid
        return self.transform(item.open()), label, item.camid


def _device(config: TrainConfig):
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def train(config: TrainConfig, items: Sequence[ReidItem], show_progress: bool = True) -> TrainResult:
    """Train a BoT model on ``items`` (source images, optionally with generated ones)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .data import PKSampler
    from .losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy
    from .models import BagOfTricks
    from .transforms import TrainTransform

    torch.manual_seed(config.seed)
    labels = {pid: index for index, pid in enumerate(sorted({item.pid for item in items}))}
    device = _device(config)
    model = BagOfTricks.build(len(labels), backbone=config.backbone, resnet_config=config.resnet_config,
                              last_stride=config.last_stride).to(device)
    dataset = ImageDataset(items, TrainTransform(config.height, config.width, config.flip_p, config.pad, config.erase_p), labels)
    sampler = PKSampler([item.pid for item in items], config.batch_p, config.batch_k, seed=config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_p * config.batch_k, sampler=sampler, drop_last=True,
                        num_workers=config.num_workers, generator=torch.Generator().manual_seed(config.seed),
                        pin_memory=device.type == "cuda")
    cross_entropy = LabelSmoothingCrossEntropy(config.label_smoothing)
    triplet = BatchHardTripletLoss(config.triplet_margin)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    result = TrainResult(model=model, labels=labels)
    steps_per_epoch = len(sampler) // (config.batch_p * config.batch_k)
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    logger.info("training on %d images of %d identities, %d steps per epoch, %d epochs, on %s",
                len(items), len(labels), steps_per_epoch, config.epochs, device)
    progress = tqdm(total=steps_per_epoch * config.epochs, desc="training", unit="step", disable=not show_progress)
    model.train()
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        epoch_steps = len(sampler) // (config.batch_p * config.batch_k)
        if config.max_steps_per_epoch is not None:
            epoch_steps = min(epoch_steps, config.max_steps_per_epoch)
        progress.total = progress.n + epoch_steps * (config.epochs - epoch)  # batches per epoch vary a little
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        for step, (images, targets, _) in enumerate(loader):
            if step >= epoch_steps:
                break
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            logits, global_feature = model(images)
            id_loss = cross_entropy(logits, targets)
            tri_loss = triplet(global_feature, targets)
            loss = id_loss + tri_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            accuracy = (logits.argmax(dim=1) == targets).float().mean()
            record = {"epoch": epoch, "step": step, "lr": lr, "loss": loss.item(), "id_loss": id_loss.item(),
                      "triplet_loss": tri_loss.item(), "accuracy": accuracy.item()}
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(f"loss became {record['loss']} at epoch {epoch}, step {step}")
            result.losses.append(record)
            progress.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}", lr=f"{lr:.2e}")
            progress.update()
    progress.close()
    model.eval()
    return result


def extract_features(model, items: Sequence[ReidItem], config: TrainConfig, show_progress: bool = True) -> np.ndarray:
    """L2-normalised features after the BNNeck, one row per item, as float32."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .transforms import EvalTransform

    device = _device(config)
    model = model.to(device).eval()
    loader = DataLoader(ImageDataset(items, EvalTransform(config.height, config.width)),
                        batch_size=config.eval_batch_size, shuffle=False, num_workers=config.num_workers,
                        pin_memory=device.type == "cuda")
    chunks = []
    with torch.inference_mode():
        for images, _, _ in tqdm(loader, desc="features", unit="batch", disable=not show_progress, leave=False):
            features = model(images.to(device))
            chunks.append(torch.nn.functional.normalize(features, dim=1).float().cpu().numpy())
    return np.concatenate(chunks)


def evaluate_model(model, data: ReidData, config: TrainConfig, show_progress: bool = True) -> EvalResult:
    """Market-1501 protocol on ``data``'s query and gallery with cosine distance."""
    query = extract_features(model, data.query, config, show_progress)
    gallery = extract_features(model, data.gallery, config, show_progress)
    return evaluate(cosine_distance(query, gallery),
                    [i.pid for i in data.query], [i.pid for i in data.gallery],
                    [i.camid for i in data.query], [i.camid for i in data.gallery])


def save_run(directory: Path, result: TrainResult, config: TrainConfig, label: str, metrics: EvalResult | None,
             data_info: dict[str, Any] | None = None) -> None:
    """A run folder: the model, its training config, what it was trained on, per-step losses and the metrics."""
    directory.mkdir(parents=True, exist_ok=True)
    result.model.save(directory)
    (directory / TRAIN_CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    run = {"label": label, "steps": len(result.losses), **(data_info or {})}
    (directory / RUN_FILE).write_text(json.dumps(run, indent=2, default=str) + "\n")
    with open(directory / LOSSES_FILE, "w") as handle:
        for record in result.losses:
            handle.write(json.dumps(record) + "\n")
    if metrics is not None:
        write_metrics(directory, label, metrics)


def write_metrics(directory: Path, label: str, metrics: EvalResult) -> None:
    (directory / METRICS_FILE).write_text(json.dumps({"label": label, **metrics.as_dict()}, indent=2) + "\n")


def load_run(directory: Path | str):
    """``(model, config, label)`` of a run folder written by ``save_run``."""
    from .models import BagOfTricks

    directory = Path(directory)
    for name in (TRAIN_CONFIG_FILE, RUN_FILE):
        if not (directory / name).is_file():
            raise PathNotFound(f"{directory}: no {name}; not a run folder of `posedive reid train`",
                               hint="give a folder written by `posedive reid train --out`")
    config = TrainConfig.model_validate_json((directory / TRAIN_CONFIG_FILE).read_text())
    label = json.loads((directory / RUN_FILE).read_text()).get("label", directory.name)
    return BagOfTricks.load(directory), config, label
