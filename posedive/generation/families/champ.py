"""Champ (MIT code; weights ``fudan-generative-ai/champ``): depth, normal, semantic map and DWPose guidance.

Read from its ``models/guidance_encoder.py`` and ``pipelines/pipeline_guidance2image.py``: one guidance
encoder per map (each map resized to W x H and divided by 255, RGB), outputs summed; each encoder is
posedive's conv stack plus one transformer block (``attentions.5``, 8 heads) before ``conv_out``. Its
``attentions.0-4`` and ``guidance_attention`` are built and saved but never run. Identity and schedule as
Moore-AnimateAnyone (CLIP squashed, zeros unconditional; DDIM linear zero-SNR, trailing, v-prediction).
The map encodings are Champ's own renders (``depth/champ``, ``normal/champ``,
``semantic_map/champ-parts``, ``skeleton/dwpose-rgb``).
"""

from ..contract import ConditionContract, ConditionMap
from ..state_dicts import UnusedKeys
from .base import MOTION_MODULE_REASON, ZERO_SNR_DDIM, GeneratorFamily

CHAMP_UNUSED = (
    UnusedKeys(pattern=r"attentions\.[0-4]\..*",
               reason="built and saved by Champ's guidance encoder but never run: its forward uses attentions[-1] only"),
    UnusedKeys(pattern=r"guidance_attention\..*",
               reason="built and saved by Champ's guidance encoder but never run"),
)

CHAMP = GeneratorFamily(
    name="champ",
    title="Champ",
    code_licence="MIT",
    weights_licence="derived from SD-1.5 and sd-image-variations (CreativeML OpenRAIL-M)",
    hub_repo="fudan-generative-ai/champ",
    release_files=(
        "denoising_unet.pth", "reference_unet.pth", "guidance_encoder_depth.pth", "guidance_encoder_normal.pth",
        "guidance_encoder_semantic_map.pth", "guidance_encoder_dwpose.pth",
    ),
    optional_files={"motion_module.pth": MOTION_MODULE_REASON},
    contract=ConditionContract(
        maps=(
            ConditionMap(name="depth", encoding="champ", channels=3),
            ConditionMap(name="normal", encoding="champ", channels=3),
            ConditionMap(name="semantic_map", encoding="champ-parts", channels=3),
            ConditionMap(name="skeleton", encoding="dwpose-rgb", channels=3),
        ),
        guiders="per_map",
        resolution=(512, 512),
        family="champ",
    ),
    guider_files={
        "depth": "guidance_encoder_depth.pth",
        "normal": "guidance_encoder_normal.pth",
        "semantic_map": "guidance_encoder_semantic_map.pth",
        "skeleton": "guidance_encoder_dwpose.pth",
    },
    guider_attention_heads=8,
    guider_unused=CHAMP_UNUSED,
    identity="clip-image-embedding",
    scheduler=ZERO_SNR_DDIM,
    steps=20,
    guidance_scale=3.5,
)
