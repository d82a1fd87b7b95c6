"""A generator checkpoint's files, read without loading its weights: metadata, weights hash, contract.

A posedive generator is a ``save_pretrained`` folder of
:class:`~posedive.generation.pipeline.PoseDivePipeline`: ``model_index.json``, one folder per
component (config and weights) and ``posedive_generator.json`` (what the model is and how it was
trained, written by ``posedive train-generator``). Everything here reads those small JSON files only,
so ``posedive validate`` can check a recipe against a checkpoint in milliseconds:

* :class:`GeneratorMetadata` is ``posedive_generator.json``, shown on the card and in provenance;
* :func:`weights_sha256` identifies the weights (weight files only, so rewriting a config keeps it);
* :func:`read_contract` / :func:`fetch_contract` read the condition contract from a local folder or
  from the Hub (only the config files, at the pinned revision);
* :func:`check_generator` compares the contract with what a recipe asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import formats, paths
from ..errors import CheckpointError
from ..schema import RENDERABLE_MAPS
from .contract import ConditionContract, contract_problems, implied_contract

if TYPE_CHECKING:
    from ..recipe import GeneratorConfig

logger = logging.getLogger(__name__)

METADATA_FILE = paths.GENERATOR_METADATA
GUIDER_CONFIG = paths.GUIDER_CONFIG
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
HUB_TIMEOUT_S = 10.0


class GeneratorMetadata(BaseModel):
    """What ``posedive_generator.json`` holds: shown on the card and stored in provenance."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = formats.GENERATOR_METADATA.version
    description: str = Field(description="what the model is and how it was trained, in plain words")
    resolution: tuple[int, int] | None = Field(None, description="width, height it was trained at")
    training: dict[str, Any] = Field(default_factory=dict, description="resolved training config and results")
    conversion: dict[str, Any] | None = Field(
        None, description="for a converted released model: its family, source files (sha256), base components and "
        "the fate of every source key (posedive.generation.families.ConversionRecord)"
    )

    def save(self, folder: Path | str) -> Path:
        path = Path(folder) / METADATA_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def parse(cls, data: object, source: str) -> "GeneratorMetadata":
        formats.check_version(formats.GENERATOR_METADATA, formats.stated_version(data, default=1), source)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise CheckpointError(f"{source}: not a valid {METADATA_FILE}: {error}") from None

    @classmethod
    def load(cls, folder: Path | str) -> "GeneratorMetadata | None":
        path = Path(folder) / METADATA_FILE
        if not path.is_file():
            return None
        return cls.parse(_read_json(path), str(path))


def weights_sha256(folder: Path | str) -> str:
    """sha256 over (relative path, content) of every weight file below ``folder``, in sorted order."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise CheckpointError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under generator folder {folder}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def contract_from_files(guider_config: dict[str, Any], metadata: GeneratorMetadata | None, source: str) -> ConditionContract:
    """The contract a checkpoint was trained on, from its pose guider config and metadata.

    A contract saved in the guider config wins; one without a resolution takes the metadata's. A
    checkpoint saved before contracts implies posedive's three maps (see ``implied_contract``).
    """
    resolution = metadata.resolution if metadata is not None else None
    saved = guider_config.get("conditions")
    if saved is None:
        return implied_contract(int(guider_config.get("conditioning_channels", 7)), resolution, source)
    contract = ConditionContract.from_config(saved, source)
    if contract.resolution is None and resolution is not None:
        contract = contract.with_resolution(*resolution)
    return contract


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: cannot be read as JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_contract(folder: Path | str) -> ConditionContract:
    """The condition contract of the generator folder ``folder`` (config files only)."""
    folder = Path(folder)
    path = folder / GUIDER_CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a posedive generator folder: it has no {GUIDER_CONFIG}")
    return contract_from_files(_read_json(path), GeneratorMetadata.load(folder), str(path))


class HubUnreachable(LookupError):
    """The Hub could not answer (no network, offline mode, an error status): check at load time."""


def _hub_json(repo_id: str, filename: str, revision: str | None, endpoint: str | None) -> dict[str, Any] | None:
    """One GET of ``filename`` at ``revision`` (no retries: this is a check, not a download): its JSON, or
    ``None`` when the file does not exist; a missing repo or revision raises ``CheckpointError``."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        HTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    at = f"{repo_id} at revision {revision or 'main'}"
    try:
        response = get_session().get(url, headers=build_hf_headers(), timeout=HUB_TIMEOUT_S, follow_redirects=True)
        hf_raise_for_status(response)
    except RepositoryNotFoundError:
        raise CheckpointError(
            f"generator.weights: Hub model repo {repo_id} was not found (or is private and no token was given)",
            hint="check the id, or log in with `hf auth login`",
        ) from None
    except RevisionNotFoundError:
        raise CheckpointError(f"generator.revision: {revision!r} is not a revision of Hub model repo {repo_id}") from None
    except EntryNotFoundError:
        return None
    except (HfHubHTTPError, HTTPError) as error:
        raise HubUnreachable(f"{filename} of {at} could not be fetched: {error}") from None
    try:
        data = response.json()
    except ValueError as error:
        raise CheckpointError(f"{filename} of {at} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{filename} of {at}: expected a JSON object, got {type(data).__name__}")
    return data


