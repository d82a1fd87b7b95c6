"""The typed configuration of ``posedive train-generator`` (a YAML file, validated by Pydantic).

Three ways to initialise the model (``model.kind``):

* ``pretrained`` (paper stage 1): both U-Nets from the U-Net of SD image-variations (Stable Diffusion
  1.5 fine-tuned to read CLIP *image* embeddings, the tokens these U-Nets read; SD-1.5's text-to-image
  U-Net is the explicit alternative), the VAE and the noise schedule from Stable Diffusion 1.5 (or the
  VAE from ``sd-vae-ft-mse``), the CLIP image encoder from SD image-variations, each by Hub id (or
  local path) and revision; a fresh pose guider with a zero-initialised last layer.
* ``generator`` (paper stage 2): continue from a posedive generator checkpoint (stage 1's output, or
  a released model converted by ``posedive convert-generator``), with every component it holds: its
  VAE, encoders, pose guider and condition contract, and its noise schedule.
* ``scratch``: random initialisation from explicit architecture configs, with a short autoencoder
  pre-training of the VAE on the training images. Only for the offline demo model, which cannot
  download pre-trained weights; its images are crude and its metadata says so.

A new pose guider (``pretrained``, ``scratch``) is built for the condition contract its
``pose_guider.conditions`` describe (which maps, in which encoding, one guider or one per map); a
continued generator keeps its own. The trained generator saves that contract with the resolution
``data.width x data.height`` in its pose guider's config, so recipes are checked against it.

The training objective (``diffusion``) is the paper's plain one by default: the noise schedule the model
starts from, epsilon or velocity targets as that schedule says, unweighted mean squared error. The
quality aids the released relatives train with are options: a noise offset, min-SNR loss weights,
and a schedule rescaled to zero terminal SNR with velocity targets and trailing timesteps (which the
saved generator samples with).

Paths are relative to the config file. Validators do no I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..yamlfile import read_yaml
from .contract import MAP_ENCODINGS, POSEDIVE_MAPS, ConditionContract, ConditionMap, GuiderLayout

# A live mirror of Stable Diffusion 1.5 (the original runwayml repository was deleted), pinned by commit.
SD15_MIRROR = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD15_REVISION = "451f4fe16113bff5a5d2269ed5ad43b0592e9a14"
# SD image-variations: Stable Diffusion 1.5 fine-tuned to be conditioned on the CLIP ViT-L/14 image
# embedding instead of text; its vision tower (with projection) is the image encoder, and its U-Net the
# initialisation of both U-Nets, which read that embedding (as Moore-AnimateAnyone's stage 1 does).
IMAGE_ENCODER_REPO = "lambdalabs/sd-image-variations-diffusers"
IMAGE_ENCODER_REVISION = "v2.0"
# SD-1.5's autoencoder with its decoder fine-tuned (MSE-weighted) on LAION images: the VAE Moore-AnimateAnyone,
# Champ and Pose2ID train and sample with. Pinned by commit.
SD_VAE_FT_MSE = "stabilityai/sd-vae-ft-mse"
SD_VAE_FT_MSE_REVISION = "31f26fdeee1355a5c34592e401dd41e45d25a493"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConditionsSpec(_Strict):
    """The condition contract a new pose guider is built for (``posedive.generation.contract``)."""

    maps: list[ConditionMap] = Field(default_factory=lambda: list(POSEDIVE_MAPS), min_length=1,
                                     description="in channel order; each a map the training pairs hold")
    guiders: GuiderLayout = Field("concatenated", description="concatenated: one guider (eq. 7); per_map: one per map, summed")

    @field_validator("maps")
    @classmethod
    def _known_forms(cls, v: list[ConditionMap]) -> list[ConditionMap]:
        names = [item.name for item in v]
        if len(set(names)) != len(names):
            raise ValueError(f"a map is listed twice: {names}")
        for item in v:
            form = item.form
            if form is None or form.channels != item.channels:
                known = ", ".join(f"{{name: {f.map}, encoding: {f.encoding}, channels: {f.channels}}}"
                                  for f in MAP_ENCODINGS.values())
                raise ValueError(f"{item.label} with {item.channels} channel(s) is not a map posedive makes; one of {known}")
        return v

    def contract(self, width: int, height: int) -> ConditionContract:
        return ConditionContract(maps=tuple(self.maps), guiders=self.guiders, resolution=(width, height))


class PoseGuiderSpec(_Strict):
    conditioning_channels: int | None = Field(None, ge=1, description="channels of the stacked maps (default: the maps')")
    block_out_channels: list[int] = Field(default_factory=lambda: [16, 32, 96, 256])
    conditions: ConditionsSpec = Field(default_factory=ConditionsSpec)

    @model_validator(mode="after")
    def _channels_of_the_maps(self) -> "PoseGuiderSpec":
        total = sum(item.channels for item in self.conditions.maps)
        if self.conditioning_channels is not None and self.conditioning_channels != total:
            raise ValueError(f"conditioning_channels={self.conditioning_channels} but conditions.maps have {total} channels")
        return self

    @property
    def channels(self) -> int:
        return sum(item.channels for item in self.conditions.maps)


class WeightsSource(_Strict):
    """One pre-trained component: a Hub id or a local folder (relative to the config file), the revision
    it is pinned to, and the subfolder that holds it (``null``: the top level, where ``sd-vae-ft-mse``
    keeps its VAE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    revision: str | None = None
    subfolder: str | None = None


IMAGE_VARIATIONS_UNET = WeightsSource(path=IMAGE_ENCODER_REPO, revision=IMAGE_ENCODER_REVISION, subfolder="unet")
SD15_UNET = WeightsSource(path=SD15_MIRROR, revision=SD15_REVISION, subfolder="unet")
SD_VAE_FT_MSE_VAE = WeightsSource(path=SD_VAE_FT_MSE, revision=SD_VAE_FT_MSE_REVISION)


class PretrainedInit(_Strict):
    kind: Literal["pretrained"]
    base: str = Field(SD15_MIRROR, description="Stable Diffusion 1.5 checkpoint (Hub id or local folder): the "
                      "noise schedule (scheduler/), and the VAE (vae/) unless `vae` names another")
    base_revision: str | None = SD15_REVISION
    unet: WeightsSource = Field(
        IMAGE_VARIATIONS_UNET,
        description="the U-Net both U-Nets start from; SD-1.5's own: {path: <base>, revision: <base_revision>, subfolder: unet}",
    )
    vae: WeightsSource | None = Field(
        None, description=f"the frozen VAE; null: the base's vae/ (sd-vae-ft-mse: {{path: {SD_VAE_FT_MSE}, "
        f"revision: {SD_VAE_FT_MSE_REVISION}}})"
    )
    image_encoder: str = Field(IMAGE_ENCODER_REPO, description="repo with image_encoder/ and feature_extractor/")
    image_encoder_revision: str | None = IMAGE_ENCODER_REVISION
    pose_guider: PoseGuiderSpec = Field(default_factory=PoseGuiderSpec)


class GeneratorInit(_Strict):
    """Continue a posedive generator: ``posedive train-generator CONFIG --init-from PATH`` sets this."""

    kind: Literal["generator"]
    path: str = Field(description="posedive generator checkpoint (Hub id or local folder)")
    revision: str | None = None


class VaePretrainConfig(_Strict):
    steps: int = Field(500, ge=0)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    kl_weight: float = Field(1e-6, ge=0)
    width: int | None = Field(
        None, ge=8, multiple_of=8, description="pre-train at this size (the VAE is convolutional); default data.width"
    )
    height: int | None = Field(None, ge=8, multiple_of=8, description="default data.height")


class ScratchInit(_Strict):
    kind: Literal["scratch"]
    unet: dict[str, Any] = Field(description="UNet2DConditionModel arguments (both U-Nets)")
    vae: dict[str, Any] = Field(description="AutoencoderKL arguments")
    image_encoder: dict[str, Any] = Field(description="CLIPVisionConfig arguments")
    pose_guider: PoseGuiderSpec = Field(default_factory=PoseGuiderSpec)
    scheduler: dict[str, Any] = Field(default_factory=dict, description="DDPMScheduler arguments")
    vae_pretrain: VaePretrainConfig = Field(default_factory=VaePretrainConfig)


ModelInit = Annotated[Union[PretrainedInit, GeneratorInit, ScratchInit], Field(discriminator="kind")]


class DataConfig(_Strict):
    pairs: list[str] = Field(min_length=1, description="pairs folders or .tar shards (posedive.generation.data)")
    width: int = Field(192, ge=8, multiple_of=8)
    height: int = Field(384, ge=8, multiple_of=8)
    reference_drop_prob: float = Field(
        0.1, ge=0, lt=1, description="drop reference tokens and CLIP embedding, to learn classifier-free guidance"
    )
    num_workers: int = Field(0, ge=0)
    cache_latents: bool = Field(
        False,
        description="encode every pair once with the frozen VAE and CLIP before training (small data sets)",
    )


class OptimConfig(_Strict):
    """AdamW with the paper's settings (section 4.1: lr 1e-5, weight decay 0.01)."""

    learning_rate: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float = Field(1.0, gt=0)
    warmup_steps: int = Field(0, ge=0)


class LoraSpec(_Strict):
    """Train low-rank adapters of both U-Nets' attention projections (plus the whole pose guider)."""

    rank: int = Field(16, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])


