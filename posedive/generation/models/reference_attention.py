"""Reference attention (paper eq. 6) as a pair of diffusers attention processors sharing a bank.

The reference U-Net runs with :class:`ReferenceWriteProcessor` on every self-attention layer
(``attn1`` of each transformer block): each layer stores its normalised input tokens in the
:class:`ReferenceBank` under its module path, then attends as usual. The denoising U-Net runs with
:class:`ReferenceReadProcessor` on the same layers (the two U-Nets share one architecture, so the
paths match): queries come from the denoising tokens alone, keys and values from the concatenation of
the denoising tokens and the banked reference tokens of the same layer.

Samples can drop the reference (classifier-free guidance's unconditional branch, reference dropout in
training): the bank's ``keep`` mask says which rows of the denoising batch read the reference; the
others attend to their own tokens only, exactly as a plain U-Net would.

:func:`reference_attention` installs both processors for the duration of a ``with`` block and restores
the U-Nets' previous processors and empties the bank on exit, so no state outlives a call.
:func:`pose_features_added` adds the pose guider's output to ``conv_in``'s output with a forward hook
that is likewise removed on exit.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Union

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn
from torch.nn import functional as F


def _is_reference_layer(processor_name: str) -> bool:
    """Self-attention of a transformer block: the layers the paper shares between the branches."""
    return processor_name.endswith("attn1.processor")


Rows = Union[slice, torch.Tensor]


def _rows(indices: torch.Tensor) -> Rows:
    """A slice when the rows are contiguous (classifier-free guidance's halves), else CPU indices."""
    if len(indices) and int(indices[-1] - indices[0]) + 1 == len(indices):
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices


class ReferenceBank:
    """Reference tokens per self-attention layer, written by one U-Net and read by the other.

    ``keep`` is a boolean tensor over the *denoising* batch (``None`` = every row reads the
    reference). The denoising batch may be a whole multiple of the reference batch (classifier-free
    guidance stacks ``[unconditional, conditional]``); the reference tokens are tiled to match.
    Setting ``keep`` reads it to the host once, so that no attention layer has to synchronise with
    the device to learn which rows read the reference.
    """

    def __init__(self) -> None:
        self.features: dict[str, torch.Tensor] = {}
        self._keep: torch.Tensor | None = None
        self.kept_rows: Rows | None = None
        self.dropped_rows: Rows | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def keep(self) -> torch.Tensor | None:
        return self._keep

    @keep.setter
    def keep(self, value: torch.Tensor | None) -> None:
        self._keep = value
        if value is None:
            self.kept_rows = self.dropped_rows = None
            return
        mask = value.detach().to("cpu", torch.bool).flatten()
        self.kept_rows = _rows(mask.nonzero().flatten())
        self.dropped_rows = _rows((~mask).nonzero().flatten())

    @property
    def reads_nothing(self) -> bool:
        """True when every row has dropped the reference."""
        return self._keep is not None and isinstance(self.kept_rows, torch.Tensor) and len(self.kept_rows) == 0

    @property
    def reads_all(self) -> bool:
        return self._keep is None or (isinstance(self.dropped_rows, torch.Tensor) and len(self.dropped_rows) == 0)

    def write(self, layer: str, tokens: torch.Tensor) -> None:
        self.features[layer] = tokens

    def read(self, layer: str, batch_size: int) -> torch.Tensor | None:
        """Reference tokens of ``layer`` tiled to ``batch_size`` rows, or ``None``."""
        tokens = self.features.get(layer)
        if tokens is None:
            return None
        if batch_size % tokens.shape[0] != 0:
            raise ValueError(
                f"layer {layer}: denoising batch {batch_size} is not a multiple of the reference batch "
                f"{tokens.shape[0]}"
            )
        if self._keep is not None and self._keep.shape[0] != batch_size:
            raise ValueError(f"bank keep mask has {self._keep.shape[0]} rows, the denoising batch has {batch_size}")
        if batch_size != tokens.shape[0]:
            tokens = tokens.repeat(batch_size // tokens.shape[0], 1, 1)
        return tokens

    def clear(self) -> None:
        self.features.clear()
        self.keep = None


class _BankProcessor:
    """A self-attention processor bound to one layer's entry of a shared reference bank."""

    def __init__(self, bank: ReferenceBank, layer: str) -> None:
        self.bank = bank
        self.layer = layer
        self._attend = AttnProcessor2_0()


class ReferenceWriteProcessor(_BankProcessor):
    """Stores a self-attention layer's input tokens in the bank, then attends as usual."""

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        self.bank.write(self.layer, hidden_states)
        return self._attend(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class ReferenceReadProcessor(_BankProcessor):
    """Self-attention whose keys and values also cover the bank's reference tokens (eq. 6).

    With an empty bank (or no entry for its layer) it is plain self-attention.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        reference = self.bank.read(self.layer, hidden_states.shape[0])
        if reference is None or self.bank.reads_nothing:
            return self._attend(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError(
                f"layer {self.layer}: reference attention expects token input (B, N, C) without group/spatial "
                f"norm, got shape {tuple(hidden_states.shape)}"
            )
        if attention_mask is not None:
            raise ValueError(f"layer {self.layer}: reference attention does not take an attention mask")
        reference = reference.to(hidden_states.dtype)
        if self.bank.reads_all:
            out = self._attention(attn, hidden_states, torch.cat([hidden_states, reference], 1))
        else:
            kept, dropped = self.bank.kept_rows, self.bank.dropped_rows
            own = hidden_states[kept]
            with_reference = self._attention(attn, own, torch.cat([own, reference[kept]], 1))
            alone = self._attention(attn, hidden_states[dropped], hidden_states[dropped])
            if isinstance(kept, slice) and isinstance(dropped, slice) and dropped.stop == kept.start:
                out = torch.cat([alone, with_reference])  # [unconditional, conditional]: no scatter
            else:
                out = hidden_states.new_empty(hidden_states.shape[0], *with_reference.shape[1:])
                out[kept] = with_reference
                out[dropped] = alone
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor

    @staticmethod
    def _attention(attn: Attention, queries_from: torch.Tensor, keys_from: torch.Tensor) -> torch.Tensor:
        batch = queries_from.shape[0]
        query = attn.to_q(queries_from)
        key = attn.to_k(keys_from)
        value = attn.to_v(keys_from)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        hidden = hidden.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](hidden))


def _processors(unet: nn.Module, bank: ReferenceBank, kind: type) -> dict[str, object]:
    processors: dict[str, object] = {}
    for name in unet.attn_processors:
        if _is_reference_layer(name):
            processors[name] = kind(bank, name.removesuffix(".processor"))
        else:
            processors[name] = AttnProcessor2_0()
    return processors


@contextlib.contextmanager
def reference_attention(reference_unet: nn.Module, denoising_unet: nn.Module) -> Iterator[ReferenceBank]:
    """Install write processors on ``reference_unet`` and read processors on ``denoising_unet``.

    Yields the shared, empty bank; on exit the previous processors come back and the bank is cleared.
    Raises ``ValueError`` when the two U-Nets do not have the same self-attention layers.
    """
    ref_layers = sorted(n for n in reference_unet.attn_processors if _is_reference_layer(n))
    den_layers = sorted(n for n in denoising_unet.attn_processors if _is_reference_layer(n))
    if ref_layers != den_layers:
        raise ValueError(
            f"reference and denoising U-Nets must share their self-attention layers; "
            f"{len(ref_layers)} vs {len(den_layers)} layers, first difference "
            f"{next((a, b) for a, b in zip(ref_layers + [None], den_layers + [None]) if a != b)}"
        )
    bank = ReferenceBank()
    saved_ref = dict(reference_unet.attn_processors)
    saved_den = dict(denoising_unet.attn_processors)
    reference_unet.set_attn_processor(_processors(reference_unet, bank, ReferenceWriteProcessor))
    denoising_unet.set_attn_processor(_processors(denoising_unet, bank, ReferenceReadProcessor))
    try:
        yield bank
    finally:
        bank.clear()
        reference_unet.set_attn_processor(saved_ref)
        denoising_unet.set_attn_processor(saved_den)


class _AddToOutput:
    """Forward hook adding a fixed tensor (tiled over the batch) to a module's output."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __call__(self, module: nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        features = self.features
        if output.shape[0] != features.shape[0]:
            if output.shape[0] % features.shape[0] != 0:
                raise ValueError(
                    f"U-Net batch {output.shape[0]} is not a multiple of the pose feature batch {features.shape[0]}"
                )
            features = features.repeat(output.shape[0] // features.shape[0], 1, 1, 1)
        if features.shape[1:] != output.shape[1:]:
            raise ValueError(
                f"pose features {tuple(features.shape[1:])} do not match the U-Net's conv_in output "
                f"{tuple(output.shape[1:])} (check pose_guider.conditioning_embedding_channels and the VAE scale)"
            )
        return output + features.to(output.dtype)


@contextlib.contextmanager
def pose_features_added(unet: nn.Module, features: torch.Tensor) -> Iterator[None]:
    """Add ``features`` to ``unet.conv_in``'s output inside the block (the paper's c_pose injection)."""
    handle = unet.conv_in.register_forward_hook(_AddToOutput(features))
    try:
        yield
    finally:
        handle.remove()
