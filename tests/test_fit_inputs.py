"""What ``posedive fit`` reads: images and folders as ``schema.ImageGroup``s, and the command on real crops."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from posedive.errors import InputError, PathNotFound
from posedive.schema import ImageGroup
from posedive.video.inputs import iter_inputs, read_image_group, read_rgb

CROPS = Path(__file__).parent / "fixtures" / "vtest_market" / "bounding_box_train"
needs_crops = pytest.mark.skipif(not CROPS.is_dir(), reason="tests/fixtures/vtest_market is absent")


def _photos(folder: Path, count: int) -> list[Path]:
    """``count`` real crops copied into ``folder``, every other one inside a subfolder."""
    chosen = sorted(CROPS.glob("*.jpg"))[:count]
    copies = []
    for index, path in enumerate(chosen):
        target = folder / ("more" if index % 2 else "") / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        copies.append(Path(shutil.copy(path, target)))
    return copies


@needs_crops
def test_a_folder_is_one_group_of_loose_images_in_sorted_order(tmp_path):
    copies = _photos(tmp_path / "photos", 4)
    groups = list(iter_inputs(tmp_path / "photos"))
    assert len(groups) == 1
    group = groups[0]
    assert isinstance(group, ImageGroup) and group.name == "photos" and group.sequence is False
    expected = sorted(str(p.relative_to(tmp_path / "photos")) for p in copies)
    assert group.sources == expected and any(source.startswith("more/") for source in group.sources)
    for source, image in zip(group.sources, group.images):
        assert image.dtype == np.uint8 and image.shape[2] == 3
        np.testing.assert_array_equal(image, read_rgb(tmp_path / "photos" / source))
    single = list(iter_inputs(copies[0]))
    assert [(g.name, g.sources, g.sequence) for g in single] == [(copies[0].stem, [copies[0].name], False)]
    assert read_image_group(copies[0]).sources == single[0].sources


def test_unusable_inputs_are_typed_errors_naming_the_path(tmp_path):
    with pytest.raises(PathNotFound, match="nowhere: no such file or folder") as missing:
        list(iter_inputs(tmp_path / "nowhere"))
    assert isinstance(missing.value, FileNotFoundError)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not an image"):
        list(iter_inputs(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no images"):
        list(iter_inputs(tmp_path / "empty"))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="broken.jpg: cannot read this image") as broken:
        list(iter_inputs(tmp_path / "broken.jpg"))
    assert isinstance(broken.value, ValueError)


def test_groups_split_into_batches_that_keep_their_name_and_kind():
    images = [np.full((4, 2, 3), i, np.uint8) for i in range(5)]
    group = ImageGroup("track0007", [f"v.avi#track7@frame{i}" for i in range(5)], images, True)
    batches = list(group.batches(2))
    assert [len(b.images) for b in batches] == [2, 2, 1]
    assert all(b.name == "track0007" and b.sequence for b in batches)
    assert [s for b in batches for s in b.sources] == group.sources
    assert [int(i[0, 0, 0]) for b in batches for i in b.images] == list(range(5))
    with pytest.raises(ValueError, match="batch size"):
        list(group.batches(0))
    with pytest.raises(ValueError, match="2 sources for 1 images"):
        ImageGroup("bad", ["a", "b"], images[:1], False)


@needs_crops
def test_fit_command_fits_every_image_of_a_folder_in_batches(tmp_path):
    from posedive.cli import app

    _photos(tmp_path / "photos", 4)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "photos"), "--out", str(out), "--batch-size", "3",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "fits.jsonl").read_text().splitlines()]
    group = read_image_group(tmp_path / "photos")
    assert [line["source"] for line in lines] == group.sources
    fitted = sum(line["fit"]["success"] for line in lines)
    assert fitted >= 3 and f"{fitted}/4 images fitted" in result.output
    assert (out / "overlays.png").is_file()
