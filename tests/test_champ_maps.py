"""Champ's condition maps: SMPL part labels of anny's and SMPL's vertices, the flat semantic-map pass,
Champ's depth and normal encodings, and the conditions stage rendering what a Champ contract reads."""

from __future__ import annotations

import numpy as np
import pytest
from test_conditions_smpl import write_smpl_model

from posedive.body.models import SMPLBody
from posedive.body.parts import anny_bone_parts, face_parts, vertex_parts_from_weights
from posedive.conditions.champ_maps import encode_depth_champ, render_champ_semantic_map
from posedive.conditions.posebank import PoseBank
from posedive.conditions.render import CHAMP_PART_COLOURS, MeshRasterizer, encode_depth
from posedive.conditions.renderer import FORM_RENDERERS, BodyConditionRenderer, RendererSpec, requested_forms
from posedive.errors import InputError
from posedive.generation.condition_forms import condition_maps
from posedive.generation.contract import (
    POSEDIVE_CONTRACT,
    RENDERED_ON_REQUEST,
    ConditionContract,
    ConditionMap,
    contract_problems,
    forms_to_render,
)
from posedive.generation.families.champ import CHAMP
from posedive.generation.pipeline import conditions_to_tensor
from posedive.geometry.cameras import camera_for
from posedive.geometry.rotations import SMPL_JOINTS
from posedive.schema import RENDERABLE_MAPS, ConditionRequest

J = {name: i for i, name in enumerate(SMPL_JOINTS)}
BLACK = (0, 0, 0)
W, H = 96, 192


def _colours(image: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def _centre(image: np.ndarray, part: int) -> np.ndarray:
    """(x, y) mean pixel of one part's colour; fails when the part is not in the image."""
    ys, xs = np.nonzero((image == CHAMP_PART_COLOURS[part]).all(axis=-1))
    assert len(xs), f"part {SMPL_JOINTS[part]} is not in the semantic map"
    return np.array([xs.mean(), ys.mean()])


def _check_front_view(semantic: np.ndarray) -> None:
    """What a semantic map of an upright body seen from the front shows."""
    assert _colours(semantic) <= set(CHAMP_PART_COLOURS) | {BLACK}  # flat: nothing blended, black background
    assert tuple(semantic[0, 0]) == BLACK
    assert _centre(semantic, J["head"])[1] < _centre(semantic, J["pelvis"])[1]  # head above the pelvis
    assert _centre(semantic, J["pelvis"])[1] < _centre(semantic, J["left_knee"])[1]
    # Seen from the front, the body's left is on the image's right, and each side has its own colour.
    for left, right in (("left_wrist", "right_wrist"), ("left_knee", "right_knee"), ("left_shoulder", "right_shoulder")):
        assert CHAMP_PART_COLOURS[J[left]] != CHAMP_PART_COLOURS[J[right]]
        assert _centre(semantic, J[left])[0] > _centre(semantic, J[right])[0]


# ----------------------------------------------------------------------------------- part labels
def test_smpl_vertices_take_the_joint_with_the_largest_skinning_weight():
    weights = np.zeros((3, 24))
    weights[0, [0, 3]] = (0.3, 0.7)
    weights[1, 15] = 1.0
    weights[2, [20, 22]] = (0.6, 0.4)
    assert vertex_parts_from_weights(weights).tolist() == [3, 15, 20]
    with pytest.raises(ValueError, match="24"):
        vertex_parts_from_weights(np.zeros((3, 23)))


def test_anny_bones_map_to_smpl_parts_with_fingers_toes_and_eyes_their_own():
    labels = ["root", "upperleg01.L", "foot.L", "toe1-1.L", "spine01", "neck01", "head", "eye.R",
              "wrist.R", "metacarpal1.R", "finger1-1.R", "finger1-2.R"]
    parents = [-1, 0, 1, 2, 0, 4, 5, 6, 4, 8, 9, 10]
    driving = {"root": "pelvis", "upperleg01.L": "left_hip", "foot.L": "left_ankle", "spine01": "spine3",
               "neck01": "neck", "head": "head", "wrist.R": "right_wrist"}
    parts = anny_bone_parts(labels, parents, driving)
    expected = ["pelvis", "left_hip", "left_ankle", "left_foot", "spine3", "neck", "head", "head",
                "right_wrist", "right_hand", "right_hand", "right_hand"]
    assert [SMPL_JOINTS[p] for p in parts] == expected


def test_a_face_takes_the_part_most_of_its_vertices_have():
    faces = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 4]])
    vertex = np.array([5, 5, 7, 7, 9])
    assert face_parts(faces, vertex).tolist() == [5, 5, 7, 5]


