"""The maps a condition contract reads from one condition set: the rendered maps it names, the forms the
conditions stage rendered on request (Champ's depth and semantic map, ``ConditionSet.forms``), plus the
forms drawn on demand from the set's projected keypoints (DWPose's skeleton), so a default build
renders and stores nothing more than posedive's own maps; and those maps as images, as a pose guider reads
them (``guider_views``, for contact sheets)."""

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


def guider_views(conditions: ConditionSet, contract: ConditionContract) -> list[tuple[str, np.ndarray]]:
    """Each map of ``contract`` as its pose guider reads it, as ``(label, (H, W, 3) uint8)`` in channel
    order: the form's channels in the contract's order (a BGR skeleton shows with red and blue swapped, as
    the guider sees it) and one-channel maps as grey. A map this posedive cannot make raises ``InputError``."""
    maps = condition_maps(conditions, contract)
    views = []
    for item in contract.maps:
        form = item.form
        if form is None:
            raise InputError(f"the condition contract reads {item.label}, which this posedive cannot make",
                             hint="upgrade posedive, or use a generator whose maps it makes")
        array = np.asarray(maps[form.source or item.name])
        array = array[:, :, None] if array.ndim == 2 else array
        if form.channel_order is not None:
            array = array[:, :, list(form.channel_order)]
        views.append((item.label, np.ascontiguousarray(np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array)))
    return views
