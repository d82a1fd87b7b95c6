"""``train_generator`` on tiny models: it overfits a tiny set, resumes exactly, and trains LoRA adapters."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from generation_tiny import (
    HEIGHT,
    IMAGE_ENCODER,
    POSE_GUIDER,
    UNET,
    VAE,
    WIDTH,
    make_pairs,
    make_pipeline,
    one_torch_thread,
)
from safetensors.torch import load_file

from posedive.generation import PoseDivePipeline, TrainingConfig, load_training_config, train_generator
from posedive.generation.generator import METADATA_FILE

OVERFIT_STEPS = 200
OVERFIT_FACTOR = 2.0  # fixed-noise loss after / before must fall by at least this factor

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    make_pairs(folder, 4)
    return folder


def _config(pairs, out, **overrides) -> TrainingConfig:
    data = dict(
        description="tiny test model",
        output_dir=str(out),
        model=dict(
            kind="scratch", unet=UNET, vae=VAE, image_encoder=IMAGE_ENCODER, pose_guider=POSE_GUIDER,
            scheduler=dict(clip_sample=False), vae_pretrain=dict(steps=0),
        ),
        data=dict(pairs=[str(pairs)], width=WIDTH, height=HEIGHT, reference_drop_prob=0.25),
        optim=dict(learning_rate=1e-3),
        max_steps=OVERFIT_STEPS,
        batch_size=4,
        log_every=10,
        checkpoint_every=1000,
    )
    data.update(overrides)
    return TrainingConfig.model_validate(data)


def test_overfits_a_tiny_set(pairs, tmp_path):
    config = _config(pairs, tmp_path / "run", data=dict(pairs=[str(pairs)], width=WIDTH, height=HEIGHT, reference_drop_prob=0.0))
    result = train_generator(config)
    assert result.steps == OVERFIT_STEPS
    assert result.eval_loss_after < result.eval_loss_before / OVERFIT_FACTOR, result
    assert result.loss_last < result.loss_first / OVERFIT_FACTOR, result
    generator = tmp_path / "run" / "generator"
    meta = json.loads((generator / METADATA_FILE).read_text())
    assert meta["description"] == "tiny test model" and meta["training"]["result"]["steps"] == OVERFIT_STEPS
    loaded = PoseDivePipeline.from_pretrained(generator)
    assert loaded.scheduler.__class__.__name__ == "DDIMScheduler"
    # the VAE and CLIP encoder stay frozen: their saved weights are those the run started from
    assert result.trainable_parameters == sum(
        p.numel() for m in (loaded.reference_unet, loaded.denoising_unet, loaded.pose_guider) for p in m.parameters()
    )


def _final_weights(folder):
    return load_file(str(folder / "generator" / "denoising_unet" / "diffusion_pytorch_model.safetensors"))


def test_resume_continues_where_it_stopped(pairs, tmp_path):
    # 4 pairs in batches of 2: the checkpoint at step 3 falls in the middle of an epoch
    settings = dict(max_steps=6, checkpoint_every=3, batch_size=2)
    straight = train_generator(_config(pairs, tmp_path / "straight", **settings))
    assert straight.steps == 6
    first = train_generator(_config(pairs, tmp_path / "resumed", **{**settings, "max_steps": 3, "keep_checkpoints": 1}))
    assert first.steps == 3
    assert [p.name for p in sorted((tmp_path / "resumed" / "checkpoints").iterdir())] == ["step-0000003"]
    second = train_generator(_config(pairs, tmp_path / "resumed", **settings))
    assert second.steps == 6
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "resumed")
    at_3 = load_file(str(tmp_path / "resumed" / "checkpoints" / "step-0000003" / "model.safetensors"))
    moved = sum(float((a[k] - at_3[f"denoising_unet.{k}"]).norm() ** 2) for k in a) ** 0.5
    apart = sum(float((a[k] - b[k]).norm() ** 2) for k in a) ** 0.5
    # the last three steps moved the weights; the resumed run took (numerically) the same three steps
    assert moved > 1e-2 and apart < 1e-2 * moved, (moved, apart)


def test_each_process_draws_its_own_noise(pairs, tmp_path, monkeypatch):
    """Under ``accelerate launch`` each process runs the same code with its own process index. Two
    simulated processes must draw different noise, timesteps and reference dropout (with one stream N
    GPUs train like one), and each must repeat its own draws (so resuming stays exact)."""
    from accelerate import Accelerator

    def first_loss(process_index: int, run: str) -> float:
        monkeypatch.setattr(Accelerator, "process_index", property(lambda self: process_index))
        return train_generator(_config(pairs, tmp_path / run, max_steps=1, log_every=1)).loss_first

    rank0, rank1, rank1_again = first_loss(0, "rank0"), first_loss(1, "rank1"), first_loss(1, "rank1-again")
    assert rank0 != rank1  # the same batch and weights: only the draws differ
    assert rank1 == rank1_again


TWO_PROCESS_DRIVER = textwrap.dedent("""
    import hashlib, json, sys
    from pathlib import Path
    import torch
    from posedive.generation import TrainingConfig
    from posedive.generation.training import trainer as trainer_module

    config = TrainingConfig.model_validate(json.loads(Path(sys.argv[1]).read_text()))
    trainer = trainer_module.Trainer(config)
    trainer.setup()
    vae = hashlib.sha256(b"".join(v.numpy().tobytes() for _, v in sorted(trainer.components.vae.state_dict().items())))
    drawn = []
    draw = trainer_module.draw
    trainer_module.draw = lambda *args: drawn.append(draw(*args)) or drawn[-1]
    trainer.step()
    rank = trainer.accelerator.process_index
    record = {"vae": vae.hexdigest(), "noise": drawn[0].noise.flatten()[:8].tolist(),
              "timesteps": drawn[0].timesteps.tolist()}
    Path(sys.argv[2], f"rank{rank}.json").write_text(json.dumps(record))
    trainer.accelerator.end_training()
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_share_the_pretrained_vae_and_draw_their_own_noise(pairs, tmp_path):
    """A real two-process run (torchrun, gloo on CPU): the VAE pre-trained on the main process is the
    one every process encodes with, and each process draws its own noise and timesteps."""
    config = _config(pairs, tmp_path / "run", max_steps=1, batch_size=2,
                     model=dict(kind="scratch", unet=UNET, vae=VAE, image_encoder=IMAGE_ENCODER,
                                pose_guider=POSE_GUIDER, scheduler=dict(clip_sample=False),
                                vae_pretrain=dict(steps=2, batch_size=2)))
    (tmp_path / "config.json").write_text(config.model_dump_json())
    (tmp_path / "driver.py").write_text(TWO_PROCESS_DRIVER)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(tmp_path / "driver.py"), str(tmp_path / "config.json"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert rank0["vae"] == rank1["vae"]
    assert rank0["noise"] != rank1["noise"] and rank0["timesteps"] != rank1["timesteps"]


def test_lora_and_accumulation_from_a_generator(pairs, tmp_path):
    base = tmp_path / "base"
    make_pipeline(seed=0).save_pretrained(base)
    config = _config(
        pairs, tmp_path / "lora", model=dict(kind="generator", path=str(base)), lora=dict(rank=4, alpha=4),
        max_steps=2, gradient_accumulation_steps=2, batch_size=2, gradient_checkpointing=True,
    )
    result = train_generator(config)
    loaded = PoseDivePipeline.from_pretrained(tmp_path / "lora" / "generator")
    unet_params = sum(p.numel() for p in loaded.denoising_unet.parameters())
    guider_params = sum(p.numel() for p in loaded.pose_guider.parameters())
    assert guider_params < result.trainable_parameters < unet_params  # adapters + guider, not the U-Nets
    assert not any("lora" in k for k in loaded.denoising_unet.state_dict())  # merged on save
    before = PoseDivePipeline.from_pretrained(base)
    changed = [
        name for name, p in loaded.denoising_unet.named_parameters()
        if not torch.equal(p, before.denoising_unet.state_dict()[name])
    ]
    assert changed and all(any(t in name for t in ("to_q", "to_k", "to_v", "to_out")) for name in changed)


def test_a_trained_generator_saves_its_condition_contract(pairs, tmp_path):
    """The config's pose_guider.conditions build the guider (here one per map, BGR skeleton then depth);
    the trained generator carries that contract at data.width x data.height."""
    from posedive.generation import read_contract

    maps = [dict(name="skeleton", encoding="openpose18-bgr", channels=3), dict(name="depth", encoding="near-bright", channels=1)]
    guider = dict(block_out_channels=POSE_GUIDER["block_out_channels"], conditions=dict(guiders="per_map", maps=maps))
    model = dict(kind="scratch", unet=UNET, vae=VAE, image_encoder=IMAGE_ENCODER, pose_guider=guider,
                 scheduler=dict(clip_sample=False), vae_pretrain=dict(steps=0))
    train_generator(_config(pairs, tmp_path / "run", model=model, max_steps=1))
    contract = read_contract(tmp_path / "run" / "generator")
    assert contract.map_names == ("skeleton", "depth") and contract.guiders == "per_map"
    assert contract.resolution == (WIDTH, HEIGHT)
    unknown = dict(guider, conditions=dict(maps=[dict(name="semantic", encoding="champ-parts", channels=3)]))
    with pytest.raises(ValueError, match="semantic/champ-parts with 3 channel"):
        _config(pairs, tmp_path / "bad", model=dict(model, pose_guider=unknown))
    with pytest.raises(ValueError, match="conditioning_channels=7 but conditions.maps have 4 channels"):
        _config(pairs, tmp_path / "bad", model=dict(model, pose_guider=dict(guider, conditioning_channels=7)))


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("description: x\noutput_dir: out\nmax_steps: 0\nmodel: {kind: pretrained}\ndata: {pairs: [p]}\n")
    with pytest.raises(ValueError, match="max_steps"):
        load_training_config(path)
    path.write_text("description: x\noutput_dir: out\nmax_steps: 1\nmodel: {kind: pretrained}\ndata: {pairs: [p]}\n")
    config = load_training_config(path)
    assert config.optim.learning_rate == 1e-5 and config.optim.weight_decay == 0.01
    assert config.resolve(config.output_dir) == tmp_path / "out"
