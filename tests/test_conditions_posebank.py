"""Pose banks: the on-disk format, mirroring, de-duplication, the importers and the built-in bank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posedive.conditions import posebank as pb
from posedive.geometry.rotations import (
    SMPL_JOINTS,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    mirror_poses,
    smpl_skeleton,
)

J = {name: i for i, name in enumerate(SMPL_JOINTS)}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_poses(n: int, seed: int = 0, scale: float = 0.4) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, size=(n, 72))


@pytest.fixture(scope="module")
def deepmimic_bank(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSEDIVE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        bank = pb.load_builtin_bank("deepmimic")
        yield bank, pb.builtin_bank_path("deepmimic")


def test_save_load_round_trip(tmp_path):
    poses = _random_poses(5)
    bank = pb.PoseBank.from_arrays(poses, [f"p{i}" for i in (3, 1, 4, 0, 2)], ["s"] * 5, ["c"] * 5, range(5), ["cc0"] * 5)
    assert list(bank.ids) == sorted(bank.ids)
    loaded = pb.PoseBank.load(bank.save(tmp_path / "bank.npz"))
    assert list(loaded.ids) == list(bank.ids)
    assert np.array_equal(loaded.poses, bank.poses)
    assert np.allclose(loaded.pose("p4"), poses[2], atol=1e-6)
    with pytest.raises(KeyError, match="p9"):
        loaded.pose("p9")


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", poses=np.zeros((1, 72)))
    with pytest.raises(ValueError, match="other.npz"):
        pb.PoseBank.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="poses.source"):
        pb.load_pose_bank(str(tmp_path / "missing.npz"))


def test_mirroring_reflects_the_skeleton():
    poses = _random_poses(4, seed=1)
    mirrored = mirror_poses(poses)
    reflect = np.array([-1.0, 1.0, 1.0])
    swap = [SMPL_JOINTS.index(n.replace("left", "@").replace("right", "left").replace("@", "right")) for n in SMPL_JOINTS]
    assert np.allclose(smpl_skeleton(mirrored), (smpl_skeleton(poses) * reflect)[:, swap], atol=1e-9)
    twice = mirror_poses(mirrored)
    assert np.allclose(axis_angle_to_matrix(twice.reshape(-1, 24, 3)), axis_angle_to_matrix(poses.reshape(-1, 24, 3)))


def test_deduplication_drops_near_copies_and_heading_changes():
    base = _random_poses(2, seed=2)
    near = base[0] + 0.002
    turned = base[0].copy()
    turned[:3] = matrix_to_axis_angle(axis_angle_to_matrix(np.array([0.0, 1.0, 0.0])) @ axis_angle_to_matrix(base[0, :3]))
    poses = np.stack([base[0], near, turned, base[1]])
    bank = pb.PoseBank.from_arrays(poses, ["a0", "a1", "a2", "b0"], ["s"] * 4, ["a", "a", "a", "b"], [0, 1, 2, 0], ["x"] * 4)
    kept = bank.deduplicated(0.03)
    assert list(kept.ids) == ["a0", "b0"]
    assert len(bank.deduplicated(0.0)) == 4


def test_amass_import_turns_z_up_into_y_up(tmp_path):
    frames = 6
    poses = np.zeros((frames, 156))
    poses[:, :3] = [np.pi / 2, 0.0, 0.0]  # an upright body in AMASS's z-up world
    poses[:, 3 * J["left_knee"]] = np.linspace(0, 1, frames)
    np.savez(tmp_path / "walk_poses.npz", poses=poses, mocap_framerate=120.0, betas=np.zeros(16))
    bank = pb.import_amass([tmp_path / "walk_poses.npz"], every=2)
    assert list(bank.frame) == [0, 2, 4] and list(bank.clip) == ["walk_poses"] * 3
    joints = smpl_skeleton(bank.poses)
    up = _unit(joints[:, J["neck"]] - joints[:, J["pelvis"]])
    assert np.all(up[:, 1] > 0.97)
    assert np.allclose(bank.poses[:, 3 * J["left_knee"]], [0.0, 0.4, 0.8], atol=1e-6)


def test_smpl_fits_import_from_camera_frame(tmp_path):
    folder = tmp_path / "dancer01"
    folder.mkdir()
    for frame in range(3):
        fit = {"global_orient": [np.pi, 0.0, 0.0], "body_pose": [0.0] * 69, "betas": [0.0] * 10}
        (folder / f"{frame:06d}.json").write_text(json.dumps(fit))
    bank = pb.import_smpl_fits([folder])
    assert len(bank) == 3 and set(bank.clip) == {"dancer01"}
    assert np.allclose(axis_angle_to_matrix(bank.poses[:, :3]), np.eye(3), atol=1e-5)


BVH_TEMPLATE = """HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {{
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Neck
    {{
      OFFSET 0 20 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT Head
      {{
        OFFSET 0 8 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {{
          OFFSET 0 8 0
        }}
      }}
    }}
    JOINT LeftArm
    {{
      OFFSET 15 18 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftForeArm
      {{
        OFFSET {arm} 
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT LeftHand
        {{
          OFFSET {arm}
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {{
            OFFSET 5 0 0
          }}
        }}
      }}
    }}
  }}
  JOINT LeftUpLeg
  {{
    OFFSET 8 -8 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT LeftLeg
    {{
      OFFSET 0 -40 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT LeftFoot
      {{
        OFFSET 0 -40 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {{
          OFFSET 0 -5 10
        }}
      }}
    }}
  }}
}}
MOTION
Frames: 2
Frame Time: 0.0333333
{frames}
"""


def _bvh(path: Path, arm: str, frames: list[list[float]]) -> Path:
    path.write_text(BVH_TEMPLATE.format(arm=arm, frames="\n".join(" ".join(str(v) for v in f) for f in frames)))
    return path


def test_bvh_import_maps_joints_and_rest_pose(tmp_path):
    channels = 6 + 3 * 9
    still = [0.0] * channels
    bent = list(still)
    bent[6 + 3 * 4 + 2] = -90.0  # LeftForeArm Yrotation: the forearm swings forward (+x -> +z)
    t_pose = pb.import_bvh([_bvh(tmp_path / "tpose.bvh", "25 0 0", [still, bent])], every=1)
    joints = smpl_skeleton(t_pose.poses)
    assert np.dot(_unit(joints[0, J["left_elbow"]] - joints[0, J["left_shoulder"]]), [1, 0, 0]) > 0.99
    assert np.dot(_unit(joints[1, J["left_wrist"]] - joints[1, J["left_elbow"]]), [0, 0, 1]) > 0.99
    # A file whose rest pose hangs the arm down: zero rotations must give an arm pointing down.
    down = pb.import_bvh([_bvh(tmp_path / "armsdown.bvh", "0 -25 0", [still, still])], every=1)
    joints = smpl_skeleton(down.poses)
    assert np.dot(_unit(joints[0, J["left_elbow"]] - joints[0, J["left_shoulder"]]), [0, -1, 0]) > 0.99


def test_builtin_deepmimic_bank(deepmimic_bank):
    bank, path = deepmimic_bank
    assert path.is_file()
    clips = set(bank.clip.tolist())
    assert len(clips) == 15 and {"walk", "run", "backflip", "cartwheel", "getup_facedown"} <= clips
    assert list(bank.ids) == sorted(bank.ids) and len(set(bank.ids)) == len(bank)
    assert 500 < len(bank) < 2 * 1620
    assert any(i.endswith("-mirror") for i in bank.ids)
    assert all("DeepMimic" in licence for licence in bank.licence)
    # De-duplicated: no two kept poses within the threshold of each other.
    from posedive.geometry.rotations import heading_normalised

    sample = smpl_skeleton(heading_normalised(bank.poses[::7]))
    distances = np.linalg.norm(sample[:, None] - sample[None], axis=3).mean(axis=2)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() >= pb.DEFAULT_DEDUP_M - 1e-6


def test_builtin_bank_is_cached(deepmimic_bank):
    _, path = deepmimic_bank
    stamp = path.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSEDIVE_CACHE_DIR", str(path.parent.parent))
        again = pb.load_builtin_bank("deepmimic")
    assert path.stat().st_mtime_ns == stamp and len(again) == len(deepmimic_bank[0])


def test_uniform_sampling_covers_the_bank(deepmimic_bank):
    bank, _ = deepmimic_bank
    drawn = bank.sample(20 * len(bank), np.random.default_rng(0))
    counts = np.unique(drawn, return_counts=True)[1]
    assert len(counts) > 0.99 * len(bank)
    assert counts.std() / counts.mean() < 0.5


def test_registries_name_the_valid_choices():
    from posedive.errors import InputError

    with pytest.raises(InputError) as error:
        pb.bank_importer("smplx")
    assert all(name in str(error.value) for name in [*pb.IMPORTERS, *pb.BUILTIN_BANKS])
    with pytest.raises(InputError) as error:
        pb.builtin_bank("h36m")
    assert all(name in str(error.value) for name in pb.BUILTIN_BANKS)
    with pytest.raises(InputError, match="every"):
        pb.import_config("images", [Path("photos")], every=2)


def test_registries_cover_every_kind_a_recipe_names():
    from typing import get_args

    from posedive.recipe import BuiltinPoses, PosesConfig

    kinds = {model.model_fields["kind"].annotation.__args__[0] for model in get_args(get_args(PosesConfig)[0])}
    assert kinds == {"builtin", "file", *pb.IMPORTERS}
    assert set(get_args(BuiltinPoses.model_fields["name"].annotation)) == set(pb.BUILTIN_BANKS)
    assert all(pb.IMPORTERS[name].config.model_fields["kind"].annotation.__args__ == (name,) for name in pb.IMPORTERS)


def _fit_folder(folder: Path, frames: int, knee: float = 0.3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(frames):
        body_pose = [0.0] * 69
        body_pose[3 * 3] = knee * frame  # the left knee bends over the clip
        (folder / f"{frame:06d}.json").write_text(json.dumps({"global_orient": [np.pi, 0.0, 0.0], "body_pose": body_pose}))
    return folder


def test_recipe_imports_its_poses_once_by_content(tmp_path, monkeypatch):
    from posedive.conditions import renderer_spec
    from posedive.recipe import parse_recipe

    monkeypatch.setenv("POSEDIVE_CACHE_DIR", str(tmp_path / "cache"))
    _fit_folder(tmp_path / "dancer", 4)
    recipe = parse_recipe({"name": "imp", "version": "1.0.0", "source": {"format": "folder", "root": "images"},
                           "generator": {"weights": "x"}, "poses": {"kind": "fits", "paths": ["dancer"]}},
                          base_dir=tmp_path)
    path = renderer_spec(recipe, cache_root=tmp_path / "cache").bank_path
    assert path.is_relative_to(tmp_path / "cache") and path.name.startswith("fits-")
    bank = pb.PoseBank.load(path)
    assert set(bank.clip.tolist()) == {"dancer"} and len(bank) == len(pb.import_bank(recipe.poses, recipe.resolve))
    stamp = path.stat().st_mtime_ns
    assert renderer_spec(recipe, cache_root=tmp_path / "cache").bank_path == path and path.stat().st_mtime_ns == stamp
    # The cache follows the files' content, not their place: a moved copy is the same bank, an edit is not.
    (tmp_path / "dancer").rename(tmp_path / "moved")
    _fit_folder(tmp_path / "elsewhere" / "dancer", 4)
    moved = recipe.model_copy(update={"poses": recipe.poses.model_copy(update={"paths": [Path("elsewhere/dancer")]})})
    moved.with_base_dir(tmp_path)
    assert pb.recipe_bank_path(moved.poses, moved.resolve) == path
    _fit_folder(tmp_path / "elsewhere" / "dancer", 4, knee=0.5)
    assert pb.recipe_bank_path(moved.poses, moved.resolve) != path


def test_posebank_cli_names_the_formats():
    from typer.testing import CliRunner

    from posedive.cli import app

    result = CliRunner().invoke(app, ["posebank", "build", "--format", "smplx", "x.npz", "--out", "o.npz"])
    assert result.exit_code == 2 and "amass" in result.output and "deepmimic" in result.output
    listed = CliRunner().invoke(app, ["posebank", "formats"]).output
    assert all(name in listed for name in [*pb.IMPORTERS, *pb.BUILTIN_BANKS])


@pytest.mark.parametrize("name, content, message", [
    ("broken.json", "{not json", "not valid JSON"),
    ("empty.json", '{"betas": [0.0]}', "no SMPL pose found"),
    ("fits.txt", "", "must be .npz or .json"),
])
def test_posebank_import_of_an_unreadable_file_is_a_user_error_with_a_hint(tmp_path, name, content, message):
    from typer.testing import CliRunner

    from posedive.cli import app
    from posedive.errors import PosediveError

    bad = tmp_path / name
    bad.write_text(content)
    with pytest.raises(PosediveError, match=message) as caught:
        pb.import_smpl_fits([bad])
    assert str(bad) in str(caught.value) and "posebank formats" in caught.value.hint
    result = CliRunner().invoke(app, ["posebank", "build", "--format", "fits", str(bad), "--out", str(tmp_path / "o.npz")])
    assert result.exit_code == 2 and message in result.output and "hint:" in result.output, result.output
    assert not (tmp_path / "o.npz").exists()