class ScheduleOverrides(_Strict):
    """Changes to the noise schedule the model starts from (the base's ``scheduler/``, the continued
    generator's scheduler, or a scratch model's ``model.scheduler``); ``null`` keeps its value. Training
    noises with the result and the saved generator samples with it (a DDIM scheduler of its config)."""

    beta_schedule: Literal["linear", "scaled_linear"] | None = Field(
        None, description="betas linear in t, or linear in sqrt(beta) (SD-1.5's scaled_linear)"
    )
    beta_start: float | None = Field(None, gt=0, lt=1)
    beta_end: float | None = Field(None, gt=0, lt=1)
    prediction_type: Literal["epsilon", "v_prediction"] | None = Field(
        None, description="what the U-Net predicts: the noise, or the velocity (needed with zero terminal SNR)"
    )
    rescale_betas_zero_snr: bool | None = Field(
        None, description="rescale the betas so that the last timestep is pure noise (Lin et al. 2024)"
    )
    timestep_spacing: Literal["leading", "linspace", "trailing"] | None = Field(
        None, description="which timesteps sampling visits; trailing starts at the last (pure-noise) one"
    )
    steps_offset: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _increasing_betas(self) -> "ScheduleOverrides":
        if self.beta_start is not None and self.beta_end is not None and self.beta_start >= self.beta_end:
            raise ValueError(f"beta_start={self.beta_start} must be below beta_end={self.beta_end}")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class DiffusionConfig(_Strict):
    """The training objective. The defaults are the paper's plain recipe."""

    noise_offset: float = Field(
        0.0, ge=0, description="scale of a per-sample, per-channel constant added to the training noise "
        "(0: none; the released relatives use 0.05)"
    )
    snr_gamma: float | None = Field(
        None, gt=0, description="min-SNR loss weights min(SNR, gamma) / SNR, or / (SNR + 1) for velocity targets "
        "(Hang et al. 2023; null: unweighted; the released relatives use 5)"
    )
    schedule: ScheduleOverrides = Field(default_factory=ScheduleOverrides)


