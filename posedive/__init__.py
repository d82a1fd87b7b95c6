"""posedive: pose- and viewpoint-diversified generative augmentation for person re-identification.

A recipe (YAML) describes a release; ``posedive build`` turns it into versioned WebDataset shards with
full per-sample provenance. See README.md for the data flow:
recipe -> plan -> conditions -> generation -> filtering -> shards -> release -> hub.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("posedive")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
