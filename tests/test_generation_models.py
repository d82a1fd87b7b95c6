"""Pose guider and reference attention: the two mechanisms of paper section 3.4, on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generation_tiny import HEIGHT, WIDTH, make_pipeline, random_image, random_maps, one_torch_thread
from posedive.generation import PoseGuider, conditions_to_tensor
from posedive.generation.models import ReferenceReadProcessor, ReferenceWriteProcessor, reference_attention

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline(seed=0)


def _run(pipe, references, maps, seeds, steps=2, guidance=2.0):
    """Final latents (a random VAE decoder would blur the differences these tests look for)."""
    conditions = conditions_to_tensor(maps, HEIGHT, WIDTH)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    return pipe(
        references, conditions, generator=generators, height=HEIGHT, width=WIDTH,
        num_inference_steps=steps, guidance_scale=guidance, output_type="latent",
    ).images.numpy()


def test_pose_guider_shape_and_zero_init():
    guider = PoseGuider(conditioning_channels=7, block_out_channels=(16, 32, 96, 256), conditioning_embedding_channels=320)
    out = guider(torch.rand(2, 7, 384, 192))
    assert out.shape == (2, 320, 48, 24)
    assert guider.downscale_factor == 8
    assert torch.count_nonzero(out) == 0  # last layer starts at zero (supplementary 2)
    with pytest.raises(ValueError, match="expects"):
        guider(torch.rand(2, 3, 384, 192))


def _flat_maps(value: int) -> dict[str, np.ndarray]:
    return {name: np.full_like(array, value) for name, array in random_maps(0).items()}


def test_zero_initialised_guider_contributes_nothing(pipe):
    refs = [random_image(1)]
    a = _run(pipe, refs, [_flat_maps(0)], [7])
    b = _run(pipe, refs, [_flat_maps(255)], [7])
    np.testing.assert_array_equal(a, b)
    # ... and once the guider has weights, the maps do change the image
    trained = make_pipeline(seed=0, randomise_guider=True)
    c = _run(trained, refs, [_flat_maps(0)], [7])
    d = _run(trained, refs, [_flat_maps(255)], [7])
    assert np.abs(c - d).mean() > 1e-2


def test_reference_changes_output(pipe):
    maps = [random_maps(1)]
    a = _run(pipe, [random_image(1)], maps, [3])
    b = _run(pipe, [random_image(2)], maps, [3])
    assert np.abs(a - b).mean() > 1e-3


def test_reference_tokens_reach_denoising_attention(pipe):
    """Same CLIP embedding, different reference latents: only the bank can carry the difference."""
    latents = torch.randn(1, 4, HEIGHT // 8, WIDTH // 8)
    embeds = torch.randn(1, 1, 32)
    noisy = torch.randn(1, 4, HEIGHT // 8, WIDTH // 8)
    t = torch.tensor([500])
    outputs = []
    for ref in (torch.randn_like(latents), torch.randn_like(latents)):
        with torch.no_grad(), reference_attention(pipe.reference_unet, pipe.denoising_unet) as bank:
            pipe.reference_unet(ref, torch.zeros(1), encoder_hidden_states=embeds)
            assert len(bank) == len([n for n in pipe.denoising_unet.attn_processors if n.endswith("attn1.processor")])
            outputs.append(pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample)
    assert (outputs[0] - outputs[1]).abs().mean() > 1e-5


def test_empty_bank_is_plain_self_attention(pipe):
    noisy = torch.randn(2, 4, HEIGHT // 8, WIDTH // 8)
    embeds = torch.randn(2, 1, 32)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        plain = pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample
        with reference_attention(pipe.reference_unet, pipe.denoising_unet) as bank:
            assert len(bank) == 0
            empty = pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample
    torch.testing.assert_close(empty, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keep", [[False, True], [True, False, True], [False, False, True, True]])
def test_dropped_rows_ignore_the_reference(pipe, keep):
    """A row with keep=False gives what it gives with no reference at all (CFG's unconditional branch);
    a kept row gives what it gives when every row keeps the reference."""
    n = len(keep)
    noisy = torch.randn(n, 4, HEIGHT // 8, WIDTH // 8)
    embeds = torch.randn(n, 1, 32)
    t = torch.full((n,), 300)
    with torch.no_grad():
        plain = pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample
        with reference_attention(pipe.reference_unet, pipe.denoising_unet) as bank:
            pipe.reference_unet(torch.randn(n, 4, HEIGHT // 8, WIDTH // 8), torch.zeros(n), encoder_hidden_states=embeds)
            full = pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample
            bank.keep = torch.tensor(keep)
            mixed = pipe.denoising_unet(noisy, t, encoder_hidden_states=embeds).sample
    for row, kept in enumerate(keep):
        torch.testing.assert_close(mixed[row], (full if kept else plain)[row], rtol=1e-4, atol=1e-5)
        assert (full[row] - plain[row]).abs().mean() > 1e-5


def test_processors_installed_and_restored_per_call(pipe):
    before = {name: type(p) for name, p in pipe.denoising_unet.attn_processors.items()}
    with reference_attention(pipe.reference_unet, pipe.denoising_unet) as bank:
        kinds = {type(p) for n, p in pipe.denoising_unet.attn_processors.items() if n.endswith("attn1.processor")}
        assert kinds == {ReferenceReadProcessor}
        kinds = {type(p) for n, p in pipe.reference_unet.attn_processors.items() if n.endswith("attn1.processor")}
        assert kinds == {ReferenceWriteProcessor}
        bank.write("x", torch.zeros(1))
    assert len(bank) == 0
    assert {name: type(p) for name, p in pipe.denoising_unet.attn_processors.items()} == before


def test_mismatched_unets_are_refused(pipe):
    from diffusers import UNet2DConditionModel

    from generation_tiny import UNET

    other = UNet2DConditionModel(**{**UNET, "layers_per_block": 2})
    with pytest.raises(ValueError, match="share their self-attention layers"):
        with reference_attention(pipe.reference_unet, other):
            pass
