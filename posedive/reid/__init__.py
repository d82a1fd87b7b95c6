"""Re-ID toolkit: evaluate, train and export with posedive releases.

Split as torchreid splits it: ``metrics`` (pure NumPy ranking metrics), ``data`` (dataset readers,
transforms, the PxK sampler), ``models`` (the BoT baseline), ``losses``, ``engine`` (training and
feature extraction) and ``export`` (a release written out in the Market-1501 layout). Only the metrics
are imported here, so ``import posedive.reid`` does not load torch.
"""

from .metrics import EvalResult, cosine_distance, evaluate

__all__ = ["EvalResult", "cosine_distance", "evaluate"]
