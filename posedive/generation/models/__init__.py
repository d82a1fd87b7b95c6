"""Weights-bearing modules and attention processors of the two-branch generator."""

from .pose_guider import PoseGuider
from .reference_attention import (
    ReferenceBank,
    ReferenceReadProcessor,
    ReferenceWriteProcessor,
    pose_features_added,
    reference_attention,
)
from .two_branch import TwoBranchModel

__all__ = [
    "PoseGuider",
    "ReferenceBank",
    "ReferenceReadProcessor",
    "ReferenceWriteProcessor",
    "TwoBranchModel",
    "pose_features_added",
    "reference_attention",
]
