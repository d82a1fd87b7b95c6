from pathlib import Path

import numpy as np
import pytest
from layouts import make_market, write_image
from scipy.io import savemat

from posedive.recipe import parse_recipe
from posedive.sources import SourceError, read_source

FIXTURES = Path(__file__).parent / "fixtures"


def source(fmt: str, root: Path, **options):
    recipe = parse_recipe({"name": "t", "version": "1.0.0", "source": {"format": fmt, "root": str(root), **options},
                           "generator": {"weights": "x"}})
    return recipe.source


def test_market1501_counts_junk_and_distractors(tmp_path):
    make_market(tmp_path, train_pids=(2, 7, 10), test_pids=(3, 5), cams=(1, 2, 3), per_cam=2, junk=2, distractors=3)
    index = read_source(source("market1501", tmp_path))
    counts = index.counts()
    assert counts["train"] == {"images": 18, "identities": 3}
    assert counts["query"] == {"images": 2, "identities": 2}
    # 2 test ids x 2 cams x 2 images + 3 distractors; junk dropped
    assert counts["gallery"] == {"images": 11, "identities": 3}
    assert index.junk == 2
    assert {r.camid for r in index.split("train")} == {1, 2, 3}
    assert all(r.pid == 0 for r in index.split("gallery") if r.relpath.split("/")[-1].startswith("0000"))


def test_a_full_check_skips_counts_and_lists_unreadable_images(tmp_path):
    make_market(tmp_path)
    broken = tmp_path / "bounding_box_train" / "0002_c1s1_999999_00.jpg"
    broken.write_bytes(b"not a jpeg")
    truncated = tmp_path / "query" / "0003_c1s1_999999_00.jpg"
    truncated.write_bytes((tmp_path / "query" / "0003_c1s1_000100_00.jpg").read_bytes()[:200])
    index = read_source(source("market1501", tmp_path), check_images=True)
    assert index.unreadable == ["bounding_box_train/0002_c1s1_999999_00.jpg", "query/0003_c1s1_999999_00.jpg"]
    assert all(r.path not in (broken, truncated) for r in index.records)
    assert "2 unreadable" in index.summary()


def test_reading_a_source_lists_names_and_opens_no_image(tmp_path, monkeypatch):
    import builtins

    import PIL.Image

    make_market(tmp_path)
    broken = tmp_path / "bounding_box_train" / "0002_c1s1_999999_00.jpg"
    broken.write_bytes(b"not a jpeg")
    real_open = builtins.open

    def no_images(file, *args, **kwargs):
        if str(file).endswith(".jpg"):
            raise AssertionError(f"opened {file}")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_images)
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    index = read_source(source("market1501", tmp_path))
    assert index.unreadable == []
    assert any(r.path == broken and (r.pid, r.camid) == (2, 1) for r in index.records)


def test_missing_folder_and_bad_name_are_clear(tmp_path):
    with pytest.raises(SourceError, match="bounding_box_train"):
        read_source(source("market1501", tmp_path))
    make_market(tmp_path)
    write_image(tmp_path / "query" / "person.jpg")
    with pytest.raises(SourceError, match="person.jpg"):
        read_source(source("market1501", tmp_path))


