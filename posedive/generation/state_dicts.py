"""Strict conversion of other codebases' state dicts into posedive modules' state dicts.

Released research checkpoints are bare ``torch.save(state_dict)`` files that their own code loads with
``strict=False`` or a hand-written copy loop, so a renamed or missing key goes unnoticed. posedive
converts them with a pure function per format instead (as diffusers does in
``loaders/single_file_utils.py``): every key of the file is either mapped to exactly one key of the
posedive module, with its shape checked, or matched by a written :class:`UnusedKeys` rule that says
why it is not needed. Anything else, and any key of the module that the file does not fill, is a
:class:`~posedive.errors.CheckpointError` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

DATA_PARALLEL_PREFIX = "module."
ModuleT = TypeVar("ModuleT", bound="nn.Module")


class UnusedKeys(BaseModel):
    """Keys of a foreign checkpoint that posedive's module does not need, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(description="regular expression the whole key must match")
    reason: str

    def matches(self, key: str) -> bool:
        return re.fullmatch(self.pattern, key) is not None


class UnusedKey(BaseModel):
    """One source key a conversion left out, with the reason of the rule it matched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    reason: str


class ConversionReport(BaseModel):
    """What a conversion did with each key of one source file: how many it mapped, which it left out and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="the file (or format) the keys came from")
    consumed: int = Field(description="source keys mapped to a posedive key")
    unused: tuple[UnusedKey, ...] = Field(description="source keys left out, each with its reason")


@dataclass(frozen=True)
class Conversion:
    """A converted module: the config to build it with, its full state dict, and one report per source file."""

    config: dict[str, Any]
    state_dict: dict[str, "torch.Tensor"]
    reports: tuple[ConversionReport, ...]

    def build(self, factory: "Callable[..., ModuleT]") -> "ModuleT":
        """``factory(**config)`` with this state dict loaded strictly, without first filling random weights
        (the parameters take the converted tensors; buffers the state dict does not hold are built as usual)."""
        from accelerate import init_empty_weights

        with init_empty_weights():
            module = factory(**self.config)
        module.load_state_dict(self.state_dict, strict=True, assign=True)
        return module


def read_state_dict(path: Path | str) -> dict[str, "torch.Tensor"]:
    """A bare ``torch.save(state_dict)`` file (``.pth``/``.pt``/``.bin``) or a ``.safetensors`` file, read
    on the CPU without unpickling anything but tensors."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist", hint="pass the file as the release names it")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(path)
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, a pickle with code in it, a foreign format
        raise CheckpointError(f"checkpoint {path} cannot be read as a state dict: {error}") from None
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(
            f"checkpoint {path} is not a flat state dict of tensors",
            hint="convert the file the release names (a torch.save(model.state_dict()) file)",
        )
    return dict(loaded)


def strip_data_parallel_prefix(state_dict: Mapping[str, "torch.Tensor"], source: str) -> dict[str, "torch.Tensor"]:
    """Remove the ``module.`` that ``DataParallel``/``DistributedDataParallel`` put before every key."""
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        plain = key.removeprefix(DATA_PARALLEL_PREFIX)
        if plain in stripped:
            raise CheckpointError(
                f"{source}: key {plain!r} appears both with and without the {DATA_PARALLEL_PREFIX!r} prefix"
            )
        stripped[plain] = value
    return stripped


def module_shapes(module: "nn.Module") -> dict[str, tuple[int, ...]]:
    """Key -> shape of a module's state dict (works on the meta device)."""
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers config without its bookkeeping entries (``_class_name``, ``_diffusers_version``, ...)."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


def prefixed(state_dict: Mapping[str, "torch.Tensor"], prefix: str) -> dict[str, "torch.Tensor"]:
    return {prefix + key: value for key, value in state_dict.items()}


def convert_state_dict(
    state_dict: Mapping[str, "torch.Tensor"],
    rename: Callable[[str], str | None],
    expected: Mapping[str, Sequence[int]],
    unused: Sequence[UnusedKeys],
    source: str,
) -> tuple[dict[str, "torch.Tensor"], ConversionReport]:
    """Map ``state_dict`` onto the keys and shapes in ``expected``.

    A source key that matches one of ``unused`` is left out (and reported with its reason); ``rename``
    gives the posedive key of every other one, or None for a key it does not know, which is an error.
    Every key of ``expected`` must be filled exactly once, with the expected shape. The error names the
    source and every wrong key with what was wrong, not only the first.
    """
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}  # posedive key -> the source key that claimed it (even if misshapen)
    left_out: list[UnusedKey] = []
    problems: list[str] = []
    for key in sorted(state_dict):
        rule = next((rule for rule in unused if rule.matches(key)), None)
        if rule is not None:
            left_out.append(UnusedKey(key=key, reason=rule.reason))
            continue
        target = rename(key)
        if target is None:
            problems.append(f"unexpected key {key!r}")
            continue
        if target not in expected:
            problems.append(f"unexpected key {key!r} (would be {target!r}, which the module does not have)")
            continue
        if target in origin:
            problems.append(f"keys {origin[target]!r} and {key!r} both map to {target!r}")
            continue
        origin[target] = key
        shape, wanted = tuple(state_dict[key].shape), tuple(expected[target])
        if shape != wanted:
            problems.append(f"key {key!r} has shape {list(shape)}, expected {list(wanted)} (for {target!r})")
            continue
        converted[target] = state_dict[key]
    problems.extend(f"missing key for {target!r}" for target in sorted(set(expected) - set(origin)))
    if problems:
        listed = "\n  ".join(problems)
        raise CheckpointError(
            f"{source}: {len(problems)} key problem(s):\n  {listed}",
            hint="convert the file the release names, with the architecture it was trained with",
        )
    return converted, ConversionReport(source=source, consumed=len(converted), unused=tuple(left_out))

