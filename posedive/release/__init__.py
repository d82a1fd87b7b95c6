"""The release stage: a finished release folder and everything that makes it one.

* :mod:`~posedive.release.manifest`: the typed manifest and per-shard stats, ``Release`` (open,
  verify, iterate a finished release);
* :mod:`~posedive.release.card`: the dataset card (Hugging Face ``configs:`` and declared features);
* :mod:`~posedive.release.plots`: the plots stored in a release (viewpoints, poses, contact sheet);
* :mod:`~posedive.release.shard_check`: each shard checked against the plan, and moved aside when it fails;
* :mod:`~posedive.release.finalize`: turning a folder whose shards all exist and pass into a release;
* :mod:`~posedive.release.split_folder`: the published form of an evaluation split (its ``split.json``
  report and its dataset card), which ``posedive.hub`` publishes and ``posedive.analysis.splits`` makes;
* :mod:`~posedive.release.remote`: opening a release at an fsspec URL, with errors naming what failed;
* :mod:`~posedive.release.staging`: the local copy of a remote release that publishing uploads.
"""

from .manifest import (
    FileEntry,
    Manifest,
    RejectedAttempt,
    Release,
    ReleaseError,
    ShardEntry,
    ShardStats,
    SourceSummary,
    StageTotals,
    UnreadableImage,
    read_manifest,
    write_manifest,
)

__all__ = [
    "FileEntry",
    "Manifest",
    "RejectedAttempt",
    "Release",
    "ReleaseError",
    "ShardEntry",
    "ShardStats",
    "SourceSummary",
    "StageTotals",
    "UnreadableImage",
    "read_manifest",
    "write_manifest",
]
