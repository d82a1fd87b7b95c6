"""PoseDivePipeline and the builder-facing generator on tiny random models saved by the tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention
from generation_tiny import HEIGHT, WIDTH, make_pipeline, one_torch_thread, random_image, random_maps, request
from PIL import Image

from posedive.generation import (
    GeneratorMetadata,
    PoseDivePipeline,
    conditions_to_tensor,
    load_generator,
    weights_sha256,
)
from posedive.recipe import GeneratorConfig
from posedive.schema import Generator

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline(seed=0, randomise_guider=True)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("generator")
    pipe.save_pretrained(folder)
    GeneratorMetadata(description="tiny random test model", resolution=(WIDTH, HEIGHT)).save(folder)
    return folder


def _call(pipe, seeds, output_type="np", steps=2):
    refs = [random_image(s) for s in seeds]
    conditions = conditions_to_tensor([random_maps(s) for s in seeds], HEIGHT, WIDTH)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    return pipe(
        refs, conditions, generator=generators, height=HEIGHT, width=WIDTH,
        num_inference_steps=steps, guidance_scale=3.5, output_type=output_type,
    ).images


def test_output_shapes(pipe):
    images = _call(pipe, [1, 2, 3], output_type="pil")
    assert len(images) == 3 and all(isinstance(i, Image.Image) and i.size == (WIDTH, HEIGHT) for i in images)
    latents = _call(pipe, [1], output_type="latent")
    assert latents.shape == (1, 4, HEIGHT // 8, WIDTH // 8)


def test_conditions_to_tensor_layout():
    maps = random_maps(0)
    tensor = conditions_to_tensor([maps], HEIGHT, WIDTH)
    assert tensor.shape == (1, 7, HEIGHT, WIDTH)
    np.testing.assert_allclose(tensor[0, 0].numpy(), maps["depth"] / 255.0, atol=1e-6)
    np.testing.assert_allclose(tensor[0, 1:4].permute(1, 2, 0).numpy(), maps["normal"] / 255.0, atol=1e-6)
    np.testing.assert_allclose(tensor[0, 4:7].permute(1, 2, 0).numpy(), maps["skeleton"] / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="'normal'"):
        conditions_to_tensor([{**maps, "normal": maps["depth"]}], HEIGHT, WIDTH)


def test_bad_inputs_are_named(pipe):
    with pytest.raises(ValueError, match="one generator per sample"):
        pipe([random_image(0)], conditions_to_tensor([random_maps(0)], HEIGHT, WIDTH), generator=[], height=HEIGHT, width=WIDTH)
    with pytest.raises(ValueError, match="conditions must have shape"):
        pipe([random_image(0)], torch.zeros(1, 7, 8, 8), height=HEIGHT, width=WIDTH)


def test_sample_is_independent_of_its_batch(pipe):
    alone = _call(pipe, [5], output_type="latent")
    batched = _call(pipe, [4, 5, 6], output_type="latent")
    torch.testing.assert_close(batched[1:2], alone, rtol=1e-4, atol=1e-4)
    assert (batched[0] - batched[1]).abs().mean() > 1e-2


def test_stochastic_scheduler_sample_is_independent_of_its_batch(pipe):
    """DDPM draws new noise in every step: each sample's comes from its own generator, so a sample
    repeats with its seed and does not depend on the batch it lands in."""
    from diffusers import DDPMScheduler

    stochastic = PoseDivePipeline(**{**pipe.components, "scheduler": DDPMScheduler.from_config(pipe.scheduler.config)})
    stochastic.set_progress_bar_config(disable=True)
    alone = _call(stochastic, [5], output_type="latent")
    torch.testing.assert_close(_call(stochastic, [5], output_type="latent"), alone, rtol=0, atol=0)
    batched = _call(stochastic, [4, 5, 6], output_type="latent")
    torch.testing.assert_close(batched[1:2], alone, rtol=1e-4, atol=1e-4)


def test_guidance_uses_the_unconditional_branch(pipe):
    refs, maps = [random_image(1)], conditions_to_tensor([random_maps(1)], HEIGHT, WIDTH)
    outs = [
        pipe(refs, maps, generator=[torch.Generator().manual_seed(1)], height=HEIGHT, width=WIDTH,
             num_inference_steps=2, guidance_scale=g, output_type="latent").images
        for g in (1.0, 3.5)
    ]
    assert (outs[0] - outs[1]).abs().mean() > 1e-3


def test_save_load_round_trip(pipe, saved):
    loaded = PoseDivePipeline.from_pretrained(saved)
    loaded.set_progress_bar_config(disable=True)
    assert sorted(loaded.components) == sorted(pipe.components)
    np.testing.assert_array_equal(_call(loaded, [3, 8]), _call(pipe, [3, 8]))


def test_load_generator_is_a_generator(saved, pipe):
    config = GeneratorConfig(weights=str(saved), steps=2, guidance_scale=3.5, batch_size=2, width=WIDTH, height=HEIGHT)
    generator = load_generator(config, saved.parent)
    assert isinstance(generator, Generator)
    assert generator.info.description == "tiny random test model"
    assert generator.info.sha256 == weights_sha256(saved) and len(generator.info.sha256) == 64
    attention = [m for m in generator.pipeline.denoising_unet.modules() if isinstance(m, Attention)]
    assert attention and all(m.fused_projections for m in attention)
    assert generator.pipeline.denoising_unet._compiled_call_impl is None  # compile is opt-in
    requests = [request(s) for s in (11, 12, 13)]
    images = generator.generate(requests)
    assert [i.size for i in images] == [(WIDTH, HEIGHT)] * 3
    # batching by config.batch_size (2 + 1) does not change a sample's image
    alone = generator.generate(requests[2:])[0]
    np.testing.assert_allclose(np.asarray(alone, np.int16), np.asarray(images[2], np.int16), atol=1)
    generator.close()


def test_compiled_generator_pads_short_batches_to_one_graph(saved):
    """Rounds of retries ask for 3, then 1, then 2 images: padded to batch_size 2, the compiled U-Net
    sees one batch size (one graph), and the images are those of the uncompiled generator."""
    from torch._dynamo.utils import counters

    from posedive.generation import DiffusionGenerator

    eager = load_generator(GeneratorConfig(weights=str(saved), steps=2, batch_size=2, width=WIDTH, height=HEIGHT), saved.parent)
    config = eager.config.model_copy(update={"compile": True})
    pipeline = PoseDivePipeline.from_pretrained(saved)
    pipeline.set_progress_bar_config(disable=True)
    pipeline.fuse_qkv_projections()
    torch._dynamo.reset()
    counters.clear()
    pipeline.compile_denoiser(backend="eager")
    compiled = DiffusionGenerator(pipeline, config, eager.info)
    try:
        for seeds in ([21, 22, 23], [24], [25, 26]):
            requests = [request(s) for s in seeds]
            got, expected = compiled.generate(requests), eager.generate(requests)
            assert len(got) == len(seeds)
            for a, b in zip(got, expected):
                np.testing.assert_allclose(np.asarray(a, np.int16), np.asarray(b, np.int16), atol=1)
        assert counters["stats"]["unique_graphs"] == 1
    finally:
        torch._dynamo.reset()


def test_load_generator_relative_path_and_missing_metadata(saved, tmp_path):
    folder = tmp_path / "copy"
    PoseDivePipeline.from_pretrained(saved).save_pretrained(folder)
    generator = load_generator(GeneratorConfig(weights="copy", width=WIDTH, height=HEIGHT, compile=True), tmp_path)
    assert "posedive_generator.json" in generator.info.description
    assert generator.pipeline.denoising_unet._compiled_call_impl is not None  # compiled lazily, at the first batch
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(GeneratorConfig(weights="./nowhere"), tmp_path)


def test_weights_hash_changes_with_weights(saved, tmp_path):
    folder = tmp_path / "changed"
    loaded = PoseDivePipeline.from_pretrained(saved)
    with torch.no_grad():
        loaded.pose_guider.conv_out.bias.add_(1.0)
    loaded.save_pretrained(folder)
    assert weights_sha256(folder) != weights_sha256(saved)
    assert json.loads((folder / "model_index.json").read_text())["pose_guider"][1] == "PoseGuider"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generator_picks_bf16_and_keeps_samples_independent(saved):
    config = GeneratorConfig(weights=str(saved), steps=2, batch_size=2, width=WIDTH, height=HEIGHT)
    generator = load_generator(config, saved.parent)
    assert generator.pipeline.device.type == "cuda"
    assert generator.pipeline.denoising_unet.dtype == torch.bfloat16
    requests = [request(s) for s in (11, 12, 13)]
    images = generator.generate(requests)
    assert [i.size for i in images] == [(WIDTH, HEIGHT)] * 3
    alone = generator.generate(requests[2:])[0]
    # bf16 kernels may round differently for another batch size; the noise is the same
    assert np.abs(np.asarray(alone, np.int16) - np.asarray(images[2], np.int16)).mean() < 2.0
    generator.close()
