"""Pose tags and a recipe's pose selection: what each pose of a bank is, which poses a build draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from frame_helpers import frame_recipe
from typer.testing import CliRunner

from posedive.cli import app
from posedive.conditions import posebank as pb
from posedive.errors import RecipeError
from posedive.geometry.rotations import SMPL_JOINTS, smpl_skeleton
from posedive.recipe import (
    UPRIGHT_MAX_SHIN_LIFT_DEG,
    UPRIGHT_MAX_THIGH_LIFT_DEG,
    UPRIGHT_MIN_HIP_HEIGHT,
    UPRIGHT_TORSO_TILT_DEG,
    parse_recipe,
)

J = {name: i for i, name in enumerate(SMPL_JOINTS)}
MINIMAL = {"name": "sel", "version": "1.0.0", "source": {"format": "folder", "root": "src"},
           "generator": {"weights": "x"}}


def _pose(orient=(0.0, 0.0, 0.0), **joints) -> np.ndarray:
    pose = np.zeros(72)
    pose[:3] = orient
    for name, value in joints.items():
        pose[3 * J[name] : 3 * J[name] + 3] = value
    return pose


def _tilt_and_head(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torso tilt from vertical and head height over the pelvis, measured here from the skeleton."""
    joints = smpl_skeleton(np.asarray(poses, dtype=np.float64))
    spine = joints[:, J["neck"]] - joints[:, J["pelvis"]]
    tilt = np.degrees(np.arccos(spine[:, 1] / np.linalg.norm(spine, axis=1)))
    return tilt, joints[:, J["head"], 1] - joints[:, J["pelvis"], 1]


