"""An evaluation split as it is published: the typed ``split.json`` report and the dataset card.

A split folder (made by ``posedive splits``) holds one CSV table per evaluation split and
``split.json``; their names are in ``posedive.paths``. ``posedive.analysis.splits`` computes a split
and writes and reads its tables; ``posedive.hub`` publishes split folders as configs of a dataset
repo, with a card that lists them all. Both need the report's type and the card, so those live here,
in the release layer: the layer of what posedive publishes (a release's manifest and card sit beside
this module) and the highest one under hub, so hub publishes splits without importing the analysis
that computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from .. import formats, paths

SPLIT_FORMAT_VERSION = formats.SPLIT_FOLDER.version
SplitBy = Literal["viewpoint", "pose"]
RegionKind = Literal["camera+orientation", "camera", "orientation"]
OrientationKind = Literal["fit", "landmarks"]


class SplitSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: int
    identities: int
    cameras: int
    groups: int


class SplitOverlap(BaseModel):
    """What train and test (query + gallery) share; a valid split has zeros everywhere."""

    model_config = ConfigDict(extra="forbid")

    identities: int
    groups: int
    images: int


class SplitReport(BaseModel):
    """``split.json``: how a split was made, what it holds, and the overlaps measured on its tables."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = SPLIT_FORMAT_VERSION
    dataset: str
    source_format: str
    by: SplitBy
    regions: RegionKind | None = None
    clusters: int | None = None
    orientation: OrientationKind | None = Field(None, description="body azimuth method of viewpoint regions")
    orientation_sources: dict[str, int] | None = Field(
        None, description="images whose body azimuth came from a body fit ('fit') or the landmark geometry"
    )
    test_fraction: float
    seed: int
    train_groups: list[str]
    test_groups: list[str]
    sizes: dict[str, SplitSize]
    excluded: dict[str, int] = Field(description="images left out, by reason")
    overlap: SplitOverlap
    queries_with_cross_camera_match: int


def read_split_report(folder: Path | str) -> SplitReport:
    """The ``split.json`` of a split folder."""
    return formats.read_json(formats.SPLIT_FOLDER, Path(folder) / paths.SPLIT_REPORT, SplitReport)


def card_configs(folders: Mapping[str, str]) -> list[dict]:
    """``configs:`` entries of a dataset card for split folders in a repo (config name -> folder), so
    ``load_dataset(repo, "viewpoint")`` returns the tables with splits train / query / gallery."""
    return [{"config_name": name,
             "data_files": [{"split": s, "path": f"{folder}/{paths.split_table_name(s)}"} for s in paths.EVAL_SPLITS]}
            for name, folder in sorted(folders.items())]


SPLITS_CARD_TEMPLATE = """---
{front_matter}---

# Evaluation splits of {dataset}

Train / query / gallery splits of **{dataset}** whose train and test sets share no viewpoint region
(`viewpoint`) or pose cluster (`pose`), and no identity, in the manner of MSMT17-S (Cam) and
MSMT17-S (Pose) in Pose-dIVE (Kim et al., arXiv:2406.16042, Table 5 and supplementary 1). Made with
`posedive splits`.

These tables hold only file names, identities, camera ids and the group (viewpoint region or pose
cluster) of each image; the images are not included. {dataset} is released for non-commercial
research only: obtain it from its authors and accept its terms.

| config | train | query | gallery | overlap (ids / groups / images) |
|---|---|---|---|---|
{rows}
```python
from datasets import load_dataset
from posedive.analysis.splits import join_split

split = load_dataset("{repo_id}", "viewpoint")
train = join_split(split["train"], "/data/{dataset}", split="train")  # paths in your local copy
```
"""


def splits_card(reports: Mapping[str, SplitReport], repo_id: str) -> str:
    """The ``README.md`` of a repo holding the split folders ``reports`` describes (config name = folder
    name): ``configs:`` for every one of them and a table of their sizes and overlaps."""
    import yaml

    datasets = sorted({report.dataset for report in reports.values()})
    front = {"license": "other", "tags": ["person-re-identification", "evaluation-splits", "posedive"],
             "configs": card_configs({name: name for name in reports})}
    rows = "\n".join(
        f"| `{name}` | {r.sizes['train'].images} | {r.sizes['query'].images} | {r.sizes['gallery'].images} | "
        f"{r.overlap.identities} / {r.overlap.groups} / {r.overlap.images} |" for name, r in sorted(reports.items()))
    return SPLITS_CARD_TEMPLATE.format(front_matter=yaml.safe_dump(front, sort_keys=False), dataset=", ".join(datasets),
                                       rows=rows, repo_id=repo_id)
