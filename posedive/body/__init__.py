"""Parametric body models (anny, SMPL): SMPL-24 pose and shape in, posed mesh and keypoints out.

See :mod:`~posedive.body.models`; shape parameters in :mod:`~posedive.body.shape`, the population
``sampled`` bodies come from in :mod:`~posedive.body.population`. Used by the conditions stage
(target bodies) and by fitting.
"""

from .models import BodyModel, load_body_model
from .population import AnnyPopulation, PopulationSpec
from .shape import ANNY_PHENOTYPES, AnnyPhenotype

__all__ = ["ANNY_PHENOTYPES", "AnnyPhenotype", "AnnyPopulation", "BodyModel", "PopulationSpec", "load_body_model"]
