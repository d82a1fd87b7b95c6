"""Training of the two-branch generator (paper supplementary 2) with ``accelerate``.

What is trained: the reference U-Net, the denoising U-Net and the pose guider (or, with ``lora``,
low-rank adapters of the U-Nets' attention projections plus the pose guider). What is frozen: the VAE
and the CLIP image encoder. Loss: mean squared error between the true and the predicted noise at a
uniformly drawn timestep (the scheduler's ``prediction_type`` ``v_prediction`` switches the target to
the velocity). Optimiser: AdamW, lr 1e-5, weight decay 0.01 (paper 4.1).

Each step: encode target and reference with the frozen VAE (and the reference with CLIP), noise the
target latents, run the reference U-Net at t=0 writing the bank, run the denoising U-Net reading it
with the pose guider's features added after ``conv_in``. A fraction of samples
(``data.reference_drop_prob``) drops the reference tokens and CLIP embedding, which teaches the
unconditional branch that classifier-free guidance needs at inference.

Checkpoints (``OUTPUT/checkpoints/step-NNNNNNN``, accelerate state plus the step) are written every
``checkpoint_every`` steps; a rerun of the same command resumes from the newest one. The result is a
``PoseDivePipeline`` folder ``OUTPUT/generator`` with ``posedive_generator.json`` describing it.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .generator import torch_dtype
from .training_config import GeneratorInit, PretrainedInit, ScratchInit, TrainingConfig

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

    from .data import PairsIndex, TrainingPair
    from .generator import GeneratorMetadata
    from .models.pose_guider import PoseGuider

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
GENERATOR = "generator"
PRETRAINED_VAE = "vae-pretrained"
EVAL_PAIRS = 8


@dataclass
class Components:
    vae: "AutoencoderKL"
    image_encoder: "CLIPVisionModelWithProjection"
    feature_extractor: "CLIPImageProcessorPil"
    reference_unet: "UNet2DConditionModel"
    denoising_unet: "UNet2DConditionModel"
    pose_guider: "PoseGuider"
    noise_scheduler: "DDPMScheduler"


@dataclass
class TrainingResult:
    """What a run did; also written into the generator's metadata."""

    generator_dir: str
    steps: int
    seconds: float
    trainable_parameters: int
    loss_first: float  # mean training loss over the first log interval of this run
    loss_last: float  # mean training loss over the last log interval
    eval_loss_before: float  # fixed-noise loss on the first pairs, before this run's training
    eval_loss_after: float  # the same, after


# ------------------------------------------------------------------------------------- building
def build_components(config: TrainingConfig) -> Components:
    """Instantiate (and, for ``pretrained`` / ``generator``, load) every component."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    from .models.pose_guider import PoseGuider
    from .pipeline import PoseDivePipeline

    init = config.model

    def new_pose_guider(denoising_unet) -> PoseGuider:
        """A fresh (zero-initialised) guider whose output width matches the U-Net's ``conv_in``."""
        return PoseGuider(
            conditioning_channels=init.pose_guider.conditioning_channels,
            block_out_channels=tuple(init.pose_guider.block_out_channels),
            conditioning_embedding_channels=denoising_unet.config.block_out_channels[0],
        )

    def local_or_hub(name: str) -> str:
        candidate = config.resolve(name)
        return str(candidate) if candidate.exists() else name

    if isinstance(init, PretrainedInit):
        base, rev = local_or_hub(init.base), init.base_revision
        encoder, enc_rev = local_or_hub(init.image_encoder), init.image_encoder_revision
        reference_unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", revision=rev)
        denoising_unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", revision=rev)
        return Components(
            vae=AutoencoderKL.from_pretrained(base, subfolder="vae", revision=rev),
            image_encoder=CLIPVisionModelWithProjection.from_pretrained(encoder, subfolder="image_encoder", revision=enc_rev),
            feature_extractor=CLIPImageProcessorPil.from_pretrained(encoder, subfolder="feature_extractor", revision=enc_rev),
            reference_unet=reference_unet,
            denoising_unet=denoising_unet,
            pose_guider=new_pose_guider(denoising_unet),
            noise_scheduler=DDPMScheduler.from_pretrained(base, subfolder="scheduler", revision=rev),
        )
    if isinstance(init, GeneratorInit):
        pipe = PoseDivePipeline.from_pretrained(local_or_hub(init.path), revision=init.revision)
        return Components(
            vae=pipe.vae,
            image_encoder=pipe.image_encoder,
            feature_extractor=pipe.feature_extractor,
            reference_unet=pipe.reference_unet,
            denoising_unet=pipe.denoising_unet,
            pose_guider=pipe.pose_guider,
            noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        )
    assert isinstance(init, ScratchInit)
    reference_unet = UNet2DConditionModel(**init.unet)
    denoising_unet = UNet2DConditionModel(**init.unet)
    denoising_unet.load_state_dict(reference_unet.state_dict())  # the two branches start as clones
    vision = CLIPVisionConfig(**init.image_encoder)
    size = vision.image_size
    vae = AutoencoderKL(**init.vae)
    pretrained_vae = config.resolve(config.output_dir) / PRETRAINED_VAE
    if pretrained_vae.is_dir():
        vae = AutoencoderKL.from_pretrained(pretrained_vae)
    return Components(
        vae=vae,
        image_encoder=CLIPVisionModelWithProjection(vision),
        feature_extractor=CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=new_pose_guider(denoising_unet),
        noise_scheduler=DDPMScheduler(**init.scheduler),
    )


