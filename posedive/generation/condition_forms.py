"""The maps a condition contract reads from one condition set: the rendered maps it names, plus the
forms drawn on demand from the set's projected keypoints (DWPose's skeleton), so a default build
renders and stores nothing more than posedive's own maps."""

from __future__ import annotations

import numpy as np

from ..conditions.render import draw_dwpose_skeleton
from ..schema import ConditionSet
from .contract import DWPOSE_SOURCE, ConditionContract


def condition_maps(conditions: ConditionSet, contract: ConditionContract) -> dict[str, np.ndarray]:
    """Every array ``conditions_to_tensor`` needs for ``contract``, keyed as the contract's forms read them."""
    maps: dict[str, np.ndarray] = {}
    for item in contract.maps:
        form = item.form
        source = form.source if form is not None else None
        if source == DWPOSE_SOURCE:
            height, width = conditions.skeleton.shape[:2]
            maps[source] = draw_dwpose_skeleton(conditions.keypoints_2d, width, height)
        elif form is not None and source is None:
            maps[item.name] = getattr(conditions, item.name)
    return maps
