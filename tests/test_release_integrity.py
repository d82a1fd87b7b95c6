"""A release nobody can spoil: finishing checks every shard against the plan, a folder that is not a
release is refused, one builder per shard (two real processes), and verify sees extra files."""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from doubles import DoubleGenerator, double_stages
from frame_helpers import frame_recipe, refuse_the_running_part_then_build_the_other

from posedive import paths
from posedive.builder import build_release
from posedive.builder.claims import claim_shards
from posedive.errors import LockError
from posedive.release import Release, ReleaseError
from posedive.schema import GeneratorInfo

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted build of the frame recipe: what every repaired folder must equal."""
    recipe = frame_recipe(tmp_path_factory.mktemp("reference"))
    build_release(recipe, stages=double_stages(), show_progress=False)
    return recipe, (recipe.release_dir / paths.MANIFEST).read_bytes()


def unfinished_copy(reference, tmp_path):
    """The reference release copied to another folder without its manifest: a build that finishes it
    must give the reference again."""
    recipe = frame_recipe(tmp_path)
    shutil.copytree(reference[0].release_dir, recipe.release_dir)
    (recipe.release_dir / paths.MANIFEST).unlink()
    return recipe


def copy_shard(source_dir: Path, target_dir: Path, shard: int) -> None:
    for relpath in paths.shard_files(shard):
        shutil.copy(source_dir / relpath, target_dir / relpath)


class OtherWeights(DoubleGenerator):
    """The double generator under the same id, with other weights (as a Hub revision that moved)."""

    def __init__(self) -> None:
        super().__init__()
        self.info = GeneratorInfo(id=self.info.id, revision=None, sha256="1" * 64, description=self.info.description)


def other_weights_stages():
    stages = double_stages()
    stages.generator = OtherWeights()
    return stages


# ------------------------------------------------------------------------- 1. finishing checks shards
def test_a_shard_of_another_seed_is_moved_aside_and_rebuilt(reference, tmp_path):
    """Part 1/2 of recipe A, part 2/2 of A with another seed, the second's shards copied into the first's
    folder: the finishing build names them, moves them aside and rebuilds them."""
    mine, theirs = frame_recipe(tmp_path / "a"), frame_recipe(tmp_path / "b", seed=5)
    build_release(mine, stages=double_stages(), part=(1, 2), show_progress=False)
    build_release(theirs, stages=double_stages(), part=(2, 2), show_progress=False)
    copied = {}
    for shard in (1, 3):
        copy_shard(theirs.release_dir, mine.release_dir, shard)
        copied[shard] = paths.shard_path(mine.release_dir, shard).read_bytes()

    report = build_release(mine, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(1, "other-recipe"), (3, "other-recipe")]
    assert all(paths.shard_name(r.shard) in r.describe() and theirs.hash[:12] in r.detail
               for r in report.rejected_shards)
    assert sorted(report.built_shards) == [1, 3]
    for rejection in report.rejected_shards:  # moved aside, not deleted
        aside = mine.release_dir / paths.rejected_shard_name(paths.shard_name(rejection.shard), "other-recipe")
        assert aside.read_bytes() == copied[rejection.shard]
        assert len(rejection.moved_to) == 3
    assert (mine.release_dir / paths.MANIFEST).read_bytes() == reference[1]
    release = Release.open(mine.release_dir)
    assert release.verify() == []
    assert {sample["provenance"]["recipe_hash"] for sample in release.iter_samples(decode=False)} == {mine.hash}


def test_a_truncated_shard_is_named_moved_aside_and_rebuilt(reference, tmp_path):
    from posedive.plan import make_plan
    from posedive.release.finalize import finalize_release
    from posedive.sources import read_source

    recipe = unfinished_copy(reference, tmp_path)
    shard_file = paths.shard_path(recipe.release_dir, 2)
    whole = shard_file.read_bytes()
    shard_file.write_bytes(whole[: len(whole) // 2])
    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, double_stages().conditions.pose_ids())
    with pytest.raises(ReleaseError, match="not a readable tar archive") as refused:  # never tarfile.ReadError
        finalize_release(recipe, plan, source)
    assert str(shard_file) in str(refused.value) and not (recipe.release_dir / paths.MANIFEST).exists()

    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(2, "unreadable")]
    assert report.built_shards == [2]
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_a_shard_cut_at_a_member_boundary_is_rejected(reference, tmp_path):
    """tarfile reads a shard cut right after a member as a shorter, valid archive; the missing
    end-of-archive blocks give it away."""
    import tarfile

    recipe = unfinished_copy(reference, tmp_path)
    shard_file = paths.shard_path(recipe.release_dir, 0)
    with tarfile.open(shard_file) as tar:
        members = tar.getmembers()
    end = members[-1].offset_data + -(-members[-1].size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    shard_file.write_bytes(shard_file.read_bytes()[:end])
    with tarfile.open(shard_file) as tar:  # tarfile reads every member and sees nothing wrong
        assert [member.name for member in tar.getmembers()] == [member.name for member in members]
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(0, "unreadable")]
    assert "cut short" in report.rejected_shards[0].detail
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_a_shard_holding_another_shards_samples_is_rejected(reference, tmp_path):
    recipe = unfinished_copy(reference, tmp_path)
    shutil.copy(paths.shard_path(recipe.release_dir, 0), paths.shard_path(recipe.release_dir, 2))
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(2, "unplanned-keys")]
    assert "shard 2" in report.rejected_shards[0].detail
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_a_part_build_checks_its_own_shards_before_skipping_them(reference, tmp_path):
    recipe = unfinished_copy(reference, tmp_path)
    (paths.shard_path(recipe.release_dir, 1)).write_bytes(os.urandom(4096))
    report = build_release(recipe, stages=double_stages(), part=(2, 2), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(1, "unreadable")]
    assert report.skipped_shards == [3] and report.built_shards == [1]
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_shards_made_by_other_weights_than_most_are_rebuilt(reference, tmp_path):
    other = frame_recipe(tmp_path / "other")
    build_release(other, stages=other_weights_stages(), show_progress=False)
    recipe = unfinished_copy(reference, tmp_path / "mine")
    copy_shard(other.release_dir, recipe.release_dir, 3)
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(3, "other-stages")]
    assert "1111111111" in report.rejected_shards[0].detail
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_shards_split_evenly_between_weights_are_refused_naming_both(reference, tmp_path):
    other = frame_recipe(tmp_path / "other")
    build_release(other, stages=other_weights_stages(), show_progress=False)
    recipe = unfinished_copy(reference, tmp_path / "mine")
    for shard in (1, 3):
        copy_shard(other.release_dir, recipe.release_dir, shard)
    with pytest.raises(ReleaseError, match="different generators") as refused:
        build_release(recipe, stages=double_stages(), show_progress=False)
    assert "1111111111" in str(refused.value) and "0000000000" in str(refused.value)
    assert paths.REJECTED_SHARDS_DIR in refused.value.hint
    assert not (recipe.release_dir / paths.MANIFEST).exists()


def test_a_part_built_with_the_current_weights_decides_over_shards_made_with_others(reference, tmp_path):
    recipe = frame_recipe(tmp_path)
    build_release(recipe, stages=other_weights_stages(), part=(2, 2), show_progress=False)
    report = build_release(recipe, stages=double_stages(), part=(1, 2), show_progress=False)
    assert sorted((r.shard, r.reason) for r in report.rejected_shards) == [(1, "other-stages"), (3, "other-stages")]
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


# --------------------------------------------------------------- 2. a folder that is not a release
def test_a_folder_that_is_not_a_release_is_refused_and_left_alone(tmp_path):
    recipe = frame_recipe(tmp_path)
    folder = recipe.release_dir
    user_files = {"backup.tmp-2023": b"my backup", "data/train-00000.tar": os.urandom(2048), "notes/a.txt": b"notes"}
    for relpath, data in user_files.items():
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        (folder / relpath).write_bytes(data)
    with pytest.raises(ReleaseError, match="not a posedive release") as refused:
        build_release(recipe, stages=double_stages(), show_progress=False)
    assert str(folder) in str(refused.value) and "backup.tmp-2023" in str(refused.value)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(user_files)
    assert all((folder / relpath).read_bytes() == data for relpath, data in user_files.items())


def test_clean_up_deletes_only_the_temporaries_of_files_posedive_writes(reference, tmp_path):
    recipe = frame_recipe(tmp_path)
    build_release(recipe, stages=double_stages(), part=(1, 2), show_progress=False)  # a build folder
    root = recipe.release_dir
    theirs = ["backup.tmp-2023", "data/backup.tmp-2023", "data/train-00001.tar.tmp-old", "rejected/notes.tmp-1",
              ".build/plan.jsonl.tmp-x"]
    ours = ["data/train-00001.tar.tmp-99999", "rejected/train-00003.stats.json.tmp-4242", "recipe.yaml.tmp-777",
            ".build/plan.jsonl.tmp-31337"]
    for relpath in theirs + ours:
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(b"partial")
    build_release(recipe, stages=double_stages(), show_progress=False)
    assert all((root / relpath).read_bytes() == b"partial" for relpath in theirs)
    assert not any((root / relpath).exists() for relpath in ours)
    assert (root / paths.MANIFEST).read_bytes() == reference[1]


# ------------------------------------------------------------------------ 3. one builder per shard
BUILD_PART = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from doubles import double_stages
    from frame_helpers import frame_recipe, refuse_the_running_part_then_build_the_other
    from posedive.builder import build_release
    report = build_release(frame_recipe(Path({root!r})), stages=double_stages(delay_s={delay}), part={part!r},
                           show_progress=False)
    print("FINISHED" if report.manifest is not None else "BUILT", report.built_shards)
""")