# ------------------------------------------------------------------------------------------ data
class PairsTorchDataset:
    """Turns :class:`~posedive.generation.data.TrainingPair` into the tensors a step needs, with the
    same preprocessing the pipeline applies at inference (VAE image processor, CLIP image processor,
    :func:`~posedive.generation.pipeline.conditions_to_tensor`)."""

    def __init__(self, index: "PairsIndex", feature_extractor: "CLIPImageProcessorPil", vae_scale_factor: int, width: int, height: int) -> None:
        from diffusers.image_processor import VaeImageProcessor

        self.index = index
        self.feature_extractor = feature_extractor
        self.image_processor = VaeImageProcessor(vae_scale_factor=vae_scale_factor)
        self.width = width
        self.height = height

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, "torch.Tensor"]:
        return self.encode(self.index[i])

    def encode(self, pair: "TrainingPair") -> dict[str, "torch.Tensor"]:
        from PIL import Image

        from .pipeline import conditions_to_tensor

        reference = Image.fromarray(pair.reference)
        target = Image.fromarray(pair.target)
        size = {"height": self.height, "width": self.width}
        return {
            "target": self.image_processor.preprocess(target, **size)[0],
            "reference": self.image_processor.preprocess(reference, **size)[0],
            "clip": self.feature_extractor(images=[reference], return_tensors="pt").pixel_values[0],
            "conditions": conditions_to_tensor(
                [{"depth": pair.depth, "normal": pair.normal, "skeleton": pair.skeleton}], self.height, self.width
            )[0],
        }


