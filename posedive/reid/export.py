"""A release written out in the Market-1501 layout, for Re-ID codebases that read only that layout.

torchreid, fast-reid, TransReID / CLIP-ReID and SOLIDER read ``bounding_box_train``, ``query`` and
``bounding_box_test`` and parse ``*.jpg`` names with ``([-\\d]+)_c(\\d)``. The export copies the source's
three folders unchanged and adds every generated image to ``bounding_box_train`` as
``<pid>_c<camid>s0_<n>_00.jpg``: the source identity, a camera id and a running number per identity
(sequence ``s0``, which no Market-1501 file uses, so a generated name never collides with a source
file). Two sidecar files at the top of the export map each new file name to its release sample key:
``posedive_generated.csv`` (one row per image, with its camera id) and ``posedive_export.json`` (the
release, how camera ids were chosen and the counts).

Camera ids (``camid``):

* ``"reference"`` (default): each generated image takes the camera of the reference image it was
  generated from. The folder then holds only the source's own cameras, which every reader accepts
  (torchreid, fast-reid, TransReID and CLIP-ReID assert ``1 <= camid <= 6`` for Market-1501).
* ``"new"``: one camera id of the generated images' own, the first single digit the source does not
  use (for Market-1501: 7, which those readers refuse; a warning says so).
* an integer 1..9: that camera id for every generated image (warned about outside 1..6).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .. import paths
from ..errors import InputError, PathExists, ReleaseError
from ..storage import is_url
from .data import generated_camid, iter_release_samples

logger = logging.getLogger(__name__)

FORMATS = ("market1501",)
MARKET_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
MAPPING_CSV = paths.EXPORT_MAPPING
EXPORT_JSON = paths.EXPORT_RECORD
JPEG_QUALITY = 95
# Camera ids the Market-1501 readers of torchreid, fast-reid, TransReID and CLIP-ReID accept.
READER_CAMIDS = range(1, 7)

CameraChoice = Literal["reference", "new"] | int


@dataclass(frozen=True)
class ExportReport:
    out: Path
    camid: int | Literal["reference"]  # the generated images' camera id, or "reference": each its reference's
    generated: int
    counts: dict[str, int]  # files per folder of the export
    identities: int  # identities that received generated images

    def summary(self) -> str:
        folders = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        cameras = "the camera ids of their reference images" if self.camid == "reference" else f"camera id {self.camid}"
        return f"{self.out}: {folders} ({self.generated} generated images of {self.identities} identities, {cameras})"


def generated_name(pid: int, camid: int, index: int, pid_digits: int = 4) -> str:
    """``0002_c7s0_000003_00.jpg``: parsed by ``([-\\d]+)_c(\\d)`` as pid 2, camera 7."""
    return f"{pid:0{pid_digits}d}_c{camid}s0_{index:06d}_00.jpg"


def export_camid(camid: CameraChoice, source_camids: set[int]) -> int | Literal["reference"]:
    """The camera id of every generated image (or ``"reference"``), warning when Re-ID readers will refuse it."""
    if camid == "reference":
        return "reference"
    if camid == "new":
        chosen = generated_camid(source_camids)
    elif isinstance(camid, int) and not isinstance(camid, bool):
        chosen = generated_camid(source_camids, camid)
    else:
        raise InputError(f"camid {camid!r} must be 'reference', 'new' or a camera id 1..9",
                         hint="--camid reference (default) keeps every reader working")
    if chosen not in READER_CAMIDS:
        logger.warning("camera id %d: torchreid, fast-reid, TransReID and CLIP-ReID assert 1 <= camid <= 6 for "
                       "Market-1501 and will refuse this folder (use --camid reference or 1..6)", chosen)
    return chosen


def _jpeg_bytes(image: bytes, image_format: str) -> bytes:
    """Readers glob ``*.jpg``: JPEG samples are copied byte for byte, others re-encoded."""
    if image_format == "jpg":
        return image
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(image)) as decoded:
        decoded.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def export_market1501(release_root: Path | str, source_root: Path | str, out: Path | str,
                      camid: CameraChoice = "reference", show_progress: bool = True) -> ExportReport:
    """Write the release and its source dataset as one Market-1501-layout folder at ``out``.

    ``out`` must not exist; the export is assembled beside it and renamed into place when complete.
    Raises ``InputError`` when the release's identities are not training identities of the source, or
    when a generated name would collide with a source file.
    """
    from tqdm.auto import tqdm

    from ..release import Release
    from .data import read_market_layout

    # A release at a URL is read from its store (``Path`` would fold the URL's ``//``).
    release_root = release_root if is_url(release_root) else Path(release_root)
    source_root, out = Path(source_root), Path(out)
    if out.exists():
        raise PathExists(f"{out} exists; choose a new folder for the export")
    manifest = Release.open(release_root).manifest
    source = read_market_layout(source_root)
    camid = export_camid(camid, source.source_camids)
    train_pids = {item.pid for item in source.train}

    samples = sorted(iter_release_samples(release_root), key=lambda s: (int(s.provenance["source"]["pid"]), s.key))
    if not samples:
        raise ReleaseError(f"{release_root}: the release holds no samples")
    pid_digits = max(4, len(str(max(train_pids))))
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts: dict[str, int] = {}
        for folder in MARKET_FOLDERS:
            (tmp / folder).mkdir(parents=True)
            files = sorted(p for p in (source_root / folder).iterdir() if p.is_file())
            for path in tqdm(files, desc=f"copying {folder}", unit="file", disable=not show_progress, leave=False):
                shutil.copyfile(path, tmp / folder / path.name)
            counts[folder] = len(files)
        train_dir = tmp / "bounding_box_train"
        rows = []
        per_pid: dict[int, int] = {}
        for sample in tqdm(samples, desc="writing generated", unit="image", disable=not show_progress, leave=False):
            pid = int(sample.provenance["source"]["pid"])
            if pid not in train_pids:
                raise InputError(f"{release_root}: sample {sample.key} has pid {pid}, which is not a training "
                                 f"identity of {source_root}; the release was built from another dataset")
            index = per_pid.get(pid, 0)
            per_pid[pid] = index + 1
            image_camid = int(sample.provenance["source"]["camid"]) if camid == "reference" else camid
            name = generated_name(pid, image_camid, index, pid_digits)
            if (train_dir / name).exists():
                raise InputError(f"generated name {name} collides with a source file; choose another camera id")
            (train_dir / name).write_bytes(_jpeg_bytes(sample.image, sample.image_format))
            rows.append({"file": f"bounding_box_train/{name}", "key": sample.key, "pid": pid, "camid": image_camid,
                         "source_image": sample.provenance["source"].get("image", "")})
        counts["bounding_box_train"] += len(rows)
        with open(tmp / MAPPING_CSV, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        report = ExportReport(out=out, camid=camid, generated=len(rows), counts=counts, identities=len(per_pid))
        sidecar = {
            "format": "market1501",
            "release": {"name": manifest.name, "version": manifest.version, "recipe_hash": manifest.recipe_hash},
            "camid": camid,
            "name_pattern": "<pid>_c<camid>s0_<n>_00.jpg",
            "mapping": MAPPING_CSV,
            **{k: v for k, v in asdict(report).items() if k not in ("out", "camid")},
        }
        (tmp / EXPORT_JSON).write_text(json.dumps(sidecar, indent=2) + "\n")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(report.summary())
    return report