@pytest.fixture(scope="module")
def anny():
    from posedive.body.models import AnnyBody

    return AnnyBody()


def test_every_anny_vertex_has_an_smpl_part_and_every_part_has_vertices(anny):
    parts = anny.vertex_parts()
    counts = np.bincount(parts, minlength=24)
    assert len(parts) == 13718 and counts.min() > 0 and len(counts) == 24
    assert counts.argmax() == J["head"]  # the head (face, ears, eyes) has the most vertices, as on SMPL
    # the two sides mirror each other
    for left, right in (("left_hip", "right_hip"), ("left_hand", "right_hand"), ("left_foot", "right_foot")):
        assert counts[J[left]] == counts[J[right]]


# ----------------------------------------------------------------------------------- the flat pass
@pytest.fixture
def rasterizer():
    # One per test: closing a renderer ends EGL's shared display, so none may outlive another's close.
    renderer = MeshRasterizer(W, H)
    yield renderer
    renderer.close()


def test_semantic_map_of_anny_seen_from_the_front(anny, rasterizer):
    body = anny.forward(np.zeros((1, 72)))
    camera = camera_for(body.vertices[0], elevation_deg=0, azimuth_deg=0, fov_deg=30, width=W, height=H)
    semantic = render_champ_semantic_map(rasterizer, body.vertices[0], body.faces,
                                         face_parts(body.faces, anny.vertex_parts()), camera)
    _check_front_view(semantic)
    # every body pixel of the depth pass is a part pixel (the flat pass covers the same silhouette)
    mask = rasterizer.render(body.vertices[0], body.faces, camera).mask
    assert (semantic.any(axis=-1) == mask).mean() > 0.99


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smpl")
    write_smpl_model(folder, half_size=0.05)
    return folder


def test_semantic_map_of_an_smpl_body_seen_from_the_front(smpl_dir, rasterizer):
    body = SMPLBody(smpl_dir)
    # the synthetic model's cubes are rigidly skinned to their joints: the argmax gives each cube its joint
    assert body.vertex_parts().tolist() == np.repeat(np.arange(24), 8).tolist()
    out = body.forward(np.zeros((1, 72)))
    camera = camera_for(out.vertices[0], elevation_deg=0, azimuth_deg=0, fov_deg=30, width=W, height=H)
    semantic = render_champ_semantic_map(rasterizer, out.vertices[0], out.faces,
                                         face_parts(out.faces, body.vertex_parts()), camera)
    _check_front_view(semantic)


def test_face_colours_are_drawn_flat_and_checked(rasterizer):
    vertices, faces = _quad(0.0, 1.0)
    camera = camera_for(vertices, elevation_deg=0, azimuth_deg=0, fov_deg=30, width=W, height=H)
    image = rasterizer.render_face_colours(vertices, faces, np.array([[10, 200, 30], [250, 5, 60]]), camera)
    assert _colours(image) == {BLACK, (10, 200, 30), (250, 5, 60)}
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        rasterizer.render_face_colours(vertices, faces, np.zeros((1, 3)), camera)


# ---------------------------------------------------------------------- Champ's depth and normals
def _quad(z: float, half: float, tilt: tuple[float, float] = (0.0, 0.0), centre=(0.0, 0.0)):
    """A square facing +z (towards a camera at azimuth 0), optionally turned by ``tilt`` (radians about y, x)."""
    corners = np.array([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]])
    about_y, about_x = tilt
    ry = np.array([[np.cos(about_y), 0, np.sin(about_y)], [0, 1, 0], [-np.sin(about_y), 0, np.cos(about_y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(about_x), -np.sin(about_x)], [0, np.sin(about_x), np.cos(about_x)]])
    vertices = corners @ (rx @ ry).T + np.array([centre[0], centre[1], z])
    return vertices.astype(np.float32), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)


def _mesh(*quads):
    vertices = np.concatenate([q[0] for q in quads])
    faces = np.concatenate([q[1] + 4 * i for i, q in enumerate(quads)])
    return vertices, faces