def _feet_and_hips(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the highest foot joint lies below the lower hip, and the hips' height over the lowest
    foot joint as a fraction of standing: a crouch is well below 1."""
    feet = [J[name] for name in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    hips = [J["left_hip"], J["right_hip"]]
    joints = smpl_skeleton(np.asarray(poses, dtype=np.float64))
    standing = smpl_skeleton(np.zeros((1, 72)))[0]
    margin = joints[:, hips, 1].min(axis=1) - joints[:, feet, 1].max(axis=1)
    height = joints[:, hips, 1].mean(axis=1) - joints[:, feet, 1].min(axis=1)
    return margin, height / (standing[hips, 1].mean() - standing[feet, 1].min())


def _leg_angles(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest angle from straight down of a thigh (hip to knee) and of a shin (knee to ankle)."""
    joints = smpl_skeleton(np.asarray(poses, dtype=np.float64))

    def from_down(upper: str, lower: str) -> np.ndarray:
        angles = []
        for side in ("left", "right"):
            segment = joints[:, J[f"{side}_{lower}"]] - joints[:, J[f"{side}_{upper}"]]
            angles.append(np.degrees(np.arccos(-segment[:, 1] / np.linalg.norm(segment, axis=1))))
        return np.max(angles, axis=0)

    return from_down("hip", "knee"), from_down("knee", "ankle")


def _assert_pedestrian_poses(poses: np.ndarray) -> None:
    tilt, head = _tilt_and_head(poses)
    margin, hips = _feet_and_hips(poses)
    thigh, shin = _leg_angles(poses)
    assert (thigh <= UPRIGHT_MAX_THIGH_LIFT_DEG + 1e-3).all(), f"a knee raised: thigh at {thigh.max():.1f} deg"
    assert (shin <= UPRIGHT_MAX_SHIN_LIFT_DEG + 1e-3).all(), f"a foot folded up: shin at {shin.max():.1f} deg"
    assert (tilt <= UPRIGHT_TORSO_TILT_DEG + 1e-3).all(), f"torso tilts up to {tilt.max():.1f} deg"
    assert (head > 0).all(), "a head below the pelvis"
    assert (margin > 0).all(), "a foot at or above the hips"
    assert (hips >= UPRIGHT_MIN_HIP_HEIGHT - 1e-6).all(), f"a crouch: hips at {hips.min():.2f} of standing"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("cache")
        patch.setenv("POSEDIVE_CACHE_DIR", str(root))
        yield root


def test_geometric_tags_follow_the_posed_skeleton():
    poses = {
        "stand": _pose(),
        "bow": _pose(spine1=(0.35, 0, 0), spine2=(0.35, 0, 0), spine3=(0.35, 0, 0)),  # ~60 deg forward
        "lying": _pose(orient=(np.pi / 2, 0, 0)),
        "handstand": _pose(orient=(np.pi, 0, 0)),
        "kick": _pose(left_hip=(-1.9, 0, 0)),  # the left leg swung forward above the hips
    }
    names = sorted(poses)
    bank = pb.PoseBank.from_arrays(np.stack([poses[n] for n in names]), names, ["t"] * 5, names, range(5), ["x"] * 5)
    tags = dict(zip(bank.ids.tolist(), bank.tag_lists()))
    assert tags["stand"] == ["upright"]
    assert "leaning" in tags["bow"] and "upright" not in tags["bow"]
    assert "horizontal" in tags["lying"] and "upright" not in tags["lying"]
    assert set(tags["handstand"]) == {"upside_down", "head_below_pelvis", "foot_raised"}
    assert tags["kick"] == ["foot_raised"]
    tilt, head = _tilt_and_head(bank.poses)
    assert np.allclose(bank.geometry[:, 0], tilt, atol=1e-3) and np.allclose(bank.geometry[:, 2], head, atol=1e-5)


def test_bank_tags_round_trip_and_old_banks_get_computed_tags(tmp_path):
    poses = np.stack([_pose(), _pose(orient=(np.pi, 0, 0))])
    bank = pb.PoseBank.from_arrays(poses, ["a", "b"], ["s"] * 2, ["walk", "flip"], [0, 1], ["x"] * 2, ["walk", "acrobatics"])
    loaded = pb.PoseBank.load(bank.save(tmp_path / "bank.npz"))
    assert loaded.tags_of("a") == ["upright", "walk"] and "acrobatics" in loaded.tags_of("b")
    assert np.array_equal(loaded.geometry, bank.geometry)
    with np.load(tmp_path / "bank.npz") as data:
        assert int(data["format"]) == pb.BANK_FORMAT == 2
    # A bank written in format 1: no tags of its own, geometry measured on load.
    np.savez(tmp_path / "v1.npz", poses=bank.poses, ids=bank.ids, source=bank.source, clip=bank.clip, frame=bank.frame,
             licence=bank.licence, format=np.int32(1))
    old = pb.PoseBank.load(tmp_path / "v1.npz")
    assert old.tags_of("a") == ["upright"] and "head_below_pelvis" in old.tags_of("b")
    assert np.allclose(old.geometry, bank.geometry)
    np.savez(tmp_path / "v9.npz", **{k: getattr(bank, k) for k in ("poses", "ids", "source", "clip", "frame", "licence",
                                                                      "tags", "geometry")}, format=np.int32(9))
    with pytest.raises(ValueError, match="format 9"):
        pb.PoseBank.load(tmp_path / "v9.npz")


def test_mirrored_poses_keep_their_tags_and_geometry():
    rng = np.random.default_rng(3)
    bank = pb.PoseBank.from_arrays(rng.normal(0, 0.3, (6, 72)), [f"p{i}" for i in range(6)], ["s"] * 6, ["c"] * 6,
                                   range(6), ["x"] * 6, ["dance"] * 6)
    both = bank.with_mirrors()
    measured = pb.pose_geometry(both.poses)
    assert np.allclose(both.geometry, measured, atol=1e-3)
    assert all("dance" in tags for tags in both.tag_lists())


def test_builtin_bank_tags_its_clips(cache):
    bank = pb.load_builtin_bank("deepmimic")
    tags = bank.tag_lists()
    by_clip = {clip: [t for t, c in zip(tags, bank.clip) if c == clip] for clip in set(bank.clip.tolist())}
    assert all("walk" in t for t in by_clip["walk"]) and all("acrobatics" in t for t in by_clip["cartwheel"])
    assert all("floor" in t for t in by_clip["crawl"]) and not any("upright" in t for t in by_clip["crawl"])
    assert all(t for t in tags)  # every pose has at least one tag


def test_include_exclude_and_limits_select_poses():
    # standing, standing, half lying (head above the pelvis), kicking, a knee raised to 60 deg, and
    # running's swing (the shin folded up to 110 deg behind a thigh 20 deg forward)
    poses = np.stack([_pose(), _pose(), _pose(orient=(1.2, 0, 0)), _pose(left_hip=(-1.9, 0, 0)),
                      _pose(left_hip=(-np.radians(60), 0, 0)),
                      _pose(left_hip=(-np.radians(20), 0, 0), left_knee=(np.radians(130), 0, 0))])
    bank = pb.PoseBank.from_arrays(poses, ["w0", "d0", "f0", "k0", "h0", "r0"], ["s"] * 6,
                                   ["walk", "dance_a", "crawl", "kick", "stand", "run"], range(6), ["x"] * 6,
                                   ["walk", "dance", "floor", "martial", "stand", "run"])
    thigh, shin = _leg_angles(poses)
    assert thigh[4] == pytest.approx(60, abs=1) and shin[4] < UPRIGHT_MAX_SHIN_LIFT_DEG
    assert thigh[5] < UPRIGHT_MAX_THIGH_LIFT_DEG and shin[5] > 100
    no_legs = dict(max_thigh_lift_deg=None, max_shin_lift_deg=None)

    def kept(**poses_section):
        selection = parse_recipe({**MINIMAL, "poses": {"kind": "file", "path": "b.npz", **poses_section}}).poses
        return pb.select_poses(bank, selection).ids.tolist()

    assert kept() == ["d0", "w0"]  # the default keeps upright poses, legs down
    assert kept(**no_legs) == ["d0", "h0", "r0", "w0"]
    assert kept(max_shin_lift_deg=None) == ["d0", "r0", "w0"]  # the raised knee is left out by its thigh
    assert kept(max_thigh_lift_deg=None) == ["d0", "h0", "w0"]  # running's swing by its shin
    assert kept(max_torso_tilt_deg=None, feet_below_hips=False, min_hip_height=None, **no_legs) == ["d0", "h0", "k0", "r0", "w0"]
    assert kept(max_torso_tilt_deg=None, feet_below_hips=False, **no_legs) == ["d0", "h0", "k0", "r0", "w0"]  # no floor poses
    assert kept(exclude=[], max_torso_tilt_deg=None, feet_below_hips=False, min_hip_height=None, **no_legs) == ["d0", "f0", "h0", "k0", "r0", "w0"]
    assert kept(exclude=[], max_torso_tilt_deg=None, feet_below_hips=False, **no_legs) == ["d0", "h0", "k0", "r0", "w0"]  # lying is low
    assert kept(include=["walk", "martial"], feet_below_hips=False, **no_legs) == ["k0", "w0"]
    assert kept(include=["dance_a"]) == ["d0"]  # a clip name
    assert kept(exclude=["dance"]) == ["w0"]
    assert kept(include=["acrobatics", "walk"]) == ["w0"]  # a tag posedive knows, though this bank has none
    with pytest.raises(RecipeError) as error:
        kept(include=["wlak"])
    assert "wlak" in str(error.value) and "walk" in str(error.value) and "poses.include" in str(error.value)
    with pytest.raises(RecipeError, match="keeps none"):
        kept(include=["crawl"], exclude=[])


def test_selection_is_part_of_the_recipe_hash():
    base = parse_recipe(MINIMAL)
    assert base.poses.max_torso_tilt_deg == UPRIGHT_TORSO_TILT_DEG and base.poses.head_above_pelvis
    assert (base.poses.kind, base.poses.name, base.poses.exclude) == ("builtin", "pedestrian", ["acrobatics", "floor"])
    hashes = {parse_recipe({**MINIMAL, "poses": poses}).hash for poses in (
        {}, {"include": ["walk"]}, {"exclude": ["dance"]}, {"max_torso_tilt_deg": 20}, {"feet_below_hips": False},
        {"head_above_pelvis": False}, {"min_hip_height": 0.7}, {"max_thigh_lift_deg": 60},
        {"max_shin_lift_deg": 90}, {"name": "deepmimic"})}
    assert len(hashes) == 10 and base.hash in hashes


def test_default_recipe_never_draws_a_tilted_or_upside_down_pose(tmp_path, cache):
    """Over the whole built-in bank: the poses a default recipe may draw, and the poses its plan draws."""
    from posedive.conditions import BodyConditionRenderer, renderer_spec
    from posedive.plan import make_plan
    from posedive.sources import read_source

    recipe = frame_recipe(tmp_path)
    assert "poses" not in yaml.safe_load(yaml.safe_dump(recipe.model_dump(mode="json", exclude_defaults=True)))
    spec = renderer_spec(recipe, cache_root=cache)
    full = pb.PoseBank.load(spec.bank_path)
    allowed = BodyConditionRenderer(spec).pose_ids()
    assert len(allowed) > 300
    _assert_pedestrian_poses(np.stack([full.pose(p) for p in allowed]))
    tilt_all, head_all = _tilt_and_head(full.poses)
    upright = (tilt_all <= UPRIGHT_TORSO_TILT_DEG) & (head_all > 0)
    assert len(allowed) < upright.sum() + 1 and len(allowed) < len(full)  # the bank holds poses that are left out
    # ... among them crouches with an upright torso (a jump's take-off), which the default leaves out too.
    _, hips_all = _feet_and_hips(full.poses)
    assert ((hips_all < UPRIGHT_MIN_HIP_HEIGHT) & upright).sum() >= 10
    # ... and upright standing poses with a knee raised or a foot folded up behind the knee (kicks,
    # punches, running's swing), which read as a knee lifted high in a picture.
    thigh_all, shin_all = _leg_angles(full.poses)
    raised = (thigh_all > UPRIGHT_MAX_THIGH_LIFT_DEG) | (shin_all > UPRIGHT_MAX_SHIN_LIFT_DEG)
    assert (raised & upright & (hips_all >= UPRIGHT_MIN_HIP_HEIGHT)).sum() >= 10
    plan = make_plan(recipe.model_copy(update={"images_per_pid": 40}), read_source(recipe.source, recipe.base_dir),
                     allowed)
    drawn = sorted({a.pose_id for u in plan.units for a in u.attempts})
    assert len(drawn) > 100
    _assert_pedestrian_poses(np.stack([full.pose(p) for p in drawn]))


def test_posebank_info_shows_tags_and_what_a_recipe_keeps(tmp_path, cache):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "poses": {"kind": "builtin", "name": "deepmimic",
                                                         "exclude": ["dance"]}}))
    result = CliRunner().invoke(app, ["posebank", "info", "--recipe", str(path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    selection = info["selection"]
    assert info["tags"]["walk"] == selection["tags"]["walk"]["poses"] > 0
    assert selection["tags"]["dance"]["kept"] == 0 and selection["tags"]["floor"]["kept"] <= info["tags"]["floor"]
    assert selection["tags"]["upright"]["kept"] == selection["kept"] < selection["poses"] == info["poses"]
    assert selection["exclude"] == ["dance"]
    assert (selection["max_thigh_lift_deg"], selection["max_shin_lift_deg"]) == (UPRIGHT_MAX_THIGH_LIFT_DEG,
                                                                               UPRIGHT_MAX_SHIN_LIFT_DEG)


def test_cached_conditions_take_the_tags_of_their_pose(tmp_path):
    from posedive.conditions import BodyConditionRenderer, ConditionCache, RendererSpec
    from posedive.schema import BodyParams, Camera, ConditionRequest, ConditionSet

    bank = pb.PoseBank.from_arrays(np.zeros((1, 72)), ["w"], ["s"], ["walk"], [0], ["x"], ["walk"])
    bank.save(tmp_path / "bank.npz")
    renderer = BodyConditionRenderer(RendererSpec(bank_path=tmp_path / "bank.npz", cache_root=tmp_path,
                                                  body_identity={"model": "test"}))
    request = ConditionRequest(pose_id="w", elevation_deg=0.0, azimuth_deg=0.0)
    camera = Camera(elevation_deg=0, azimuth_deg=0, distance_m=3, fov_deg=30, width=4, height=8,
                    K=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], R=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], t=[0, 0, 3])
    untagged = ConditionSet(condition_id=renderer.condition_id(request), depth=np.zeros((8, 4), np.uint8),
                            normal=np.zeros((8, 4, 3), np.uint8), skeleton=np.zeros((8, 4, 3), np.uint8),
                            keypoints_2d=np.zeros((18, 3), np.float32), camera=camera,
                            body=BodyParams(model="test", pose_id="w", pose=[0.0] * 72))
    ConditionCache(tmp_path).put(untagged)  # as written before poses had tags
    assert renderer.render([request])[0].body.pose_tags == ["upright", "walk"]


def test_condition_cache_entries_hold_no_tags(tmp_path):
    """Tags belong to the bank: a cached condition set is the same file whatever its pose's tags."""
    from posedive.conditions import ConditionCache
    from posedive.schema import BodyParams, Camera, ConditionSet

    camera = Camera(elevation_deg=0, azimuth_deg=0, distance_m=3, fov_deg=30, width=4, height=8,
                    K=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], R=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], t=[0, 0, 3])
    body = BodyParams(model="test", pose_id="w", pose=[0.0] * 72, pose_tags=["walk"])
    conditions = ConditionSet(condition_id="ab" * 32, depth=np.zeros((8, 4), np.uint8), normal=np.zeros((8, 4, 3), np.uint8),
                              skeleton=np.zeros((8, 4, 3), np.uint8), keypoints_2d=np.zeros((18, 3), np.float32),
                              camera=camera, body=body)
    cache = ConditionCache(tmp_path)
    cache.put(conditions)
    assert cache.get(conditions.condition_id).body.pose_tags == []
