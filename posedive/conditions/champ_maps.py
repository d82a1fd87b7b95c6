"""Champ's condition maps, made as its data preparation makes them (``fudan-generative-vision/champ``,
``scripts/data_processors/smpl/render_condition_maps.py`` and the node trees of its
``blend/smpl_rendering.blend``, read at commit ``02e5533``):

* **depth** (``depth/champ``): the compositor takes Cycles' Z pass, ``Normalize`` maps the body's depths
  to [0, 1] per image (the background's "infinite" depth is left out of the range and clamps to 1),
  then ``1 - x`` with clamping. So the nearest surface is 255, the farthest body surface 0, and the
  background 0 too; written as 8-bit grey with the ``Raw`` view transform, read by Champ as RGB (three
  equal channels). posedive's own ``near-bright`` depth differs only in keeping the farthest surface
  at 1, apart from the background.
* **normal** (``normal/champ``): an emission shader of the smooth shading normal transformed to camera
  space, coloured ``(0.5 + 0.5 x, 0.5 + 0.5 y, 0.5 - 0.5 z)``. Cycles' camera space looks along +z
  (x right, y up), so ``-z`` points to the viewer and a surface facing the camera is (128, 128, 255):
  the same colours as posedive's ``camera-opengl`` normal map, whose z points to the viewer. The
  background is black (transparent film written as RGB). So the rendered normal map is Champ's.
* **semantic map** (``semantic_map/champ-parts``): SMPL's vertices in their part colours
  (``render.CHAMP_PART_COLOURS``) through an emission shader; its world colour is the pelvis's, and
  Champ's dataset and inference zero everything outside the body mask (``mask_to_bkgd``), so the map a
  guidance encoder sees has a black background. posedive draws each face in one part's colour with no
  interpolation or anti-aliasing (``MeshRasterizer.render_face_colours``): every pixel is black or a
  part's colour, where Champ's one-sample Cycles render blends the colours of neighbouring vertices
  across the faces on a part's seam.

Blender dithers its 8-bit output (``dither_intensity`` 1); that noise of about one level is not reproduced.
"""

from __future__ import annotations

import numpy as np

from ..schema import Camera
from .render import MeshRasterizer, champ_part_colours


def encode_depth_champ(depth_m: np.ndarray) -> np.ndarray:
    """Metric depth along the optical axis (0 = background) -> Champ's (H, W, 3) uint8 depth map."""
    mask = depth_m > 0
    out = np.zeros(depth_m.shape, dtype=np.uint8)
    if mask.any():
        near, far = float(depth_m[mask].min()), float(depth_m[mask].max())
        normalised = (depth_m[mask] - near) / (far - near) if far > near else np.zeros(int(mask.sum()))
        out[mask] = np.round(255.0 * np.clip(1.0 - normalised, 0.0, 1.0)).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


def render_champ_semantic_map(rasterizer: MeshRasterizer, vertices: np.ndarray, faces: np.ndarray,
                              face_parts: np.ndarray, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8 semantic map: each face in its SMPL part's Champ colour on black."""
    return rasterizer.render_face_colours(vertices, faces, champ_part_colours(face_parts), camera)
