"""Pose guider and reference attention: the two mechanisms of paper section 3.4, on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generation_tiny import HEIGHT, WIDTH, make_pipeline, one_torch_thread, random_image, random_maps

from posedive.generation import PoseGuider, conditions_to_tensor
from posedive.generation.models import (
    ReferenceReadProcessor,
    ReferenceWriteProcessor,
    pose_features_added,
    reference_attention,
)

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


def _model_inputs(rows: int):
    generator = torch.Generator().manual_seed(rows)
    latent = (rows, 4, HEIGHT // 8, WIDTH // 8)
    return dict(
        noisy=torch.randn(latent, generator=generator),
        reference=torch.randn(latent, generator=generator),
        embeds=torch.randn(rows, 1, 32, generator=generator),
        conditions=torch.rand(rows, 7, HEIGHT, WIDTH, generator=generator),
    )


def test_training_and_inference_run_one_model_step():
    """The training forward (gradients on: the bank is re-projected in every layer) and the inference
    calls (no gradients: projected once) give the same prediction, and classifier-free guidance's
    stacked rows are the unconditional and the conditional prediction."""
    from posedive.generation import TwoBranchModel

    pipe = make_pipeline(seed=0, randomise_guider=True)
    model = TwoBranchModel(pipe.reference_unet, pipe.denoising_unet, pipe.pose_guider)
    x = _model_inputs(2)
    t = torch.tensor([700, 300])
    with model.reference_attention() as bank:
        trained = model(bank, x["noisy"], t, x["reference"], x["embeds"], x["conditions"])
        assert not bank.projections
    with torch.no_grad(), model.reference_attention() as bank:
        model.encode_reference(bank, x["reference"], x["embeds"])
        assert len(bank.projections) == len(bank)
        pose = model.encode_conditions(x["conditions"])
        inferred = model.predict_noise(bank, x["noisy"], t, x["embeds"], pose)
        keep = torch.tensor([False, False, True, True])
        guided = model.predict_noise(bank, torch.cat([x["noisy"]] * 2), t.repeat(2), x["embeds"], pose, keep)
    torch.testing.assert_close(inferred, trained.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(guided[2:], inferred, rtol=1e-5, atol=1e-5)
    with torch.no_grad(), pose_features_added(pipe.denoising_unet, pose):
        alone = pipe.denoising_unet(x["noisy"], t, encoder_hidden_states=torch.zeros_like(x["embeds"])).sample
    torch.testing.assert_close(guided[:2], alone, rtol=1e-5, atol=1e-5)


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
    from posedive.errors import CheckpointError

    with pytest.raises(CheckpointError, match="share their self-attention layers"):
        with reference_attention(pipe.reference_unet, other):
            pass


# ------------------------------------------------------------------ the read processor against eq. 6 by hand
def _attention_layer(fused: bool):
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(3)
    attn = Attention(query_dim=16, heads=2, dim_head=8, bias=True, out_bias=True)
    for parameter in attn.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    if fused:
        attn.fuse_projections(fuse=True)
    return attn.eval()


def _by_hand(attn, hidden, reference, keep):
    """Eq. 6 row by row: queries from the row's tokens, keys and values from its tokens followed by its
    reference's tokens (row i reads reference i % R) when it keeps the reference, else its own only."""
    rows = []
    for i, x in enumerate(hidden):
        source = torch.cat([x, reference[i % len(reference)]]) if keep[i] else x
        q, k, v = attn.to_q(x), attn.to_k(source), attn.to_v(source)
        heads = []
        for h in range(attn.heads):
            cols = slice(8 * h, 8 * (h + 1))
            weights = torch.softmax(q[:, cols] @ k[:, cols].T / np.sqrt(8), dim=-1)
            heads.append(weights @ v[:, cols])
        rows.append(attn.to_out[0](torch.cat(heads, -1)))
    return torch.stack(rows)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize(
    "keep", [[True, True], [False, False, True, True], [True, False, False, True], [False, True, True, False, True, False]]
)
def test_read_processor_is_eq6_by_hand(keep, fused):
    from posedive.generation.models import ReferenceBank

    attn = _attention_layer(fused)
    bank = ReferenceBank()
    attn.set_processor(ReferenceReadProcessor(bank, "layer"))
    generator = torch.Generator().manual_seed(len(keep))
    hidden = torch.randn(len(keep), 5, 16, generator=generator)
    reference = torch.randn(2, 7, 16, generator=generator)
    bank.write("layer", reference)
    bank.keep = torch.tensor(keep)
    with torch.no_grad():
        expected = _by_hand(attn, hidden, reference, keep)
        on_the_fly = attn(hidden)
        bank.project(torch.nn.ModuleDict({"layer": attn}))
        assert set(bank.projections) == {"layer"}
        cached = attn(hidden)
    torch.testing.assert_close(on_the_fly, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cached, expected, rtol=1e-5, atol=1e-5)


def test_projected_reference_is_read_not_recomputed_and_rewrites_invalidate_it():
    from posedive.generation.models import ReferenceBank

    attn = _attention_layer(fused=False)
    bank = ReferenceBank()
    attn.set_processor(ReferenceReadProcessor(bank, "layer"))
    key_inputs = []
    attn.to_k.register_forward_hook(lambda module, args, out: key_inputs.append(args[0].shape[1]))
    hidden, first, second = torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    with torch.no_grad():
        bank.write("layer", first)
        bank.project(torch.nn.ModuleDict({"layer": attn}))
        key_inputs.clear()
        for _ in range(3):  # three denoising steps: only the 5 own tokens are projected each time
            out_first = attn(hidden)
        assert key_inputs == [5, 5, 5]
        bank.write("layer", second)  # a new reference: the old keys and values must not be read
        assert "layer" not in bank.projections
        out_second = attn(hidden)
    torch.testing.assert_close(out_first, _by_hand(attn, hidden, first, [True, True]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_second, _by_hand(attn, hidden, second, [True, True]), rtol=1e-5, atol=1e-5)


def test_training_gradients_reach_the_reference_projections():
    """With gradients on nothing is cached: the loss reaches to_k/to_v through the reference tokens."""
    from posedive.generation.models import ReferenceBank

    attn = _attention_layer(fused=False)
    bank = ReferenceBank()
    attn.set_processor(ReferenceReadProcessor(bank, "layer"))
    reference = torch.randn(2, 7, 16, requires_grad=True)
    bank.write("layer", reference)
    attn(torch.randn(2, 5, 16)).square().sum().backward()
    assert not bank.projections
    assert reference.grad is not None and reference.grad.abs().sum() > 0


def test_compiled_denoiser_is_one_graph_and_matches_eager():
    """The denoising U-Net compiles whole (fullgraph: no graph break in the reference attention or
    the pose-feature hook) and later batches with new references reuse the graph."""
    from torch._dynamo.utils import counters

    eager = make_pipeline(seed=0, randomise_guider=True)
    compiled = make_pipeline(seed=0, randomise_guider=True)
    torch._dynamo.reset()
    counters.clear()
    compiled.compile_denoiser(backend="eager")  # fullgraph by default: a graph break would raise
    try:
        for seed in (1, 2, 3):
            refs, maps = [random_image(seed), random_image(seed + 10)], [random_maps(seed), random_maps(seed + 10)]
            np.testing.assert_allclose(
                _run(compiled, refs, maps, [seed, seed + 1]), _run(eager, refs, maps, [seed, seed + 1]), rtol=1e-5, atol=1e-5
            )
        assert counters["stats"]["unique_graphs"] == 1
    finally:
        torch._dynamo.reset()
