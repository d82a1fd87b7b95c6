#!/usr/bin/env bash
# Generation throughput on one CUDA GPU, the numbers the generator's target is stated in: bf16,
# 192x384, 25 DDIM steps, guidance 3.5, SD-1.5 architecture with random weights.
# Three configurations, each in its own process: eager (fused QKV projections, as `posedive build`
# runs by default), torch.compile of the denoising U-Net (`generator.compile: true`), and compile
# with channels-last memory. Compilation happens in each batch size's untimed warm-up call.
#
#   benchmarks/generation_gpu.sh [RESULTS_DIR]        # default: benchmarks/results
set -euo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
gpu=$(python -c "import torch; print(torch.cuda.get_device_name().split()[-1].lower())")
run() { PYTHONUNBUFFERED=1 python benchmarks/generation.py --device cuda --steps 25 "$@"; }
run --batch-sizes 32 64 --out "$out/generation_cuda_${gpu}_eager.json"
run --batch-sizes 32 64 --compile --out "$out/generation_cuda_${gpu}_compiled.json"
run --batch-sizes 64 --compile --channels-last --out "$out/generation_cuda_${gpu}_compiled_channels_last.json"
