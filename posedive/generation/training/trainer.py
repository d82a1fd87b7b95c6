"""One training run: :meth:`Trainer.setup` builds (or resumes), :meth:`Trainer.step` takes one
optimizer step, :meth:`Trainer.save` writes the generator; :func:`train_generator` runs them."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from diffusers import AutoencoderKL
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from ...errors import ConfigError
from ..checkpoint import GeneratorMetadata
from ..data import PairsIndex
from ..generator import torch_dtype
from ..models.two_branch import TwoBranchModel
from ..training_config import GeneratorInit, ScratchInit, TrainingConfig
from .checkpoints import CHECKPOINTS, checkpoint_step, latest_checkpoint, save_checkpoint
from .components import PRETRAINED_VAE, apply_lora, assemble_pipeline, build_components
from .continued import started_from
from .dataset import EncodedDataset, EpochSampler, PairsTorchDataset, encode_batch, encode_dataset, endless_batches
from .draws import draw, step_generator
from .loss import diffusion_loss, fixed_noise_loss
from .schedule import min_snr_weights, training_schedule
from .vae import pretrain_vae

logger = logging.getLogger(__name__)

GENERATOR = "generator"
EVAL_PAIRS = 8
WEIGHT_DTYPES: dict[str, torch.dtype] = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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


class Trainer:
    """Trains the generator ``config`` describes, resuming from its newest checkpoint."""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.out = config.resolve(config.output_dir)
        self.weight_dtype = WEIGHT_DTYPES[config.mixed_precision]
        self.completed = 0  # optimizer steps taken, resumed ones included

    # ----------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        """Build the parts, the data, the model and its optimiser; resume from the newest checkpoint."""
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            # the reference U-Net's output layers get no gradient (only its attention inputs are used)
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        set_seed(config.seed)  # the same initial weights on every process
        self.components = build_components(config)
        self._set_schedule()
        self.started_from = started_from(config) if self.accelerator.is_main_process else None  # saved by it
        self.index = PairsIndex([config.resolve(p) for p in config.data.pairs])
        if len(self.index) == 0:
            raise ConfigError(f"data.pairs {config.data.pairs}: no pairs found")
        self.dataset = self._pairs(config.data.width, config.data.height)
        logger.info("training on %d pairs from %d shard(s)", len(self.index), len(self.index.shards))
        self._pretrain_vae()
        self._freeze_encoders()
        self._build_model()
        self._build_loader()
        if self.accelerator.process_index:
            # module dropout draws from the global generator: one stream per process (process 0 keeps
            # the stream of a single-process run); a resumed run gets its streams back from the checkpoint
            set_seed(config.seed + self.accelerator.process_index)
        self._resume()
        self.eval_batch = self._eval_batch()

    def _set_schedule(self) -> None:
        """The run's noise schedule: the starting model's, with ``diffusion.schedule``'s changes."""
        components, changes = self.components, self.config.diffusion.schedule
        start = components.noise_scheduler.config.prediction_type
        components.noise_scheduler = training_schedule(components.noise_scheduler, changes)
        now = components.noise_scheduler.config.prediction_type
        if isinstance(self.config.model, GeneratorInit) and now != start:
            logger.warning("the continued generator was trained to predict %s; this run trains it to predict %s "
                           "(diffusion.schedule.prediction_type)", start, now)

    def _pairs(self, width: int, height: int) -> PairsTorchDataset:
        components = self.components
        return PairsTorchDataset(self.index, components.identity_encoder.preprocessor, components.vae_scale_factor,
                                 width, height, components.pose_guider.contract)

    def _pretrain_vae(self) -> None:
        """Scratch models only: pre-train the VAE once, on the main process; the others load its result."""
        init = self.config.model
        target = self.out / PRETRAINED_VAE
        needed = isinstance(init, ScratchInit) and init.vae_pretrain.steps > 0 and not target.is_dir()
        self.accelerator.wait_for_everyone()  # every process has decided before the main one writes the VAE
        if not needed:
            return
        assert isinstance(init, ScratchInit)
        if self.accelerator.is_main_process:
            spec = init.vae_pretrain
            images = self._pairs(spec.width or self.config.data.width, spec.height or self.config.data.height)
            pretrain_vae(self.components, images, self.config, self.out)
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            self.components.vae = AutoencoderKL.from_pretrained(target)

    def _freeze_encoders(self) -> None:
        components, device = self.components, self.accelerator.device
        components.vae.requires_grad_(False).eval()
        components.identity_encoder.requires_grad_(False).eval()
        components.vae.to(device, dtype=self.weight_dtype)
        components.identity_encoder.to(device, dtype=self.weight_dtype)

    def _build_model(self) -> None:
        config, components = self.config, self.components
        if config.lora is not None:
            apply_lora(components, config.lora)
        if config.gradient_checkpointing:
            components.reference_unet.enable_gradient_checkpointing()
            components.denoising_unet.enable_gradient_checkpointing()
        self.net: Any = TwoBranchModel(components.reference_unet, components.denoising_unet, components.pose_guider)
        self.net.train()
        self.parameters = [p for p in self.net.parameters() if p.requires_grad]
        self.trainable = sum(p.numel() for p in self.parameters)
        optim = config.optim
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=optim.learning_rate, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay
        )
        processes = self.accelerator.num_processes
        self.lr_scheduler = get_scheduler(
            "constant_with_warmup",
            optimizer=self.optimizer,
            num_warmup_steps=optim.warmup_steps * processes,
            num_training_steps=config.max_steps * processes,
        )

    def _build_loader(self) -> None:
        config = self.config
        train_set: PairsTorchDataset | EncodedDataset = self.dataset
        if config.data.cache_latents:
            train_set = encode_dataset(self.components, self.dataset, config.batch_size, self.weight_dtype,
                                       self.accelerator.device)
        self.sampler = EpochSampler(len(self.dataset), config.seed)
        loader = torch.utils.data.DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=self.sampler,
            drop_last=len(self.dataset) >= config.batch_size,
            num_workers=config.data.num_workers,
        )
        self.net, self.optimizer, self.loader, self.lr_scheduler = self.accelerator.prepare(
            self.net, self.optimizer, loader, self.lr_scheduler
        )

    def _resume(self) -> None:
        latest = latest_checkpoint(self.out / CHECKPOINTS)
        if latest is not None:
            self.accelerator.load_state(str(latest))
            self.completed = checkpoint_step(latest)
            logger.info("resumed from %s (step %d)", latest, self.completed)
        start = self.completed * self.config.gradient_accumulation_steps
        self.batches: Iterator[Any] = endless_batches(self.loader, self.sampler, start, self.accelerator.skip_first_batches)

    def _eval_batch(self) -> dict[str, torch.Tensor]:
        first = [self.dataset[i] for i in range(min(EVAL_PAIRS, len(self.dataset)))]
        batch = encode_batch(self.components, torch.utils.data.default_collate(first), self.weight_dtype)
        return {k: v.to(self.accelerator.device) for k, v in batch.items()}

    # ------------------------------------------------------------------------------------ steps
    def evaluate(self) -> float:
        """The fixed-noise loss on the first pairs."""
        with self.accelerator.autocast():
            return fixed_noise_loss(self.net, self.components.noise_scheduler, self.eval_batch, self.config.seed)

    def _encoded(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.config.data.cache_latents:
            return {k: v.to(self.accelerator.device, dtype=self.weight_dtype) for k, v in batch.items()}
        return encode_batch(self.components, batch, self.weight_dtype)

    def step(self) -> list[float]:
        """One optimizer step over ``gradient_accumulation_steps`` micro-batches; their losses."""
        config, accelerator = self.config, self.accelerator
        scheduler = self.components.noise_scheduler
        generator = step_generator(config.seed, self.completed, accelerator.process_index)
        gamma = config.diffusion.snr_gamma
        losses = []
        for _ in range(config.gradient_accumulation_steps):
            batch = next(self.batches)
            with accelerator.accumulate(self.net):
                encoded = self._encoded(batch)
                drawn = draw(generator, encoded["latents"], scheduler.config.num_train_timesteps,
                             config.data.reference_drop_prob, config.diffusion.noise_offset)
                weights = None if gamma is None else min_snr_weights(scheduler, drawn.timesteps, gamma)
                with accelerator.autocast():
                    loss = diffusion_loss(self.net, scheduler, encoded, drawn.noise, drawn.timesteps,
                                          drawn.keep_reference, backward=accelerator.backward, weights=weights)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(self.parameters, config.optim.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        self.completed += 1
        return losses

    # ------------------------------------------------------------------------------------- save
    @property
    def generator_dir(self) -> Path:
        config = self.config
        return config.resolve(config.generator_dir) if config.generator_dir is not None else self.out / GENERATOR

    def save(self, result: TrainingResult, history: list[tuple[int, float]]) -> None:
        """Main process: append the loss log and save the trained generator with its contract and metadata."""
        if not self.accelerator.is_main_process:
            return
        config = self.config
        with (self.out / "loss.jsonl").open("a") as handle:
            for step, value in history:
                handle.write(json.dumps({"step": step, "loss": value}) + "\n")
        model: TwoBranchModel = self.accelerator.unwrap_model(self.net)
        if config.lora is not None:
            for unet in (model.reference_unet, model.denoising_unet):
                unet.fuse_lora()
                unet.unload_lora()
        guider = model.pose_guider
        guider.set_contract(guider.contract.with_resolution(config.data.width, config.data.height))
        pipeline = assemble_pipeline(self.components, model.reference_unet, model.denoising_unet, guider)
        save_dtype = torch_dtype(config.save_dtype)
        if save_dtype != torch.float32:
            pipeline.to(dtype=save_dtype)
        pipeline.save_pretrained(self.generator_dir, safe_serialization=True)
        training_metadata(config, result, self.index, self.started_from).save(self.generator_dir)
        logger.info(
            "saved generator to %s (%d steps, %.0f s; fixed-noise loss %.4f -> %.4f; conditions %s)",
            self.generator_dir, result.steps, result.seconds, result.eval_loss_before, result.eval_loss_after,
            guider.contract.describe(),
        )

    # -------------------------------------------------------------------------------------- run
    def run(self) -> TrainingResult:
        """Set up, train to ``max_steps`` (logging and checkpointing on the way), save."""
        config = self.config
        self.setup()
        eval_before = self.evaluate()
        history: list[tuple[int, float]] = []
        window: list[float] = []
        first_window: float | None = None
        started = time.perf_counter()
        progress = tqdm(range(self.completed, config.max_steps), desc="training", unit="step",
                        disable=not self.accelerator.is_main_process)
        while self.completed < config.max_steps:
            window.extend(self.step())
            step = self.completed
            progress.update()
            if step % config.log_every == 0 or step == config.max_steps:
                mean = sum(window) / len(window)
                first_window = mean if first_window is None else first_window
                history.append((step, mean))
                progress.set_postfix(loss=f"{mean:.4f}")
                logger.debug("step %d loss %.5f", step, mean)
                window = []
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                save_checkpoint(self.accelerator, self.out / CHECKPOINTS, step, config.keep_checkpoints)
        progress.close()
        seconds = time.perf_counter() - started
        result = TrainingResult(
            generator_dir=str(self.generator_dir),
            steps=self.completed,
            seconds=round(seconds, 1),
            trainable_parameters=self.trainable,
            loss_first=first_window if first_window is not None else math.nan,
            loss_last=history[-1][1] if history else math.nan,
            eval_loss_before=eval_before,
            eval_loss_after=self.evaluate(),
        )
        self.save(result, history)
        self.accelerator.end_training()
        return result


def train_generator(config: TrainingConfig) -> TrainingResult:
    """Run (or resume) the training ``config`` describes and save the generator; see the package docs."""
    return Trainer(config).run()


def training_metadata(config: TrainingConfig, result: TrainingResult, index: PairsIndex,
                      init: dict[str, Any] | None = None) -> GeneratorMetadata:
    """The ``posedive_generator.json`` of a trained generator: its description, the resolved config
    (paths relative to the config file, so the record travels with the repository), the data it saw
    (shard names and sha256) and, for a continued generator, what it started from (``init``)."""

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
    training = {"config": resolved, "result": outcome, "pairs": len(index), "shards": shards}
    if init is not None:
        training["init"] = init
    return GeneratorMetadata(
        description=config.description,
        resolution=(config.data.width, config.data.height),
        training=training,
    )