class TrainingConfig(_Strict):
    description: str = Field(description="what this model is, for its card: data, stage, purpose")
    output_dir: Path = Field(description="checkpoints, logs and (by default) the trained generator")
    generator_dir: Path | None = Field(None, description="where the trained generator goes; default OUTPUT/generator")
    model: ModelInit
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    lora: LoraSpec | None = None
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    max_steps: int = Field(ge=1, description="optimizer steps (each of gradient_accumulation_steps batches)")
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    seed: int = 0
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    save_dtype: Literal["float32", "float16", "bfloat16"] = "float32"

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def pose_guider(self) -> PoseGuiderSpec | None:
        """The spec of a new pose guider; ``None`` when the model continues a generator (it keeps its own)."""
        return None if isinstance(self.model, GeneratorInit) else self.model.pose_guider

    @model_validator(mode="after")
    def _scratch_without_lora(self) -> "TrainingConfig":
        if self.lora is not None and self.model.kind == "scratch":
            raise ValueError("lora adapts pre-trained U-Nets; a scratch model trains all weights (remove lora)")
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def resolve(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else self._base_dir / path

    def with_base_dir(self, base_dir: Path) -> "TrainingConfig":
        self._base_dir = Path(base_dir)
        return self

    def starting_from(self, path: str, revision: str | None = None) -> "TrainingConfig":
        """This config continuing the posedive generator ``path`` (a local folder, absolute or relative
        to the config file, or a Hub id) at ``revision``, whatever its ``model`` section said."""
        init = GeneratorInit(kind="generator", path=path, revision=revision)
        return self.model_copy(update={"model": init}).with_base_dir(self.base_dir)


def load_training_config(path: Path | str) -> TrainingConfig:
    """Read and validate a training YAML; errors name the file and each bad field."""
    path = Path(path)
    data = read_yaml(path, "training config")
    try:
        config = TrainingConfig.model_validate(data)
    except ValidationError as error:
        lines = [f"{path}: invalid training config ({error.error_count()} problem(s))"]
        for item in error.errors():
            lines.append(f"  {'.'.join(str(p) for p in item['loc']) or '<root>'}: {item['msg']}")
        raise ConfigError("\n".join(lines)) from None
    return config.with_base_dir(path.resolve().parent)