def test_champ_depth_is_normalised_near_bright_with_the_farthest_surface_at_zero(rasterizer):
    vertices, faces = _mesh(_quad(0.0, 0.6), _quad(0.4, 0.15))  # a small square 40 cm in front of a large one
    camera = camera_for(vertices, elevation_deg=0, azimuth_deg=0, fov_deg=30, width=W, height=H)
    maps = rasterizer.render(vertices, faces, camera)
    depth = encode_depth_champ(maps.depth_m)
    assert depth.shape == (H, W, 3) and (depth == depth[..., :1]).all()  # grey stored as RGB
    centre, back, outside = depth[H // 2, W // 2], depth[H // 2, int(W * 0.12)], depth[2, 2]
    assert tuple(centre) == (255, 255, 255) and tuple(back) == (0, 0, 0) and tuple(outside) == (0, 0, 0)
    # posedive's own encoding keeps the farthest surface apart from the background
    assert encode_depth(maps.depth_m)[H // 2, int(W * 0.12)] == 1
    # in between: linear in metric depth, 255 * (1 - (d - near) / (far - near))
    ramp = rasterizer.render(*_quad(0.0, 0.5, tilt=(0.6, 0.0)), camera)
    body = ramp.depth_m > 0
    near, far = ramp.depth_m[body].min(), ramp.depth_m[body].max()
    expected = np.round(255 * (1 - (ramp.depth_m[body] - near) / (far - near)))
    assert np.abs(encode_depth_champ(ramp.depth_m)[..., 0][body] - expected).max() <= 1


def test_champ_normals_face_the_viewer_blue_right_red_up_green(rasterizer):
    tilt = np.pi / 4
    vertices, faces = _mesh(
        _quad(0.0, 0.2, centre=(0.0, -0.5)),  # facing the camera
        _quad(0.0, 0.2, tilt=(tilt, 0.0), centre=(0.0, 0.0)),  # turned to face the image's right
        _quad(0.0, 0.2, tilt=(0.0, -tilt), centre=(0.0, 0.5)),  # turned to face up
    )
    camera = camera_for(vertices, elevation_deg=0, azimuth_deg=0, fov_deg=30, width=W, height=H)
    normal = rasterizer.render(vertices, faces, camera).normal
    champ_normal = ConditionContract(maps=(ConditionMap(name="normal", encoding="champ", channels=3),), family="champ")
    champ = condition_maps(_conditions(normal), champ_normal)["normal"]
    assert champ is normal  # Champ's normal colours are the rendered camera-frame normals
    rows = np.nonzero(normal.any(axis=-1))[0]
    column = W // 2
    bottom, middle, top = rows.max() - 3, (rows.min() + rows.max()) // 2, rows.min() + 3
    diagonal = int(round((np.sin(tilt) + 1) / 2 * 255))  # 218
    assert np.abs(normal[bottom, column].astype(int) - (128, 128, 255)).max() <= 1
    assert np.abs(normal[middle, column].astype(int) - (diagonal, 128, diagonal)).max() <= 1
    assert np.abs(normal[top, column].astype(int) - (128, diagonal, diagonal)).max() <= 1
    assert tuple(normal[0, 0]) == BLACK


# ------------------------------------------------------------------------- the contract's maps
def _conditions(normal: np.ndarray | None = None, forms: dict | None = None):
    from posedive.schema import BodyParams, Camera, ConditionSet

    normal = np.zeros((H, W, 3), np.uint8) if normal is None else normal
    height, width = normal.shape[:2]
    keypoints = np.zeros((18, 3), np.float32)
    camera = Camera(elevation_deg=0, azimuth_deg=0, distance_m=3, fov_deg=30, width=width, height=height,
                    K=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], R=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], t=[0, 0, 0])
    body = BodyParams(model="anny", pose_id="0", pose=[0.0] * 72)
    return ConditionSet("c", np.zeros((height, width), np.uint8), normal, np.zeros((height, width, 3), np.uint8),
                        keypoints, camera, body, forms=forms or {})


def test_champ_contract_asks_the_conditions_stage_for_its_depth_and_semantic_map():
    assert forms_to_render(CHAMP.contract) == ("depth_champ", "semantic_map")
    assert forms_to_render(POSEDIVE_CONTRACT) == ()
    assert set(FORM_RENDERERS) == set(RENDERED_ON_REQUEST)
    # Champ's generator can be served: nothing is reported missing any more
    assert contract_problems(CHAMP.contract, width=512, height=512, provided=RENDERABLE_MAPS,
                             generator="champ", family="champ") == []
    assert requested_forms((), ["depth", "semantic_map"]) == ("semantic_map",)
    assert requested_forms(("depth_champ", "semantic_map"), ["semantic_map"]) == ("depth_champ", "semantic_map")


def test_champ_maps_reach_the_guidance_encoders_in_contract_order():
    depth = np.full((H, W, 3), 40, np.uint8)
    semantic = np.zeros((H, W, 3), np.uint8)
    semantic[10:20] = CHAMP_PART_COLOURS[J["head"]]
    conditions = _conditions(np.full((H, W, 3), 200, np.uint8), {"depth_champ": depth, "semantic_map": semantic})
    maps = condition_maps(conditions, CHAMP.contract)
    assert set(maps) == {"depth_champ", "normal", "semantic_map", "skeleton_dwpose"}
    tensor = conditions_to_tensor([maps], H, W, CHAMP.contract)[0]
    assert tensor.shape == (12, H, W)
    assert np.allclose(tensor[0:3].numpy(), 40 / 255) and np.allclose(tensor[3:6].numpy(), 200 / 255)
    assert np.allclose(tensor[6:9, 15, 0].numpy(), np.array(CHAMP_PART_COLOURS[J["head"]]) / 255)
    with pytest.raises(InputError, match="depth_champ"):
        condition_maps(_conditions(), CHAMP.contract)