@pytest.mark.parametrize("version, folders", [("V1", ("train", "test")), ("V2", ("mask_train_v2", "mask_test_v2"))])
@pytest.mark.parametrize("val_in_train", [True, False])
def test_msmt17_lists(tmp_path, version, folders, val_in_train):
    base = tmp_path / f"MSMT17_{version}"
    lists = {"train": [(0, 1), (0, 4), (1, 2)], "val": [(2, 7)], "query": [(0, 3)], "gallery": [(0, 5), (1, 9)]}
    for split, entries in lists.items():
        image_dir = base / (folders[0] if split in ("train", "val") else folders[1])
        lines = []
        for n, (pid, cam) in enumerate(entries):
            name = f"{pid:04d}/{pid:04d}_{n:03d}_{cam:02d}_0303morning_{n:04d}_0.jpg"
            write_image(image_dir / name)
            lines.append(f"{name} {pid}")
        (base / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    index = read_source(source("msmt17", tmp_path, version=version, val_in_train=val_in_train))
    counts = index.counts()
    assert counts["train"]["images"] == (4 if val_in_train else 3)
    assert counts["query"]["images"] == 1 and counts["gallery"]["images"] == 2
    assert sorted(r.camid for r in index.split("gallery")) == [5, 9]
    (base / "list_query.txt").write_text("garbage\n")
    with pytest.raises(SourceError, match="list_query.txt:1"):
        read_source(source("msmt17", tmp_path, version=version))


def _cuhk03_protocol(root: Path, variant: str) -> None:
    names, labels, cams = [], [], []
    for pid in range(1, 6):
        for cam in (1, 2):
            name = f"1_{pid:03d}_{cam}_01.png"
            write_image(root / f"images_{variant}" / name)
            names.append(name)
            labels.append(pid)
            cams.append(cam)
    filelist = np.empty((len(names), 1), dtype=object)
    for i, name in enumerate(names):
        filelist[i, 0] = np.array([name])
    savemat(root / f"cuhk03_new_protocol_config_{variant}.mat", {
        "filelist": filelist, "labels": np.array(labels)[:, None], "camId": np.array(cams)[:, None],
        "train_idx": np.arange(1, 7)[:, None], "query_idx": np.array([[7], [9]]),
        "gallery_idx": np.array([[8], [10]]),
    })


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03_new_protocol_file(tmp_path, variant):
    _cuhk03_protocol(tmp_path, variant)
    index = read_source(source("cuhk03", tmp_path, variant=variant))
    assert index.counts()["train"] == {"images": 6, "identities": 3}
    assert index.counts()["query"] == {"images": 2, "identities": 2}
    assert [r.pid for r in index.split("gallery")] == [4, 5]


def test_cuhk03_np_layout(tmp_path):
    make_market(tmp_path / "detected", junk=0, distractors=0)
    index = read_source(source("cuhk03", tmp_path, variant="detected"))
    assert index.counts()["train"]["identities"] == 3
    assert index.records[0].relpath.startswith("detected/")
    with pytest.raises(SourceError, match="CUHK03-NP"):
        read_source(source("cuhk03", tmp_path, variant="labeled"))


def test_folder_source(tmp_path):
    for name, n in (("alice", 2), ("bob", 3)):
        for i in range(n):
            write_image(tmp_path / name / f"{i}.png")
    index = read_source(source("folder", tmp_path, camid=4))
    assert index.counts()["train"] == {"images": 5, "identities": 2}
    assert {r.camid for r in index.records} == {4}
    assert index.train_by_pid()[2][0].relpath == "bob/0.png"


def test_real_pedestrian_crops_read_as_market1501():
    index = read_source(source("market1501", FIXTURES / "vtest_market"))
    counts = index.counts()
    assert counts["train"]["identities"] >= 5 and counts["train"]["images"] >= 20
    assert counts["query"]["images"] >= 1 and not index.unreadable
    assert {r.camid for r in index.records} >= {1, 2}


def test_registry_covers_every_recipe_format_and_names_them_in_errors(tmp_path):
    from typing import get_args

    from posedive.recipe import SourceConfig
    from posedive.sources import SOURCE_FORMATS, source_config, source_format

    union = get_args(get_args(SourceConfig)[0])
    assert {model.model_fields["format"].annotation.__args__[0] for model in union} == set(SOURCE_FORMATS)
    assert all(SOURCE_FORMATS[name].config in union for name in SOURCE_FORMATS)
    with pytest.raises(SourceError) as error:
        source_format("duke")
    assert all(name in str(error.value) for name in SOURCE_FORMATS)
    with pytest.raises(SourceError, match="duke"):
        source_config(tmp_path, "duke")
    make_market(tmp_path / "market", train_pids=(2,), test_pids=(3,), cams=(1, 2), per_cam=1)
    assert source_config(tmp_path / "market").format == "market1501"  # recognised by its layout
    with pytest.raises(ValueError, match="--format"):
        source_config(tmp_path)


def test_release_cards_cite_the_registered_datasets():
    from types import SimpleNamespace

    from posedive.release.card import source_licence
    from posedive.sources import SOURCE_FORMATS

    def manifest(fmt):
        return SimpleNamespace(source=SimpleNamespace(format=fmt))

    for name in ("market1501", "msmt17", "cuhk03"):
        assert SOURCE_FORMATS[name].citation in source_licence(manifest(name))
    assert "user-supplied image folder" in source_licence(manifest("folder"))


def test_validate_check_images_lists_broken_images_and_goes_on(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from posedive.cli import app

    make_market(tmp_path / "src")
    (tmp_path / "src" / "bounding_box_train" / "0002_c1s1_999999_00.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "src" / "query" / "0003_c1s1_999999_00.jpg").write_bytes(b"")
    (tmp_path / "models" / "gen").mkdir(parents=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "demo", "version": "1.0.0", "generator": {"weights": "models/gen"},
                                      "source": {"format": "market1501", "root": "src"}}))
    result = CliRunner().invoke(app, ["validate", str(recipe), "--check-images"])
    assert result.exit_code == 0, result.output
    assert "0002_c1s1_999999_00.jpg cannot be decoded" in result.output
    assert "0003_c1s1_999999_00.jpg cannot be decoded" in result.output
    assert "2 unreadable" in result.output and "recipe is valid" in result.output