class EncodedDataset:
    """Pairs already encoded by the frozen VAE and CLIP (``data.cache_latents``)."""

    def __init__(self, tensors: dict[str, "torch.Tensor"]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def __getitem__(self, i: int) -> dict[str, "torch.Tensor"]:
        return {name: tensor[i] for name, tensor in self.tensors.items()}


def encode_dataset(components: Components, dataset: PairsTorchDataset, batch_size: int, dtype: "torch.dtype", device: Any) -> EncodedDataset:
    """Run the frozen encoders over every pair once."""
    import torch
    from tqdm.auto import tqdm

    parts: dict[str, list[torch.Tensor]] = {}
    for start in tqdm(range(0, len(dataset), batch_size), desc="encoding pairs", unit="batch"):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = {k: v.to(device) for k, v in torch.utils.data.default_collate(samples).items()}
        for name, tensor in _encode_batch(components, batch, dtype).items():
            parts.setdefault(name, []).append(tensor.cpu())
    return EncodedDataset({name: torch.cat(chunks) for name, chunks in parts.items()})


class EpochSampler:
    """A permutation of the dataset per epoch, drawn from ``seed + epoch`` alone, so a resumed run
    sees the batches an uninterrupted run would have seen."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Any:
        import torch

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def _batches(loader: Any, sampler: EpochSampler, start: int, skip: Any = None) -> Any:
    """Endless batches starting at micro-batch ``start`` (``skip(loader, n)`` skips without loading)."""
    per_epoch = max(1, len(loader))
    epoch, offset = divmod(start, per_epoch)
    while True:
        current = skip(loader, offset) if offset and skip is not None else loader
        # accelerate's loaders reset the sampler's epoch from their own counter when iterated
        if hasattr(current, "set_epoch"):
            current.set_epoch(epoch)
        sampler.set_epoch(epoch)
        for index, batch in enumerate(current):
            if current is loader and index < offset:
                continue
            yield batch
        epoch, offset = epoch + 1, 0


# ------------------------------------------------------------------------------ VAE pre-training
def pretrain_vae(components: Components, dataset: PairsTorchDataset, config: TrainingConfig, out: Path) -> None:
    """Scratch models only: train the random VAE as an autoencoder on the training images, set its
    ``scaling_factor`` to 1 / std of the latents (as Stable Diffusion did), save it, freeze it."""
    import torch
    from tqdm.auto import tqdm

    init = config.model
    assert isinstance(init, ScratchInit)
    spec = init.vae_pretrain
    vae = components.vae
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = EpochSampler(len(dataset), config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=spec.batch_size, sampler=sampler, drop_last=len(dataset) >= spec.batch_size
    )
    batches = _batches(loader, sampler, 0)
    progress = tqdm(range(spec.steps), desc="VAE pre-training", unit="step")
    for step in progress:
        batch = next(batches)
        images = torch.cat([batch["target"], batch["reference"]])
        posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        rec_loss = torch.nn.functional.mse_loss(reconstruction, images)
        loss = rec_loss + spec.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % config.log_every == 0:
            progress.set_postfix(reconstruction=f"{rec_loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        batch = next(batches)
        latents = vae.encode(torch.cat([batch["target"], batch["reference"]])).latent_dist.mean
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    logger.info("VAE pre-trained for %d steps; latent scaling factor %.4f", spec.steps, vae.config.scaling_factor)
    vae.save_pretrained(out / PRETRAINED_VAE)


# ---------------------------------------------------------------------------------------- steps
def _encode_batch(components: Components, batch: dict[str, "torch.Tensor"], dtype: "torch.dtype") -> dict[str, "torch.Tensor"]:
    import torch

    with torch.no_grad():
        vae, scale = components.vae, components.vae.config.scaling_factor
        target = vae.encode(batch["target"].to(vae.dtype)).latent_dist.mean * scale
        reference = vae.encode(batch["reference"].to(vae.dtype)).latent_dist.mean * scale
        embeds = components.image_encoder(batch["clip"].to(components.image_encoder.dtype)).image_embeds[:, None]
    return {
        "latents": target.to(dtype),
        "reference_latents": reference.to(dtype),
        "image_embeds": embeds.to(dtype),
        "conditions": batch["conditions"].to(dtype),
    }


def _target(scheduler: "DDPMScheduler", latents: "torch.Tensor", noise: "torch.Tensor", timesteps: "torch.Tensor") -> "torch.Tensor":
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"scheduler prediction_type {kind!r} is not supported (epsilon or v_prediction)")


def diffusion_loss(
    net: Any,
    components: Components,
    encoded: dict[str, "torch.Tensor"],
    noise: "torch.Tensor",
    timesteps: "torch.Tensor",
    keep_reference: "torch.Tensor | None",
    backward: Any = None,
) -> "torch.Tensor":
    """MSE noise-prediction loss of one batch; ``backward(loss)`` runs inside the processors' scope
    (gradient checkpointing recomputes the denoising U-Net during backward, reading the bank)."""
    import torch

    from .models.reference_attention import reference_attention

    inner = net.module if hasattr(net, "module") else net
    scheduler = components.noise_scheduler
    noisy = scheduler.add_noise(encoded["latents"], noise, timesteps)
    with reference_attention(inner.reference_unet, inner.denoising_unet) as bank:
        prediction = net(
            bank,
            noisy,
            timesteps,
            encoded["reference_latents"],
            encoded["image_embeds"],
            encoded["conditions"],
            keep_reference,
        )
        target = _target(scheduler, encoded["latents"], noise, timesteps)
        loss = torch.nn.functional.mse_loss(prediction.float(), target.float())
        if backward is not None:
            backward(loss)
    return loss


def _fixed_noise_loss(net: Any, components: Components, encoded: dict[str, "torch.Tensor"], seed: int) -> float:
    """Loss at fixed noise and timesteps (spread over the schedule): comparable before and after."""
    import torch

    count = encoded["latents"].shape[0]
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(encoded["latents"].shape, generator=generator).to(encoded["latents"])
    steps = components.noise_scheduler.config.num_train_timesteps
    timesteps = torch.linspace(0, steps - 1, count).round().long().to(noise.device)
    with torch.no_grad():
        return float(diffusion_loss(net, components, encoded, noise, timesteps, None))


# ------------------------------------------------------------------------------------ main loop
def _latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*")) if folder.is_dir() else []
    return found[-1] if found else None


def _apply_lora(components: Components, config: TrainingConfig) -> None:
    from peft import LoraConfig

    assert config.lora is not None
    for unet in (components.reference_unet, components.denoising_unet):
        unet.requires_grad_(False)
        unet.add_adapter(
            LoraConfig(
                r=config.lora.rank,
                lora_alpha=config.lora.alpha,
                lora_dropout=config.lora.dropout,
                target_modules=list(config.lora.target_modules),
                init_lora_weights="gaussian",
            )
        )


def train_generator(config: TrainingConfig) -> TrainingResult:
    """Run (or resume) the training ``config`` describes and save the generator; see module docs."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from diffusers import DDIMScheduler
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from .data import PairsIndex
    from .models.two_branch import TwoBranchNet
    from .pipeline import PoseDivePipeline

    out = config.resolve(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # the reference U-Net's output layers get no gradient (only its attention inputs are used)
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(config.seed)
    components = build_components(config)
    index = PairsIndex([config.resolve(p) for p in config.data.pairs])
    if len(index) == 0:
        raise ValueError(f"data.pairs {config.data.pairs}: no pairs found")
    vae_scale = 2 ** (len(components.vae.config.block_out_channels) - 1)
    dataset = PairsTorchDataset(index, components.feature_extractor, vae_scale, config.data.width, config.data.height)
    logger.info("training on %d pairs from %d shard(s)", len(index), len(index.shards))

    if isinstance(config.model, ScratchInit) and not (out / PRETRAINED_VAE).is_dir() and config.model.vae_pretrain.steps > 0:
        with accelerator.main_process_first():
            if accelerator.is_main_process:
                spec = config.model.vae_pretrain
                images = PairsTorchDataset(
                    index,
                    components.feature_extractor,
                    vae_scale,
                    spec.width or config.data.width,
                    spec.height or config.data.height,
                )
                pretrain_vae(components, images, config, out)
    components.vae.requires_grad_(False).eval()
    components.image_encoder.requires_grad_(False).eval()
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.mixed_precision]
    components.vae.to(accelerator.device, dtype=weight_dtype)
    components.image_encoder.to(accelerator.device, dtype=weight_dtype)

    if config.lora is not None:
        _apply_lora(components, config)
    if config.gradient_checkpointing:
        components.reference_unet.enable_gradient_checkpointing()
        components.denoising_unet.enable_gradient_checkpointing()
    net = TwoBranchNet(components.reference_unet, components.denoising_unet, components.pose_guider)
    net.train()
    parameters = [p for p in net.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in parameters)
    optimizer = torch.optim.AdamW(
        parameters,
        lr=config.optim.learning_rate,
        betas=config.optim.betas,
        eps=config.optim.eps,
        weight_decay=config.optim.weight_decay,
    )
    lr_scheduler = get_scheduler(
        "constant_with_warmup",
        optimizer=optimizer,
        num_warmup_steps=config.optim.warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes,
    )
    train_set: Any = dataset
    if config.data.cache_latents:
        train_set = encode_dataset(components, dataset, config.batch_size, weight_dtype, accelerator.device)
    sampler = EpochSampler(len(dataset), config.seed)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=len(dataset) >= config.batch_size,
        num_workers=config.data.num_workers,
    )
    net, optimizer, loader, lr_scheduler = accelerator.prepare(net, optimizer, loader, lr_scheduler)

    checkpoints = out / CHECKPOINTS
    step = 0
    latest = _latest_checkpoint(checkpoints)
    if latest is not None:
        accelerator.load_state(str(latest))
        step = json.loads((latest / "trainer.json").read_text())["step"]
        logger.info("resumed from %s (step %d)", latest, step)

    eval_batch = _encode_batch(
        components,
        torch.utils.data.default_collate([dataset[i] for i in range(min(EVAL_PAIRS, len(dataset)))]),
        weight_dtype,
    )
    eval_batch = {k: v.to(accelerator.device) for k, v in eval_batch.items()}
    with accelerator.autocast():
        eval_before = _fixed_noise_loss(net, components, eval_batch, config.seed)

    batches = _batches(loader, sampler, step * config.gradient_accumulation_steps, accelerator.skip_first_batches)
    history: list[tuple[int, float]] = []
    window: list[float] = []
    first_window: float | None = None
    started = time.perf_counter()
    progress = tqdm(range(step, config.max_steps), desc="training", unit="step", disable=not accelerator.is_main_process)
    num_train_timesteps = components.noise_scheduler.config.num_train_timesteps
    while step < config.max_steps:
        # noise, timesteps and dropout of a step depend on (seed, step) only: resuming is exact
        noise_generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step + 1)
        for _ in range(config.gradient_accumulation_steps):
            batch = next(batches)
            with accelerator.accumulate(net):
                if config.data.cache_latents:
                    encoded = {k: v.to(accelerator.device, dtype=weight_dtype) for k, v in batch.items()}
                else:
                    encoded = _encode_batch(components, batch, weight_dtype)
                size = encoded["latents"].shape[0]
                noise = torch.randn(encoded["latents"].shape, generator=noise_generator).to(encoded["latents"])
                timesteps = torch.randint(0, num_train_timesteps, (size,), generator=noise_generator).to(noise.device)
                keep = (torch.rand(size, generator=noise_generator) >= config.data.reference_drop_prob).to(noise.device)
                with accelerator.autocast():
                    loss = diffusion_loss(net, components, encoded, noise, timesteps, keep, backward=accelerator.backward)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(parameters, config.optim.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window.append(float(loss.detach()))
        step += 1
        progress.update()
        if step % config.log_every == 0 or step == config.max_steps:
            mean = sum(window) / len(window)
            first_window = mean if first_window is None else first_window
            history.append((step, mean))
            progress.set_postfix(loss=f"{mean:.4f}")
            logger.debug("step %d loss %.5f", step, mean)
            window = []
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            _save_checkpoint(accelerator, checkpoints, step, config.keep_checkpoints)
    progress.close()
    seconds = time.perf_counter() - started

    with accelerator.autocast():
        eval_after = _fixed_noise_loss(net, components, eval_batch, config.seed)
    inner = accelerator.unwrap_model(net)
    generator_dir = config.resolve(config.generator_dir) if config.generator_dir is not None else out / GENERATOR
    result = TrainingResult(
        generator_dir=str(generator_dir),
        steps=step,
        seconds=round(seconds, 1),
        trainable_parameters=trainable,
        loss_first=first_window if first_window is not None else math.nan,
        loss_last=history[-1][1] if history else math.nan,
        eval_loss_before=eval_before,
        eval_loss_after=eval_after,
    )
    if accelerator.is_main_process:
        with (out / "loss.jsonl").open("a") as handle:
            for s, value in history:
                handle.write(json.dumps({"step": s, "loss": value}) + "\n")
        if config.lora is not None:
            for unet in (inner.reference_unet, inner.denoising_unet):
                unet.fuse_lora()
                unet.unload_lora()
        save_dtype = torch_dtype(config.save_dtype)
        pipeline = PoseDivePipeline(
            vae=components.vae,
            image_encoder=components.image_encoder,
            feature_extractor=components.feature_extractor,
            reference_unet=inner.reference_unet,
            denoising_unet=inner.denoising_unet,
            pose_guider=inner.pose_guider,
            scheduler=DDIMScheduler.from_config(components.noise_scheduler.config),
        )
        if save_dtype != torch.float32:
            pipeline.to(dtype=save_dtype)
        pipeline.save_pretrained(generator_dir, safe_serialization=True)
        training_metadata(config, result, index).save(generator_dir)
        logger.info(
            "saved generator to %s (%d steps, %.0f s; fixed-noise loss %.4f -> %.4f)",
            generator_dir, step, seconds, eval_before, eval_after,
        )
    accelerator.end_training()
    return result


def training_metadata(config: TrainingConfig, result: TrainingResult, index: "PairsIndex") -> "GeneratorMetadata":
    """The ``posedive_generator.json`` of a trained generator: its description, the resolved config
    (paths relative to the config file, so the record travels with the repository) and the data it saw
    (shard names and sha256)."""
    import hashlib
    import os

    from .generator import GeneratorMetadata

    def portable(path: str | Path) -> str:
        return Path(os.path.relpath(config.resolve(path), config.base_dir)).as_posix()

    resolved = json.loads(config.model_dump_json())
    resolved["output_dir"] = portable(config.output_dir)
    if config.generator_dir is not None:
        resolved["generator_dir"] = portable(config.generator_dir)
    resolved["data"]["pairs"] = [portable(p) for p in config.data.pairs]
    shards = [
        {"name": shard.name, "sha256": hashlib.sha256(shard.read_bytes()).hexdigest()} for shard in index.shards
    ]
    outcome = {k: v for k, v in asdict(result).items() if k != "generator_dir"}
    return GeneratorMetadata(
        description=config.description,
        resolution=(config.data.width, config.data.height),
        training={"config": resolved, "result": outcome, "pairs": len(index), "shards": shards},
    )


def _save_checkpoint(accelerator: Any, folder: Path, step: int, keep: int) -> None:
    target = folder / f"step-{step:07d}"
    accelerator.save_state(str(target))
    if accelerator.is_main_process:
        (target / "trainer.json").write_text(json.dumps({"step": step}) + "\n")
        for old in sorted(folder.glob("step-*"))[:-keep]:
            shutil.rmtree(old)