# --------------------------------------------------------------------------- the conditions stage
def _spec(tmp_path, smpl_dir, forms=()) -> RendererSpec:
    bank = PoseBank.from_arrays(np.zeros((1, 72)), ["rest"], ["test"], ["rest"], [0], ["test"])
    bank.save(tmp_path / "bank.npz")
    return RendererSpec(bank_path=tmp_path / "bank.npz", body_model="smpl", smpl_model_dir=smpl_dir,
                        width=W, height=H, cache_root=tmp_path / "cache", forms=tuple(forms))


def test_the_conditions_stage_renders_and_caches_only_the_forms_asked_for(tmp_path, smpl_dir):
    request = ConditionRequest(pose_id="rest", elevation_deg=0.0, azimuth_deg=0.0)
    with BodyConditionRenderer(_spec(tmp_path, smpl_dir)) as plain:
        posedive_only = plain.render([request])[0]
        plain_id = plain.condition_id(request)
    assert dict(posedive_only.forms) == {}
    spec = _spec(tmp_path, smpl_dir, ("depth_champ", "semantic_map"))
    with BodyConditionRenderer(spec) as renderer:
        conditions = renderer.render([request])[0]
        assert renderer.condition_id(request) != plain_id  # a set without the forms is never reused for them
    assert set(conditions.forms) == {"depth_champ", "semantic_map"}
    _check_front_view(conditions.forms["semantic_map"])
    body = conditions.depth > 0
    assert (conditions.forms["depth_champ"][..., 0] > 0).sum() < body.sum()  # the farthest surface goes to 0
    assert np.array_equal(conditions.maps(["semantic_map"])["semantic_map"], conditions.forms["semantic_map"])
    with BodyConditionRenderer(spec) as again:
        cached = again.cache.get(again.condition_id(request))
    assert cached is not None and set(cached.forms) == set(conditions.forms)
    for name, array in conditions.forms.items():
        assert np.array_equal(cached.forms[name], array)
    with pytest.raises(KeyError, match="semantic_map"):
        posedive_only.maps(["semantic_map"])
    with pytest.raises(ValueError, match="cannot render"):
        _spec(tmp_path, smpl_dir, ("depth_metric",))


# --------------------------------------------------------------------------------- training pairs
def test_training_pairs_carry_champ_forms_and_training_reads_the_contracts_maps():
    from posedive.generation.data import PAIR_FORMS, TrainingPair, decode_pair, encode_pair

    assert set(PAIR_FORMS) == {*RENDERED_ON_REQUEST, "skeleton_dwpose"}  # and DWPose's skeleton drawing
    rng = np.random.default_rng(0)
    image = lambda *shape: rng.integers(0, 256, (H, W, *shape), dtype=np.uint8)  # noqa: E731
    forms = {"depth_champ": image(3), "semantic_map": image(3)}
    pair = TrainingPair(key="p0", reference=image(3), target=image(3), depth=image(), normal=image(3),
                        skeleton=image(3), pid="1", forms=forms)
    members = encode_pair(pair)
    assert {"depth_champ.png", "semantic_map.png"} <= set(members)
    decoded = decode_pair("p0", members)
    for name, array in forms.items():
        assert np.array_equal(decoded.forms[name], array)
    contract = ConditionContract(maps=tuple(m for m in CHAMP.contract.maps if m.name != "skeleton"),
                                 guiders="per_map", family="champ")
    tensor = conditions_to_tensor([decoded.maps()], H, W, contract)[0]
    assert tensor.shape == (9, H, W)
    assert np.allclose(tensor[6:9].numpy(), np.moveaxis(forms["semantic_map"], 2, 0) / 255)
    without = decode_pair("p0", {k: v for k, v in members.items() if k != "semantic_map.png"})
    with pytest.raises(InputError, match="semantic_map"):
        conditions_to_tensor([without.maps()], H, W, contract)
    with pytest.raises(ValueError, match="unknown condition forms"):
        TrainingPair(key="p1", reference=image(3), target=image(3), depth=image(), normal=image(3),
                     skeleton=image(3), pid="1", forms={"albedo": image(3)}).validate()
