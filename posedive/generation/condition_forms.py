"""The maps a condition contract reads beyond the three posedive renders: the forms the conditions stage
rendered on request (Champ's depth and semantic map, ``ConditionSet.forms``, drawn by
``posedive.conditions.forms``), plus the forms drawn on demand from projected keypoints (DWPose's
skeleton), so a default build renders and stores nothing more than posedive's own maps; and those maps
as images, as a pose guider reads them (``guider_views``, for contact sheets).

One code path serves generation (:func:`condition_maps`, from a condition set) and training pairs
(:func:`contract_forms`, from the maps of a fitted body, ``posedive pairs --family``): a generator reads
the same pixels in both.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..conditions.render import draw_dwpose_skeleton
from ..errors import InputError
from ..schema import ConditionSet
from .contract import DWPOSE_SOURCE, RENDERED_ON_REQUEST, ConditionContract, extra_forms


def contract_forms(contract: ConditionContract, *, keypoints_2d: np.ndarray, size: tuple[int, int],
                   rendered: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """The maps beyond posedive's own that ``contract`` reads (``extra_forms``), keyed by form: DWPose's
    skeleton drawn from ``keypoints_2d`` (18, 3) at ``size`` (width, height), the others taken from
    ``rendered`` (the forms rendered on request), an ``InputError`` naming ``where`` when one is missing."""
    maps: dict[str, np.ndarray] = {}
    for key in extra_forms(contract):
        if key == DWPOSE_SOURCE:
            maps[key] = draw_dwpose_skeleton(keypoints_2d, *size)
        elif key in RENDERED_ON_REQUEST:
            if key not in rendered:
                labels = ", ".join(m.label for m in contract.maps if m.form is not None and (m.form.source or m.name) == key)
                raise InputError(
                    f"{where} has no {key!r} map, which {labels} is read from",
                    hint="render the conditions for this generator's contract (posedive.conditions.renderer_spec "
                         "with forms=posedive.generation.contract.forms_to_render(contract))",
                )
            maps[key] = rendered[key]
    return maps


def condition_maps(conditions: ConditionSet, contract: ConditionContract) -> dict[str, np.ndarray]:
    """Every array ``conditions_to_tensor`` needs for ``contract``, keyed as the contract's forms read them."""
    height, width = conditions.skeleton.shape[:2]
    maps: dict[str, np.ndarray] = {
        item.name: getattr(conditions, item.name)
        for item in contract.maps
        if item.form is not None and item.form.source is None and item.name not in RENDERED_ON_REQUEST
    }
    maps.update(contract_forms(contract, keypoints_2d=conditions.keypoints_2d, size=(width, height),
                               rendered=conditions.forms, where=f"condition set {conditions.condition_id}"))
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
