"""Builds the small test recipe with a tiny diffusion generator on CPU under a given thread count.

Run as a script (``python tests/thread_builds.py FOLDER THREADS``) so that the thread settings are
in place before torch loads, as in a build's worker; prints the release's manifest digest and the
thread count torch ran with.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from posedive.parallel import ThreadLimits, use_reproducible_cpu_numerics  # noqa: E402  (imports no torch)


def main(folder: Path, threads: int) -> None:
    use_reproducible_cpu_numerics()  # as the command line does
    ThreadLimits.for_cpus(threads).apply()
    import hashlib

    import torch
    from doubles import DoubleEstimator, DoubleRenderer
    from frame_helpers import frame_recipe
    from generation_tiny import make_pipeline

    from posedive import paths
    from posedive.builder import BuildStages, build_release
    from posedive.builder.stages import load_generator

    weights = folder / "tiny-generator"
    if not weights.is_dir():
        make_pipeline(seed=0).save_pretrained(weights)
    recipe = frame_recipe(folder / f"threads-{threads}", generator={"weights": str(weights), "steps": 2},
                          filter={"tau_gen": 0.0, "eps_gen": 1.0})
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=load_generator(recipe))
    assert build_release(recipe, stages=stages, show_progress=False).manifest.samples > 0
    shards = sorted((recipe.release_dir / "data").glob("*.tar"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in shards)).hexdigest()
    manifest = hashlib.sha256((recipe.release_dir / paths.MANIFEST).read_bytes()).hexdigest()
    print(f"threads={torch.get_num_threads()} shards={digest} manifest={manifest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
