"""Generation throughput and memory of the two-branch generator at SD-1.5 scale (run by hand).

    python benchmarks/generation.py --device cpu --batch-sizes 1 2 --steps 1 2        # CPU, extrapolated
    python benchmarks/generation.py --device cuda --dtype bfloat16 --batch-sizes 8 16 32 64
    python benchmarks/generation.py --device cuda --batch-sizes 32 64 --steps 25 --compile

The pipeline is prepared as ``posedive build`` prepares it (``load_generator``): fused QKV projections
(``--no-fuse-qkv`` turns them off) and, with ``--compile``, ``torch.compile`` of the denoising U-Net;
compilation happens in the warm-up call, which is not timed.

The pipeline is ``PoseDivePipeline`` with the Stable Diffusion 1.5 U-Net and VAE and the CLIP
ViT-L/14 vision tower, random weights (speed and memory depend on the architecture only), at
192x384, classifier-free guidance on, one reference U-Net pass per batch, VAE encode of the reference
and decode of the result: exactly what ``posedive build`` runs per batch.

Timing: with two step counts ``s1 < s2`` the per-step cost is ``(t(s2) - t(s1)) / (s2 - s1)`` and the
fixed cost (CLIP, VAE encode, reference pass, VAE decode) ``t(s1) - s1 * per_step``; images/s at
``--report-steps`` (25) is ``B / (fixed + 25 * per_step)``. On a GPU pass ``--steps 25`` to time 25
steps directly. Each time is the best of ``--repeats`` calls after a warm-up call.

FLOPs are counted by ``torch.utils.flop_counter`` on the meta device (no compute): per image
``clip + vae_encode + pose_guider + reference_unet + reference_projection + steps * (denoising_unet
with the reference + denoising_unet without it) + vae_decode``, where ``reference_projection`` turns
the banked reference tokens into keys and values once per batch. The roofline is ``peak / flops_per_image`` images/s and the
ratio is measured / roofline. Peak memory: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the
process's peak resident set (``ru_maxrss``), cumulative over the run (batch sizes run in rising order).
Results go to ``benchmarks/results/generation_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from posedive.generation.architectures import random_sd15_pipeline
from posedive.generation.generator import DTYPE_NAMES, resolve_dtype
from posedive.generation.models.reference_attention import reference_attention
from posedive.generation.pipeline import conditions_to_tensor

logger = logging.getLogger("benchmarks.generation")
WIDTH, HEIGHT = 192, 384


def count_flops(pipe, steps: int, guided: bool) -> dict[str, float]:
    """FLOPs of one image, per component, on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    def flops(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    meta = random_sd15_pipeline() if pipe is None else pipe
    meta = meta.to("meta")
    latent = torch.randn(1, 4, HEIGHT // 8, WIDTH // 8, device="meta")
    embeds = torch.randn(1, 1, 768, device="meta")
    t = torch.tensor([500], device="meta")
    parts: dict[str, float] = {
        "clip": flops(lambda: meta.image_encoder(torch.randn(1, 3, 224, 224, device="meta"))),
        "vae_encode": flops(lambda: meta.vae.encode(torch.randn(1, 3, HEIGHT, WIDTH, device="meta")).latent_dist.mean),
        "pose_guider": flops(lambda: meta.pose_guider(torch.randn(1, 7, HEIGHT, WIDTH, device="meta"))),
        "vae_decode": flops(lambda: meta.vae.decode(latent)),
        "denoising_unet_plain": flops(lambda: meta.denoising_unet(latent, t, encoder_hidden_states=embeds)),
    }
    with torch.no_grad(), reference_attention(meta.reference_unet, meta.denoising_unet) as bank:
        parts["reference_unet"] = flops(lambda: meta.reference_unet(latent, t * 0, encoder_hidden_states=embeds))
        parts["reference_projection"] = flops(lambda: bank.project(meta.denoising_unet))
        parts["denoising_unet_with_reference"] = flops(
            lambda: meta.denoising_unet(latent, t, encoder_hidden_states=embeds)
        )
    per_step = parts["denoising_unet_with_reference"] + (parts["denoising_unet_plain"] if guided else 0.0)
    parts["per_step"] = per_step
    once = ("clip", "vae_encode", "pose_guider", "reference_unet", "reference_projection", "vae_decode")
    parts["per_image"] = sum(parts[name] for name in once) + steps * per_step
    return parts


def _inputs(batch: int, seed: int):
    rng = np.random.default_rng(seed)
    refs = [Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)) for _ in range(batch)]
    maps = [
        {
            "depth": rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8),
            "normal": rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
            "skeleton": rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
        }
        for _ in range(batch)
    ]
    return refs, conditions_to_tensor(maps, HEIGHT, WIDTH)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(pipe, batch: int, steps: int, guidance: float, repeats: int, device: torch.device) -> float:
    refs, conditions = _inputs(batch, seed=batch)
    best = float("inf")
    for _ in range(repeats):
        generators = [torch.Generator().manual_seed(i) for i in range(batch)]
        _sync(device)
        start = time.perf_counter()
        pipe(refs, conditions, generator=generators, height=HEIGHT, width=WIDTH,
             num_inference_steps=steps, guidance_scale=guidance, output_type="pil")
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPE_NAMES), help="default: float32 on CPU, bfloat16 on GPU")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2], help="one count (timed directly) or two (extrapolated)")
    parser.add_argument("--report-steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=3.5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense peak of the device; default 790 on GPU (H100/H200 bf16)")
    parser.add_argument("--channels-last", action="store_true", help="U-Nets and VAE in channels-last memory format")
    parser.add_argument("--no-fuse-qkv", action="store_true", help="keep separate Q, K and V projections")
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoising U-Net (as generator.compile)")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = resolve_dtype(args.dtype or "auto", device)
    guided = args.guidance > 1.0
    flops = count_flops(None, args.report_steps, guided)
    logger.info("FLOPs per image at %d steps: %.2f TFLOP (U-Net with reference %.1f GFLOP, plain %.1f GFLOP)",
                args.report_steps, flops["per_image"] / 1e12, flops["denoising_unet_with_reference"] / 1e9,
                flops["denoising_unet_plain"] / 1e9)

    torch.manual_seed(0)
    pipe = random_sd15_pipeline().to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    if args.channels_last:
        for module in (pipe.reference_unet, pipe.denoising_unet, pipe.vae, pipe.pose_guider):
            module.to(memory_format=torch.channels_last)
    if not args.no_fuse_qkv:
        pipe.fuse_qkv_projections()
    if args.compile:
        pipe.compile_denoiser(**({"mode": args.compile_mode} if args.compile_mode else {}))
    steps = sorted(args.steps)
    peak_tflops = args.peak_tflops or (790.0 if device.type == "cuda" else None)
    rows = []
    for batch in sorted(args.batch_sizes):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        time_call(pipe, batch, steps[0], args.guidance, 1, device)  # warm-up
        times = {s: time_call(pipe, batch, s, args.guidance, args.repeats, device) for s in steps}
        if len(steps) >= 2:
            s1, s2 = steps[0], steps[-1]
            per_step = (times[s2] - times[s1]) / (s2 - s1)
            fixed = times[s1] - s1 * per_step
            if per_step <= 0 or fixed < 0:
                raise SystemExit(
                    f"batch {batch}: timings {times} are too noisy to extrapolate (a shared CPU?); "
                    "use more --repeats or steps further apart"
                )
            seconds = fixed + args.report_steps * per_step
            method = f"extrapolated from {s1} and {s2} steps"
        else:
            per_step = fixed = None
            seconds = times[steps[0]] * args.report_steps / steps[0] if steps[0] != args.report_steps else times[steps[0]]
            method = f"timed at {steps[0]} steps"
        images_per_s = batch / seconds
        if device.type == "cuda":
            peak_memory = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            peak_memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        achieved = images_per_s * flops["per_image"] / 1e12
        row = {
            "batch_size": batch,
            "times_s": {str(k): round(v, 3) for k, v in times.items()},
            "per_step_s": None if per_step is None else round(per_step, 4),
            "fixed_s": None if fixed is None else round(fixed, 3),
            "seconds_per_batch": round(seconds, 3),
            "images_per_s": round(images_per_s, 4),
            "method": method,
            "peak_memory_gib": round(peak_memory, 2),
            "achieved_tflops": round(achieved, 3),
        }
        if peak_tflops:
            roofline = peak_tflops * 1e12 / flops["per_image"]
            row["roofline_images_per_s"] = round(roofline, 2)
            row["ratio_to_roofline"] = round(images_per_s / roofline, 4)
        rows.append(row)
        logger.info("batch %d: %.4f images/s (%s; times %s), peak memory %.2f GiB, %.3f TFLOP/s achieved",
                    batch, images_per_s, method, row["times_s"], peak_memory, achieved)

    result = {
        "benchmark": "generation",
        "architecture": "SD-1.5 U-Net x2 + SD VAE + CLIP ViT-L/14 vision, random weights",
        "size": f"{WIDTH}x{HEIGHT}",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "memory_format": "channels_last" if args.channels_last else "contiguous",
        "fused_qkv": not args.no_fuse_qkv,
        "compiled": (args.compile_mode or "default") if args.compile else False,
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "report_steps": args.report_steps,
        "guidance_scale": args.guidance,
        "flops": {k: round(v / 1e9, 2) for k, v in flops.items()},
        "flops_unit": "GFLOP",
        "peak_tflops": peak_tflops,
        "rows": rows,
    }
    out = args.out or Path(__file__).parent / "results" / f"generation_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