def fetch_contract(repo_id: str, revision: str | None, endpoint: str | None = None) -> ConditionContract:
    """The condition contract of a generator on the Hub, from its config files alone.

    Raises ``CheckpointError`` when the repo, revision or pose guider config does not exist, and
    ``HubUnreachable`` when the Hub cannot be asked (offline mode included).
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubUnreachable("HF_HUB_OFFLINE is set")
    guider = _hub_json(repo_id, GUIDER_CONFIG, revision, endpoint)
    if guider is None:
        raise CheckpointError(f"Hub model repo {repo_id} at revision {revision or 'main'} is not a posedive generator: "
                              f"it has no {GUIDER_CONFIG}")
    metadata = _hub_json(repo_id, METADATA_FILE, revision, endpoint)
    parsed = GeneratorMetadata.parse(metadata, f"{repo_id}/{METADATA_FILE}") if metadata is not None else None
    return contract_from_files(guider, parsed, f"{repo_id}/{GUIDER_CONFIG}")


def local_folder(config: "GeneratorConfig", base_dir: Path) -> Path | None:
    """The folder a local ``generator.weights`` names (relative to ``base_dir``); ``None`` for a Hub id."""
    if not config.is_local(base_dir):
        return None
    path = Path(config.weights).expanduser()
    return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True)
class GeneratorCheck:
    """What a recipe's generator promises: its ``contract`` when it could be read (else ``deferred``
    says why the check waits until the weights load) and the ``problems`` it has with the recipe."""

    contract: ConditionContract | None
    problems: list[str]
    deferred: str | None = None

    @property
    def summary(self) -> str | None:
        if self.contract is not None:
            return self.contract.describe()
        if self.deferred is not None:
            return f"checked when the generator loads ({self.deferred})"
        return None


def check_contract(
    contract: ConditionContract, config: "GeneratorConfig", provided: Sequence[str] = RENDERABLE_MAPS
) -> list[str]:
    """Problems of running ``contract``'s generator at the recipe's size on the maps ``provided``."""
    return contract_problems(contract, width=config.width, height=config.height, provided=provided,
                             generator=config.weights, family=config.family)


def check_generator(
    config: "GeneratorConfig",
    base_dir: Path,
    provided: Sequence[str] = RENDERABLE_MAPS,
    fetch: Callable[[str, str | None], ConditionContract] = fetch_contract,
) -> GeneratorCheck:
    """Check the generator a recipe names against the recipe, reading config files only.

    A local folder that does not exist, or has no pose guider config, is left to the path check and to
    loading; a Hub id is read at ``config.revision`` through ``fetch`` when the Hub can be reached.
    """
    folder = local_folder(config, Path(base_dir))
    try:
        if folder is None:
            contract = fetch(config.weights, config.revision)
        elif (folder / GUIDER_CONFIG).is_file():
            contract = read_contract(folder)
        else:
            return GeneratorCheck(None, [], f"{folder} has no {GUIDER_CONFIG}")
    except HubUnreachable as reason:
        return GeneratorCheck(None, [], str(reason))
    except CheckpointError as error:
        return GeneratorCheck(None, [f"{error} ({error.hint})" if error.hint else str(error)])
    return GeneratorCheck(contract, check_contract(contract, config, provided))
