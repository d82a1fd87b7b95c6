"""Training pairs in a generator's condition contract: the target maps a contract reads, drawn from a
fitted body, and existing pairs re-drawn for another family from the fits they store.

A pair holds posedive's own three maps always, plus the forms a family's contract reads
(``contract.extra_forms``: Champ's depth and semantic map, DWPose's skeleton), drawn by the code that
draws them for generation (``posedive.conditions.forms`` and ``condition_forms.contract_forms``), so a
fine-tuned released model trains on the pixels it is later sampled with. Each pair records the contract
its maps were written for.

Every pair ``posedive pairs`` writes stores its target's fit (camera and pose, ``provenance.fit``), so
:func:`redraw_pairs` re-renders a pairs folder for another family without tracking or fitting again; the
reference and target images are copied byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .condition_forms import contract_forms
from .contract import ConditionContract, forms_to_render

logger = logging.getLogger(__name__)


def target_maps(contract: ConditionContract, maps, where: str) -> dict[str, object]:
    """The ``TrainingPair`` fields of a target's maps (``posedive.conditions.fitted.FitMaps``, rendered with
    ``forms=forms_to_render(contract)``): posedive's depth / normal / skeleton and the contract's forms."""
    height, width = maps.depth.shape[:2]
    forms = contract_forms(contract, keypoints_2d=maps.keypoints_2d, size=(width, height), rendered=maps.forms,
                           where=where)
    return {"depth": maps.depth, "normal": maps.normal, "skeleton": maps.skeleton, "forms": forms,
            "contract": contract}


@dataclass(frozen=True)
class RedrawSummary:
    pairs: int
    shards: list[Path]


def redraw_pairs(source: Path | Sequence[Path], out: Path, body, contract: ConditionContract,
                 pairs_per_shard: int = 500) -> RedrawSummary:
    """Copy the pairs of ``source`` to ``out`` with their target maps drawn again, from each pair's stored
    fit, for ``contract``; an ``InputError`` naming the first pair with no fit or one of another body model."""
    from ..conditions.fitted import FitRenderer
    from ..fitting.result import FitResult
    from .data import PairsIndex, PairWriter

    index = PairsIndex(source)
    forms = forms_to_render(contract)
    with FitRenderer(body) as renderer, PairWriter(out, pairs_per_shard) as writer:
        for i in range(len(index)):
            pair, members = index[i], index.members(i)
            where = f"{index.shard_of(i)}: pair {pair.key}"
            fit = pair.provenance.get("fit")
            if not isinstance(fit, dict):
                raise InputError(f"{where} stores no fit (provenance.fit), so its maps cannot be drawn again",
                                 hint="make the pairs from the video: `posedive pairs VIDEO --out DIR --family ...`")
            fitted = FitResult.model_validate(fit)
            if fitted.model != body.name:
                raise InputError(f"{where} was fitted with the {fitted.model} body, not {body.name}",
                                 hint=f"pass --body {fitted.model}")
            (maps,) = renderer.render([fitted], forms=forms)
            fields = target_maps(contract, maps, where)
            redrawn = replace(pair, **fields)
            writer.write(redrawn, keep={name: members[name] for name in ("reference.jpg", "target.jpg")})
        shards = list(writer.shards)
        count = writer.count
    return RedrawSummary(pairs=count, shards=shards)

