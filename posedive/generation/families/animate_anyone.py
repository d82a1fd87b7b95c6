"""Moore-AnimateAnyone (Apache-2.0 code; weights ``patrolli/AnimateAnyone``): the paper's stage-1 model.

Read from its ``src/pipelines/pipeline_pose2img.py`` and ``configs/inference``: a pose drawing on one
``PoseGuider(3, (16, 32, 96, 256), 320)``, RGB; the CLIP image embedding of sd-image-variations on the
reference squashed to 224x224, zeros unconditional; DDIM linear betas with zero SNR, trailing spacing,
v-prediction, 30 steps, CFG 3.5. Its DWPose drawing of the body is OpenPose-18's limbs and colours,
which is what posedive draws (``skeleton/openpose18-rgb``); the hands and face it adds are not drawn.
"""

from ..contract import ConditionContract, ConditionMap
from .base import MOTION_MODULE_REASON, ZERO_SNR_DDIM, GeneratorFamily

ANIMATE_ANYONE = GeneratorFamily(
    name="animate-anyone",
    title="Moore-AnimateAnyone",
    code_licence="Apache-2.0",
    weights_licence="derived from SD-1.5 and sd-image-variations (CreativeML OpenRAIL-M)",
    hub_repo="patrolli/AnimateAnyone",
    release_files=("denoising_unet.pth", "reference_unet.pth", "pose_guider.pth"),
    optional_files={"motion_module.pth": MOTION_MODULE_REASON},
    contract=ConditionContract(
        maps=(ConditionMap(name="skeleton", encoding="dwpose-rgb", channels=3),),
        resolution=(512, 784),
        family="animate-anyone",
    ),
    guider_files={"": "pose_guider.pth"},
    identity="clip-image-embedding",
    scheduler=ZERO_SNR_DDIM,
    steps=30,
    guidance_scale=3.5,
)