def start_build(root: Path, part, delay: float) -> subprocess.Popen:
    script = BUILD_PART.format(tests=str(TESTS), root=str(root), delay=delay, part=part)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_claim(recipe, process: subprocess.Popen, timeout_s: float = 120) -> None:
    claims = recipe.release_dir / paths.CLAIMS_DIR
    deadline = time.time() + timeout_s
    while time.time() < deadline and process.poll() is None and not list(claims.glob("*.json")):
        time.sleep(0.05)
    assert list(claims.glob("*.json")), "the first build never claimed its shards: " + process.communicate()[1][-2000:]


def test_two_builds_of_one_part_refuse_and_two_parts_run_at_once(reference, tmp_path):
    recipe = frame_recipe(tmp_path)
    first = start_build(tmp_path, (1, 2), delay=0.5)
    try:
        wait_for_claim(recipe, first)
    except BaseException:
        first.kill()
        raise
    refuse_the_running_part_then_build_the_other(
        first, lambda part: build_release(frame_recipe(tmp_path), stages=double_stages(), part=part,
                                          show_progress=False))
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]
    assert not list((recipe.release_dir / paths.CLAIMS_DIR).glob("*"))


KILLED_WHILE_CLAIMING = textwrap.dedent("""
    import os, signal
    from pathlib import Path
    from posedive.builder.claims import claim_shards
    claim_shards(Path({root!r}), [0, 1, 2, 3])
    print(os.getpid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_the_claim_of_a_killed_build_is_taken_over_with_a_message(reference, tmp_path, caplog):
    recipe = frame_recipe(tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_CLAIMING.format(root=str(recipe.release_dir))],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(list((recipe.release_dir / paths.CLAIMS_DIR).glob("*.json"))) == 1
    with caplog.at_level(logging.WARNING, logger="posedive.builder.claims"):
        report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert report.manifest is not None
    pid = int(killed.stdout.split()[0])
    assert any(f"taking over the claim of pid {pid} on {socket.gethostname()}" in message
               and "no longer running" in message for message in caplog.messages), caplog.messages
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == reference[1]


def test_a_claim_from_another_host_is_refused_with_the_file_to_delete(tmp_path):
    recipe = frame_recipe(tmp_path)
    claims = recipe.release_dir / paths.CLAIMS_DIR
    claims.mkdir(parents=True)
    record = {"pid": 4242, "host": "other-node", "part": "1/2", "shards": [0, 2], "started": "2026-01-01T00:00:00+00:00"}
    (claims / "4242-abcd.json").write_text(json.dumps(record))
    with pytest.raises(LockError, match="cannot tell whether that build is still running") as refused:
        build_release(recipe, stages=double_stages(), show_progress=False)
    assert "other-node" in str(refused.value) and str(claims / "4242-abcd.json") in refused.value.hint


def test_the_command_line_names_the_build_that_holds_the_shards(tmp_path, monkeypatch):
    import yaml
    from doubles import DoubleRenderer
    from typer.testing import CliRunner

    from posedive.builder import runner
    from posedive.cli import app

    recipe = frame_recipe(tmp_path)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    monkeypatch.setattr(runner, "load_conditions", lambda recipe: DoubleRenderer())
    with claim_shards(recipe.release_dir, [0, 1, 2, 3]):
        result = CliRunner().invoke(app, ["build", str(recipe_file), "--no-progress"])
    assert result.exit_code == LockError.exit_code, result.output
    assert f"being built by pid {os.getpid()}" in result.output and "hint:" in result.output


def test_the_command_line_says_which_shards_it_moved_aside(reference, tmp_path, monkeypatch):
    import yaml
    from doubles import DoubleRenderer
    from typer.testing import CliRunner

    from posedive.builder import runner
    from posedive.cli import app
    from posedive.commands import _common

    recipe = unfinished_copy(reference, tmp_path)
    paths.shard_path(recipe.release_dir, 1).write_bytes(b"not a tar")
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    monkeypatch.setattr(runner, "load_conditions", lambda recipe: DoubleRenderer())
    monkeypatch.setattr(runner, "load_stages", lambda recipe, conditions: double_stages())
    monkeypatch.setattr(_common.console, "width", 250)
    result = CliRunner().invoke(app, ["build", str(recipe_file), "--no-progress"])
    assert result.exit_code == 0, result.output
    moved = paths.rejected_shard_name(paths.shard_name(1), "unreadable")
    assert f"rejected {paths.shard_name(1)} (unreadable)" in result.output and moved in result.output
    assert "rebuilt" in result.output
    reference_manifest = Release.open(reference[0].release_dir).manifest
    assert Release.open(recipe.release_dir).manifest.shards == reference_manifest.shards


# -------------------------------------------------------------------- 4. verify sees extra files
def test_verify_reports_every_file_the_manifest_does_not_list(reference, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(reference[0].release_dir, root)
    shutil.copy(root / paths.shard_name(3), root / paths.shard_name(4))
    (root / "plots" / "extra.png").write_bytes(b"png")
    (root / paths.HUB_RECORD).write_text("{}")  # posedive's own, beside the release
    (root / paths.REJECTED_SHARDS_DIR).mkdir(parents=True)
    (root / paths.REJECTED_SHARDS_DIR / "train-00001.tar.unreadable").write_bytes(b"x")
    problems = Release.open(root).verify()
    assert problems == [f"{paths.shard_name(4)}: not listed in the manifest (not part of this release: move it out "
                        f"of the folder)", "plots/extra.png: not listed in the manifest (not part of this release: "
                        "move it out of the folder)"]


def test_a_stray_shard_never_joins_the_loaded_data_set(reference, tmp_path):
    import datasets
    import yaml

    root = tmp_path / "release"
    shutil.copytree(reference[0].release_dir, root)
    manifest = Release.open(root).manifest
    shutil.copy(root / paths.shard_name(3), root / paths.shard_name(4))
    front = yaml.safe_load((root / paths.CARD).read_text().split("---")[1])
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": [s.path for s in manifest.shards]}]
    ds = datasets.load_dataset(str(root), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == manifest.samples
