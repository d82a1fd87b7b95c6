"""What a generator family is: the released files, their condition contract, identity encoder and scheduler.

A family is data, not code: one :class:`GeneratorFamily` per released relative of posedive's generator
(one module each), read by the converter (:mod:`.convert`) and saved into the converted generator
folder (contract in ``pose_guider/config.json``, scheduler in ``scheduler/``, identity encoder in
``identity_encoder/``, the conversion record in ``posedive_generator.json``), so the folder describes
itself and loads through ``generator.weights`` like any posedive generator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..contract import ConditionContract
from ..state_dicts import UnusedKeys

IdentityKind = Literal["clip-image-embedding", "transreid-ifr"]

MOTION_MODULE_REASON = "temporal motion modules of the video stage; a still image runs without them"
REFERENCE_HEAD_REASON = (
    "the reference U-Net's output head: never run (only its self-attention inputs are read), and its "
    "release omits it; filled with zeros so the U-Net builds"
)
REFERENCE_HEAD_KEYS: tuple[str, ...] = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")


class GeneratorFamily(BaseModel):
    """One family: see the module docstring. ``guider_files`` maps each contract map (or ``""`` for a single
    guider on the stacked maps) to the released file holding its weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    code_licence: str
    weights_licence: str
    hub_repo: str = Field(description="where the released weights are")
    release_files: tuple[str, ...] = Field(description="the released .pth files the converter reads")
    optional_files: dict[str, str] = Field(default_factory=dict, description="released files not needed, and why")
    contract: ConditionContract
    guider_files: dict[str, str]
    guider_attention_heads: int | None = None
    guider_unused: tuple[UnusedKeys, ...] = ()
    identity: IdentityKind
    scheduler: dict[str, Any] = Field(description="DDIMScheduler arguments of the family's inference")
    steps: int
    guidance_scale: float

    @property
    def width(self) -> int:
        assert self.contract.resolution is not None
        return self.contract.resolution[0]

    @property
    def height(self) -> int:
        assert self.contract.resolution is not None
        return self.contract.resolution[1]


# The inference schedule the released relatives share (zero terminal SNR, v-prediction, trailing steps).
ZERO_SNR_DDIM: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    steps_offset=1,
    clip_sample=False,
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    prediction_type="v_prediction",
)
