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

The reference tokens are the same at every denoising step (the reference U-Net runs once, at t=0), so
at inference :meth:`ReferenceBank.project` turns them into each layer's keys and values once per batch;
the read processor then projects only the denoising tokens (one pass over the whole batch, fused QKV
when the U-Net has ``fuse_qkv_projections()``) and appends the banked keys and values. In training
(gradients on) the projection is recomputed in every forward, so gradients reach ``to_k``/``to_v``.

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

from ...errors import CheckpointError


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
    guidance stacks ``[unconditional, conditional]``); row ``i`` reads reference row ``i % R``.
    Setting ``keep`` reads it to the host once, so that no attention layer has to synchronise with
    the device to learn which rows read the reference.
    """

    def __init__(self) -> None:
        self.features: dict[str, torch.Tensor] = {}
        self.projections: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
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
        self.projections.pop(layer, None)

    def read(self, layer: str, batch_size: int) -> torch.Tensor | None:
        """Reference tokens ``(R, M, C)`` of ``layer`` for a denoising batch of ``batch_size`` rows, or ``None``."""
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
        return tokens

    def project(self, unet: nn.Module) -> None:
        """Turn every banked layer's tokens into that layer's keys and values with ``unet``'s projections,
        once. For inference only: the cached tensors carry no gradient to the projections."""
        with torch.no_grad():
            for layer, tokens in self.features.items():
                self.projections[layer] = reference_keys_values(unet.get_submodule(layer), tokens)

    def clear(self) -> None:
        self.features.clear()
        self.projections.clear()
        self.keep = None


def _split_heads(tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, N, heads * d)`` -> ``(B, heads, N, d)``."""
    batch, length, width = tokens.shape
    return tokens.view(batch, length, heads, width // heads).transpose(1, 2)


def reference_keys_values(attn: Attention, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values ``(R, heads, M, d)`` of reference tokens ``(R, M, C)`` in layer ``attn``."""
    tokens = tokens.to(attn.to_k.weight.dtype)
    key = _split_heads(attn.to_k(tokens), attn.heads)
    value = _split_heads(attn.to_v(tokens), attn.heads)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return key, value


def _queries_keys_values(attn: Attention, hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The denoising tokens' queries, keys and values ``(B, heads, N, d)``, in one matmul when fused."""
    if getattr(attn, "fused_projections", False) and hasattr(attn, "to_qkv"):
        query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
    else:
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
    query, key, value = (_split_heads(x, attn.heads) for x in (query, key, value))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return query, key, value


def _reference_rows(rows: Rows, reference_batch: int) -> Rows:
    """Which reference rows the denoising ``rows`` read (row ``i`` reads ``i % reference_batch``)."""
    if isinstance(rows, slice):
        if rows.start % reference_batch == 0 and rows.stop - rows.start == reference_batch:
            return slice(None)
        rows = torch.arange(rows.start, rows.stop)
    return rows % reference_batch


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
        batch = hidden_states.shape[0]
        tokens = self.bank.read(self.layer, batch)
        if tokens is None or self.bank.reads_nothing:
            return self._attend(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError(
                f"layer {self.layer}: reference attention expects token input (B, N, C) without group/spatial "
                f"norm, got shape {tuple(hidden_states.shape)}"
            )
        if attention_mask is not None:
            raise ValueError(f"layer {self.layer}: reference attention does not take an attention mask")
        cached = self.bank.projections.get(self.layer)
        reference_key, reference_value = cached if cached is not None else reference_keys_values(attn, tokens)
        query, key, value = _queries_keys_values(attn, hidden_states)

        def with_reference(rows: Rows) -> torch.Tensor:
            ref_rows = _reference_rows(rows, tokens.shape[0])
            keys = torch.cat([key[rows], reference_key[ref_rows].to(key.dtype)], dim=2)
            values = torch.cat([value[rows], reference_value[ref_rows].to(value.dtype)], dim=2)
            return F.scaled_dot_product_attention(query[rows], keys, values)

        if self.bank.reads_all:
            hidden = with_reference(slice(0, batch))
        else:
            kept, dropped = self.bank.kept_rows, self.bank.dropped_rows
            read = with_reference(kept)
            alone = F.scaled_dot_product_attention(query[dropped], key[dropped], value[dropped])
            if isinstance(kept, slice) and isinstance(dropped, slice) and dropped.stop == kept.start:
                hidden = torch.cat([alone, read])  # [unconditional, conditional]: no scatter
            else:
                hidden = query.new_empty(query.shape)
                hidden[kept] = read
                hidden[dropped] = alone
        hidden = hidden.transpose(1, 2).reshape(batch, -1, query.shape[1] * query.shape[3]).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](hidden))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def _processors(unet: nn.Module, bank: ReferenceBank, kind: type) -> dict[str, object]:
    """``kind`` on the self-attention layers; every other layer keeps the processor it has."""
    return {
        name: kind(bank, name.removesuffix(".processor")) if _is_reference_layer(name) else processor
        for name, processor in unet.attn_processors.items()
    }


@contextlib.contextmanager
def reference_attention(reference_unet: nn.Module, denoising_unet: nn.Module) -> Iterator[ReferenceBank]:
    """Install write processors on ``reference_unet`` and read processors on ``denoising_unet``.

    Yields the shared, empty bank; on exit the previous processors come back and the bank is cleared.
    Raises ``CheckpointError`` when the two U-Nets do not have the same self-attention layers.
    """
    ref_layers = sorted(n for n in reference_unet.attn_processors if _is_reference_layer(n))
    den_layers = sorted(n for n in denoising_unet.attn_processors if _is_reference_layer(n))
    if ref_layers != den_layers:
        raise CheckpointError(
            f"reference and denoising U-Nets must share their self-attention layers; "
            f"{len(ref_layers)} vs {len(den_layers)} layers, first difference "
            f"{next((a, b) for a, b in zip(ref_layers + [None], den_layers + [None]) if a != b)}",
            hint="both U-Nets of a two-branch generator are built from one U-Net config; convert or train the "
            "generator again so they match",
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
            raise CheckpointError(
                f"pose features {tuple(features.shape[1:])} do not match the U-Net's conv_in output "
                f"{tuple(output.shape[1:])}",
                hint="check pose_guider.conditioning_embedding_channels and the VAE scale of the generator",
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
