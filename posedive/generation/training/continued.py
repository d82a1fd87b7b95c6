"""Continuing a posedive generator (``model.kind: generator``, ``train-generator --init-from``).

The generator is a ``PoseDivePipeline`` folder: stage 1's output, or a released model converted by
``posedive convert-generator``. The run starts from every component the folder holds (its VAE and
encoders, both U-Nets, the pose guider with its condition contract, the scheduler's config), so a
converted model trains on as it was made. diffusers drops, with no more than a log line, any
component the pipeline class has no argument for; the trained result would then lack it, so a folder
holding one is refused here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ...errors import CheckpointError, PathNotFound
from ..checkpoint import weights_sha256
from ..pipeline import PoseDivePipeline
from ..training_config import GeneratorInit, TrainingConfig

logger = logging.getLogger(__name__)

MODEL_INDEX = "model_index.json"


def generator_folder(config: TrainingConfig, init: GeneratorInit) -> Path:
    """The folder of the generator ``init`` names: a local folder (relative to the config file), or the
    Hub snapshot of ``init.path`` at ``init.revision``."""
    local = config.resolve(init.path)
    if local.exists():
        if not (local / MODEL_INDEX).is_file():
            raise CheckpointError(f"model.path: {local} is not a posedive generator folder (it has no {MODEL_INDEX})")
        return local
    if Path(init.path).expanduser().is_absolute() or init.path.startswith((".", "~")) or init.path.count("/") != 1:
        raise PathNotFound(f"model.path: generator folder {local} does not exist (and {init.path!r} is no Hub id)")
    from diffusers import DiffusionPipeline
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    logger.info("fetching generator %s at revision %s", init.path, init.revision or "main")
    try:
        return Path(DiffusionPipeline.download(init.path, revision=init.revision))
    except RevisionNotFoundError:
        raise CheckpointError(f"model.revision: {init.revision!r} is not a revision of Hub model repo {init.path}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(
            f"model.path: {init.path} is neither a local folder ({local}) nor a Hub model repo (or it is private)",
            hint="check the path, or log in with `hf auth login`",
        ) from None


def listed_components(folder: Path) -> set[str]:
    """The components ``model_index.json`` names (``[null, null]`` entries are absent components)."""
    path = folder / MODEL_INDEX
    try:
        index: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: cannot be read as JSON: {error}") from None
    return {
        name for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and any(part is not None for part in value)
    }


def load_continued(config: TrainingConfig, init: GeneratorInit) -> PoseDivePipeline:
    """The generator to continue, with every component its folder holds, or a ``CheckpointError``
    naming those this posedive's pipeline cannot carry."""
    folder = generator_folder(config, init)
    pipe = PoseDivePipeline.from_pretrained(folder)
    dropped = sorted(listed_components(folder) - set(pipe.components))
    if dropped:
        raise CheckpointError(
            f"model.path: generator {init.path} holds the component(s) {', '.join(dropped)}, which this posedive's "
            f"PoseDivePipeline does not take (it takes {', '.join(sorted(pipe.components))}); training from it "
            "would save a generator without them",
            hint="use a posedive version that made or converted this generator",
        )
    logger.info("continuing generator %s (%s); conditions %s", init.path, folder,
                pipe.pose_guider.contract.describe())
    return pipe


def started_from(config: TrainingConfig) -> dict[str, Any] | None:
    """What a continued run starts from, for the trained generator's metadata: path, revision and the
    sha256 of the weights of a local folder (a Hub revision names its own); ``None`` for other inits."""
    init = config.model
    if not isinstance(init, GeneratorInit):
        return None
    record: dict[str, Any] = {"path": init.path, "revision": init.revision}
    local = config.resolve(init.path)
    if local.is_dir():
        record["weights_sha256"] = weights_sha256(local)
    return record
