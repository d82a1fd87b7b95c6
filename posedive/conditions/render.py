"""Rendering the three condition maps (paper eq. 8): depth, surface normals and an OpenPose skeleton.

pyrender draws headless through EGL (``PYOPENGL_PLATFORM=egl`` is set, unless the user chose a
platform, before OpenGL is first imported): Mesa's llvmpipe on a CPU machine, the GPU where there is
one. One unlit pass with vertex colours set to camera-frame normals gives the normal map and, from
the same pass, the metric depth buffer.

Encodings (all ``uint8``, ``H x W`` from the recipe, 192x384 by default):

* depth ``(H, W)``: 0 is background; on the body, per-image normalised inverse depth, 255 at the
  nearest surface and 1 at the farthest (the usual "near is bright" convention of depth
  conditions). Larger metric depth always means a smaller value.
* normal ``(H, W, 3)``: the unit surface normal in camera axes x right, y up, z towards the
  viewer, encoded ``round((n + 1) / 2 * 255)``: a surface facing the camera is (128, 128, 255).
  Background is black. (OpenCV's camera axes are flipped in y and z relative to these.)
* skeleton ``(H, W, 3)``: OpenPose-18 limbs and joints in OpenPose's colours on black, drawn from
  the body's projected 3D joints; joints outside the image are left out with their limbs.

Other generator families read other forms of the same conditions, made on demand from the same
keypoints and body: :func:`draw_dwpose_skeleton` (DWPose's body drawing, as Moore-AnimateAnyone and
Champ feed it) and :func:`champ_part_colours` (Champ's semantic-map palette over SMPL's 24 parts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import formats
from ..errors import MissingDependency
from ..schema import Camera

# Part of the gallery's cache key: bump whenever the pixels a request produces change.
RENDERER_VERSION = str(formats.RENDERER.version)

# OpenPose-18 limbs (0-based pairs) and colours, as OpenPose and ControlNet draw them.
OPENPOSE_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
OPENPOSE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

# Champ's semantic-map colours (RGB) of SMPL's 24 skinning parts, indexed by SMPL joint (0 pelvis,
# 1 left hip, ..., 15 head, ..., 22/23 hands): the vertex colours of Champ's SMPL rendering
# (``scripts/data_processors/smpl/blend/smpl_mesh_info.npy``, stored BGR there and reversed before
# rendering), a viridis ramp in joint order. Champ's pipeline zeroes everything outside the body mask
# (``mask_to_bkgd``), so the background a guidance encoder sees is black.
CHAMP_PART_COLOURS: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84), (71, 16, 99), (72, 29, 111), (71, 42, 122), (69, 55, 129), (65, 66, 135),
    (61, 78, 138), (56, 89, 140), (51, 99, 141), (46, 109, 142), (42, 118, 142), (39, 128, 142),
    (35, 137, 142), (32, 146, 140), (30, 156, 137), (33, 165, 133), (40, 174, 128), (53, 183, 121),
    (70, 192, 111), (90, 200, 100), (112, 207, 87), (137, 213, 72), (162, 218, 55), (189, 223, 38),
)  # fmt: skip
SMPL_HEAD_PART = 15
SMPL_PELVIS_PART = 0

# OpenGL camera axes (x right, y up, z backwards) in OpenCV camera axes.
CV_TO_GL = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class RenderedMaps:
    depth_m: np.ndarray  # (H, W) float32 metric depth along the optical axis, 0 = background
    normal: np.ndarray  # (H, W, 3) uint8, encoded as in the module docstring
    mask: np.ndarray  # (H, W) bool, body pixels


def encode_depth(depth_m: np.ndarray) -> np.ndarray:
    """Metric depth (0 = background) -> the uint8 depth map described in the module docstring."""
    mask = depth_m > 0
    out = np.zeros(depth_m.shape, dtype=np.uint8)
    if not mask.any():
        return out
    near, far = float(depth_m[mask].min()), float(depth_m[mask].max())
    span = max(far - near, 1e-6)
    out[mask] = np.round(255.0 - 254.0 * (depth_m[mask] - near) / span).astype(np.uint8)
    return out


def decode_normal(normal: np.ndarray) -> np.ndarray:
    """uint8 normal map -> unit vectors in the (x right, y up, z to viewer) camera axes."""
    vectors = normal.astype(np.float32) / 127.5 - 1.0
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-6)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, incidence=None) -> np.ndarray:
    """Area-weighted unit vertex normals; ``incidence`` (from :func:`face_incidence`) makes it fast."""
    v = np.asarray(vertices, dtype=np.float32)[faces]
    face_normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    if incidence is None:
        incidence = face_incidence(faces, len(vertices))
    normals = incidence @ face_normals
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def face_incidence(faces: np.ndarray, vertex_count: int):
    """Sparse (V, F) matrix summing each face's value into its three vertices."""
    from scipy.sparse import csr_matrix

    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(vertex_count, len(faces)))


