"""The conditions stage's ``ConditionRenderer``: (pose id, elevation, azimuth) -> ``ConditionSet``.

Each request poses the recipe's body model in a pose from the bank, places a camera at the
requested viewpoint (``cameras.camera_for``) and renders depth, normals and the skeleton
(``render``), plus the maps in other families' forms that the spec's ``forms`` name (Champ's depth
and semantic map, drawn by ``forms``): only those, since a posedive generator reads none of them.
Results go through a content-addressed cache (``ConditionCache``) keyed by everything that decides
the pixels: renderer version, body model and shape, pose id and values, viewpoint, field of view,
image size and the extra forms. The same condition is therefore rendered once per machine,
whichever build asks for it, and a request always returns identical arrays.

One renderer per process: it owns one body model and one ``OffscreenRenderer``, created on the first
``render`` call (``pose_ids`` stays cheap). Call ``close()`` to release the GL context.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..body.models import ANNY_GENDER, BodyModel, load_body_model
from ..body.parts import face_parts
from ..geometry.cameras import DEFAULT_MARGIN, camera_for, project
from ..paths import CONDITIONS_CACHE, cache_dir, cache_entry
from ..recipe import PoseSource
from ..schema import BodyParams, Camera, ConditionRequest, ConditionSet
from .forms import FORM_RENDERERS, check_forms, render_forms
from .posebank import PoseBank, recipe_bank_path, select_poses
from .render import RENDERER_VERSION, MeshRasterizer, draw_skeleton, encode_depth

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RendererSpec:
    """Everything a worker process needs to build the same renderer (picklable)."""

    bank_path: Path
    body_model: str = "anny"
    gender: str = "neutral"
    smpl_model_dir: Path | None = None
    width: int = 192
    height: int = 384
    fov_deg: float = 30.0
    margin: float = DEFAULT_MARGIN
    cache_root: Path | None = None
    body_identity: dict = field(default_factory=dict)
    # The recipe's ``poses`` section: which of the bank's poses are drawn (None: all of them).
    selection: PoseSource | None = None
    # Maps rendered beyond posedive's own, for the generator's contract or the stored maps
    # (``posedive.generation.contract.RENDERED_ON_REQUEST``: ``depth_champ``, ``semantic_map``).
    forms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_forms(self.forms)


class ConditionCache:
    """Condition sets on disk under ``<root>/conditions/<key[:2]>/<key>.npz``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / CONDITIONS_CACHE

    def path(self, key: str) -> Path:
        return cache_entry(self.root, key, ".npz")

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> ConditionSet | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                return ConditionSet(
                    condition_id=key,
                    depth=data["depth"],
                    normal=data["normal"],
                    skeleton=data["skeleton"],
                    keypoints_2d=data["keypoints_2d"],
                    camera=Camera.model_validate(meta["camera"]),
                    body=BodyParams.model_validate(meta["body"]),
                    forms={name: data[FORM_PREFIX + name] for name in meta.get("forms", [])},
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            logger.warning("ignoring unreadable cached condition %s (%s); rendering it again", path, error)
            return None

    def put(self, conditions: ConditionSet) -> Path:
        path = self.path(conditions.condition_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        # A pose's tags belong to its bank, not to the pixels: they are attached when a set is read.
        body = conditions.body.model_dump(mode="json", exclude={"pose_tags"})
        meta = {"camera": conditions.camera.model_dump(mode="json"), "body": body}
        if conditions.forms:
            meta["forms"] = sorted(conditions.forms)
        np.savez_compressed(
            buffer,
            depth=conditions.depth,
            normal=conditions.normal,
            skeleton=conditions.skeleton,
            keypoints_2d=conditions.keypoints_2d,
            meta=np.array(json.dumps(meta, sort_keys=True)),
            **{FORM_PREFIX + name: array for name, array in conditions.forms.items()},
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)
        return path


def body_identity(model: str, gender: str, smpl_model_dir: Path | None) -> dict:
    """What identifies the rendered body in cache keys, without loading the model."""
    if model == "anny":
        from importlib.metadata import version

        identity = {"model": "anny", "version": version("anny"), "gender": gender}
        if gender != "neutral":
            # Renders cached while male and female were swapped on anny's axis are not reused.
            identity["phenotype_gender"] = ANNY_GENDER[gender]
        return identity
    path = Path(smpl_model_dir or ".") / f"SMPL_{gender.upper()}.pkl"
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return {"model": "smpl", "file_sha256": digest, "gender": gender}


class BodyConditionRenderer:
    """Renders condition sets for a pose bank with one body model; see the module docstring."""

    def __init__(self, spec: RendererSpec, bank: PoseBank | None = None) -> None:
        self.spec = spec
        bank = bank if bank is not None else PoseBank.load(spec.bank_path)
        self.bank = select_poses(bank, spec.selection) if spec.selection is not None else bank
        self.cache = ConditionCache(spec.cache_root) if spec.cache_root is not None else None
        self._body: BodyModel | None = None
        self._rasterizer: MeshRasterizer | None = None
        self._face_parts: np.ndarray | None = None
        self._identity = spec.body_identity or body_identity(spec.body_model, spec.gender, spec.smpl_model_dir)

    # ------------------------------------------------------------------------------ the protocol
    def pose_ids(self) -> list[str]:
        return [str(i) for i in self.bank.ids]

    def condition_id(self, request: ConditionRequest) -> str:
        pose = self.bank.pose(request.pose_id)
        payload = {
            "renderer": RENDERER_VERSION,
            "body": self._identity,
            "pose_id": request.pose_id,
            "pose_sha256": hashlib.sha256(np.ascontiguousarray(pose, dtype=np.float32).tobytes()).hexdigest(),
            "elevation_deg": round(float(request.elevation_deg), 6),
            "azimuth_deg": round(float(request.azimuth_deg), 6),
            "fov_deg": round(float(self.spec.fov_deg), 6),
            "width": self.spec.width,
            "height": self.spec.height,
            "margin": self.spec.margin,
        }
        if request.shape is not None:  # the renderer's own body keeps the ids it always had
            payload["shape"] = [round(float(v), 6) for v in request.shape]
        if self.spec.forms:  # so do sets of posedive's maps alone
            payload["forms"] = sorted(self.spec.forms)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def render(self, requests: Sequence[ConditionRequest]) -> list[ConditionSet]:
        keys = [self.condition_id(r) for r in requests]
        results: list[ConditionSet | None] = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = self._render_uncached([requests[i] for i in missing], [keys[i] for i in missing])
            for i, conditions in zip(missing, fresh):
                results[i] = conditions
                if self.cache is not None:
                    self.cache.put(conditions)
        return [self._tagged(r) for r in results if r is not None]

    def _tagged(self, conditions: ConditionSet) -> ConditionSet:
        """Tags do not change pixels, so they are not part of the cache key: a cached condition set
        takes the tags its pose has in this bank."""
        tags = self.bank.tags_of(conditions.body.pose_id)
        if conditions.body.pose_tags == tags:
            return conditions
        return replace(conditions, body=conditions.body.model_copy(update={"pose_tags": tags}))

    def close(self) -> None:
        if self._rasterizer is not None:
            self._rasterizer.close()
            self._rasterizer = None

    def __enter__(self) -> "BodyConditionRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------- the work
    @property
    def body(self) -> BodyModel:
        if self._body is None:
            self._body = load_body_model(
                self.spec.body_model, gender=self.spec.gender, smpl_model_dir=self.spec.smpl_model_dir
            )
        return self._body

    @property
    def rasterizer(self) -> MeshRasterizer:
        if self._rasterizer is None:
            self._rasterizer = MeshRasterizer(self.spec.width, self.spec.height)
        return self._rasterizer

    def face_parts(self, faces: np.ndarray) -> np.ndarray:
        """(F,) SMPL part of each of the body's ``faces`` (``posedive.body.parts``): the same for every
        pose and shape, so worked out once."""
        if self._face_parts is None or len(self._face_parts) != len(faces):
            self._face_parts = face_parts(faces, self.body.vertex_parts())
        return self._face_parts

    def _render_uncached(self, requests: Sequence[ConditionRequest], keys: Sequence[str], batch: int = 16) -> list[ConditionSet]:
        out: list[ConditionSet] = []
        for start in range(0, len(requests), batch):
            chunk = requests[start : start + batch]
            poses = np.stack([self.bank.pose(r.pose_id) for r in chunk]).astype(np.float64)
            own = self.body.shape()
            shapes = np.array([own if r.shape is None else list(r.shape) for r in chunk], dtype=np.float64)
            bodies = self.body.forward(poses, shape=None if all(r.shape is None for r in chunk) else shapes)
            for offset, request in enumerate(chunk):
                out.append(
                    self.render_body(
                        bodies.vertices[offset],
                        bodies.faces,
                        bodies.keypoints[offset],
                        request,
                        keys[start + offset],
                        poses[offset],
                    )
                )
        return out

    def render_body(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        keypoints_3d: np.ndarray,
        request: ConditionRequest,
        condition_id: str,
        pose: np.ndarray,
    ) -> ConditionSet:
        """One condition set from an already posed body."""
        spec = self.spec
        camera = camera_for(
            vertices,
            elevation_deg=request.elevation_deg,
            azimuth_deg=request.azimuth_deg,
            fov_deg=spec.fov_deg,
            width=spec.width,
            height=spec.height,
            margin=spec.margin,
        )
        maps = self.rasterizer.render(vertices, faces, camera)
        forms = render_forms(spec.forms, self.rasterizer, vertices, faces, camera, maps, self.face_parts)
        projected = project(keypoints_3d, camera)
        inside = (
            (projected[:, 0] >= 0)
            & (projected[:, 0] < spec.width)
            & (projected[:, 1] >= 0)
            & (projected[:, 1] < spec.height)
            & (projected[:, 2] > 0)
        )
        keypoints_2d = np.concatenate([projected[:, :2], inside[:, None]], axis=1).astype(np.float32)
        return ConditionSet(
            condition_id=condition_id,
            depth=encode_depth(maps.depth_m),
            normal=maps.normal,
            skeleton=draw_skeleton(keypoints_2d, spec.width, spec.height),
            keypoints_2d=keypoints_2d,
            camera=camera,
            body=BodyParams(
                model=self.body.name,
                pose_id=request.pose_id,
                pose=[float(v) for v in pose],
                shape=[float(v) for v in (self.body.shape() if request.shape is None else request.shape)],
                pose_tags=self.bank.tags_of(request.pose_id),
            ),
            forms=forms,
        )


# Cached forms are stored beside posedive's maps under these prefixed names.
FORM_PREFIX = "form_"


def renderer_spec(recipe, *, cache_root: Path | None = None, forms: Sequence[str] = ()) -> RendererSpec:
    """The renderer spec a recipe asks for; builds (or imports) the recipe's pose bank if needed.

    ``forms``: the maps beyond posedive's own that the generator's contract reads; the maps the recipe
    stores (``output.condition_maps``) are added to them."""
    bank_path = recipe_bank_path(recipe.poses, recipe.resolve)
    select_poses(PoseBank.load(bank_path), recipe.poses)  # fails early on a selection that keeps nothing
    smpl_dir = recipe.resolve(recipe.body.smpl_model_dir) if recipe.body.smpl_model_dir is not None else None
    return RendererSpec(
        bank_path=bank_path,
        body_model=recipe.body.model,
        gender=recipe.body.gender,
        smpl_model_dir=smpl_dir,
        width=recipe.generator.width,
        height=recipe.generator.height,
        fov_deg=recipe.viewpoint.fov_deg,
        cache_root=cache_root if cache_root is not None else cache_dir(),
        body_identity=body_identity(recipe.body.model, recipe.body.gender, smpl_dir),
        selection=recipe.poses,
        forms=requested_forms(forms, recipe.output.condition_maps),
    )


def requested_forms(contract_forms: Sequence[str], stored: Sequence[str]) -> tuple[str, ...]:
    """The maps to render beyond posedive's own: the contract's, then any other the recipe stores."""
    wanted = [*contract_forms, *(name for name in stored if name in FORM_RENDERERS)]
    return tuple(dict.fromkeys(wanted))


def load_condition_renderer(recipe, *, cache_root: Path | None = None,
                            forms: Sequence[str] = ()) -> BodyConditionRenderer:
    """The ``ConditionRenderer`` for a recipe (``posedive.recipe.Recipe``): its pose bank, body model,
    image size and field of view; conditions cached under ``$POSEDIVE_CACHE_DIR`` (default
    ``~/.cache/posedive``) unless ``cache_root`` says otherwise."""
    return BodyConditionRenderer(renderer_spec(recipe, cache_root=cache_root, forms=forms))
