"""Pose2ID's IPG (Yuan et al., CVPR 2025): a pedestrian generator trained on Re-ID data.

Read from ``yuanc3/Pose2ID`` (``IPG/inference.py``, ``configs/inference.yaml``): an OpenPose-18 skeleton
read by OpenCV (so the guider sees BGR) on one ``PoseGuider(3, (16, 32, 64, 128), 320)``; TransReID +
IFR identity tokens whose unconditional tokens encode an all-zero normalised image; 256x512; DDIM with
*scaled_linear* zero-SNR betas, trailing spacing, v-prediction, 20 steps, CFG 3.5.
"""

from ..contract import ConditionContract, ConditionMap
from .base import ZERO_SNR_DDIM, GeneratorFamily

POSE2ID = GeneratorFamily(
    name="pose2id",
    title="Pose2ID IPG",
    code_licence="MIT",
    weights_licence="derived from SD-1.5 (CreativeML OpenRAIL-M) and TransReID trained on Market-1501 "
    "(research-only data terms)",
    hub_repo="yuanc3/Pose2ID",
    release_files=("denoising_unet.pth", "reference_unet.pth", "pose_guider.pth", "IFR.pth", "transformer_20.pth"),
    contract=ConditionContract(
        maps=(ConditionMap(name="skeleton", encoding="openpose18-bgr", channels=3),),
        resolution=(256, 512),
        family="pose2id",
    ),
    guider_files={"": "pose_guider.pth"},
    identity="transreid-ifr",
    scheduler=ZERO_SNR_DDIM | {"beta_schedule": "scaled_linear"},
    steps=20,
    guidance_scale=3.5,
)
