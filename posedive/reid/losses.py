"""BoT losses: label-smoothed cross-entropy on the BN feature's logits, batch-hard triplet on ``f_t``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against ``(1 - eps) * one_hot + eps / C`` (Szegedy et al. 2016; eps = 0.1 in BoT)."""

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label smoothing epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits, dim=1)
        smooth = torch.full_like(log_probs, self.epsilon / logits.shape[1])
        smooth.scatter_add_(1, targets[:, None], torch.full_like(log_probs[:, :1], 1.0 - self.epsilon))
        return -(smooth * log_probs).sum(dim=1).mean()


class BatchHardTripletLoss(nn.Module):
    """Hermans et al. 2017: per anchor, the farthest positive and the nearest negative in the batch.

    ``max(0, d(a, p_hardest) - d(a, n_hardest) + margin)`` with Euclidean distances, averaged over anchors.
    Needs at least one other image of each anchor's identity in the batch (the PxK sampler ensures it).
    """

    def __init__(self, margin: float = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(features, features).clamp_min(1e-12)
        same = targets[:, None] == targets[None, :]
        if not (same.sum(dim=1) > 1).all() or same.all():
            raise ValueError("a batch-hard triplet batch needs >= 2 images per identity and >= 2 identities")
        hardest_positive = dist.masked_fill(~same, float("-inf")).max(dim=1).values
        hardest_negative = dist.masked_fill(same, float("inf")).min(dim=1).values
        return F.relu(hardest_positive - hardest_negative + self.margin).mean()
