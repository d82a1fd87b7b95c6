"""Parametric body models (anny, SMPL): SMPL-24 pose and shape in, posed mesh and keypoints out.

See :mod:`~posedive.body.models`. Used by the conditions stage (target bodies) and by fitting.
"""

from .models import BodyModel, load_body_model

__all__ = ["BodyModel", "load_body_model"]
