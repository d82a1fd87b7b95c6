"""``PoseDivePipeline``: reference image + condition maps + seed -> person image.

Paper section 3.4 and supplementary 2. The call reads like the method:

1. check inputs;
2. encode the reference images twice: identity tokens (replace the text of Stable Diffusion's
   cross-attention: the ``identity_encoder`` component, or for generators saved before it the CLIP
   ``image_encoder``) and VAE latents (input of the reference U-Net);
3. run the reference U-Net once at t=0, its self-attention inputs written to a bank and projected
   into the denoising U-Net's keys and values once (``TwoBranchModel.encode_reference``);
4. encode the condition maps with the pose guider (eq. 7);
5. denoise from per-sample noise; every step reads the same bank (eq. 6) through
   ``TwoBranchModel.predict_noise``, the model step training uses too. Classifier-free guidance's
   unconditional rows see neither the reference tokens nor the identity tokens, only the pose and the
   identity encoder's unconditional tokens;
6. decode with the VAE.

Noise comes from one ``torch.Generator`` per sample, for the initial latents and for every noise a
stochastic scheduler draws in its steps, and every operation is per-sample, so an image does not
depend on the other images of its batch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from torch.nn import functional as F
from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

from ..errors import CheckpointError, InputError
from .contract import MAP_ENCODINGS, POSEDIVE_CONTRACT, ConditionContract
from .identity.base import IdentityEncoder
from .models.pose_guider import PoseGuider
from .models.two_branch import TwoBranchModel


@dataclass
class PoseDivePipelineOutput(BaseOutput):
    """``images``: PIL images, or a ``(B, H, W, 3)`` float array in [0, 1] for ``output_type="np"``."""

    images: list[PIL.Image.Image] | np.ndarray


def conditions_to_tensor(
    maps: Sequence[dict[str, np.ndarray]], height: int, width: int, contract: ConditionContract | None = None
) -> torch.Tensor:
    """Stack each sample's rendered uint8 maps into ``(B, contract.channels, height, width)`` in [0, 1], in
    the contract's order and encodings, resized bilinearly when their size differs.

    The default contract is posedive's: depth ``(H, W)``, normal ``(H, W, 3)`` and skeleton
    ``(H, W, 3)``, 7 channels in that order (eq. 7). A sample needs every map the contract names.
    """
    contract = contract or POSEDIVE_CONTRACT
    batch = []
    for index, sample in enumerate(maps):
        channels = []
        for item in contract.maps:
            form = item.form
            if form is None or form.channels != item.channels:
                known = ", ".join(f"{f.map}/{f.encoding} ({f.channels} ch)" for f in MAP_ENCODINGS.values())
                raise CheckpointError(
                    f"the condition contract asks for {item.label} ({item.channels} ch), which this posedive cannot "
                    f"make (it makes {known})"
                )
            key = form.source or item.name
            if key not in sample:
                raise InputError(f"conditions[{index}] has no {key!r} map (needs {item.label})")
            array = np.asarray(sample[key])
            if array.ndim == 2:
                array = array[:, :, None]
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != form.channels:
                raise InputError(
                    f"conditions[{index}][{item.name!r}] must be uint8 with {form.channels} channel(s), "
                    f"got {array.dtype} {array.shape}"
                )
            if form.channel_order is not None:
                array = array[:, :, list(form.channel_order)]
            channels.append(torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float() / 255.0)
        stacked = torch.cat(channels, 0)[None]
        if stacked.shape[-2:] != (height, width):
            stacked = F.interpolate(stacked, size=(height, width), mode="bilinear", align_corners=False)
        batch.append(stacked)
    return torch.cat(batch, 0)


class PoseDivePipeline(DiffusionPipeline):
    """Two-branch pose-guided generation (Pose-dIVE / AnimateAnyone architecture) on diffusers parts.

    Components: ``vae`` (frozen SD autoencoder), the identity encoder (``identity_encoder``, any
    :class:`~posedive.generation.identity.IdentityEncoder`; or, in generators saved before it, the CLIP
    vision tower ``image_encoder`` with its ``feature_extractor``, which crops the reference's centre
    square as it was trained), ``reference_unet`` and ``denoising_unet`` (two U-Nets of one
    architecture, both initialised from Stable Diffusion), ``pose_guider`` and ``scheduler``.
    """

    model_cpu_offload_seq = "identity_encoder->image_encoder->reference_unet->pose_guider->denoising_unet->vae"
    _optional_components = ["image_encoder", "feature_extractor", "identity_encoder"]

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModelWithProjection | None,
        feature_extractor: CLIPImageProcessorPil | None,
        reference_unet: UNet2DConditionModel,
        denoising_unet: UNet2DConditionModel,
        pose_guider: PoseGuider,
        scheduler: KarrasDiffusionSchedulers,
        identity_encoder: IdentityEncoder | None = None,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            reference_unet=reference_unet,
            denoising_unet=denoising_unet,
            pose_guider=pose_guider,
            scheduler=scheduler,
            identity_encoder=identity_encoder,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self._check_components()

    def _check_components(self) -> None:
        if self.pose_guider.downscale_factor != self.vae_scale_factor:
            raise CheckpointError(
                f"pose_guider downscales by {self.pose_guider.downscale_factor} but the VAE by {self.vae_scale_factor}"
            )
        width = self.denoising_unet.config.block_out_channels[0]
        if self.pose_guider.config.conditioning_embedding_channels != width:
            raise CheckpointError(
                f"pose_guider.conditioning_embedding_channels={self.pose_guider.config.conditioning_embedding_channels} "
                f"must equal denoising_unet.block_out_channels[0]={width}"
            )
        ref_config = {k: v for k, v in self.reference_unet.config.items() if not k.startswith("_")}
        den_config = {k: v for k, v in self.denoising_unet.config.items() if not k.startswith("_")}
        different = sorted(k for k in ref_config.keys() | den_config.keys() if ref_config.get(k) != den_config.get(k))
        if different:
            raise CheckpointError(f"reference_unet and denoising_unet must share one architecture; they differ in {different}")
        if self.identity_encoder is not None:
            embed, name = self.identity_encoder.token_dim, "identity_encoder.token_dim"
        elif self.image_encoder is not None and self.feature_extractor is not None:
            embed, name = self.image_encoder.config.projection_dim, "image_encoder.projection_dim"
        else:
            raise CheckpointError("the generator has no identity encoder: it needs identity_encoder, or "
                                  "image_encoder with feature_extractor")
        if self.denoising_unet.config.cross_attention_dim != embed:
            raise CheckpointError(
                f"denoising_unet.cross_attention_dim={self.denoising_unet.config.cross_attention_dim} must equal "
                f"{name}={embed}"
            )

    # ------------------------------------------------------------------------------ inference speed
    def fuse_qkv_projections(self) -> None:
        """One matmul for each self-attention's queries, keys and values (and each cross-attention's
        keys and values) in both U-Nets: the same outputs up to float rounding, fewer, larger kernels.
        For inference: the fused copies are extra weights that training would not update."""
        for unet in (self.reference_unet, self.denoising_unet):
            unet.fuse_qkv_projections()

    def compile_denoiser(self, **options: object) -> None:
        """``torch.compile`` the denoising U-Net, the model that runs ``2 x steps`` times per batch.

        It traces as one graph (``fullgraph=True`` by default): the reference-attention processors and
        the pose-feature hook are re-installed per call without recompiling, and a new batch size
        compiles once more. The first batch pays the compilation (minutes for SD-1.5 on a GPU).
        """
        self.denoising_unet.compile(**{"fullgraph": True, **options})

    # ----------------------------------------------------------------------------------- encoders
    def encode_identity(self, images: Sequence[PIL.Image.Image], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Identity tokens ``(B, N, D)`` of the references and the unconditional tokens ``(1, N, D)``."""
        if self.identity_encoder is not None:
            tokens = self.identity_encoder.encode_images(images)
            return tokens.to(dtype), self.identity_encoder.unconditional_tokens(1).to(dtype)
        rgb = [image.convert("RGB") for image in images]
        pixels = self.feature_extractor(images=rgb, return_tensors="pt").pixel_values
        embeds = self.image_encoder(pixels.to(device=self.image_encoder.device, dtype=self.image_encoder.dtype)).image_embeds
        embeds = embeds.unsqueeze(1).to(dtype)
        return embeds, torch.zeros_like(embeds[:1])

    def encode_reference_latents(
        self, images: Sequence[PIL.Image.Image], height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """VAE latents (distribution means, scaled) of the references squashed to ``width x height``."""
        rgb = [image.convert("RGB") for image in images]
        vae_input = self.image_processor.preprocess(rgb, height=height, width=width)
        vae_input = vae_input.to(device=device, dtype=self.vae.dtype)
        latents = self.vae.encode(vae_input).latent_dist.mean * self.vae.config.scaling_factor
        return latents.to(dtype)

    def check_inputs(
        self,
        reference_images: Sequence[PIL.Image.Image],
        conditions: torch.Tensor,
        generator: list[torch.Generator] | None,
        height: int,
        width: int,
        num_inference_steps: int,
    ) -> None:
        if len(reference_images) == 0:
            raise InputError("reference_images is empty")
        if not all(isinstance(image, PIL.Image.Image) for image in reference_images):
            raise InputError("reference_images must be PIL images")
        if height % self.vae_scale_factor or width % self.vae_scale_factor:
            raise InputError(f"height and width must be multiples of {self.vae_scale_factor}, got {width}x{height}")
        expected = (len(reference_images), self.pose_guider.config.conditioning_channels, height, width)
        if tuple(conditions.shape) != expected:
            raise InputError(f"conditions must have shape {expected}, got {tuple(conditions.shape)}")
        if generator is not None and len(generator) != len(reference_images):
            raise InputError(f"one generator per sample: got {len(generator)} for {len(reference_images)} references")
        if num_inference_steps < 1:
            raise InputError(f"num_inference_steps must be >= 1, got {num_inference_steps}")

    # ------------------------------------------------------------------------------------- call
    @torch.no_grad()
    def __call__(
        self,
        reference_images: Sequence[PIL.Image.Image],
        conditions: torch.Tensor,
        generator: list[torch.Generator] | None = None,
        height: int = 384,
        width: int = 192,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.5,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> PoseDivePipelineOutput | tuple:
        """Generate one image per reference.

        Args:
            reference_images: identity images (any size; resized to ``width x height``).
            conditions: ``(B, C, height, width)`` condition maps in [0, 1], stacked in the order of the
                pose guider's contract (``pose_guider.contract``; see :func:`conditions_to_tensor`).
            generator: one ``torch.Generator`` per sample; the noise of sample *i* (initial latents
                and a stochastic scheduler's step noise) comes from ``generator[i]`` only.
            guidance_scale: classifier-free guidance on the reference; <= 1 disables it.
        """
        self.check_inputs(reference_images, conditions, generator, height, width, num_inference_steps)
        device = self._execution_device
        dtype = self.denoising_unet.dtype
        batch = len(reference_images)
        guided = guidance_scale > 1.0
        model = TwoBranchModel(self.reference_unet, self.denoising_unet, self.pose_guider)

        image_embeds, unconditional_embeds = (tokens.to(device) for tokens in self.encode_identity(reference_images, dtype))
        reference_latents = self.encode_reference_latents(reference_images, height, width, device, dtype)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        shape = (batch, self.denoising_unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents * self.scheduler.init_noise_sigma
        # a stochastic step draws its noise row by row from the samples' own generators
        step_options = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        keep = torch.cat([torch.zeros(batch, dtype=torch.bool), torch.ones(batch, dtype=torch.bool)]).to(device) if guided else None

        with model.reference_attention() as bank:
            model.encode_reference(bank, reference_latents, image_embeds)
            pose_features = model.encode_conditions(conditions)
            with self.progress_bar(total=len(timesteps)) as bar:
                for t in timesteps:
                    model_input = torch.cat([latents] * 2) if guided else latents
                    model_input = self.scheduler.scale_model_input(model_input, t)
                    noise = model.predict_noise(bank, model_input, t, image_embeds, pose_features, keep, unconditional_embeds)
                    if guided:
                        uncond, cond = noise.chunk(2)
                        noise = uncond + guidance_scale * (cond - uncond)
                    latents = self.scheduler.step(noise, t, latents, **step_options, return_dict=False)[0]
                    bar.update()

        if output_type == "latent":
            images = latents
        else:
            decoded = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor, return_dict=False)[0]
            images = self.image_processor.postprocess(decoded.float(), output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return PoseDivePipelineOutput(images=images)
