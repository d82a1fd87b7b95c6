"""The maps rendered on request, beyond posedive's own depth / normal / skeleton: Champ's depth and its
semantic map (``champ_maps``). One place draws them for every caller, so a generator sees the same pixels
whether the maps come from the conditions stage (a sampled camera, ``renderer.BodyConditionRenderer``)
or from a body fitted to a training image (``fitted.FitRenderer``, ``posedive pairs``).

The names are the keys of ``posedive.generation.contract.RENDERED_ON_REQUEST`` (that module lies above
this layer; the tests check the two agree).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..schema import Camera
from .champ_maps import encode_depth_champ, render_champ_semantic_map
from .render import MeshRasterizer, RenderedMaps

# What a form is drawn from: the posed body in one camera, the pass that gave posedive's own maps, and
# the SMPL part of each face (asked for only by the forms that need it: it costs a pass over the faces).
FacePartsOf = Callable[[np.ndarray], np.ndarray]


def _semantic_map(rasterizer: MeshRasterizer, vertices: np.ndarray, faces: np.ndarray, camera: Camera,
                  maps: RenderedMaps, face_parts: FacePartsOf) -> np.ndarray:
    return render_champ_semantic_map(rasterizer, vertices, faces, face_parts(faces), camera)


def _champ_depth(rasterizer: MeshRasterizer, vertices: np.ndarray, faces: np.ndarray, camera: Camera,
                 maps: RenderedMaps, face_parts: FacePartsOf) -> np.ndarray:
    return encode_depth_champ(maps.depth_m)


FORM_RENDERERS: dict[str, Callable[..., np.ndarray]] = {"semantic_map": _semantic_map, "depth_champ": _champ_depth}


def check_forms(names: Sequence[str]) -> None:
    """``ValueError`` naming the forms no renderer draws."""
    unknown = sorted(set(names) - set(FORM_RENDERERS))
    if unknown:
        raise ValueError(f"conditions cannot render the maps {unknown}; known: {', '.join(FORM_RENDERERS)}")


def render_forms(names: Sequence[str], rasterizer: MeshRasterizer, vertices: np.ndarray, faces: np.ndarray,
                 camera: Camera, maps: RenderedMaps, face_parts: FacePartsOf) -> dict[str, np.ndarray]:
    """The forms ``names`` of one posed body seen by ``camera`` (``maps``: the rasterizer's pass for
    posedive's own maps, which some forms re-encode), each (H, W, 3) uint8."""
    check_forms(names)
    return {name: FORM_RENDERERS[name](rasterizer, vertices, faces, camera, maps, face_parts) for name in names}