def _limb_ellipse(start: np.ndarray, end: np.ndarray, stick: int, to_int) -> np.ndarray:
    """The polygon of a limb drawn as an ellipse from ``start`` to ``end``, ``stick`` px half-wide; ``to_int``
    is how the drawing style turns positions, lengths and angles into integers (OpenPose rounds, DWPose
    truncates)."""
    import cv2

    (xa, ya), (xb, yb) = start, end
    length = float(np.hypot(xb - xa, yb - ya))
    angle = float(np.degrees(np.arctan2(yb - ya, xb - xa)))
    centre = (to_int((xa + xb) / 2), to_int((ya + yb) / 2))
    return cv2.ellipse2Poly(centre, (to_int(length / 2), stick), to_int(angle), 0, 360, 1)


def draw_skeleton(keypoints_2d: np.ndarray, width: int, height: int, stick_width: int | None = None) -> np.ndarray:
    """OpenPose-18 skeleton image from (18, 3) pixel joints (x, y, visible flag)."""
    import cv2

    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    stick = stick_width or max(2, int(round(4 * height / 512)))
    visible = keypoints_2d[:, 2] > 0
    for index, (a, b) in enumerate(OPENPOSE_LIMBS):
        if not (visible[a] and visible[b]):
            continue
        polygon = _limb_ellipse(keypoints_2d[a, :2], keypoints_2d[b, :2], stick, lambda v: int(round(v)))
        colour = tuple(int(0.6 * c) for c in OPENPOSE_COLOURS[index])
        cv2.fillConvexPoly(canvas, polygon, colour, lineType=cv2.LINE_AA)
    for index in np.flatnonzero(visible):
        x, y = keypoints_2d[index, :2]
        cv2.circle(canvas, (int(round(x)), int(round(y))), stick, OPENPOSE_COLOURS[index], -1, lineType=cv2.LINE_AA)
    return canvas


def draw_dwpose_skeleton(keypoints_2d: np.ndarray, width: int, height: int) -> np.ndarray:
    """DWPose's body drawing (``draw_bodypose`` as Moore-AnimateAnyone and Champ use it) from (18, 3)
    pixel joints (x, y, visible flag), RGB: the 17 OpenPose limbs as ellipses 4 px wide in full
    colour, the whole canvas then dimmed to 60 %, the joints as 4 px discs in full colour on top, no
    anti-aliasing, pixel positions truncated. DWPose also draws hands and a face, but the posed body's
    18 joints carry none, so only the body is drawn.
    """
    import cv2

    stick = 4
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    visible = keypoints_2d[:, 2] > 0
    for index, (a, b) in enumerate(OPENPOSE_LIMBS):
        if not (visible[a] and visible[b]):
            continue
        polygon = _limb_ellipse(keypoints_2d[a, :2], keypoints_2d[b, :2], stick, int)
        cv2.fillConvexPoly(canvas, polygon, OPENPOSE_COLOURS[index])
    canvas = (canvas * 0.6).astype(np.uint8)
    for index in np.flatnonzero(visible):
        x, y = keypoints_2d[index, :2]
        cv2.circle(canvas, (int(x), int(y)), stick, OPENPOSE_COLOURS[index], -1)
    return canvas


def champ_part_colours(part_labels: np.ndarray) -> np.ndarray:
    """(V,) SMPL part indices (0-23, e.g. the argmax of a vertex's skinning weights) -> (V, 3) uint8
    RGB colours of Champ's semantic map."""
    labels = np.asarray(part_labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CHAMP_PART_COLOURS)):
        raise ValueError(f"SMPL part labels must lie in 0..{len(CHAMP_PART_COLOURS) - 1}")
    return np.asarray(CHAMP_PART_COLOURS, dtype=np.uint8)[labels]


# The system libraries headless rendering needs, by Debian/Ubuntu package name.
EGL_PACKAGES: tuple[str, ...] = ("libegl1", "libegl-mesa0", "libgl1-mesa-dri")


def _use_egl() -> None:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def _missing_egl(error: BaseException) -> MissingDependency:
    packages = " ".join(EGL_PACKAGES)
    return MissingDependency(
        f"headless rendering (pyrender through EGL) is not available: {error}",
        hint=f"install the system EGL libraries, e.g. `apt-get install {packages}` on Debian/Ubuntu",
    )


def _is_egl_failure(error: BaseException) -> bool:
    return "EGL" in " ".join(str(arg) for arg in error.args) or "EGL" in type(error).__name__


