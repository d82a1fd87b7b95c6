"""The maps a condition contract reads from one condition set: the rendered maps it names, the forms the
conditions stage rendered on request (Champ's depth and semantic map, ``ConditionSet.forms``), plus the
forms drawn on demand from the set's projected keypoints (DWPose's skeleton), so a default build
renders and stores nothing more than posedive's own maps."""

from __future__ import annotations

import numpy as np

from ..conditions.render import draw_dwpose_skeleton
from ..errors import InputError
from ..schema import ConditionSet
from .contract import DWPOSE_SOURCE, RENDERED_ON_REQUEST, ConditionContract


def condition_maps(conditions: ConditionSet, contract: ConditionContract) -> dict[str, np.ndarray]:
    """Every array ``conditions_to_tensor`` needs for ``contract``, keyed as the contract's forms read them."""
    maps: dict[str, np.ndarray] = {}
    for item in contract.maps:
        form = item.form
        if form is None:
            continue  # conditions_to_tensor names the map this posedive cannot make
        key = form.source or item.name
        if key == DWPOSE_SOURCE:
            height, width = conditions.skeleton.shape[:2]
            maps[key] = draw_dwpose_skeleton(conditions.keypoints_2d, width, height)
        elif key in RENDERED_ON_REQUEST:
            if key not in conditions.forms:
                raise InputError(
                    f"condition set {conditions.condition_id} has no {key!r} map, which {item.label} is read from",
                    hint="render the conditions for this generator's contract (posedive.conditions.renderer_spec "
                         "with forms=posedive.generation.contract.forms_to_render(contract))",
                )
            maps[key] = conditions.forms[key]
        else:
            maps[key] = getattr(conditions, item.name)
    return maps
