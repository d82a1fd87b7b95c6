"""Normalised 2D pose vectors and a PCA to look at them in 2D (paper Figure 2 (ii)).

A pose embedding removes what is not pose: the position of the person in the image (centred on the
mid-hip) and their size (divided by the torso length, mid-shoulder to mid-hip). What remains is the
2D configuration of the 17 COCO joints as seen by the camera, so both the articulation and the
viewpoint shape it; ``posedive.analysis.orientation`` gives the viewpoint on its own.

PCA is done with numpy's SVD (deterministic, no extra dependency); t-SNE, as in the paper, spreads
clusters more but is not a projection that new points can be added to.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..schema import COCO17_KEYPOINTS

_SHOULDERS = [COCO17_KEYPOINTS.index("left_shoulder"), COCO17_KEYPOINTS.index("right_shoulder")]
_HIPS = [COCO17_KEYPOINTS.index("left_hip"), COCO17_KEYPOINTS.index("right_hip")]
EMBEDDING_DIM = 2 * len(COCO17_KEYPOINTS)


def pose_embedding(keypoints: np.ndarray) -> np.ndarray:
    """(17, 2 or 3) COCO-17 keypoints in pixels -> (34,) float32: x, y of every joint relative to the
    mid-hip, in torso lengths (y down, as in the image). Confidences, if given, are ignored.

    Raises ValueError on a wrong shape, non-finite coordinates or a degenerate skeleton (all joints
    at one point, as in ``PoseEstimate.nobody()``).
    """
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != len(COCO17_KEYPOINTS) or points.shape[1] not in (2, 3):
        raise ValueError(f"expected (17, 2) or (17, 3) COCO-17 keypoints, got shape {points.shape}")
    xy = points[:, :2]
    if not np.all(np.isfinite(xy)):
        raise ValueError("keypoints contain non-finite coordinates")
    hip = xy[_HIPS].mean(axis=0)
    torso = float(np.linalg.norm(xy[_SHOULDERS].mean(axis=0) - hip))
    if torso < 1e-6:
        # A torso seen end-on (camera above the head) has no length; fall back to the skeleton's extent.
        torso = float(np.ptp(xy, axis=0).max()) / 3.0
    if torso < 1e-6:
        raise ValueError("degenerate skeleton: all keypoints at one point (no person?)")
    return ((xy - hip) / torso).reshape(-1).astype(np.float32)


class PosePCA(BaseModel):
    """A fitted PCA of pose embeddings; stored in the statistics JSON so a later run can reuse it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: list[float]
    components: list[list[float]]  # (n_components, EMBEDDING_DIM)
    explained_variance_ratio: list[float]

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        data = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if data.shape[1] != len(self.mean):
            raise ValueError(f"expected embeddings of dimension {len(self.mean)}, got shape {data.shape}")
        return ((data - np.asarray(self.mean)) @ np.asarray(self.components).T).astype(np.float32)


def fit_pca(embeddings: np.ndarray, n_components: int = 2) -> PosePCA:
    """Principal axes of (N, D) embeddings; component signs fixed so the largest loading is positive
    (the same data always gives the same picture)."""
    data = np.asarray(embeddings, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings in an (N, D) array to fit a PCA, got shape {data.shape}")
    if not 1 <= n_components <= min(data.shape):
        raise ValueError(f"n_components must be in [1, {min(data.shape)}], got {n_components}")
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    components = vt[:n_components]
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    total = float(variance.sum())
    ratio = (variance[:n_components] / total) if total > 0 else np.zeros(n_components)
    return PosePCA(mean=mean.tolist(), components=components.tolist(), explained_variance_ratio=ratio.tolist())