class MeshRasterizer:
    """One reusable pyrender ``OffscreenRenderer`` (creating one costs ~200 ms) for one image size.

    Without the system EGL libraries pyrender fails deep inside PyOpenGL; that failure becomes a
    ``MissingDependency`` naming the packages to install. Any other failure propagates unchanged.
    """

    def __init__(self, width: int, height: int) -> None:
        _use_egl()
        try:
            import pyrender

            renderer = pyrender.OffscreenRenderer(int(width), int(height))
        except Exception as error:
            if _is_egl_failure(error):
                raise _missing_egl(error) from error
            raise
        self._pyrender = pyrender
        self.width, self.height = int(width), int(height)
        self._renderer = renderer
        self._scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(1.0, 1.0, 1.0))
        self._incidence = None
        self._faces_id: int | None = None

    def render(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> RenderedMaps:
        pyrender = self._pyrender
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(f"camera is {camera.width}x{camera.height}, the rasterizer {self.width}x{self.height}")
        if self._faces_id != id(faces) or self._incidence is None:
            self._incidence = face_incidence(faces, len(vertices))
            self._faces_id = id(faces)
        R = np.asarray(camera.R)
        normals_gl = vertex_normals(vertices, faces, self._incidence) @ R.T @ CV_TO_GL.T
        colours = np.concatenate([(normals_gl + 1.0) / 2.0, np.ones((len(vertices), 1))], axis=1)
        primitive = pyrender.Primitive(
            positions=np.asarray(vertices, dtype=np.float32),
            indices=np.asarray(faces, dtype=np.uint32),
            color_0=colours.astype(np.float32),
            material=pyrender.MetallicRoughnessMaterial(baseColorFactor=(1.0, 1.0, 1.0, 1.0), doubleSided=True),
        )
        mesh_node = self._scene.add(pyrender.Mesh([primitive]))
        camera_node = self._add_camera(camera)
        try:
            colour, depth = self._renderer.render(self._scene, flags=pyrender.RenderFlags.FLAT)
        finally:
            self._scene.remove_node(mesh_node)
            self._scene.remove_node(camera_node)
        mask = depth > 0
        normal = np.where(mask[..., None], colour[..., :3], 0).astype(np.uint8)
        return RenderedMaps(depth_m=depth.astype(np.float32), normal=normal, mask=mask)

    def render_face_colours(self, vertices: np.ndarray, faces: np.ndarray, face_colours: np.ndarray,
                            camera: Camera) -> np.ndarray:
        """(H, W, 3) uint8: every face in its own ``(F, 3)`` uint8 colour, black background.

        Flat: no lighting, no interpolation between faces and no anti-aliasing, so every pixel is the
        background or exactly one face's colour (a label map, such as Champ's semantic map). pyrender's
        segmentation pass is that pass: one constant colour per mesh node and multisampling off. So the
        faces are grouped by colour, one node per colour."""
        pyrender = self._pyrender
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(f"camera is {camera.width}x{camera.height}, the rasterizer {self.width}x{self.height}")
        face_colours = np.asarray(face_colours, dtype=np.uint8)
        if face_colours.shape != (len(faces), 3):
            raise ValueError(f"face colours must be ({len(faces)}, 3), got {face_colours.shape}")
        positions = np.asarray(vertices, dtype=np.float32)
        palette, groups = np.unique(face_colours, axis=0, return_inverse=True)
        nodes = {}
        for index, colour in enumerate(palette):
            # Each node carries only its own faces' vertices: uploading the whole mesh per colour is slow.
            used, local = np.unique(faces[groups.reshape(-1) == index], return_inverse=True)
            primitive = pyrender.Primitive(
                positions=positions[used], indices=local.reshape(-1, 3).astype(np.uint32),
                material=pyrender.MetallicRoughnessMaterial(doubleSided=True),
            )
            nodes[self._scene.add(pyrender.Mesh([primitive]))] = [int(c) for c in colour]
        camera_node = self._add_camera(camera)
        try:
            colour, _ = self._renderer.render(self._scene, flags=pyrender.RenderFlags.SEG, seg_node_map=nodes)
        finally:
            for node in nodes:
                self._scene.remove_node(node)
            self._scene.remove_node(camera_node)
        return np.ascontiguousarray(colour[..., :3], dtype=np.uint8)

    def _add_camera(self, camera: Camera):
        """Add ``camera`` (OpenCV axes) to the scene as pyrender's OpenGL-axes camera; returns its node."""
        R, t, K = np.asarray(camera.R), np.asarray(camera.t), np.asarray(camera.K)
        pose = np.eye(4)
        pose[:3, :3] = R.T @ CV_TO_GL
        pose[:3, 3] = -R.T @ t
        znear = max(0.01, camera.distance_m - 3.0)
        cam = self._pyrender.IntrinsicsCamera(
            fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], znear=znear, zfar=camera.distance_m + 3.0
        )
        return self._scene.add(cam, pose=pose)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None
