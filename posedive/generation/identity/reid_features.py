"""A Re-ID feature for the quality report, whatever the generator: TransReID's view of an image.

A generator's own identity encoder (CLIP for Moore-AnimateAnyone and Champ) says how close a generated
image is to its reference in that encoder's space, which was not trained to tell people apart. A
recipe's ``quality.reid_encoder`` names a TransReID ViT (:class:`TransReIDViT`), and every sample's
provenance then also records the cosine of its TransReID features and its reference's: the
similarity a Re-ID model would see. The encoder is one of:

* a TransReID checkpoint as released (``transformer_20.pth`` of ``yuanc3/Pose2ID``), the ViT-B/16 it
  was released at (the number of heads cannot be read from the weights);
* a posedive folder: a saved :class:`TransReIDViT`, a TransReID + IFR identity encoder (its ViT is
  used), or a converted Pose2ID generator folder (its ``identity_encoder/``);
* a folder that holds a released ``transformer_20.pth`` somewhere below it (what ``hf download``
  writes), or a Hub id of any of these (``ORG/NAME@REVISION``).

Features are computed on the CPU on one thread, like the generator's identity features, so a Ray
build and a local one record the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ...errors import CheckpointError, InputError, PathNotFound
from ..state_dicts import read_state_dict
from .transreid import TransReIDViT, convert_transreid

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .preprocessing import ReidPreprocessing

logger = logging.getLogger(__name__)

RELEASED_FILE = "transformer_20.pth"
STATE_DICT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")
HUB_ID = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
# What a Hub snapshot needs for any of the layouts above (not a whole generator's U-Nets).
HUB_PATTERNS: tuple[str, ...] = (f"*{RELEASED_FILE}", "config.json", "diffusion_pytorch_model.safetensors",
                                 "identity_encoder/*")
REID_KIND = "transreid"


class ReidFeatureEncoder:
    """TransReID features of person images, on one CPU thread.

    ``name`` is what provenance and the quality report call it: ``transreid from <the recipe's value>``,
    the same on every machine; ``sha256`` identifies the weights.
    """

    def __init__(self, vit: TransReIDViT, source: str, sha256: str) -> None:
        import torch

        self.vit = vit.to(device="cpu", dtype=torch.float32).eval()
        self.source = source
        self.sha256 = sha256
        self.name = f"{REID_KIND} from {source}"

    @property
    def preprocessor(self) -> "ReidPreprocessing":
        from .preprocessing import ReidPreprocessing

        height, width = self.vit.config.image_size
        return ReidPreprocessing(width=width, height=height)

    def features(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        """``(B, (1 + parts) * D)`` float32 TransReID features of ``images`` (any size; resized as Pose2ID does)."""
        import torch

        from ..numerics import thread_independent_numerics

        if not images:
            import numpy as np

            return np.zeros((0, self.vit.feature_dim), np.float32)
        # Like the images and the generator's identity features: the numbers must not depend on threads.
        with torch.no_grad(), thread_independent_numerics(torch.device("cpu")):
            pixels = self.preprocessor([image.convert("RGB") for image in images])
            return self.vit(pixels).float().numpy()


def _files_sha256(files: Sequence[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _class_name(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def _from_folder(folder: Path, source: str) -> ReidFeatureEncoder:
    from .transreid_ifr import TransReIDIdentityEncoder

    for candidate in (folder, folder / "identity_encoder"):
        class_name = _class_name(candidate)
        weights = sorted(p for p in candidate.glob("*") if p.is_file() and p.suffix in STATE_DICT_SUFFIXES)
        if class_name == TransReIDViT.__name__:
            vit = TransReIDViT.from_pretrained(candidate)
        elif class_name == TransReIDIdentityEncoder.__name__:
            vit = TransReIDIdentityEncoder.from_pretrained(candidate).vit
        else:
            continue
        return ReidFeatureEncoder(vit, source, _files_sha256([candidate / "config.json", *weights], folder))
    released = sorted(folder.rglob(RELEASED_FILE))
    if released:
        return _from_checkpoint(released[0], source, folder)
    raise CheckpointError(
        f"quality.reid_encoder: {folder} holds no TransReID encoder",
        hint=f"name a released {RELEASED_FILE}, a folder holding one, or a posedive TransReID / identity-encoder "
             "folder (config.json with _class_name TransReIDViT or TransReIDIdentityEncoder)",
    )


def _from_checkpoint(path: Path, source: str, root: Path) -> ReidFeatureEncoder:
    # A released file: the architecture is the released ViT-B/16 (TransReIDViT's defaults).
    vit = convert_transreid(read_state_dict(path), source=path.name).build(TransReIDViT)
    return ReidFeatureEncoder(vit, source, _files_sha256([path], root))


def split_revision(spec: str) -> tuple[str, str | None]:
    """``SOURCE[@REVISION]`` -> ``(SOURCE, REVISION or None)``."""
    source, at, revision = spec.partition("@")
    if not source or (at and not revision):
        raise InputError(f"quality.reid_encoder {spec!r} is not PATH or HUB_ID[@REVISION]",
                         hint="e.g. yuanc3/Pose2ID@<commit> or ../models/pose2id-ipg/identity_encoder")
    return source, revision or None


def load_reid_encoder(spec: str, base_dir: Path) -> ReidFeatureEncoder:
    """The encoder ``quality.reid_encoder`` names (see the module docstring); local paths are relative to ``base_dir``."""
    local = Path(spec).expanduser()
    local = local if local.is_absolute() else Path(base_dir) / local
    if local.exists() or spec.startswith((".", "/", "~")):
        if not local.exists():
            raise PathNotFound(f"quality.reid_encoder: {local} does not exist")
        return _from_folder(local, spec) if local.is_dir() else _from_checkpoint(local, spec, local.parent)
    repo, revision = split_revision(spec)
    if not HUB_ID.match(repo):
        raise PathNotFound(f"quality.reid_encoder: {local} does not exist and {repo!r} is not a Hub id ORG/NAME")
    from huggingface_hub import snapshot_download

    logger.info("fetching Re-ID encoder %s at revision %s", repo, revision or "main")
    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=list(HUB_PATTERNS)))
    except (OSError, ValueError) as error:  # huggingface_hub's HTTP and cache errors derive from these
        raise CheckpointError(f"quality.reid_encoder: {spec} cannot be fetched from the Hub: {error}",
                              hint="check the id and revision, or name a local file or folder") from None
    return _from_folder(folder, spec)
