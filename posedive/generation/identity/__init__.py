"""Identity encoders: reference images -> the tokens the generator's cross-attention reads.

* :class:`IdentityEncoder` (``base``): the interface, ``preprocessor`` / ``encode`` /
  ``unconditional_tokens`` / ``spec``, saved and loaded with ``save_pretrained`` / ``from_pretrained``;
* :class:`ClipIdentityEncoder` (``clip``): the CLIP image embedding, one token, zeros unconditional;
  its reference resize (``squash`` or ``crop``) is part of its config;
* :class:`TransReIDIdentityEncoder` (``transreid_ifr``): Pose2ID's TransReID ViT-B/16
  (``transreid``) + IFR (``ifr``), 20 tokens, the tokens of a blank image unconditional;
* converters from the released files (``convert_clip_vision``, ``convert_transreid``,
  ``convert_ifr``, ``convert_pose2id_identity``), strict by :mod:`posedive.generation.state_dicts`;
* :func:`load_identity_encoder` loads the ``identity_encoder/`` folder of a generator.

The package sits in the generation stage because its encoders are generator components; the
Re-ID evaluation (:mod:`posedive.reid`) sits above the pipeline and is a different model. Like
:mod:`posedive.generation.models`, importing the package imports torch, diffusers and transformers.
"""

from .base import IdentityEncoder, IdentityEncoderSpec
from .clip import ClipIdentityEncoder, convert_clip_vision
from .ifr import IdentityFeatureRefiner, convert_ifr
from .preprocessing import ClipPreprocessing, ReidPreprocessing
from .registry import IDENTITY_ENCODER_FOLDER, IDENTITY_ENCODERS, identity_encoder_class, load_identity_encoder
from .transreid import TransReIDViT, convert_transreid, transreid_unused_keys
from .transreid_ifr import TransReIDIdentityEncoder, convert_pose2id_identity

__all__ = [
    "IDENTITY_ENCODERS",
    "IDENTITY_ENCODER_FOLDER",
    "ClipIdentityEncoder",
    "ClipPreprocessing",
    "IdentityEncoder",
    "IdentityEncoderSpec",
    "IdentityFeatureRefiner",
    "ReidPreprocessing",
    "TransReIDIdentityEncoder",
    "TransReIDViT",
    "convert_clip_vision",
    "convert_ifr",
    "convert_pose2id_identity",
    "convert_transreid",
    "identity_encoder_class",
    "load_identity_encoder",
    "transreid_unused_keys",
]
