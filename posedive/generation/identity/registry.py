"""Identity encoders by kind, and loading the one a generator folder holds.

A generator folder keeps its identity encoder in ``identity_encoder/``; that folder's ``config.json``
names the class (``_class_name``) and holds every number, so it loads offline with nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...errors import CheckpointError, InputError
from .base import IdentityEncoder
from .clip import ClipIdentityEncoder
from .transreid_ifr import TransReIDIdentityEncoder

IDENTITY_ENCODER_FOLDER = "identity_encoder"
IDENTITY_ENCODERS: dict[str, type[IdentityEncoder]] = {
    encoder.kind: encoder for encoder in (ClipIdentityEncoder, TransReIDIdentityEncoder)
}


def identity_encoder_class(kind: str) -> type[IdentityEncoder]:
    """The class of an identity-encoder kind."""
    if kind not in IDENTITY_ENCODERS:
        raise InputError(f"unknown identity encoder {kind!r}", hint=f"use one of {', '.join(IDENTITY_ENCODERS)}")
    return IDENTITY_ENCODERS[kind]


def load_identity_encoder(folder: Path | str, dtype: torch.dtype | None = None) -> IdentityEncoder:
    """The identity encoder saved in ``folder`` (an ``identity_encoder/`` folder), in eval mode."""
    config_path = Path(folder) / "config.json"
    try:
        class_name = json.loads(config_path.read_text())["_class_name"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{config_path}: not an identity encoder config ({error!r})") from None
    by_class = {encoder.__name__: encoder for encoder in IDENTITY_ENCODERS.values()}
    if class_name not in by_class:
        raise CheckpointError(
            f"{config_path}: _class_name {class_name!r} is not an identity encoder",
            hint=f"posedive knows {', '.join(sorted(by_class))}",
        )
    return by_class[class_name].from_pretrained(folder, torch_dtype=dtype).eval()
