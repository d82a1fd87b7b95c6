"""Shape parameters of the body models, named and typed.

* anny: its six default phenotype parameters, each on anny's own [0, 1] scale, in anny's order
  (``ANNY_PHENOTYPES``). 0.5 everywhere is the neutral body posedive has always rendered (1.63 m:
  anny's age 0.5 lies between its child (1/3) and young-adult (2/3) anchors). anny's ``gender`` runs
  from 0 (male) to 1 (female): its blend shapes are ordered male, female and its population model
  draws boys' heights for gender <= 0.5.
* SMPL: the model file's shape coefficients (betas), zero = the template.

``BodyModel.shape()`` answers with the plain list of values (what provenance stores), and
``BodyModel.shape_labels`` names them.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

ANNY_PHENOTYPES: tuple[str, ...] = ("gender", "age", "muscle", "weight", "height", "proportions")
NEUTRAL_VALUE = 0.5


def _unit(description: str):
    return Field(NEUTRAL_VALUE, ge=0.0, le=1.0, description=description)


class AnnyPhenotype(BaseModel):
    """anny's phenotype parameters (anny's scale, each in [0, 1]; 0.5 = neutral)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gender: float = _unit("0 = male, 1 = female")
    age: float = _unit("anny's age axis: 0 newborn, 1/3 child, 2/3 young adult, 1 old; adults are ~0.77-0.89")
    muscle: float = _unit("0 = least, 1 = most muscular")
    weight: float = _unit("0 = thinnest, 1 = heaviest")
    height: float = _unit("0 = shortest, 1 = tallest (adults average ~0.35-0.39)")
    proportions: float = _unit("0 = ideal, 1 = uncommon body proportions")

    def values(self) -> list[float]:
        return [float(getattr(self, name)) for name in ANNY_PHENOTYPES]

    @classmethod
    def from_values(cls, values: Sequence[float]) -> "AnnyPhenotype":
        values = [float(v) for v in values]
        if len(values) != len(ANNY_PHENOTYPES):
            raise ValueError(
                f"expected {len(ANNY_PHENOTYPES)} anny phenotype values {ANNY_PHENOTYPES}, got {len(values)}"
            )
        return cls(**dict(zip(ANNY_PHENOTYPES, values)))


def smpl_beta_labels(count: int) -> tuple[str, ...]:
    return tuple(f"beta{i}" for i in range(count))


def shape_labels(model: str, count: int) -> tuple[str, ...]:
    """The names of a body model's ``count`` shape values."""
    return ANNY_PHENOTYPES if model == "anny" else smpl_beta_labels(count)


__all__ = ["ANNY_PHENOTYPES", "AnnyPhenotype", "NEUTRAL_VALUE", "shape_labels", "smpl_beta_labels"]
