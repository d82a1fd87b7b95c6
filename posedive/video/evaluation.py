"""Detection recall against hand-labelled boxes (how the detector choice is measured)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .detection import box_iou


def matched_boxes(predicted: Sequence[Sequence[float]], labelled: Sequence[Sequence[float]], min_iou: float = 0.5) -> int:
    """Labelled boxes matched one-to-one (Hungarian on IoU) by a prediction with IoU >= ``min_iou``."""
    if len(predicted) == 0 or len(labelled) == 0:
        return 0
    iou = box_iou(np.asarray(predicted, dtype=float), np.asarray(labelled, dtype=float))
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= min_iou).sum())


def recall(
    predicted: dict[int, Sequence[Sequence[float]]], labelled: dict[int, Sequence[Sequence[float]]], min_iou: float = 0.5
) -> tuple[float, int, int]:
    """(recall, matched, labelled) over frames: the PASCAL VOC rule, one prediction per labelled box."""
    total = sum(len(boxes) for boxes in labelled.values())
    if total == 0:
        raise ValueError("recall needs at least one labelled box")
    matched = sum(matched_boxes(predicted.get(frame, []), boxes, min_iou) for frame, boxes in labelled.items())
    return matched / total, matched, total
